/**
 * Movement ops: reshape (free, shares storage), permute/transpose, slice, concat, pad, expand.
 * Every copying op runs the strided-copy family (kernels/copy): the row variant (copy-rows.ts) when
 * the innermost run is contiguous in source and destination, the 4x4 tile variant (copy-tile.ts)
 * for 4-aligned transposes, else the general kernel (copy.ts).
 * Each backward is another movement op (permute back, pad the slice back, slice the concat apart,
 * sum the expand).
 */
import { copyKernel, type CopyParams } from '../../kernels/copy/copy.js';
import { copyRowsKernel, copyRowsPlan } from '../../kernels/copy/copy-rows.js';
import { copyTileKernel, copyTilePlan } from '../../kernels/copy/copy-tile.js';
import type { KernelSpec } from '../../kernels/kernel-spec.js';
import { record } from '../autograd.js';
import { contiguousStrides, formatShape, normalizeAxis, numel } from '../shape.js';
import { Tensor } from '../tensor.js';
import { sumToShape } from './reduce.js';
import { broadcastRaw } from './elementwise.js';
import { deviceOf, launch, output } from './run.js';

/** The copy kernel for `p`: contiguous runs, then 4-aligned transposes, then the general kernel. */
export function copyKernelFor(p: CopyParams): KernelSpec<CopyParams> {
  if (copyRowsPlan(p)) return copyRowsKernel;
  return copyTilePlan(p) ? copyTileKernel : copyKernel;
}

/** One strided copy from a contiguous `src` into `dst` (skipped when the region is empty). */
function copy(src: Tensor, dst: Tensor, p: Omit<CopyParams, 'srcShape' | 'srcStrides'>): void {
  if (numel(p.shape) === 0) return;
  const params = { ...p, srcShape: src.shape, srcStrides: contiguousStrides(src.shape) };
  launch(copyKernelFor(params), params, [src, dst]);
}

/** Same values in a new shape; one dim may be -1. Shares storage (no copy). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const resolved = [...shape];
  const unknown = resolved.indexOf(-1);
  if (unknown >= 0) {
    const known = resolved.reduce((n, d, i) => (i === unknown ? n : n * d), 1);
    resolved[unknown] = known === 0 ? 0 : x.size / known;
  }
  if (numel(resolved) !== x.size || resolved.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape ${formatShape(x.shape)} (${x.size} elements) to ${formatShape(shape)}`);
  }
  const out = x.view(resolved);
  const inShape = x.shape;
  return record('reshape', out, [x], [], (dOut) => [dOut.view(inShape)]);
}

/** Reorders axes: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const axes = perm.map((a) => normalizeAxis('permute', a, x.rank));
  if (axes.length !== x.rank || new Set(axes).size !== x.rank) {
    throw new Error(`permute: [${perm.join(', ')}] is not a permutation of the ${x.rank} axes of ${formatShape(x.shape)}`);
  }
  const out = permuteRaw(x, axes);
  const inverse = axes.map((_, i) => axes.indexOf(i));
  return record('permute', out, [x], [], (dOut) => [permuteRaw(dOut, inverse)]);
}

/** A contiguous copy of `x` with its axes reordered (out.shape[i] = x.shape[axes[i]]); no autograd. */
export function permuteRaw(x: Tensor, axes: readonly number[]): Tensor {
  const shape = axes.map((a) => x.shape[a]!);
  const out = output('permute', x, shape, x.dtype);
  const strides = contiguousStrides(x.shape);
  // Iterate over the output; read the source through permuted strides.
  const params: CopyParams = {
    shape,
    srcShape: shape,
    srcStrides: axes.map((a) => strides[a]!),
    srcStep: shape.map(() => 1),
    srcOffset: 0,
    dstStrides: contiguousStrides(shape),
    dstOffset: 0,
  };
  if (out.size > 0) launch(copyKernelFor(params), params, [x, out]);
  return out;
}

/** Swaps two axes. */
export function transpose(x: Tensor, a = -2, b = -1): Tensor {
  const perm = x.shape.map((_, i) => i);
  const ia = normalizeAxis('transpose', a, x.rank);
  const ib = normalizeAxis('transpose', b, x.rank);
  perm[ia] = ib;
  perm[ib] = ia;
  return permute(x, perm);
}

export interface SliceRange {
  start?: number;
  end?: number;
  step?: number;
}

/**
 * Python-style slicing per axis (negative indices count from the end, bounds are clamped);
 * axes not listed are kept whole. `ranges[i]` applies to axis i.
 */
