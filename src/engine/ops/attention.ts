/**
 * Attention:
 *   scaledDotProductAttention: softmax(scale * q·kᵀ + mask [+ causal]) · v, layout [..., L, D].
 *     On adapters with 8-wide subgroups and head dims 32/64/128 (q, k, v with the same batch
 *     dims) the forward is one fused online-softmax kernel (kernels/attention) and so is the
 *     backward (kernels/attention-backward; composed from products and elementwise ops when the
 *     mask needs a gradient). Otherwise it is composed from recorded ops (autograd comes free):
 *     the scale is folded into the q·kᵀ product (matmul alpha), kᵀ is read in place (transB).
 *   multiHeadAttention: torch.nn.functional.multi_head_attention_forward without dropout and
 *     without returning the weights: packed in-projection rows q|k|v, heads split to [B, H, L, hd],
 *     sdpa, heads merged, out-projection.
 * Masks are additive float tensors; -inf masks a key. NOTE: a query row whose keys are all masked
 * gets zero attention (softmax's convention here) where PyTorch gives NaN.
 */
import { ATTENTION_HEAD_DIMS, type AttentionParams, attentionBatchCount, attentionKernel } from '../../kernels/attention/attention.js';
import {
  type AttentionBackwardParams, attentionBackwardKernel, attentionDeltaKernel,
} from '../../kernels/attention/attention-backward.js';
import { isRecording, record } from '../autograd.js';
import { broadcastShapes, formatShape, sameShape } from '../shape.js';
import { scope } from '../scope.js';
import { Tensor } from '../tensor.js';
import { add, elementwiseRaw, mul, sub } from './elementwise.js';
import { linear, matmul, useSubgroupKernels } from './matmul.js';
import { narrow, permute, reshape } from './movement.js';
import { sum, sumToShape } from './reduce.js';
import { deviceOf, expectDtype, launch, output } from './run.js';
import { softmax } from './softmax.js';

export interface AttentionOptions {
  /** Masks key j > query i with -inf (top-left aligned, as torch's is_causal, also when Lq != Lk). */
  causal?: boolean;
  /** Additive float mask broadcastable to [..., Lq, Lk]; may hold -inf. */
  mask?: Tensor | null;
  /** Score scale; default 1 / sqrt(D). */
  scale?: number;
}

/** [Lq, Lk] additive mask: 0 on and below the diagonal, -inf above (a constant, no gradient). */
function causalMask(lq: number, lk: number, like: Tensor): Tensor {
  const data = new Float32Array(lq * lk);
  for (let i = 0; i < lq; i++) data.fill(-Infinity, i * lk + i + 1, (i + 1) * lk);
  return Tensor.fromArray(data, [lq, lk], { device: like.device });
}

/**
 * softmax(q·kᵀ·scale + mask) · v for q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv] (leading dims
 * broadcast as in matmul) -> [..., Lq, Dv].
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const op = 'scaledDotProductAttention';
  deviceOf(op, [q, k, v]);
  for (const [t, name] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    expectDtype(op, t, 'f32', name);
    if (t.rank < 2) throw new Error(`${op}: ${name} ${formatShape(t.shape)} must have rank >= 2 ([..., L, D])`);
  }
  const [lq, d] = q.shape.slice(-2) as [number, number];
  const [lk, dk] = k.shape.slice(-2) as [number, number];
  if (dk !== d) throw new Error(`${op}: q ${formatShape(q.shape)} and k ${formatShape(k.shape)} differ in the last dim`);
  if (v.shape[v.rank - 2] !== lk) {
    throw new Error(`${op}: v ${formatShape(v.shape)} must have Lk = ${lk} rows like k ${formatShape(k.shape)}`);
  }
  const mask = options.mask ?? null;
  if (mask) {
    deviceOf(op, [q, mask]);
    expectDtype(op, mask, 'f32', 'mask');
    const batch = broadcastShapes(op, q.shape.slice(0, -2), k.shape.slice(0, -2));
    const scores = [...batch, lq, lk];
    let fits = mask.rank <= scores.length;
    try {
      fits &&= sameShape(broadcastShapes(op, scores, mask.shape), scores);
    } catch {
      fits = false;
    }
    if (!fits) throw new Error(`${op}: mask ${formatShape(mask.shape)} does not broadcast to the scores ${formatShape(scores)}`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const causal = options.causal ?? false;
  if (canFuse(q, k, v)) return fusedAttention(q, k, v, mask, scale, causal);
  return scope(() => composedAttention(q, k, v, mask, scale, causal));
}

/** softmax(scale * q·kᵀ + mask [+ causal]) from recorded ops. */
function probabilities(q: Tensor, k: Tensor, mask: Tensor | null, scale: number, causal: boolean): Tensor {
  let scores = matmul(q, k, { transB: true, alpha: scale });
  if (mask) scores = add(scores, mask);
  if (causal) scores = add(scores, causalMask(q.shape[q.rank - 2]!, k.shape[k.rank - 2]!, q));
  return softmax(scores, -1);
}

