/** CPU reference for the matmul family: the same addressing, a plain triple loop (float64 sums). */
import { halfBitsToFloat32 } from '../cast/half.js';
import { activationRef } from '../elementwise/elementwise.ops.js';
import type { HostArray } from '../kernel-spec.js';
import { type MatmulParams, matmulBatchCount, matmulOutOffset } from './matmul.js';

export function matmulReference(p: MatmulParams, buffers: HostArray[]): void {
  const a = buffers[0]!;
  // An f16 B (bF16) is read through its decoded values, as the WGSL widens each load.
  const b = p.bF16 ? halfBitsToFloat32(buffers[1] as Uint16Array) : buffers[1]!;
  const bias = p.bias ? buffers[2]! : null;
  const residual = p.residual ? buffers[p.bias ? 3 : 2]! : null;
  const out = buffers[buffers.length - 1]!;
  const act = p.activation ? activationRef(p.activation) : null;
  const { M, N, K } = p;
  const alpha = Math.fround(p.alpha ?? 1);
  // Per-k steps and per-row / per-column bases, as in the WGSL.
  const aRowStride = p.transA ? 1 : K;
  const aStep = p.transA ? M : 1;
  const bColStride = p.transB ? K : 1;
  const bStep = p.transB ? 1 : N;
  const batches = matmulBatchCount(p);
  for (let t = 0; t < batches; t++) {
    let aOff = 0;
    let bOff = 0;
    let rem = t;
    for (let d = p.batchShape.length - 1; d >= 0; d--) {
      const coord = rem % p.batchShape[d]!;
      rem = Math.floor(rem / p.batchShape[d]!);
      aOff += coord * p.aBatchStrides[d]!;
      bOff += coord * p.bBatchStrides[d]!;
    }
    const base = t * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        let ai = aOff + m * aRowStride;
        let bi = bOff + n * bColStride;
        for (let k = 0; k < K; k++) {
          acc += a[ai]! * b[bi]!;
          ai += aStep;
          bi += bStep;
        }
        const i = base + matmulOutOffset(p, m, n);
        // As the WGSL epilogue: f32 rounding after the scaled sum, the bias, the activation.
        let v = Math.fround(Math.fround(alpha * acc) + (bias ? bias[n]! : 0));
        if (act) v = Math.fround(act(v));
        out[i] = residual ? v + residual[i]! : v;
      }
    }
  }
}
