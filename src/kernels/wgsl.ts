/**
 * Small shared WGSL snippets. Each kernel source is otherwise plain text in its own family file.
 */
import type { BindingDecl, UniformWord } from './kernel-spec.js';

/** Maximum tensor rank the generic (strided / broadcasting) kernels handle. */
export const MAX_RANK = 8;

/**
 * Linear workgroup index for 1-D launches that the device may have folded into 2-D
 * (maxComputeWorkgroupsPerDimension is 65535): `wid.x + wid.y * nwg.x`.
 */
export const linearIndexFn = /* wgsl */ `
fn linearWorkgroupIndex(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x + wid.z * nwg.x * nwg.y;
}
`;

/** `var<storage>` declarations for the bindings, in order, starting at binding 0. */
export function storageDecls(bindings: BindingDecl[]): string {
  return bindings
    .map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type}>;`)
    .join('\n');
}

/** `var<uniform> u: Params;` placed after the storage bindings. */
export function uniformDecl(bindingIndex: number, structName = 'Params'): string {
  return `@group(0) @binding(${bindingIndex}) var<uniform> u: ${structName};`;
}

/** Shorthand constructors for uniform words. */
export const u32 = (v: number): UniformWord => ({ u32: v });
export const i32 = (v: number): UniformWord => ({ i32: v });
export const f32 = (v: number): UniformWord => ({ f32: v });

/**
 * Packs a shape/stride list into MAX_RANK u32 words (unused trailing dims are 0), matching a WGSL
 * struct member `array<vec4<u32>, MAX_RANK / 4>` (uniform arrays need a 16-byte element stride).
 */
export function rankWords(values: readonly number[]): UniformWord[] {
  if (values.length > MAX_RANK) throw new Error(`rank ${values.length} exceeds MAX_RANK ${MAX_RANK}`);
  const out: UniformWord[] = [];
  for (let i = 0; i < MAX_RANK; i++) out.push(u32(values[i] ?? 0));
  return out;
}

/*
 * Reading dim d of such a member in WGSL: `u.shape[d / 4u][d % 4u]` (index the uniform reference
 * directly; copying the array into a function parameter first makes dynamic indexing awkward).
 */

/** Contiguous (row-major) strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