function composedAttention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, scale: number, causal: boolean): Tensor {
  return matmul(probabilities(q, k, mask, scale, causal), v);
}

/** The fused kernel's conditions: 8-wide subgroups, head dim 32/64/128 for q, k and v, same batch dims. */
function canFuse(q: Tensor, k: Tensor, v: Tensor): boolean {
  const d = q.shape[q.rank - 1]!;
  const batch = q.shape.slice(0, -2);
  return (
    (ATTENTION_HEAD_DIMS as readonly number[]).includes(d) &&
    v.shape[v.rank - 1] === d &&
    sameShape(k.shape.slice(0, -2), batch) &&
    sameShape(v.shape.slice(0, -2), batch) &&
    q.size > 0 && k.size > 0 &&
    useSubgroupKernels(q.device)
  );
}

/** Element strides of `mask` (right-aligned, 0 where it broadcasts) over the scores' dims. */
function maskStrides(mask: Tensor, scoresShape: readonly number[]): number[] {
  const strides = new Array<number>(scoresShape.length).fill(0);
  let stride = 1;
  for (let i = mask.rank - 1, j = scoresShape.length - 1; i >= 0; i--, j--) {
    if (mask.shape[i]! !== 1) strides[j] = stride;
    stride *= mask.shape[i]!;
  }
  return strides;
}

/**
 * Fused forward (kernels/attention). When q, k or v will need a gradient the forward also writes
 * the softmax stats (m, log l) per query row and the backward is the fused one
 * (kernels/attention-backward: dQ pass over keys, dK/dV pass over queries, recomputing P from the
 * stats). A mask that needs a gradient keeps the composed backward: its gradient is dS itself,
 * [..., Lq, Lk], which the fused kernels never materialise.
 */
function fusedAttention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, scale: number, causal: boolean): Tensor {
  const [lq, d] = q.shape.slice(-2) as [number, number];
  const lk = k.shape[k.rank - 2]!;
  const batchShape = q.shape.slice(0, -2);
  const strides = mask ? maskStrides(mask, [...batchShape, lq, lk]) : [];
  const geometry = {
    batchShape, Lq: lq, Lk: lk, D: d, scale, causal, mask: mask !== null,
    maskBatchStrides: mask ? strides.slice(0, -2) : batchShape.map(() => 0),
    maskRowStride: mask ? strides[strides.length - 2]! : 0,
    maskColStride: mask ? strides[strides.length - 1]! : 0,
  };
  const fusedBackward = isRecording() && [q, k, v].some((t) => t.requiresGrad) && !mask?.requiresGrad;
  const params: AttentionParams = { ...geometry, rows: 32, stats: fusedBackward };
  const out = output('scaledDotProductAttention', q, [...batchShape, lq, d]);
  const stats = fusedBackward ? output('scaledDotProductAttention', q, [...batchShape, lq, 2]) : null;
  const outputs = stats ? [out, stats] : [out];
  launch(attentionKernel, params, mask ? [q, k, v, mask, ...outputs] : [q, k, v, ...outputs], out);
  const inputs = mask ? [q, k, v, mask] : [q, k, v];
  if (stats) {
    record('scaledDotProductAttention', out, inputs, [...inputs, out, stats], (dOut, saved, needs) => {
      const [sq, sk, sv] = saved as [Tensor, Tensor, Tensor];
      const [sOut, sStats] = saved.slice(-2) as [Tensor, Tensor];
      const grads = fusedAttentionBackward(sq, sk, sv, mask ? saved[3]! : null, sOut, sStats, dOut, geometry, needs);
      return mask ? [...grads, null] : grads;
    });
    // The tape holds its own view of the stats.
    stats.dispose();
    return out;
  }
  const maskShape = mask?.shape ?? [];
  return record('scaledDotProductAttention', out, inputs, inputs, (dOut, saved, needs) => {
    const [sq, sk, sv, sm] = saved as [Tensor, Tensor, Tensor, Tensor | undefined];
    const p = probabilities(sq, sk, sm ?? null, scale, causal);
    const dV = needs[2] ? matmul(p, dOut, { transA: true }) : null;
    if (!needs[0] && !needs[1] && !needs[3]) return [null, null, dV];
    // Softmax backward: dS = P * (dP - sum(dP * P)) with dP = dOut·vᵀ (masked entries have P = 0).
    const dP = matmul(dOut, sv, { transB: true });
    const dS = mul(p, sub(dP, sum(mul(dP, p), -1, { keepDims: true })));
    const dQ = needs[0] ? matmul(dS, sk, { alpha: scale }) : null;
    const dK = needs[1] ? matmul(dS, sq, { transA: true, alpha: scale }) : null;
    const grads = [dQ, dK, dV];
    if (sm) grads.push(needs[3] ? sumToShape(dS, maskShape) : null);
    return grads;
  });
}

