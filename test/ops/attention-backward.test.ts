import { describe, expect, it, vi } from 'vitest';
import * as E from '../../src/engine/index.js';
import { type AttentionParams, attentionKernel } from '../../src/kernels/attention/attention.js';
import {
  type AttentionBackwardParams, attentionBackwardKernel, attentionDeltaKernel,
} from '../../src/kernels/attention/attention-backward.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

/**
 * The fused attention backward (kernels/attention-backward: delta, dQ pass, dK/dV pass, fed by the
 * forward's (m, log l) stats) against an independent float64 softmax-Jacobian backward, on every
 * device (the CPU device runs the references), and the op's fused backward against its composed
 * backward on adapters with 8-wide subgroups.
 *
 * Tolerance: each gradient element is a sum over up to 50 f32 products of O(1) terms; the float32
 * error is ~1e-6 of the gradient's magnitude, so atol = 1e-5 * max|expected| and rtol = 1e-4.
 */

const F32_MIN = -3.4028234663852886e38;
/**
 * lavapipe compiles each backward kernel in 6-54 s on a cold Mesa shader cache (d128's dK/dV pass
 * is the slowest; milliseconds once cached), so all cases here share five variants (forward with
 * stats, dQ and dK/dV passes each): d32, d64 and d128 plain, d32 causal, and d32 with a mask and
 * causal (every mask case is causal). The CPU device runs every case through the references.
 */
const COLD_COMPILE_MS = 8 * 60_000;

interface Case {
  name: string;
  batch: number[];
  lq: number;
  lk: number;
  d: number;
  causal: boolean;
  /** Additive mask value at query i, key j of flattened batch entry b, or null. */
  mask: ((i: number, j: number, b: number) => number) | null;
  /** Shape of the mask tensor (broadcast to [...batch, lq, lk]); default [lq, lk]. */
  maskShape?: number[];
}

/** The mask tensor's values: c.mask at each element (broadcast dims at index 0). */
function maskValues(c: Case): Float32Array {
  const full = [...c.batch, c.lq, c.lk];
  const shape = c.maskShape ?? [c.lq, c.lk];
  const dims = full.map((_, k) => shape[k - (full.length - shape.length)] ?? 1);
  const data = new Float32Array(dims.reduce((x, y) => x * y, 1));
  for (let x = 0; x < data.length; x++) {
    const coord = new Array<number>(full.length).fill(0);
    for (let k = full.length - 1, rem = x; k >= 0; k--) {
      coord[k] = rem % dims[k]!;
      rem = Math.floor(rem / dims[k]!);
    }
    const b = coord.slice(0, -2).reduce((acc, v, k) => acc * c.batch[k]! + v, 0);
    data[x] = c.mask!(coord[full.length - 2]!, coord[full.length - 1]!, b);
  }
  return data;
}

/** Independent backward: P by softmax per row, dS = P ∘ (dP - rowsum(P ∘ dP)). float64. */
function naiveGrads(
  q: Float32Array, k: Float32Array, v: Float32Array, dO: Float32Array, B: number, c: Case, scale: number,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { lq, lk, d } = c;
  const dq = new Float64Array(B * lq * d);
  const dk = new Float64Array(B * lk * d);
  const dv = new Float64Array(B * lk * d);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < lq; i++) {
      const s = new Float64Array(lk);
      for (let j = 0; j < lk; j++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += q[(b * lq + i) * d + x]! * k[(b * lk + j) * d + x]!;
        s[j] = c.causal && j > i ? -Infinity : dot * scale + (c.mask ? c.mask(i, j, b) : 0);
      }
      const m = Math.max(...s);
      const e = Array.from(s, (x) => (m === -Infinity ? 0 : Math.exp(x - m)));
      const z = e.reduce((x, y) => x + y, 0);
      const p = e.map((x) => (z > 0 ? x / z : 0));
      const dp = p.map((_, j) => {
        let acc = 0;
        for (let x = 0; x < d; x++) acc += dO[(b * lq + i) * d + x]! * v[(b * lk + j) * d + x]!;
        return acc;
      });
      const rowDot = p.reduce((acc, pj, j) => acc + pj * dp[j]!, 0);
      for (let j = 0; j < lk; j++) {
        const ds = p[j]! * (dp[j]! - rowDot);
        for (let x = 0; x < d; x++) {
          dq[(b * lq + i) * d + x]! += scale * ds * k[(b * lk + j) * d + x]!;
          dk[(b * lk + j) * d + x]! += scale * ds * q[(b * lq + i) * d + x]!;
          dv[(b * lk + j) * d + x]! += p[j]! * dO[(b * lq + i) * d + x]!;
        }
      }
    }
  }
  return { dq, dk, dv };
}

