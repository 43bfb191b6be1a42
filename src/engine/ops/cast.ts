/**
 * cast: f32 <-> f16 storage conversion (kernels/cast: round to nearest even, overflow to infinity,
 * gradual underflow; f16 -> f32 is exact).
 *
 * f16 is inference-only storage (model weights at f16 precision), so cast is not differentiable:
 * casting a tensor that needs a gradient while recording throws rather than silently cutting the
 * gradient. The kernel does integer arithmetic on bit patterns, so it needs no `shader-f16`;
 * the ops that compute with f16 operands (matmul, linear) check that feature.
 */
import { castKernel } from '../../kernels/cast/cast.js';
import { isRecording } from '../autograd.js';
import type { DType } from '../device/device.js';
import type { Tensor } from '../tensor.js';
import { reshape } from './movement.js';
import { launch, output } from './run.js';

/** `x` converted to `dtype` ('f32' or 'f16'); the same dtype gives a recorded view (no copy). */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return reshape(x, x.shape);
  if (x.dtype === 'i32' || dtype === 'i32') {
    throw new Error(`cast: ${x} to ${dtype}: only f32 <-> f16 casts are supported`);
  }
  if (isRecording() && x.requiresGrad) {
    throw new Error(`cast: ${x} requires a gradient, but nothing differentiates through f16; cast under noGrad() or detach() it first`);
  }
  const out = output('cast', x, x.shape, dtype);
  launch(castKernel, { to: dtype, n: x.size }, [x, out], out);
  return out;
}