/**
 * [dQ, dK, dV] (null where not needed) from the forward's output and stats: one delta kernel
 * (stats + rowsum(dOut * out)), then the dQ pass and the dK/dV pass.
 */
function fusedAttentionBackward(
  q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null, out: Tensor, fwdStats: Tensor, dOut: Tensor,
  geometry: Omit<AttentionBackwardParams, 'pass'>, needs: boolean[],
): (Tensor | null)[] {
  const op = 'scaledDotProductAttention backward';
  const stats = output(op, q, [...geometry.batchShape, geometry.Lq, 4]);
  launch(attentionDeltaKernel, { rows: geometry.Lq * attentionBatchCount(geometry), D: geometry.D }, [out, dOut, fwdStats, stats], stats);
  const inputs = mask ? [q, k, v, dOut, stats, mask] : [q, k, v, dOut, stats];
  let dQ: Tensor | null = null;
  if (needs[0]) {
    dQ = output(op, q, q.shape);
    launch(attentionBackwardKernel, { ...geometry, pass: 'dq' }, [...inputs, dQ], dQ);
  }
  let dK: Tensor | null = null;
  let dV: Tensor | null = null;
  if (needs[1] || needs[2]) {
    dK = output(op, k, k.shape);
    dV = output(op, v, v.shape);
    launch(attentionBackwardKernel, { ...geometry, pass: 'dkv' }, [...inputs, dK, dV], dK);
  }
  return [dQ, needs[1] ? dK : null, needs[2] ? dV : null];
}

export interface MultiHeadAttentionParams {
  /** [3E, E]: rows 0..E-1 project q, E..2E-1 k, 2E..3E-1 v. */
  inProjWeight: Tensor;
  inProjBias?: Tensor | null;
  outProjWeight: Tensor;
  outProjBias?: Tensor | null;
  numHeads: number;
  /** Additive float mask [Lq, Lk] or [B * numHeads, Lq, Lk]. */
  attnMask?: Tensor | null;
  /** Float [B, Lk]: nonzero = ignore that key (its score becomes -inf). */
  keyPaddingMask?: Tensor | null;
  /** Inputs and output are [B, L, E] instead of [L, B, E]. */
  batchFirst?: boolean;
  /** Adds the causal mask (key j > query i masked). */
  causal?: boolean;
}

/**
 * torch.nn.functional.multi_head_attention_forward (dropout 0; returns the output only):
 * query [Lq, B, E], key/value [Lk, B, E] (or [B, L, E] with batchFirst) -> [Lq, B, E].
 */
