/**
 * The kernel contract shared by every kernel family.
 *
 * A KernelSpec is pure data plus functions: it knows its WGSL text, its bindings, how to pack its
 * uniforms, how many workgroups to launch, and a plain-TypeScript reference that computes exactly
 * the same thing on typed arrays. The WebGPU device compiles `source(params)` (cached by `key`);
 * the CPU device calls `reference(params, buffers)` with the same buffers in the same order.
 *
 * Rules that keep the pipeline cache small (docs/style.md):
 * - `key(params)` names everything that changes the WGSL text, and nothing else (no sizes).
 * - Sizes travel in the uniform block built by `uniforms(params)`.
 */

/**
 * Element type of one storage binding: what the WGSL declares, and the typed view a CPU reference
 * gets. 'f16' is IEEE half: `array<f16>` (or `array<vec4<f16>>`) behind `enable f16;`, which needs
 * the `shader-f16` feature; a kernel that needs no f16 arithmetic may instead declare the binding
 * `array<u32>` and unpack two halves per word itself (kernels/cast). References see Uint16Array.
 */
export type ElemType = 'f32' | 'i32' | 'u32' | 'f16';

export interface BindingDecl {
  /** Name used in the WGSL (`var<storage, ...> name: array<type>`), handy in errors. */
  name: string;
  access: 'read' | 'read_write';
  type: ElemType;
}

/** One 32-bit uniform word: the WGSL struct declares the fields in the same order. */
export type UniformWord = { u32: number } | { i32: number } | { f32: number };

/** Typed view a CPU reference receives for one binding (Uint16Array: f16 bit patterns). */
export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array;

/**
 * Workgroup counts. A plain number is a 1-D launch that the device may fold into 2-D when it
 * exceeds maxComputeWorkgroupsPerDimension (65535); kernels launched that way compute their
 * linear index with `linearWorkgroupIndex` from wgsl.ts and guard against overrun.
 */
export type Dispatch = number | [number, number, number];

export interface KernelSpec<P> {
  /** Family name, e.g. 'elementwise'; the first part of every key. */
  readonly name: string;
  /** Everything that changes the WGSL text, human-readable: `matmul:f32:tB:t64x64`. */
  key(params: P): string;
  source(params: P): string;
  /** Storage bindings in binding order (0..n-1). The uniform block, if any, comes last. */
  bindings(params: P): BindingDecl[];
  /** Uniform words, or an empty array when the kernel takes none. */
  uniforms(params: P): UniformWord[];
  workgroupSize(params: P): number;
  dispatch(params: P): Dispatch;
  /** Plain-TypeScript reference with the same bindings; writes into the read_write arrays. */
  reference(params: P, buffers: HostArray[]): void;
}

/** Ceil division, for workgroup counts. */
export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}
