/**
 * Reductions over axes: sum, mean, max (amax semantics), min, argmax; and sumToShape for broadcasts.
 *
 * Sums run the span kernel (kernels/reduce/reduce-span.ts) once per contiguous span of reduced
 * axes (at most MAX_SPANS of them; size-1 axes are ignored); max, min, argmax and sums over more
 * separate spans run the general kernel (reduce.ts).
 */
import { type ReduceOp, reduceKernel } from '../../kernels/reduce/reduce.js';
import { reduceSpanChunk, reduceSpanKernel, reduceSpanParts } from '../../kernels/reduce/reduce-span.js';
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

/** Separate spans of reduced axes the span kernel takes (one launch, or two with parts, each). */
const MAX_SPANS = 2;

interface Segment {
  size: number;
  reduced: boolean;
}

/** x's axes with size-1 axes dropped and neighbours of one kind (reduced or kept) merged. */
function segmentsOf(shape: readonly number[], axes: readonly number[]): Segment[] {
  const out: Segment[] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const reduced = axes.includes(i);
    const last = out[out.length - 1];
    if (last && last.reduced === reduced) last.size *= d;
    else out.push({ size: d, reduced });
  });
  return out;
}

const product = (segs: readonly Segment[]): number => segs.reduce((n, s) => n * s.size, 1);

/**
 * Sum of contiguous x viewed as [outer, R, inner] over R, into a new tensor of `shape`: one span
 * launch, plus a second one over the partial sums when the kernel cuts R into parts.
 */
function spanSum(x: Tensor, outer: number, R: number, inner: number, shape: readonly number[]): Tensor {
  const params = { outer, R, inner, chunk: reduceSpanChunk(outer, R, inner) };
  const parts = reduceSpanParts(params);
  const partial = output('sum', x, parts === 1 ? shape : [outer * parts * inner]);
  launch(reduceSpanKernel, params, [x, partial], partial);
  if (parts === 1) return partial;
  const out = spanSum(partial, outer, parts, inner, shape);
  partial.dispose();
  return out;
}

/**
 * Sum over `axes` with the span kernel, innermost span first, or null when the general kernel
 * must run instead (empty input, no reduced axis longer than 1, more than MAX_SPANS spans).
 */
function sumBySpans(x: Tensor, axes: number[], shape: readonly number[]): Tensor | null {
  let segs = segmentsOf(x.shape, axes);
  const spans = segs.filter((s) => s.reduced).length;
  if (x.size === 0 || spans === 0 || spans > MAX_SPANS) return null;
  let cur = x;
  for (let left = spans; left > 0; left--) {
    const j = segs.findLastIndex((s) => s.reduced);
    const outer = product(segs.slice(0, j));
    const inner = product(segs.slice(j + 1));
    const next = spanSum(cur, outer, segs[j]!.size, inner, left === 1 ? shape : [outer * inner]);
    if (cur !== x) cur.dispose();
    cur = next;
    // Drop the span; the kept segments on either side of it become one.
    const merged = segs.slice(0, j);
    const after = segs[j + 1];
    if (after) {
      const before = merged[merged.length - 1];
      if (before && !before.reduced) before.size *= after.size;
      else merged.push({ ...after });
    }
    segs = [...merged, ...segs.slice(j + 2)];
  }
  return cur;
}

/** Runs the reduce kernel (no autograd). */
function reduceRaw(op: ReduceOp, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  expectDtype(op, x, 'f32');
  const shape = reducedShapeOf(x.shape, axes, keepDims);
  const spanned = op === 'sum' ? sumBySpans(x, axes, shape) : null;
  if (spanned) return spanned;
  const strides = contiguousStrides(x.shape);
  const kept = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const params = {
    op,
    keptShape: kept.map((i) => x.shape[i]!),
    keptStrides: kept.map((i) => strides[i]!),
    reducedShape: axes.map((i) => x.shape[i]!),
    reducedStrides: axes.map((i) => strides[i]!),
  };
  const out = output(op, x, shape, op === 'argmax' ? 'i32' : 'f32');
  launch(reduceKernel, params, [x, out], out);
  return out;
}

/** Sum over `axes` without autograd, for ops that combine partial results (conv's split-K). */
export function sumRaw(x: Tensor, axes: number[], keepDims = false): Tensor {
  return reduceRaw('sum', x, axes, keepDims);
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