function expectGrad(actual: ArrayLike<number>, want: Float64Array, label: string): void {
  const magnitude = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  expect(magnitude).toBeGreaterThan(0);
  expectClose(actual, want, 1e-5 * magnitude, 1e-4, label);
}

const CASES: Case[] = [
  { name: 'd32 Lq != Lk', batch: [2], lq: 19, lk: 37, d: 32, causal: false, mask: null },
  { name: 'd64 odd lengths, batch [2,3]', batch: [2, 3], lq: 37, lk: 50, d: 64, causal: false, mask: null },
  { name: 'd128 Lq > Lk', batch: [2], lq: 50, lk: 37, d: 128, causal: false, mask: null },
  // A text tower's self-attention (CLIP text, CRIS): causal, no mask.
  { name: 'd32 causal self-attention', batch: [2], lq: 17, lk: 17, d: 32, causal: true, mask: null },
  {
    name: 'd32 mask with -inf entries and a fully masked row (-inf), causal',
    batch: [3], lq: 21, lk: 13, d: 32, causal: true,
    mask: (i, j) => (i === 4 || (i * 13 + j) % 7 === 3 ? -Infinity : Math.sin(i + 2 * j)),
  },
  {
    // HF CLIP's finite mask: the row's m is -3.4e38 and m + log l would round to m.
    name: 'd32 fully masked rows with a finite -3.4e38 mask, causal',
    batch: [2], lq: 9, lk: 11, d: 32, causal: true,
    mask: (i, j) => (i === 2 || i === 7 ? F32_MIN : 0.1 * j),
  },
];

