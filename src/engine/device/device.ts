/**
 * The device interface: the one seam between the engine (tensors, autograd, ops) and the hardware.
 * Two implementations: WebGpuDevice (any GPUDevice: Dawn in Node, navigator.gpu in browsers) and
 * CpuDevice (runs each kernel's plain-TypeScript reference). Ops never know which one they use.
 */
import type { HostArray, KernelSpec } from '../../kernels/kernel-spec.js';

/**
 * Element types of tensors. 'f16' is a storage type only (2 bytes per element; buffers still come
 * in 4-byte multiples): weights of a model loaded at f16 precision, which matmul reads and widens to
 * f32. Nothing computes in f16 and nothing differentiates through it.
 */
export type DType = 'f32' | 'i32' | 'f16';

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, i32: 4, f16: 2 };

/** An opaque device allocation. Tensors share one Storage (reshape is free) through refcounting. */
export interface Storage {
  readonly byteSize: number;
  /** Number of tensor views holding this storage; the device gets it back at zero. */
  refs: number;
  readonly id: number;
}

export interface DeviceStats {
  /** Storages handed out and not yet released. */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers the pool keeps for reuse (WebGPU only). */
  pooledBuffers: number;
  pooledBytes: number;
  /** Total device buffers ever created (WebGPU) or allocations made (CPU). */
  created: number;
  /** Distinct compiled pipelines (WebGPU) or specs seen (CPU). */
  pipelines: number;
  dispatches: number;
  submits: number;
}

export interface Device {
  readonly kind: 'webgpu' | 'cpu';
  /** Human-readable adapter name, e.g. 'llvmpipe (LLVM 19.1.7, 256 bits)' or 'cpu'. */
  readonly description: string;
  /** Largest storage binding in bytes; bigger tensors are refused with a clear error. */
  readonly maxBindingBytes: number;
  /**
   * Whether kernels reading f16 storage (WGSL `enable f16;`) can run: the WebGPU adapter's
   * `shader-f16` feature (SwiftShader, for one, lacks it); always true on the CPU device.
   */
  readonly shaderF16: boolean;
  alloc(byteSize: number, label?: string): Storage;
  /** Gives a storage back (to the pool on WebGPU, only once the work that used it was submitted). */
  release(storage: Storage): void;
  write(storage: Storage, data: HostArray): void;
  /** Reads `byteSize` bytes; flushes pending work first. */
  read(storage: Storage, byteSize: number): Promise<ArrayBuffer>;
  /** Records one kernel launch with `storages` bound in `spec.bindings(params)` order. */
  run<P>(spec: KernelSpec<P>, params: P, storages: Storage[]): void;
  /** Submits recorded work. */
  flush(): void;
  /** Waits until all submitted work has finished (for timing and tests). */
  sync(): Promise<void>;
  stats(): DeviceStats;
  destroy(): void;
}

/** Buffers are created in 4-byte multiples and never empty (zero-size bindings are invalid). */
export function roundAllocSize(byteSize: number): number {
  return Math.max(4, Math.ceil(byteSize / 4) * 4);
}

/**
 * Checks, before a launch, the rules both devices must enforce identically so that CPU tests catch
 * what the GPU would reject: the right number of storages, and no storage bound twice when one of
 * its bindings is writable (WebGPU forbids that aliasing; in-place ops need their own variants).
 */
export function validateLaunch<P>(spec: KernelSpec<P>, params: P, storages: Storage[]): void {
  const decls = spec.bindings(params);
  if (decls.length !== storages.length) {
    throw new Error(`${spec.key(params)}: expected ${decls.length} buffers, got ${storages.length}`);
  }
  for (let i = 0; i < storages.length; i++) {
    for (let j = i + 1; j < storages.length; j++) {
      if (storages[i] !== storages[j]) continue;
      if (decls[i]!.access === 'read_write' || decls[j]!.access === 'read_write') {
        throw new Error(
          `${spec.key(params)}: buffer bound to both '${decls[i]!.name}' and '${decls[j]!.name}' ` +
            `while one is writable (WebGPU forbids this aliasing)`,
        );
      }
    }
  }
}
