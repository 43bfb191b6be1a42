/** Reductions over axes: sum, mean, max (amax semantics), min, argmax; and sumToShape for broadcasts. */
import { type ReduceOp, reduceKernel } from '../../kernels/reduce/reduce.js';
import { record } from '../autograd.js';
import { contiguousStrides, formatShape, normalizeAxes, numel, reductionAxesForBroadcast, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { broadcastRaw, elementwiseRaw } from './elementwise.js';
import { expectDtype, launch, output } from './run.js';

export interface ReduceOptions {
  keepDims?: boolean;
}

/** Output shape with reduced axes either dropped or kept as 1. */
function reducedShapeOf(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepDims) out.push(1);
  });
  return out;
}

/** Runs the reduce kernel (no autograd). */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  expectDtype(op, x, 'f32');
  const strides = contiguousStrides(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const params = {
    op,
    keptShape: kept.map((i) => x.shape[i]!),
    keptStrides: kept.map((i) => strides[i]!),
    reducedShape: axes.map((i) => x.shape[i]!),
    reducedStrides: axes.map((i) => strides[i]!),
  };
  const out = output(op, x, reducedShapeOf(x.shape, axes, keepDims), op === 'argmax' ? 'i32' : 'f32');
  launch(reduceKernel, params, [x, out], out);
  return out;
}

/** Sum over `axes` (all axes when omitted). */
export function sum(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const ax = normalizeAxes('sum', axes, x.rank);
  const keepDims = options.keepDims ?? false;
  const out = reduceRaw('sum', x, ax, keepDims);
  const keptShape = reducedShapeOf(x.shape, ax, true);
  return record('sum', out, [x], [], (dOut) => [broadcastRaw(dOut.view(keptShape), x.shape)]);
}

export function mean(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  const ax = normalizeAxes('mean', axes, x.rank);
  const count = ax.reduce((n, a) => n * x.shape[a]!, 1);
  const total = reduceRaw('sum', x, ax, options.keepDims ?? false);
  const out = elementwiseRaw('mul_scalar', [total], 1 / count);
  total.dispose();
  const keptShape = reducedShapeOf(x.shape, ax, true);
  return record('mean', out, [x], [], (dOut) => [
    broadcastRaw(elementwiseRaw('mul_scalar', [dOut.view(keptShape)], 1 / count), x.shape),
  ]);
}

/** Max over axes. Gradient is shared evenly among tied maxima (torch.amax semantics). */
export function max(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  return extremum('max', x, axes, options);
}

export function min(x: Tensor, axes?: number | readonly number[], options: ReduceOptions = {}): Tensor {
  return extremum('min', x, axes, options);
}

function extremum(op: 'max' | 'min', x: Tensor, axes: number | readonly number[] | undefined, options: ReduceOptions): Tensor {
  const ax = normalizeAxes(op, axes, x.rank);
  const out = reduceRaw(op, x, ax, options.keepDims ?? false);
  const keptShape = reducedShapeOf(x.shape, ax, true);
  return record(op, out, [x], [x, out], (dOut, [sx, y]) => {
    const isExtreme = elementwiseRaw('equal', [sx!, y!.view(keptShape)]);
    const ties = reduceRaw('sum', isExtreme, ax, true);
    const share = elementwiseRaw('div', [dOut.view(keptShape), ties]);
    return [elementwiseRaw('mul', [isExtreme, share])];
  });
}

/** Index of the first maximum along one axis (i32, no gradient). */
export function argmax(x: Tensor, axis: number, options: ReduceOptions = {}): Tensor {
  const ax = normalizeAxes('argmax', axis, x.rank);
  if (x.shape[ax[0]!] === 0) throw new Error(`argmax: axis ${axis} of ${formatShape(x.shape)} is empty`);
  return reduceRaw('argmax', x, ax, options.keepDims ?? false);
}

/**
 * Sums a broadcast result back to `shape` (the backward of broadcasting). Returns `x` itself when
 * the shapes already match.
 */
export function sumToShape(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const axes = reductionAxesForBroadcast(x.shape, shape);
  const reduced = reduceRaw('sum', x, axes, true);
  if (numel(reduced.shape) !== numel(shape)) {
    throw new Error(`sumToShape: cannot reduce ${formatShape(x.shape)} to ${formatShape(shape)}`);
  }
  return reduced.view(shape);
}
