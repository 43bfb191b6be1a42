import { describe, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { type AttentionParams, attentionKernel } from '../../src/kernels/attention/attention.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

/**
 * The fused attention kernel (head dims 32/64/128, additive and causal masks, broadcast masks)
 * against an independent softmax attention, and the op's fused path (forward and gradients)
 * against the composed path. The fused kernel needs 8-wide subgroups; the CPU device runs its
 * reference.
 */

/** softmax(scale q·kᵀ + mask [+ causal]) v per batch entry; fully masked rows give 0. */
function naive(
  q: Float32Array, k: Float32Array, v: Float32Array, B: number, lq: number, lk: number, d: number,
  scale: number, causal: boolean, mask: ((b: number, i: number, j: number) => number) | null,
): Float32Array {
  const out = new Float32Array(B * lq * d);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < lq; i++) {
      const s: number[] = [];
      for (let j = 0; j < lk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(b * lq + i) * d + c]! * k[(b * lk + j) * d + c]!;
        const masked = causal && j > i;
        s.push(masked ? -Infinity : dot * scale + (mask ? mask(b, i, j) : 0));
      }
      const m = Math.max(...s);
      const e = s.map((x) => (m === -Infinity ? 0 : Math.exp(x - m)));
      const total = e.reduce((x, y) => x + y, 0);
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < lk; j++) acc += e[j]! * v[(b * lk + j) * d + c]!;
        out[(b * lq + i) * d + c] = total > 0 ? acc / total : 0;
      }
    }
  }
  return out;
}

function fusedSupported(device: E.Device): boolean {
  return device.kind === 'cpu' || E.useSubgroupKernels(device);
}

describe.each(await testDevices())('fused attention on %s', (_name, device) => {
  const t = (data: Float32Array, shape: number[]) => E.Tensor.fromArray(data, shape, { device });

  it.skipIf(!fusedSupported(device))('kernel: head dims 32/64/128, odd lengths, masks, causal', async () => {
    const cases: [number, number, number, number, boolean, boolean, number][] = [
      [2, 19, 37, 64, false, false, 32],
      [2, 37, 19, 64, true, true, 32],
      [3, 9, 40, 32, true, false, 16],
      [1, 33, 5, 128, false, true, 24],
    ];
    for (const [B, lq, lk, d, withMask, causal, rows] of cases) {
      const q = randomNormal(B * lq * d, 1);
      const k = randomNormal(B * lk * d, 2);
      const v = randomNormal(B * lk * d, 3);
      // A [lq, lk] mask broadcast over the batch, with some -inf entries (and a fully masked row).
      const m = randomNormal(lq * lk, 4).map((x, i) => (i % 7 === 3 || Math.floor(i / lk) === 2 ? -Infinity : x));
      const params: AttentionParams = {
        batchShape: [B], Lq: lq, Lk: lk, D: d, scale: 0.7 / Math.sqrt(d), causal, mask: withMask,
        maskBatchStrides: [0], maskRowStride: lk, maskColStride: 1, rows,
      };
      const inputs = [t(q, [B * lq * d]), t(k, [B * lk * d]), t(v, [B * lk * d])];
      if (withMask) inputs.push(t(m, [lq * lk]));
      const out = E.Tensor.empty([B * lq * d], 'f32', device);
      device.run(attentionKernel, params, [...inputs, out].map((x) => x.storage));
      const want = naive(q, k, v, B, lq, lk, d, params.scale, causal, withMask ? (_b, i, j) => m[i * lk + j]! : null);
      expectClose(await out.read(), want, 1e-5, 1e-4, attentionKernel.key(params));
      for (const x of [...inputs, out]) x.dispose();
    }
  });

  it('op: fused and composed paths agree (batch-broadcast mask, causal, scale)', async () => {
    const [b, h, lq, lk, d] = [2, 3, 21, 13, 32];
    const q = randomNormal(b * h * lq * d, 5);
    const k = randomNormal(b * h * lk * d, 6);
    const v = randomNormal(b * h * lk * d, 7);
    const m = randomNormal(b * lk, 8).map((x, i) => (i % 5 === 1 ? -Infinity : x));
    const run = async (): Promise<ArrayLike<number>> => {
      const out = E.scope(() =>
        E.scaledDotProductAttention(t(q, [b, h, lq, d]), t(k, [b, h, lk, d]), t(v, [b, h, lk, d]), {
          mask: t(m, [b, 1, 1, lk]), causal: true, scale: 0.2,
        }),
      );
      const data = await out.read();
      out.dispose();
      return data;
    };
    const fused = await run();
    const want = naive(q, k, v, b * h, lq, lk, d, 0.2, true, (bh, _i, j) => m[Math.floor(bh / h) * lk + j]!);
    expectClose(fused, want, 1e-5, 1e-4, 'op (fused where supported)');
    E.kernelVariants.mode = 'portable';
    try {
      expectClose(await run(), fused, 1e-5, 1e-4, 'composed vs fused');
    } finally {
      E.kernelVariants.mode = 'auto';
    }
  });

  // With 8-wide subgroups these run the fused backward, whose kernels take seconds each to compile
  // on a cold Mesa cache: the two variants here (d32 plain, d32 mask + causal) are the ones
  // attention-backward.test.ts compiles too.
  it('op: gradients through the fused forward (plain; mask with -inf and causal)', async () => {
    const shapes = [[2, 5, 32], [2, 7, 32], [2, 7, 32]];
    await gradcheck(device, ([q, k, v]) => E.scaledDotProductAttention(q!, k!, v!), shapes);
    const maskValues = randomNormal(5 * 7, 9).map((x, i) => (i % 6 === 2 ? -Infinity : x));
    await gradcheck(
      device,
      ([q, k, v, mask]) => E.scaledDotProductAttention(q!, k!, v!, { mask: mask!, causal: true }),
      [...shapes, [5, 7]],
      { constant: [3], values: [undefined, undefined, undefined, maskValues] },
    );
  }, 5 * 60_000);

  it('op: mask gradient through the fused forward', async () => {
    await gradcheck(device, ([q, k, v, mask]) => E.scaledDotProductAttention(q!, k!, v!, { mask: mask! }), [[1, 4, 32], [1, 6, 32], [1, 6, 32], [4, 6]]);
  });
});
