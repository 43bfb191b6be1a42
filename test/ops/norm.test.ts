import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { expectNoLeak } from '../helpers/leak.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

/** Independent float64 layer norm over the last dim. */
function layerNormRef(x: ArrayLike<number>, cols: number, w: ArrayLike<number> | null, b: ArrayLike<number> | null, eps = 1e-5): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / cols; r++) {
    const row = Array.from({ length: cols }, (_, k) => x[r * cols + k]!);
    const mean = row.reduce((a, v) => a + v, 0) / cols;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / cols;
    row.forEach((v, k) => out.push(((v - mean) / Math.sqrt(variance + eps)) * (w ? w[k]! : 1) + (b ? b[k]! : 0)));
  }
  return out;
}

/** Independent float64 eval-mode batch norm, channel axis 1. */
function batchNormRef(x: ArrayLike<number>, shape: number[], mean: number[], variance: number[], w: number[] | null, b: number[] | null, eps = 1e-5): number[] {
  const C = shape[1]!;
  const S = shape.slice(2).reduce((a, v) => a * v, 1);
  return Array.from(x, (v, i) => {
    const c = Math.floor(i / S) % C;
    return ((v - mean[c]!) / Math.sqrt(variance[c]! + eps)) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
  });
}

const positive = (n: number, seed: number) => randomNormal(n, seed).map((v) => Math.abs(v) + 0.5);


describe.each(await testDevices())('layerNorm on %s', (_name, device) => {
  const t = (data: ArrayLike<number>, shape: number[], requiresGrad = false) => E.Tensor.fromArray(data, shape, { device, requiresGrad });

  it('matches hand-computed values', async () => {
    // Row [1, 2, 3, 4]: mean 2.5, biased var 1.25.
    const y = await E.layerNorm(t([1, 2, 3, 4], [1, 4]), null, null, 0).read();
    const s = Math.sqrt(1.25);
    expectClose(y, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]);
    const y2 = await E.layerNorm(t([1, 2, 3, 4], [1, 4]), t([1, 2, 3, 4], [4]), t([0, 0, 1, 1], [4]), 0).read();
    expectClose(y2, [-1.5 / s, -1 / s, 1.5 / s + 1, 6 / s + 1]);
  });

  it('matches an independent reference, with and without affine, rows longer than a workgroup', async () => {
    for (const [shape, cols] of [[[2, 3, 5], 5], [[3, 100], 100]] as const) {
      const n = shape.reduce((a, v) => a * v, 1);
      const x = randomNormal(n, 11).map((v) => v * 2 + 3);
      const w = randomNormal(cols, 12);
      const b = randomNormal(cols, 13);
      const label = `[${shape.join(', ')}]`;
      expectClose(await E.layerNorm(t(x, [...shape]), t(w, [cols]), t(b, [cols])).read(), layerNormRef(x, cols, w, b), 1e-5, 1e-4, label);
      expectClose(await E.layerNorm(t(x, [...shape]), null, null).read(), layerNormRef(x, cols, null, null), 1e-5, 1e-4, label);
      expectClose(await E.layerNorm(t(x, [...shape]), null, t(b, [cols]), 1e-3).read(), layerNormRef(x, cols, null, b, 1e-3), 1e-5, 1e-4, label);
    }
  });

  it('gradients of x, weight and bias match finite differences', async () => {
    await gradcheck(device, ([x, w, b]) => E.layerNorm(x!, w!, b!), [[3, 6], [6], [6]]);
    await gradcheck(device, ([x, w, b]) => E.layerNorm(x!, w!, b!), [[2, 2, 70], [70], [70]], { samples: 6 });
    await gradcheck(device, ([x]) => E.layerNorm(x!, null, null), [[4, 5]]);
    await gradcheck(device, ([x, b]) => E.layerNorm(x!, null, b!), [[4, 5], [5]]);
    await gradcheck(device, ([x, w]) => E.layerNorm(x!, w!, null), [[4, 5], [5]]);
    // Only the parameters need gradients (x constant).
    await gradcheck(device, ([x, w, b]) => E.layerNorm(x!, w!, b!), [[3, 4], [4], [4]], { constant: [0] });
  });

  it('frees its temporaries', async () => {
    const x = t(randomNormal(12, 14), [3, 4], true);
    const w = t([1, 2, 3, 4], [4], true);
    const b = t([0, 1, 0, 1], [4], true);
    await expectNoLeak(device, [x, w, b], () => E.layerNorm(x, w, b));
    await expectNoLeak(device, [x, b], () => E.layerNorm(x, null, b));
    const x4 = t(randomNormal(24, 15), [2, 3, 2, 2], true);
    const stats = [t([0, 1, 2], [3]), t([1, 2, 3], [3])] as const;
    await expectNoLeak(device, [x4, w, b], () => E.batchNorm(x4, stats[0], stats[1], E.slice(w, [{ end: 3 }]), E.slice(b, [{ end: 3 }])));
  });

  it('checks shapes', () => {
    expect(() => E.layerNorm(t([1, 2, 3], [1, 3]), t([1, 2], [2]), null)).toThrow('layerNorm: weight [2] must have shape [3]');
  });
});