export function slice(x: Tensor, ranges: readonly (SliceRange | undefined)[]): Tensor {
  if (ranges.length > x.rank) throw new Error(`slice: ${ranges.length} ranges for ${formatShape(x.shape)}`);
  const starts: number[] = [];
  const steps: number[] = [];
  const shape: number[] = [];
  x.shape.forEach((dim, i) => {
    const r = ranges[i] ?? {};
    const step = r.step ?? 1;
    if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step ${step} on axis ${i} must be a positive integer`);
    const norm = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    const start = norm(r.start ?? 0);
    const end = norm(r.end ?? dim);
    starts.push(start);
    steps.push(step);
    shape.push(Math.max(0, Math.ceil((end - start) / step)));
  });
  const strides = contiguousStrides(x.shape);
  const out = output('slice', x, shape, x.dtype);
  copy(x, out, {
    shape,
    srcStep: steps,
    srcOffset: starts.reduce((o, s, i) => o + s * strides[i]!, 0),
    dstStrides: contiguousStrides(shape),
    dstOffset: 0,
  });
  const inShape = x.shape;
  return record('slice', out, [x], [], (dOut) => {
    const inStrides = contiguousStrides(inShape);
    if (steps.every((s) => s === 1)) {
      // Unit steps: one padded copy writes dOut into place and zeros around it.
      const dX = output('slice_backward', dOut, inShape);
      copy(dOut, dX, {
        shape: inShape,
        srcStep: inShape.map(() => 1),
        srcOffset: 0,
        dstStrides: inStrides,
        dstOffset: 0,
        padBefore: starts,
        fillBits: 0,
      });
      return [dX];
    }
    // Stepped: scatter dOut into zeros through stepped destination strides.
    const dX = Tensor.zeros(inShape, { device: dOut.device });
    copy(dOut, dX, {
      shape: dOut.shape,
      srcStep: dOut.shape.map(() => 1),
      srcOffset: 0,
      dstStrides: inStrides.map((st, i) => st * steps[i]!),
      dstOffset: starts.reduce((o, st, i) => o + st * inStrides[i]!, 0),
    });
    return [dX];
  });
}

/** Narrow one axis: x[..., start:start+length, ...]. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = normalizeAxis('narrow', axis, x.rank);
  const ranges: SliceRange[] = x.shape.map(() => ({}));
  ranges[a] = { start, end: start + length };
  return slice(x, ranges);
}

/** Joins tensors along an axis; all other dims must match. */
export function concat(tensors: readonly Tensor[], axis: number): Tensor {
  if (tensors.length === 0) throw new Error('concat: no tensors');
  const first = tensors[0]!;
  deviceOf('concat', [...tensors]);
  const a = normalizeAxis('concat', axis, first.rank);
  for (const t of tensors) {
    const ok = t.rank === first.rank && t.dtype === first.dtype && t.shape.every((d, i) => i === a || d === first.shape[i]);
    if (!ok) {
      throw new Error(`concat: ${formatShape(t.shape)} (${t.dtype}) does not match ${formatShape(first.shape)} (${first.dtype}) outside axis ${axis}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = tensors.reduce((n, t) => n + t.shape[a]!, 0);
  const out = output('concat', first, shape, first.dtype);
  const outStrides = contiguousStrides(shape);
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    copy(t, out, {
      shape: t.shape,
      srcStep: t.shape.map(() => 1),
      srcOffset: 0,
      dstStrides: outStrides,
      dstOffset: offset * outStrides[a]!,
    });
    offset += t.shape[a]!;
  }
  const sizes = tensors.map((t) => t.shape[a]!);
  return record('concat', out, [...tensors], [], (dOut, _s, needs) =>
    sizes.map((len, i) => (needs[i] ? narrowRaw(dOut, a, offsets[i]!, len) : null)),
  );
}

function narrowRaw(x: Tensor, axis: number, start: number, length: number): Tensor {
  const shape = [...x.shape];
  shape[axis] = length;
  const out = output('narrow', x, shape, x.dtype);
  copy(x, out, {
    shape,
    srcStep: shape.map(() => 1),
    srcOffset: start * contiguousStrides(x.shape)[axis]!,
    dstStrides: contiguousStrides(shape),
    dstOffset: 0,
  });
  return out;
}

/**
 * Constant padding. `pads` lists [before, after] per axis starting from the LAST axis, as
 * torch.nn.functional.pad does: [[left, right], [top, bottom], ...].
 */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  if (pads.length > x.rank) throw new Error(`pad: ${pads.length} pad pairs for ${formatShape(x.shape)}`);
  const before = x.shape.map(() => 0);
  const after = x.shape.map(() => 0);
  pads.forEach(([b, e], k) => {
    const axis = x.rank - 1 - k;
    if (b < 0 || e < 0) throw new Error(`pad: negative padding [${b}, ${e}] (use slice to crop)`);
    before[axis] = b;
    after[axis] = e;
  });
  const shape = x.shape.map((d, i) => d + before[i]! + after[i]!);
  const out = output('pad', x, shape, x.dtype);
  const fill = new Float32Array([value]);
  copy(x, out, {
    shape,
    srcStep: shape.map(() => 1),
    srcOffset: 0,
    dstStrides: contiguousStrides(shape),
    dstOffset: 0,
    padBefore: before,
    fillBits: x.dtype === 'f32' ? new Uint32Array(fill.buffer)[0]! : value >>> 0,
  });
  const inShape = x.shape;
  return record('pad', out, [x], [], (dOut) => [
    slice(dOut, inShape.map((d, i) => ({ start: before[i]!, end: before[i]! + d }))),
  ]);
}

/** Broadcasts x to `shape` (copying). Backward sums over the broadcast dims. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const out = broadcastRaw(x, shape);
  const inShape = x.shape;
  return record('expand', out, [x], [], (dOut) => [sumToShape(dOut, inShape)]);
}

/** Removes size-1 axes (all, or the given one). */
export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const a = normalizeAxis('squeeze', axis, x.rank);
  if (x.shape[a] !== 1) return x;
  return reshape(x, x.shape.filter((_, i) => i !== a));
}

/** Inserts a size-1 axis at `axis` (may equal rank). */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  if (a < 0 || a > x.rank) throw new Error(`unsqueeze: axis ${axis} out of range for ${formatShape(x.shape)}`);
  const shape = [...x.shape];
  shape.splice(a, 0, 1);
  return reshape(x, shape);
}
