/**
 * CPU references for the fused attention backward (attention-backward.ts): the same bindings and
 * semantics (P recomputed from the saved (m, log l), Dlt from the stats), in float64 per element.
 */
import type { HostArray } from '../kernel-spec.js';
import type { AttentionBackwardParams, AttentionDeltaParams } from './attention-backward.js';
import { attentionMaskOffset } from './attention.ref.js';
import { attentionBatchCount } from './attention.js';

/** stats[row] = (m, log l, rowsum(out * dOut), 0) for every query row. */
export function attentionDeltaReference(p: AttentionDeltaParams, buffers: HostArray[]): void {
  const [out, dOut, fwdStats, stats] = buffers as [HostArray, HostArray, HostArray, HostArray];
  for (let row = 0; row < p.rows; row++) {
    let acc = 0;
    for (let d = 0; d < p.D; d++) acc += out[row * p.D + d]! * dOut[row * p.D + d]!;
    stats[4 * row] = fwdStats[2 * row]!;
    stats[4 * row + 1] = fwdStats[2 * row + 1]!;
    stats[4 * row + 2] = acc;
    stats[4 * row + 3] = 0;
  }
}

/** Pass 'dq' writes dQ; pass 'dkv' writes dK and dV (bindings as the kernel's). */
export function attentionBackwardReference(p: AttentionBackwardParams, buffers: HostArray[]): void {
  const [q, k, v, dOut, stats] = buffers as [HostArray, HostArray, HostArray, HostArray, HostArray];
  const mask = p.mask ? buffers[5]! : null;
  const first = p.mask ? 6 : 5;
  const { Lq, Lk, D, scale } = p;
  const dq = p.pass === 'dq' ? buffers[first]! : null;
  const dk = p.pass === 'dkv' ? buffers[first]! : null;
  const dv = p.pass === 'dkv' ? buffers[first + 1]! : null;
  const dQ = new Float64Array(Lq * D);
  const dK = new Float64Array(Lk * D);
  const dV = new Float64Array(Lk * D);
  for (let b = 0; b < attentionBatchCount(p); b++) {
    const maskOff = attentionMaskOffset(p, b);
    dQ.fill(0);
    dK.fill(0);
    dV.fill(0);
    for (let i = 0; i < Lq; i++) {
      const qRow = (b * Lq + i) * D;
      const s = 4 * (b * Lq + i);
      const [m, logL, delta] = [stats[s]!, stats[s + 1]!, stats[s + 2]!];
      for (let j = 0; j < Lk; j++) {
        if (p.causal && j > i) continue;
        const kRow = (b * Lk + j) * D;
        let dot = 0;
        let dp = 0;
        for (let d = 0; d < D; d++) {
          dot += q[qRow + d]! * k[kRow + d]!;
          dp += dOut[qRow + d]! * v[kRow + d]!;
        }
        const t = dot * scale + (mask ? mask[maskOff + i * p.maskRowStride + j * p.maskColStride]! : 0);
        const prob = Math.exp(t - m - logL);
        const ds = prob * (dp - delta);
        for (let d = 0; d < D; d++) {
          dQ[i * D + d]! += scale * ds * k[kRow + d]!;
          dK[j * D + d]! += scale * ds * q[qRow + d]!;
          dV[j * D + d]! += prob * dOut[qRow + d]!;
        }
      }
    }
    if (dq) for (let x = 0; x < Lq * D; x++) dq[b * Lq * D + x] = dQ[x]!;
    if (dk && dv) {
      for (let x = 0; x < Lk * D; x++) {
        dk[b * Lk * D + x] = dK[x]!;
        dv[b * Lk * D + x] = dV[x]!;
      }
    }
  }
}
