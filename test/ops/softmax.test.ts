import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { expectNoLeak } from '../helpers/leak.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

/** Independent float64 softmax / log-softmax along `axis` (masked = -inf, as documented). */
function softmaxRef(x: ArrayLike<number>, shape: number[], axis: number, log = false): number[] {
  const ax = axis < 0 ? axis + shape.length : axis;
  const len = shape[ax]!;
  const inner = shape.slice(ax + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, ax).reduce((a, b) => a * b, 1);
  const out = new Array<number>(x.length).fill(0);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const idx = (k: number) => (o * len + k) * inner + i;
      const live = [...Array(len).keys()].filter((k) => x[idx(k)] !== -Infinity);
      const m = Math.max(...live.map((k) => x[idx(k)]!));
      const s = live.reduce((acc, k) => acc + Math.exp(x[idx(k)]! - m), 0);
      for (let k = 0; k < len; k++) {
        const isLive = live.includes(k);
        out[idx(k)] = log ? (isLive ? x[idx(k)]! - m - Math.log(s) : -Infinity) : isLive ? Math.exp(x[idx(k)]! - m) / s : 0;
      }
    }
  }
  return out;
}

const NEG_INF = -Infinity;


describe.each(await testDevices())('softmax on %s', (_name, device) => {
  const t = (data: ArrayLike<number>, shape: number[], requiresGrad = false) => E.Tensor.fromArray(data, shape, { device, requiresGrad });

  it('matches hand-computed values on the last axis', async () => {
    const y = await E.softmax(t([0, 1, 2, 1000, 1000, 1000], [2, 3])).read();
    const e = [1, Math.E, Math.E ** 2];
    const z = e[0]! + e[1]! + e[2]!;
    expectClose(y, [1 / z, Math.E / z, Math.E ** 2 / z, 1 / 3, 1 / 3, 1 / 3]);
    const ly = await E.logSoftmax(t([0, 1, 2], [3])).read();
    expectClose(ly, [-Math.log(z), 1 - Math.log(z), 2 - Math.log(z)]);
  });

  it('works on any axis, and on rows longer than one workgroup', async () => {
    const shape = [2, 3, 4];
    const x = randomNormal(24, 7).map((v) => v * 3);
    for (const axis of [0, 1, 2, -2]) {
      expectClose(await E.softmax(t(x, shape), axis).read(), softmaxRef(x, shape, axis), 1e-6, 1e-5, `softmax axis ${axis}`);
      expectClose(await E.logSoftmax(t(x, shape), axis).read(), softmaxRef(x, shape, axis, true), 1e-5, 1e-5, `logSoftmax axis ${axis}`);
    }
    const long = randomNormal(2 * 150, 8).map((v) => v * 4);
    expectClose(await E.softmax(t(long, [2, 150])).read(), softmaxRef(long, [2, 150], -1), 1e-6, 1e-5);
    expectClose(await E.softmax(t(long, [150, 2]), 0).read(), softmaxRef(long, [150, 2], 0), 1e-6, 1e-5);
  });

  it('gives masked (-inf) entries probability 0 and a fully masked row zeros', async () => {
    const x = [1, NEG_INF, 2, NEG_INF, NEG_INF, NEG_INF, NEG_INF, NEG_INF, NEG_INF, 0.5, NEG_INF, NEG_INF];
    const y = await E.softmax(t(x, [3, 4])).read();
    const z = Math.E + Math.E ** 2;
    expect(Array.from(y)).toEqual([expect.closeTo(Math.E / z, 6), 0, expect.closeTo(Math.E ** 2 / z, 6), 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    const ly = await E.logSoftmax(t(x, [3, 4])).read();
    expectClose(ly, [1 - Math.log(z), NEG_INF, 2 - Math.log(z), NEG_INF, NEG_INF, NEG_INF, NEG_INF, NEG_INF, NEG_INF, 0, NEG_INF, NEG_INF]);
  });

  it('gives masked entries an exactly zero gradient', async () => {
    const x = t([1, NEG_INF, 2, 0.5, NEG_INF, NEG_INF, NEG_INF, NEG_INF], [2, 4], true);
    const dY = t([0.3, -1, 2, 0.7, 5, 6, 7, 8], [2, 4]);
    const y = E.softmax(x);
    E.backward(y, dY);
    const g = await x.grad!.read();
    const p = softmaxRef([1, NEG_INF, 2, 0.5], [4], -1);
    const d = [0.3, -1, 2, 0.7];
    const dot = p.reduce((a, pk, k) => a + pk * d[k]!, 0);
    expectClose(g, [...p.map((pk, k) => pk * (d[k]! - dot)), 0, 0, 0, 0]);
    expect(g[1]).toBe(0);

    const x2 = t([1, NEG_INF, 2, 0.5], [4], true);
    E.backward(E.logSoftmax(x2), t([0.3, -1, 2, 0.7], [4]));
    const g2 = await x2.grad!.read();
    const total = 0.3 + 2 + 0.7; // the masked entry's dY is ignored
    expectClose(g2, [0.3 - p[0]! * total, 0, 2 - p[2]! * total, 0.7 - p[3]! * total]);
  });

  it('handles empty tensors', async () => {
    const y = E.softmax(t([], [0, 3]));
    expect(y.shape).toEqual([0, 3]);
    expect(E.softmax(t([], [2, 0])).shape).toEqual([2, 0]);
  });

  it('frees its temporaries', async () => {
    const x = t([1, NEG_INF, 2, 0.5, 3, 1], [2, 3], true);
    await expectNoLeak(device, [x], () => E.softmax(x, 0));
    await expectNoLeak(device, [x], () => E.mul(E.logSoftmax(E.softmax(x)), x));
  });

  it('gradients match finite differences', async () => {
    await gradcheck(device, ([a]) => E.softmax(a!), [[3, 5]]);
    await gradcheck(device, ([a]) => E.softmax(a!, 1), [[2, 3, 4]]);
    await gradcheck(device, ([a]) => E.logSoftmax(a!), [[3, 5]]);
    await gradcheck(device, ([a]) => E.logSoftmax(a!, 0), [[4, 3]]);
    // With masked entries (softmax only: a -inf log-probability times R is not finite).
    const masked = randomNormal(12, 3);
    [1, 4, 5, 10].forEach((i) => (masked[i] = NEG_INF));
    await gradcheck(device, ([a]) => E.softmax(a!), [[3, 4]], { values: [masked] });
  });
});
