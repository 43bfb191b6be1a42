import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { dropoutKeeps, dropoutThreshold } from '../../src/kernels/dropout/dropout.js';
import { expectClose } from '../helpers/allclose.js';
import { cpuDevice, testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';
import { expectNoLeak } from '../helpers/leak.js';

describe.each(await testDevices())('dropout on %s', (_name, device) => {
  const t = (data: ArrayLike<number>, shape: number[], requiresGrad = false, on: E.Device = device) =>
    E.Tensor.fromArray(data, shape, { device: on, requiresGrad });

  it('is the identity when not training or p == 0', () => {
    const x = t([1, 2, 3], [3]);
    expect(E.dropout(x, 0.5, false)).toBe(x);
    expect(E.dropout(x, 0, true)).toBe(x);
    expect(() => E.dropout(x, 1.5, true)).toThrow('dropout: probability 1.5 must be in [0, 1]');
  });

  it('drops about a fraction p and scales the rest by 1 / (1 - p)', async () => {
    const n = 4096;
    for (const p of [0.1, 0.5, 0.9]) {
      const y = await E.dropout(E.Tensor.ones([64, 64], { device }), p, true, 1234).read();
      const dropped = y.filter((v) => v === 0).length;
      // Binomial(n, p): 4 standard deviations.
      expect(Math.abs(dropped - n * p)).toBeLessThan(4 * Math.sqrt(n * p * (1 - p)));
      for (const v of y) if (v !== 0) expect(v).toBeCloseTo(1 / (1 - p), 5);
    }
    expect(Array.from(await E.dropout(t([1, 2, 3], [3]), 1, true).read())).toEqual([0, 0, 0]);
  });

  it('gives the same mask on every device for one seed, and matches the host hash', async () => {
    const x = randomNormal(1000, 51);
    const here = await E.dropout(t(x, [10, 100]), 0.3, true, 777).read();
    const onCpu = await E.dropout(t(x, [10, 100], false, cpuDevice), 0.3, true, 777).read();
    expect(Array.from(here)).toEqual(Array.from(onCpu));
    const threshold = dropoutThreshold(0.3);
    here.forEach((v, i) => expect(v !== 0).toBe(dropoutKeeps(777, threshold, i)));
    // Neighbouring masks are not correlated: another seed gives a different mask.
    const other = await E.dropout(t(x, [10, 100]), 0.3, true, 778).read();
    const agree = here.filter((v, i) => (v === 0) === (other[i] === 0)).length;
    expect(agree).toBeLessThan(700); // independent masks agree on ~0.3^2 + 0.7^2 = 58%
  });

  it('advances a global seed when none is given', async () => {
    E.setDropoutSeed(99);
    const ones = () => E.Tensor.ones([256], { device });
    const a = await E.dropout(ones(), 0.5, true).read();
    const b = await E.dropout(ones(), 0.5, true).read();
    expect(Array.from(a)).not.toEqual(Array.from(b));
    E.setDropoutSeed(99);
    expect(Array.from(await E.dropout(ones(), 0.5, true).read())).toEqual(Array.from(a));
    expect(Array.from(await E.dropout(ones(), 0.5, true, 99).read())).toEqual(Array.from(a));
  });

  it('frees its temporaries', async () => {
    const x = t(randomNormal(20, 53), [4, 5], true);
    await expectNoLeak(device, [x], () => E.dropout(x, 0.5, true, 3));
  });

  it('backward applies the forward mask', async () => {
    const x = t(randomNormal(200, 52), [200], true);
    const y = E.dropout(x, 0.4, true, 5);
    const yv = await y.read();
    const xv = await x.read();
    E.backward(y, t(new Float32Array(200).fill(2), [200]));
    const g = await x.grad!.read();
    const kept = Array.from(yv, (v, i) => (v === 0 && xv[i] !== 0 ? 0 : 1));
    expectClose(g, kept.map((k) => (k * 2) / 0.6));
    await gradcheck(device, ([a]) => E.dropout(a!, 0.3, true, 11), [[4, 6]], { samples: 24 });
  });
});
