/**
 * Gathers: indexSelect (torch.index_select) and embedding (a row lookup, built on the same kernel).
 *
 * Forward: one `gather:select` launch. Backward to x is a deterministic scatter-add (WGSL has no
 * f32 atomics): `gather:links` chains each id's occurrences, `gather:zero` clears dX, and
 * `gather:scatter_add` lets each id's first occurrence sum its whole chain into its row, so
 * repeated ids are summed in a fixed order (ascending position).
 *
 * Out-of-range ids: the ids live on the device, so the host cannot check them without a read. The
 * CPU device throws naming the id; the WebGPU kernels clamp them to [0, size - 1] (they read the
 * nearest valid row and send its gradient there).
 */
import { type GatherParams, gatherKernel } from '../../kernels/gather/gather.js';
import { record } from '../autograd.js';
import { formatShape, normalizeAxis, numel } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { deviceOf, expectDtype, launch, output } from './run.js';

/** [O, V, I] view of x around `axis`, with C = the number of ids. */
function geometry(shape: readonly number[], axis: number, count: number): Omit<GatherParams, 'mode'> {
  return {
    outer: numel(shape.slice(0, axis)),
    axis: shape[axis]!,
    inner: numel(shape.slice(axis + 1)),
    count,
  };
}

/** dX (shape `xShape`) = scatter-add of dOut rows into the rows named by ids (no autograd). */
function scatterAddRaw(dOut: Tensor, ids: Tensor, xShape: readonly number[], axis: number): Tensor {
  const g = geometry(xShape, axis, ids.size);
  const dX = output('index_select_backward', dOut, xShape);
  launch(gatherKernel, { mode: 'zero', ...g }, [dX], dX);
  if (ids.size > 0 && dOut.size > 0) {
    const links = output('index_select_links', ids, [2 * ids.size], 'i32');
    launch(gatherKernel, { mode: 'links', ...g }, [ids, links]);
    launch(gatherKernel, { mode: 'scatter_add', ...g }, [dOut, ids, links, dX]);
    links.dispose();
  }
  return dX;
}

/** Selects along `axis` with flat ids; output `shape`. Records under `op`. */
function gatherAlong(op: string, x: Tensor, axis: number, ids: Tensor, shape: readonly number[]): Tensor {
  deviceOf(op, [x, ids]);
  expectDtype(op, ids, 'i32', 'ids');
  if (x.shape[axis] === 0 && ids.size > 0) {
    throw new Error(`${op}: cannot select ${ids.size} ids from an empty axis ${axis} of ${formatShape(x.shape)}`);
  }
  const out = output(op, x, shape, x.dtype);
  launch(gatherKernel, { mode: 'select', ...geometry(x.shape, axis, ids.size) }, [x, ids, out], out);
  const xShape = x.shape;
  return record(op, out, [x, ids], [ids], (dOut, [sids], needs) => [
    needs[0] ? scatterAddRaw(dOut, sids!, xShape, axis) : null,
    null,
  ]);
}

/**
 * torch.index_select: picks entries of `x` along `axis` by rank-1 i32 `ids` (repeats allowed);
 * out.shape = x.shape with shape[axis] = ids.length. Works for f32 and i32 x; the gradient to an
 * f32 x sums the output gradients of repeated ids.
 */
export function indexSelect(x: Tensor, axis: number, ids: Tensor): Tensor {
  const a = normalizeAxis('indexSelect', axis, x.rank);
  if (x.rank === 0) throw new Error(`indexSelect: input ${formatShape(x.shape)} must have rank >= 1`);
  if (ids.rank !== 1) throw new Error(`indexSelect: ids ${formatShape(ids.shape)} must have rank 1`);
  const shape = [...x.shape];
  shape[a] = ids.size;
  return gatherAlong('index_select', x, a, ids, shape);
}

/**
 * Embedding lookup: rows of weight [V, D] for i32 ids of any shape -> [...ids.shape, D].
 * The gradient to weight sums repeated ids (rows never looked up get zero).
 */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.rank !== 2) throw new Error(`embedding: weight ${formatShape(weight.shape)} must have rank 2 ([V, D])`);
  return gatherAlong('embedding', weight, 0, ids, [...ids.shape, weight.shape[1]!]);
}
