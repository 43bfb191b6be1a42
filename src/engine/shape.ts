/** Pure shape arithmetic: broadcasting, axes, strides. Tested without a device. */
import { contiguousStrides } from '../kernels/wgsl.js';

export { contiguousStrides, numel } from '../kernels/wgsl.js';

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy/PyTorch broadcasting of two shapes; throws naming the op and both shapes. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Strides for reading a tensor of `shape` as if it had the broadcast shape `outShape`:
 * broadcast (size-1 or missing) dims get stride 0.
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = contiguousStrides(shape);
  const offset = outShape.length - shape.length;
  return outShape.map((_, i) => {
    const d = i - offset;
    if (d < 0) return 0;
    return shape[d] === 1 ? 0 : strides[d]!;
  });
}

/** Normalises a possibly negative axis; throws naming the op. */
export function normalizeAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= Math.max(rank, 1)) {
    throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  }
  return a;
}

export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = [...new Set(list.map((a) => normalizeAxis(op, a, rank)))].sort((x, y) => x - y);
  return out;
}

/**
 * The axes along which `from` (a broadcast result) must be summed to get back `to`, as in the
 * backward of a broadcasting op. Returns the axes of `from` and whether leading dims are dropped.
 */
export function reductionAxesForBroadcast(from: readonly number[], to: readonly number[]): number[] {
  const offset = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    const d = i - offset;
    if (d < 0 || (to[d] === 1 && from[i] !== 1)) axes.push(i);
  }
  return axes;
}
