/**
 * Softmax and log-softmax along any axis, each with a dedicated forward and backward kernel
 * (kernels/softmax). Numerically stable (the row max is subtracted first).
 *
 * Masking: inputs equal to -inf are masked; their probability and gradient are exactly 0. A fully
 * masked row gives all zeros from softmax (NOTE: PyTorch gives NaN there) and all -inf from
 * logSoftmax, with zero gradients in both cases.
 *
 * Kernels: rows of at most SOFTMAX_SHORT_ROW elements run the thread-per-row variant
 * (kernels/softmax/softmax-row.ts), longer ones the workgroup-per-row kernel (softmax.ts).
 */
import type { KernelSpec } from '../../kernels/kernel-spec.js';
import { type SoftmaxOp, type SoftmaxParams, softmaxKernel } from '../../kernels/softmax/softmax.js';
import { SOFTMAX_SHORT_ROW, softmaxRowKernel } from '../../kernels/softmax/softmax-row.js';
import { record } from '../autograd.js';
import { normalizeAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { deviceOf, expectDtype, launch, output } from './run.js';

/** Row geometry of x viewed as [outer, L, inner] around `axis`. */
function geometry(op: SoftmaxOp, x: Tensor, axis: number): Omit<SoftmaxParams, 'op' | 'dir'> {
  // A 0-d tensor behaves as one row of length 1 (axis 0 or -1), as in PyTorch.
  const ax = normalizeAxis(op === 'softmax' ? 'softmax' : 'logSoftmax', x.rank === 0 && axis === -1 ? 0 : axis, x.rank);
  if (x.rank === 0) return { rows: 1, len: 1, inner: 1 };
  const len = x.shape[ax]!;
  const inner = x.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const outer = x.shape.slice(0, ax).reduce((a, b) => a * b, 1);
  return { rows: outer * inner, len, inner };
}

/** Short rows (attention scores) run one thread per row; long rows a workgroup per row. */
function kernelFor(geo: { len: number }): KernelSpec<SoftmaxParams> {
  return geo.len <= SOFTMAX_SHORT_ROW ? softmaxRowKernel : softmaxKernel;
}

function softmaxFamily(op: SoftmaxOp, x: Tensor, axis: number): Tensor {
  const name = op === 'softmax' ? 'softmax' : 'logSoftmax';
  expectDtype(name, x, 'f32');
  const geo = geometry(op, x, axis);
  const out = output(name, x, x.shape);
  launch(kernelFor(geo), { op, dir: 'forward', ...geo }, [x, out], out);
  return record(name, out, [x], [out], (dOut, [y]) => {
    deviceOf(name, [y!, dOut]);
    const dX = output(`${name}_backward`, dOut, dOut.shape);
    launch(kernelFor(geo), { op, dir: 'backward', ...geo }, [y!, dOut, dX], dX);
    return [dX];
  });
}

/** exp(x - max) / sum(exp(x - max)) along `axis`; -inf entries are masked (see the file head). */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxFamily('softmax', x, axis);
}

/** (x - max) - log(sum(exp(x - max))) along `axis`; masked (-inf) entries stay -inf, gradient 0. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxFamily('log_softmax', x, axis);
}