export function multiHeadAttention(query: Tensor, key: Tensor, value: Tensor, p: MultiHeadAttentionParams): Tensor {
  const op = 'multiHeadAttention';
  const batchFirst = p.batchFirst ?? false;
  const tensors = [query, key, value, p.inProjWeight, p.outProjWeight];
  for (const t of [p.inProjBias, p.outProjBias, p.attnMask, p.keyPaddingMask]) if (t) tensors.push(t);
  deviceOf(op, tensors);
  for (const [t, name] of [[query, 'query'], [key, 'key'], [value, 'value']] as const) {
    if (t.rank !== 3) throw new Error(`${op}: ${name} ${formatShape(t.shape)} must have rank 3 (${batchFirst ? '[B, L, E]' : '[L, B, E]'})`);
  }
  const [lq, batch, embed] = (batchFirst ? [query.shape[1], query.shape[0], query.shape[2]] : query.shape) as [number, number, number];
  const lk = key.shape[batchFirst ? 1 : 0]!;
  const kvShape = batchFirst ? [batch, lk, embed] : [lk, batch, embed];
  if (!sameShape(key.shape, kvShape) || !sameShape(value.shape, kvShape)) {
    throw new Error(`${op}: key ${formatShape(key.shape)} and value ${formatShape(value.shape)} must both be ${formatShape(kvShape)} for query ${formatShape(query.shape)}`);
  }
  const heads = p.numHeads;
  if (!Number.isInteger(heads) || heads < 1 || embed % heads !== 0) {
    throw new Error(`${op}: embed dim ${embed} is not divisible by numHeads ${heads}`);
  }
  const hd = embed / heads;
  const expectShape = (t: Tensor | null | undefined, shape: number[], name: string) => {
    if (t && !sameShape(t.shape, shape)) throw new Error(`${op}: ${name} ${formatShape(t.shape)} must be ${formatShape(shape)}`);
  };
  expectShape(p.inProjWeight, [3 * embed, embed], 'inProjWeight');
  expectShape(p.inProjBias, [3 * embed], 'inProjBias');
  expectShape(p.outProjWeight, [embed, embed], 'outProjWeight');
  expectShape(p.outProjBias, [embed], 'outProjBias');
  expectShape(p.keyPaddingMask, [batch, lk], 'keyPaddingMask');
  if (p.keyPaddingMask) expectDtype(op, p.keyPaddingMask, 'f32', 'keyPaddingMask');
  if (p.attnMask) expectDtype(op, p.attnMask, 'f32', 'attnMask');
  const attnMask = p.attnMask ?? null;
  if (attnMask && !sameShape(attnMask.shape, [lq, lk]) && !sameShape(attnMask.shape, [batch * heads, lq, lk])) {
    throw new Error(`${op}: attnMask ${formatShape(attnMask.shape)} must be ${formatShape([lq, lk])} or ${formatShape([batch * heads, lq, lk])}`);
  }

  return scope(() => {
    // Project with rows [part*E, (part+1)*E) of the packed weight; split heads -> [B, H, L, hd].
    const project = (x: Tensor, part: number, len: number): Tensor => {
      const w = narrow(p.inProjWeight, 0, part * embed, embed);
      const b = p.inProjBias ? narrow(p.inProjBias, 0, part * embed, embed) : null;
      const y = linear(x, w, b);
      return batchFirst
        ? permute(reshape(y, [batch, len, heads, hd]), [0, 2, 1, 3])
        : permute(reshape(y, [len, batch, heads, hd]), [1, 2, 0, 3]);
    };
    const q = project(query, 0, lq);
    const k = project(key, 1, lk);
    const v = project(value, 2, lk);

    let mask: Tensor | null = attnMask ? reshape(attnMask, attnMask.rank === 2 ? [lq, lk] : [batch, heads, lq, lk]) : null;
    if (p.keyPaddingMask) {
      const kpm = p.keyPaddingMask;
      const negInf = Tensor.full([1], -Infinity, { device: kpm.device });
      const zero = Tensor.zeros([1], { device: kpm.device });
      const additive = elementwiseRaw('where', [kpm, negInf, zero]).view([batch, 1, 1, lk]);
      mask = mask ? add(mask, additive) : additive;
    }
    const attn = scaledDotProductAttention(q, k, v, { mask, causal: p.causal ?? false });
    const merged = batchFirst
      ? reshape(permute(attn, [0, 2, 1, 3]), [batch, lq, embed])
      : reshape(permute(attn, [2, 0, 1, 3]), [lq, batch, embed]);
    return linear(merged, p.outProjWeight, p.outProjBias ?? null);
  });
}