describe.each(await testDevices())('fused attention backward on %s', (_name, device) => {
  const fusedSupported = device.kind === 'cpu' || E.useSubgroupKernels(device);
  const t = (data: ArrayLike<number>, shape: number[]) => E.Tensor.fromArray(data, shape, { device });

  it.skipIf(!fusedSupported)('kernels: dQ, dK, dV against a float64 softmax-Jacobian backward', async () => {
    for (const [n, c] of CASES.entries()) {
      const B = c.batch.reduce((x, y) => x * y, 1);
      const { lq, lk, d } = c;
      const scale = 0.9 / Math.sqrt(d);
      const q = randomNormal(B * lq * d, 10 + n);
      const k = randomNormal(B * lk * d, 20 + n);
      const v = randomNormal(B * lk * d, 30 + n);
      const dO = randomNormal(B * lq * d, 40 + n);
      const maskData = c.mask ? maskValues(c) : null;
      const geometry = {
        batchShape: c.batch, Lq: lq, Lk: lk, D: d, scale, causal: c.causal, mask: maskData !== null,
        maskBatchStrides: c.batch.map(() => 0), maskRowStride: lk, maskColStride: 1,
      };
      const tensors = E.scope(() => {
        const [tq, tk, tv, tdO] = [t(q, [B * lq * d]), t(k, [B * lk * d]), t(v, [B * lk * d]), t(dO, [B * lq * d])];
        const mask = maskData ? [t(maskData, [lq * lk])] : [];
        const out = E.Tensor.empty([B * lq * d], 'f32', device);
        const fwdStats = E.Tensor.empty([B * lq * 2], 'f32', device);
        // rows 32 as the op uses, so that the op tests below reuse the compiled pipelines.
        const fwd: AttentionParams = { ...geometry, rows: 32, stats: true };
        device.run(attentionKernel, fwd, [tq, tk, tv, ...mask, out, fwdStats].map((x) => x.storage));
        const stats = E.Tensor.empty([B * lq * 4], 'f32', device);
        device.run(attentionDeltaKernel, { rows: B * lq, D: d }, [out, tdO, fwdStats, stats].map((x) => x.storage));
        const grads = [E.Tensor.empty([B * lq * d], 'f32', device), E.Tensor.empty([B * lk * d], 'f32', device), E.Tensor.empty([B * lk * d], 'f32', device)];
        const inputs = [tq, tk, tv, tdO, stats, ...mask];
        const run = (pass: AttentionBackwardParams['pass'], outs: E.Tensor[]) =>
          device.run(attentionBackwardKernel, { ...geometry, pass }, [...inputs, ...outs].map((x) => x.storage));
        run('dq', [grads[0]!]);
        run('dkv', [grads[1]!, grads[2]!]);
        return grads.map((g) => E.keep(g));
      });
      const want = naiveGrads(q, k, v, dO, B, c, scale);
      const [gq, gk, gv] = await Promise.all(tensors.map((x) => x.read()));
      tensors.forEach((x) => x.dispose());
      expectGrad(gq!, want.dq, `${c.name}: dQ`);
      expectGrad(gk!, want.dk, `${c.name}: dK`);
      expectGrad(gv!, want.dv, `${c.name}: dV`);
    }
  }, COLD_COMPILE_MS);

  it.skipIf(!E.useSubgroupKernels(device))('op: fused backward equals the composed backward and the float64 one', async () => {
    // Per-batch key padding: entry b0 of the outer batch dim pads its last 3 + 4*b0 keys (Lq > Lk,
    // so that causal rows still reach the padded keys).
    const padded: Case = {
      name: 'd32 per-batch key padding [2, 1, 1, Lk] (-inf), batch [2, 3], causal', batch: [2, 3], lq: 21, lk: 13, d: 32, causal: true,
      mask: (_i, j, b) => (j >= 13 - 3 - 4 * Math.floor(b / 3) ? -Infinity : 0), maskShape: [2, 1, 1, 13],
    };
    for (const c of [CASES[1]!, CASES[3]!, padded]) {
      const B = c.batch.reduce((x, y) => x * y, 1);
      const { lq, lk, d } = c;
      const scale = 0.9 / Math.sqrt(d);
      const [q, k, v, dO] = [[lq, 50], [lk, 51], [lk, 52], [lq, 53]].map(([rows, seed]) => randomNormal(B * rows! * d, seed!));
      const maskData = c.mask ? maskValues(c) : null;
      const grads = async (mode: 'auto' | 'portable'): Promise<ArrayLike<number>[]> => {
        E.kernelVariants.mode = mode;
        try {
          const inputs = [[q, lq], [k, lk], [v, lk]].map(([data, rows]) =>
            E.Tensor.fromArray(data as Float32Array, [...c.batch, rows as number, d], { device, requiresGrad: true }));
          E.scope(() => {
            const mask = maskData ? t(maskData, c.maskShape ?? [lq, lk]) : null;
            const out = E.scaledDotProductAttention(inputs[0]!, inputs[1]!, inputs[2]!, { mask, causal: c.causal, scale });
            E.backward(out, t(dO!, [...c.batch, lq, d]));
          });
          const read = await Promise.all(inputs.map((x) => x.grad!.read()));
          inputs.forEach((x) => { x.grad!.dispose(); x.dispose(); });
          return read;
        } finally {
          E.kernelVariants.mode = 'auto';
        }
      };
      const fused = await grads('auto');
      const composed = await grads('portable');
      const want = naiveGrads(q!, k!, v!, dO!, B, c, scale);
      [want.dq, want.dk, want.dv].forEach((w, i) => {
        expectGrad(fused[i]!, w, `${c.name}: op d${'qkv'[i]} vs float64`);
        expectGrad(fused[i]!, Float64Array.from(composed[i]!), `${c.name}: op d${'qkv'[i]} fused vs composed`);
      });
    }
  }, COLD_COMPILE_MS);

  it.skipIf(!E.useSubgroupKernels(device))('op: stats and the fused backward only when q, k or v need a gradient', async () => {
    const spy = vi.spyOn(device, 'run');
    const keys = () => spy.mock.calls.map(([spec, params]) => spec.key(params));
    try {
      const [b, h, lq, lk, d] = [2, 3, 21, 13, 32];
      const q = t(randomNormal(b * h * lq * d, 60), [b, h, lq, d]);
      const kv = t(randomNormal(b * h * lk * d, 61), [b, h, lk, d]);
      const mask = t(randomNormal(b * lk, 62), [b, 1, 1, lk]);
      E.scope(() => E.scaledDotProductAttention(q, kv, kv, { mask, causal: true }));
      expect(keys()).toEqual(['attention:fwd:sg8:d32:r32:mask:causal']);
      spy.mockClear();
      // A mask that needs a gradient keeps the composed backward (its gradient is dS itself).
      const gradMask = E.Tensor.fromArray(randomNormal(lq * lk, 63), [lq, lk], { device, requiresGrad: true });
      E.scope(() => E.backward(E.sum(E.scaledDotProductAttention(q, kv, kv, { mask: gradMask }), -1)));
      expect(keys()).toContain('attention:fwd:sg8:d32:r32:mask');
      expect(keys().filter((key) => key.includes(':stats') || key.includes(':bwd-'))).toEqual([]);
      expect(gradMask.grad?.shape).toEqual([lq, lk]);
      for (const x of [q, kv, mask, gradMask.grad!, gradMask]) x.dispose();
    } finally {
      spy.mockRestore();
    }
  });
});
