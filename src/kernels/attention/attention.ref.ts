/**
 * CPU reference for the fused attention forward (attention.ts): the same bindings (q, k, v, optional
 * mask, out, optional stats) and semantics, with a plain two-pass softmax in float64 per query row.
 */
import type { HostArray } from '../kernel-spec.js';
import { type AttentionParams, attentionBatchCount } from './attention.js';

const FLT_MAX = 3.4028234663852886e38;

export function attentionReference(p: AttentionParams, buffers: HostArray[]): void {
  const [q, k, v] = buffers as [HostArray, HostArray, HostArray];
  const mask = p.mask ? buffers[3]! : null;
  const out = buffers[p.mask ? 4 : 3]!;
  const stats = p.stats ? buffers[p.mask ? 5 : 4]! : null;
  const { Lq, Lk, D } = p;
  const scores = new Float64Array(Lk);
  for (let b = 0; b < attentionBatchCount(p); b++) {
    const maskOff = attentionMaskOffset(p, b);
    for (let i = 0; i < Lq; i++) {
      const qRow = (b * Lq + i) * D;
      let max = -Infinity;
      for (let j = 0; j < Lk; j++) {
        let s = -Infinity;
        if (!p.causal || j <= i) {
          let dot = 0;
          const kRow = (b * Lk + j) * D;
          for (let d = 0; d < D; d++) dot += q[qRow + d]! * k[kRow + d]!;
          s = dot * p.scale + (mask ? mask[maskOff + i * p.maskRowStride + j * p.maskColStride]! : 0);
        }
        scores[j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j < Lk; j++) {
        const e = max === -Infinity ? 0 : Math.exp(scores[j]! - max);
        scores[j] = e;
        sum += e;
      }
      for (let d = 0; d < D; d++) {
        let acc = 0;
        if (sum > 0) for (let j = 0; j < Lk; j++) acc += scores[j]! * v[(b * Lk + j) * D + d]!;
        out[qRow + d] = sum > 0 ? acc / sum : 0;
      }
      if (stats) {
        // (m, log l); a fully masked row gets (0, FLT_MAX) so that the backward's P is 0.
        stats[2 * (b * Lq + i)] = sum > 0 ? max : 0;
        stats[2 * (b * Lq + i) + 1] = sum > 0 ? Math.log(sum) : FLT_MAX;
      }
    }
  }
}

/** Element offset of batch entry b's mask (row-major over batchShape, 0 strides broadcast). */
export function attentionMaskOffset(p: Pick<AttentionParams, 'batchShape' | 'maskBatchStrides'>, b: number): number {
  let offset = 0;
  let rem = b;
  for (let d = p.batchShape.length - 1; d >= 0; d--) {
    offset += (rem % p.batchShape[d]!) * p.maskBatchStrides[d]!;
    rem = Math.floor(rem / p.batchShape[d]!);
  }
  return offset;
}
