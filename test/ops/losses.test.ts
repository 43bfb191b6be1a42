import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { expectNoLeak } from '../helpers/leak.js';
import { gradcheck, randomNormal, seededRandom } from '../helpers/gradcheck.js';

/** Independent float64 references (naive formulas, fine in float64 for |x| <= 40). */
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

function bceRef(x: ArrayLike<number>, t: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const p = sigmoid(x[i]!);
    // -(t log p + (1 - t) log(1 - p)), with log(1 - p) = log(sigmoid(-x)) written out stably
    s += -(t[i]! * -Math.log1p(Math.exp(-x[i]!)) + (1 - t[i]!) * -Math.log1p(Math.exp(x[i]!)));
  }
  return s / x.length;
}

function diceRef(x: ArrayLike<number>, t: ArrayLike<number>, smooth = 1): number {
  let inter = 0;
  let sp = 0;
  let st = 0;
  for (let i = 0; i < x.length; i++) {
    const p = sigmoid(x[i]!);
    inter += p * t[i]!;
    sp += p;
    st += t[i]!;
  }
  return 1 - (2 * inter + smooth) / (sp + st + smooth);
}

function binaryTarget(n: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rand() < 0.3 ? 1 : 0));
}


describe.each(await testDevices())('losses on %s', (_name, device) => {
  const t = (data: ArrayLike<number>, shape: number[], requiresGrad = false) => E.Tensor.fromArray(data, shape, { device, requiresGrad });

  it('bceWithLogits: hand-computed values, a 0-d mean over all elements', async () => {
    const loss = E.bceWithLogits(t([0, 0, 2, -3], [2, 2]), t([0, 1, 1, 0.25], [2, 2]));
    expect(loss.shape).toEqual([]);
    const expected = (Math.log(2) + Math.log(2) + Math.log1p(Math.exp(-2)) + (0.75 + Math.log1p(Math.exp(-3)))) / 4;
    expectClose(await loss.read(), [expected]);
  });

  it('bceWithLogits: stable for large logits, matches an independent reference', async () => {
    const shape = [2, 1, 8, 8];
    const x = randomNormal(128, 41).map((v) => v * 4);
    x[0] = 40;
    x[1] = -40;
    x[2] = 90; // exp(90) overflows float32: the stable formula must not
    x[3] = -90;
    const tgt = binaryTarget(128, 42);
    const got = await E.bceWithLogits(t(x, shape), t(tgt, shape)).item();
    const ref = bceRef(x.slice(4), tgt.slice(4)) * (124 / 128) + (tgt[0]! === 1 ? 0 : 40) / 128 + (tgt[1]! === 1 ? 40 : 0) / 128 +
      (tgt[2]! === 1 ? 0 : 90) / 128 + (tgt[3]! === 1 ? 90 : 0) / 128;
    expect(Number.isFinite(got)).toBe(true);
    expectClose([got], [ref], 1e-5, 1e-5);
  });

  it('bceWithLogits: gradients for logits and (soft) targets', async () => {
    const shape = [2, 3, 4];
    await gradcheck(device, ([x, y]) => E.bceWithLogits(x!, y!), [shape, shape], { constant: [1], values: [undefined, binaryTarget(24, 43)] });
    const soft = Float32Array.from(binaryTarget(24, 44), (v, i) => 0.1 + 0.8 * v - 0.01 * i);
    await gradcheck(device, ([x, y]) => E.bceWithLogits(x!, y!), [shape, shape], { values: [undefined, soft] });
    // Gradient formula: (sigmoid(x) - t) / n, checked exactly on a tiny case.
    const x = t([0, 2], [2], true);
    E.backward(E.bceWithLogits(x, t([1, 0], [2])));
    expectClose(await x.grad!.read(), [(0.5 - 1) / 2, sigmoid(2) / 2]);
  });

  it('softDiceLoss: hand-computed value and an independent reference', async () => {
    // logits 0 -> p = 0.5 everywhere: inter = 0.5 * 2, sums 2 and 2.
    const d = await E.softDiceLoss(t([0, 0, 0, 0], [1, 1, 2, 2]), t([1, 0, 1, 0], [1, 1, 2, 2])).item();
    expectClose([d], [1 - (2 * 1 + 1) / (2 + 2 + 1)]);
    const shape = [2, 1, 6, 6];
    const x = randomNormal(72, 45).map((v) => v * 2);
    const tgt = binaryTarget(72, 46);
    const loss = E.softDiceLoss(t(x, shape), t(tgt, shape), 0.5);
    expect(loss.shape).toEqual([]);
    expectClose(await loss.read(), [diceRef(x, tgt, 0.5)], 1e-6, 1e-5);
  });

  it('softDiceLoss and bce + dice: gradients', async () => {
    const shape = [2, 1, 3, 4];
    const values = [undefined, binaryTarget(24, 47)];
    await gradcheck(device, ([x, y]) => E.softDiceLoss(x!, y!), [shape, shape], { constant: [1], values });
    await gradcheck(device, ([x, y]) => E.softDiceLoss(x!, y!, 2), [shape, shape], { values });
    await gradcheck(device, ([x, y]) => E.add(E.bceWithLogits(x!, y!), E.softDiceLoss(x!, y!)), [shape, shape], { constant: [1], values });
  });

  it('frees its temporaries', async () => {
    const x = t(randomNormal(8, 48), [2, 4], true);
    const y = t([0, 1, 1, 0, 0.5, 1, 0, 0], [2, 4], true);
    await expectNoLeak(device, [x, y], () => E.bceWithLogits(x, y));
    await expectNoLeak(device, [x, y], () => E.add(E.bceWithLogits(x, y), E.softDiceLoss(x, y)));
  });

  it('checks shapes', () => {
    expect(() => E.bceWithLogits(t([1, 2], [2]), t([1, 2], [1, 2]))).toThrow('bceWithLogits: target [1, 2] must have the shape of logits [2]');
    expect(() => E.softDiceLoss(t([1, 2], [2]), t([1], [1]))).toThrow('softDiceLoss: target [1]');
  });
});
