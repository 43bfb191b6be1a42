/**
 * Small helpers every op file uses: device checks, output allocation, kernel launch.
 * Ops call `launch(spec, params, inputs, outputs)`; the device decides whether WGSL or the CPU
 * reference runs.
 */
import type { KernelSpec } from '../../kernels/kernel-spec.js';
import type { Device, DType } from '../device/device.js';
import { formatShape } from '../shape.js';
import { Tensor } from '../tensor.js';

/** All tensors must live on one device; returns it. */
export function deviceOf(op: string, tensors: Tensor[]) {
  const device = tensors[0]!.device;
  for (const t of tensors) {
    if (t.device !== device) throw new Error(`${op}: inputs live on different devices (${device.kind} and ${t.device.kind})`);
  }
  return device;
}

export function expectDtype(op: string, t: Tensor, dtype: DType, name = 'input'): void {
  if (t.dtype !== dtype) throw new Error(`${op}: ${name} ${formatShape(t.shape)} has dtype ${t.dtype}, expected ${dtype}`);
}

export function expectRank(op: string, t: Tensor, rank: number, name = 'input'): void {
  if (t.rank !== rank) throw new Error(`${op}: ${name} must have rank ${rank}, got shape ${formatShape(t.shape)}`);
}

/** Allocates the output on the inputs' device (uninitialised: the kernel must write all of it). */
export function output(op: string, like: Tensor, shape: readonly number[], dtype: DType = 'f32'): Tensor {
  return Tensor.empty(shape, dtype, like.device, op);
}

/** Throws unless `device` can run kernels that read f16 storage (WGSL `enable f16;`). */
export function requireShaderF16(op: string, device: Device): void {
  if (device.shaderF16) return;
  throw new Error(
    `${op}: f16 weights need the WebGPU 'shader-f16' feature, which this adapter (${device.description}) ` +
      `does not offer; use f32 precision on it`,
  );
}

/**
 * Launches one kernel with `tensors` bound in the spec's binding order. Skips the launch when the
 * output is empty (zero-size tensors are legal; zero-size dispatches and bindings are not).
 */
export function launch<P>(spec: KernelSpec<P>, params: P, tensors: Tensor[], skipIfEmpty?: Tensor): void {
  if (skipIfEmpty && skipIfEmpty.size === 0) return;
  checkF16Bindings(spec, params, tensors);
  tensors[0]!.device.run(spec, params, tensors.map((t) => t.storage));
}

/**
 * f16 tensors bind only where a kernel declares f16, and f16 bindings take only f16 tensors: every
 * other kernel would read their 2-byte elements as 4-byte words. f16 is a storage type that only
 * matmul's B operand (weights) and cast read.
 */
function checkF16Bindings<P>(spec: KernelSpec<P>, params: P, tensors: Tensor[]): void {
  // Ops choose their f16 kernel variants from the tensors' dtypes, so only a launch that binds an
  // f16 tensor can mismatch; every other launch skips building the binding list.
  if (!tensors.some((t) => t.dtype === 'f16')) return;
  const decls = spec.bindings(params);
  tensors.forEach((t, i) => {
    const decl = decls[i];
    if (!decl || (t.dtype === 'f16') === (decl.type === 'f16')) return;
    const hint = t.dtype === 'f16' ? ": f16 tensors feed only matmul/linear weights and cast (cast(t, 'f32') first)" : '';
    throw new Error(`${spec.key(params)}: binding '${decl.name}' takes ${decl.type}, got an ${t.dtype} tensor ${formatShape(t.shape)}${hint}`);
  });
}
