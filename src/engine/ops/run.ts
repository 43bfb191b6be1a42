/**
 * Small helpers every op file uses: device checks, output allocation, kernel launch.
 * Ops call `launch(spec, params, inputs, outputs)`; the device decides whether WGSL or the CPU
 * reference runs.
 */
import type { KernelSpec } from '../../kernels/kernel-spec.js';
import type { DType } from '../device/device.js';
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

/**
 * Launches one kernel with `tensors` bound in the spec's binding order. Skips the launch when the
 * output is empty (zero-size tensors are legal; zero-size dispatches and bindings are not).
 */
export function launch<P>(spec: KernelSpec<P>, params: P, tensors: Tensor[], skipIfEmpty?: Tensor): void {
  if (skipIfEmpty && skipIfEmpty.size === 0) return;
  tensors[0]!.device.run(spec, params, tensors.map((t) => t.storage));
}
