import { describe, expect, it } from 'vitest';
import { Tensor, add, backward, mul, scope, sum, permute, concat, pad, slice, gelu } from '../../src/engine/index.js';
import { testDevices } from '../helpers/devices.js';
import { expectClose } from '../helpers/allclose.js';

describe.each(await testDevices())('smoke on %s', (_name, device) => {
  it('adds, multiplies with broadcasting and backpropagates', async () => {
    const a = Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { device, requiresGrad: true });
    const b = Tensor.fromArray([10, 20, 30], [3], { device, requiresGrad: true });
    const loss = scope(() => sum(mul(add(a, b), b)));
    expect(Array.from(await loss.read())).toEqual([(11 + 44) * 1 + 10 * 1 + 0 + ((1 + 10) * 10 + (2 + 20) * 20 + (3 + 30) * 30 + (4 + 10) * 10 + (5 + 20) * 20 + (6 + 30) * 30) - 65]);
    backward(loss);
    expectClose(await a.grad!.read(), [10, 20, 30, 10, 20, 30]);
    // d/db sum((a+b)*b) = sum over rows of (a + 2b)
    expectClose(await b.grad!.read(), [1 + 4 + 20 + 20, 2 + 5 + 40 + 40, 3 + 6 + 60 + 60]);
  });
  it('moves data', async () => {
    const x = Tensor.fromArray([0, 1, 2, 3, 4, 5], [2, 3], { device });
    expect(Array.from(await permute(x, [1, 0]).read())).toEqual([0, 3, 1, 4, 2, 5]);
    expect(Array.from(await concat([x, x], 0).read())).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
    expect(Array.from(await pad(x, [[1, 0]], -1).read())).toEqual([-1, 0, 1, 2, -1, 3, 4, 5]);
    expect(Array.from(await slice(x, [{ start: 1 }, { start: 0, step: 2 }]).read())).toEqual([3, 5]);
    const g = await gelu(Tensor.fromArray([-1, 0, 1], [3], { device })).read();
    expectClose(g, [-0.15865525, 0, 0.8413447], 1e-6, 1e-5);
  });
});