describe.each(await testDevices())('batchNorm (eval) on %s', (_name, device) => {
  const t = (data: ArrayLike<number>, shape: number[], requiresGrad = false) => E.Tensor.fromArray(data, shape, { device, requiresGrad });

  it('matches hand-computed values for [N, C]', async () => {
    const x = t([1, 2, 3, 4, 5, 6], [3, 2]);
    const y = await E.batchNorm(x, t([1, 2], [2]), t([4, 1], [2]), t([2, 3], [2]), t([0.5, -1], [2]), 0).read();
    // channel 0: (v - 1) / 2 * 2 + 0.5; channel 1: (v - 2) / 1 * 3 - 1
    expectClose(y, [0.5, -1, 2.5, 5, 4.5, 11]);
  });

  it('matches an independent reference for [N, C, H, W] and [N, C, L]', async () => {
    for (const shape of [[2, 3, 4, 5], [2, 4, 3], [5, 3]]) {
      const C = shape[1]!;
      const n = shape.reduce((a, v) => a * v, 1);
      const x = Array.from(randomNormal(n, 21));
      const m = Array.from(randomNormal(C, 22));
      const v = Array.from(positive(C, 23));
      const w = Array.from(randomNormal(C, 24));
      const b = Array.from(randomNormal(C, 25));
      const run = (wt: number[] | null, bt: number[] | null) =>
        E.batchNorm(t(x, shape), t(m, [C]), t(v, [C]), wt && t(wt, [C]), bt && t(bt, [C])).read();
      expectClose(await run(w, b), batchNormRef(x, shape, m, v, w, b), 1e-5, 1e-5);
      expectClose(await run(null, null), batchNormRef(x, shape, m, v, null, null), 1e-5, 1e-5);
      expectClose(await run(w, null), batchNormRef(x, shape, m, v, w, null), 1e-5, 1e-5);
    }
  });

  it('gradients of x, weight and bias match finite differences; running stats get none', async () => {
    const C = 3;
    const values = [undefined, randomNormal(C, 31), positive(C, 32)];
    await gradcheck(device, ([x, m, v, w, b]) => E.batchNorm(x!, m!, v!, w!, b!), [[2, C, 2, 3], [C], [C], [C], [C]], { constant: [1, 2], values });
    await gradcheck(device, ([x, m, v, w, b]) => E.batchNorm(x!, m!, v!, w!, b!), [[4, C], [C], [C], [C], [C]], { constant: [1, 2], values });
    await gradcheck(device, ([x, m, v]) => E.batchNorm(x!, m!, v!, null, null), [[2, C, 5], [C], [C]], { constant: [1, 2], values });
    await gradcheck(device, ([x, m, v, b]) => E.batchNorm(x!, m!, v!, null, b!), [[2, C, 5], [C], [C], [C]], { constant: [0, 1, 2], values });

    const mean = t([0, 1, 2], [C], true);
    const variance = t([1, 2, 3], [C], true);
    const x = t(randomNormal(6, 33), [2, C], true);
    E.backward(E.sum(E.batchNorm(x, mean, variance, null, null)));
    expect(x.grad).not.toBeNull();
    expect(mean.grad).toBeNull();
    expect(variance.grad).toBeNull();
  });

  it('checks shapes', () => {
    expect(() => E.batchNorm(t([1, 2], [2]), t([0], [1]), t([1], [1]), null, null)).toThrow('batchNorm: input [2] must have rank >= 2');
    expect(() => E.batchNorm(t([1, 2], [1, 2]), t([0], [1]), t([1, 1], [2]), null, null)).toThrow('batchNorm: runningMean [1] must have shape [2]');
  });
});
