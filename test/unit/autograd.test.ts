import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck } from '../helpers/gradcheck.js';

const read = async (t: E.Tensor | null) => Array.from((await t!.read()) as Float32Array);

describe.each(await testDevices())('autograd on %s', (_name, device) => {
  const leaf = (values: number[], requiresGrad = true) =>
    E.Tensor.fromArray(values, [values.length], { device, requiresGrad });

  it('accumulates gradients over two backward passes', async () => {
    const x = leaf([1, 2, 3]);
    for (let i = 0; i < 2; i++) {
      const loss = E.scope(() => E.sum(E.mul(x, x)));
      E.backward(loss);
      loss.dispose();
    }
    expect(await read(x.grad)).toEqual([4, 8, 12]);
    x.dispose();
  });

  it('adds the gradients of an input used twice', async () => {
    const x = leaf([1, -2, 3]);
    const y = leaf([0.5, 0.5, 2]);
    // f = sum(x*x + x*y + x): df/dx = 2x + y + 1, df/dy = x
    const loss = E.scope(() => E.sum(E.add(E.add(E.mul(x, x), E.mul(x, y)), x)));
    E.backward(loss);
    expectClose(await read(x.grad), [3.5, -2.5, 9]);
    expectClose(await read(y.grad), [1, -2, 3]);
    [loss, x, y].forEach((t) => t.dispose());
  });

  it('detach cuts the graph', async () => {
    const x = leaf([2, 3]);
    const loss = E.scope(() => E.sum(E.mul(x.detach(), x)));
    expect(x.detach().requiresGrad).toBe(false);
    E.backward(loss);
    // Only the attached factor contributes: d/dx = x (not 2x).
    expect(await read(x.grad)).toEqual([2, 3]);
    [loss, x].forEach((t) => t.dispose());
  });

  it('noGrad records nothing', () => {
    const x = leaf([1, 2]);
    const y = E.noGrad(() => E.mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(E.isRecording()).toBe(true);
    expect(() => E.backward(y)).toThrow(/does not require a gradient/);
    // noGrad restores recording even when fn throws.
    expect(() => E.noGrad(() => { throw new Error('boom'); })).toThrow('boom');
    expect(E.isRecording()).toBe(true);
    [x, y].forEach((t) => t.dispose());
  });

  it('propagates requiresGrad only from inputs that need it', async () => {
    const a = leaf([1, 2, 3]);
    const b = leaf([4, 5, 6], false);
    const c = E.mul(b, b);
    expect(c.requiresGrad).toBe(false);
    expect(c.node).toBeNull();
    const d = E.mul(a, b);
    expect(d.requiresGrad).toBe(true);
    expect(d.node).not.toBeNull();
    const loss = E.sum(d);
    E.backward(loss);
    expect(await read(a.grad)).toEqual([4, 5, 6]);
    expect(b.grad).toBeNull();
    [a, b, c, d, loss].forEach((t) => t.dispose());
  });

  it('tells each backward which inputs need a gradient', () => {
    const a = leaf([1, 2]);
    const b = leaf([3, 4], false);
    const seen: boolean[][] = [];
    const out = E.record('probe', E.noGrad(() => E.add(a, b)), [a, b], [], (dOut, _s, needs) => {
      seen.push([...needs]);
      return [needs[0] ? dOut : null, needs[1] ? dOut : null];
    });
    const loss = E.sum(out);
    E.backward(loss);
    expect(seen).toEqual([[true, false]]);
    expect(b.grad).toBeNull();
    [a, b, out, loss].forEach((t) => t.dispose());
  });

  it('refuses a second backward through a freed graph', () => {
    const x = leaf([1, 2]);
    const loss = E.sum(E.mul(x, x));
    E.backward(loss);
    expect(() => E.backward(loss)).toThrow(/already freed/);
    loss.dispose();
    x.dispose();
  });

  it('refuses a gradient of the wrong shape', () => {
    const x = leaf([1, 2]);
    const bad = E.record('bad', E.noGrad(() => E.mulScalar(x, 2)), [x], [], () => [E.Tensor.zeros([3], { device })]);
    const loss = E.sum(bad);
    expect(() => E.backward(loss)).toThrow(/bad backward: gradient \[3\] for input 0 of shape \[2\]/);
    [x, bad, loss].forEach((t) => t.dispose());
  });

  it('backpropagates through a 5000-op chain without recursion', async () => {
    const x = leaf([1, 2]);
    const before = device.stats().liveBuffers;
    const loss = E.scope(() => {
      let y = x;
      for (let i = 0; i < 5000; i++) y = E.addScalar(y, 1e-3);
      return E.sum(E.mulScalar(y, 2));
    });
    E.backward(loss);
    expect(await read(x.grad)).toEqual([2, 2]);
    loss.dispose();
    x.grad!.dispose();
    x.grad = null;
    // The tape's saved tensors and intermediates are gone.
    expect(device.stats().liveBuffers).toBe(before);
    x.dispose();
  });

  it('gradcheck fails on a deliberately wrong backward', async () => {
    // square with the factor 2 forgotten in its backward.
    const wrongSquare = (x: E.Tensor) =>
      E.record('wrong_square', E.noGrad(() => E.mul(x, x)), [x], [x], (dOut, [sx]) => [E.noGrad(() => E.mul(dOut, sx!))]);
    const rightSquare = (x: E.Tensor) =>
      E.record('square', E.noGrad(() => E.mul(x, x)), [x], [x], (dOut, [sx]) => [E.mulScalar(E.mul(dOut, sx!), 2)]);
    await gradcheck(device, ([x]) => rightSquare(x!), [[5]]);
    await expect(gradcheck(device, ([x]) => wrongSquare(x!), [[5]])).rejects.toThrow(/gradcheck: input 0 element \d+: autograd/);
  });
});
