import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { testDevices } from '../helpers/devices.js';

describe.each(await testDevices())('elementwise gradients on %s', (_name, device) => {
  it('binary ops with broadcasting', async () => {
    await gradcheck(device, ([a, b]) => E.add(a!, b!), [[2, 3], [3]]);
    await gradcheck(device, ([a, b]) => E.sub(a!, b!), [[2, 1, 3], [4, 1]]);
    await gradcheck(device, ([a, b]) => E.mul(a!, b!), [[3, 4], [1, 4]]);
    await gradcheck(device, ([a, b]) => E.div(a!, E.addScalar(E.abs(b!), 1)), [[2, 3], [2, 3]]);
    await gradcheck(device, ([a, b]) => E.maximum(a!, b!), [[5], [5]]);
  });
  it('unary ops and activations', async () => {
    const pos = ([a]: E.Tensor[]) => E.addScalar(E.abs(a!), 0.5);
    for (const f of [E.exp, E.neg, E.relu, E.sigmoid, E.tanh, E.gelu, E.geluTanh, E.quickGelu]) {
      await gradcheck(device, ([a]) => f(a!), [[3, 5]]);
    }
    await gradcheck(device, (x) => E.log(pos(x)), [[7]]);
    await gradcheck(device, (x) => E.sqrt(pos(x)), [[7]]);
    await gradcheck(device, (x) => E.rsqrt(pos(x)), [[7]]);
    await gradcheck(device, (x) => E.powScalar(pos(x), 2.5), [[7]]);
    await gradcheck(device, ([a, b]) => E.pow(E.addScalar(E.abs(a!), 0.5), b!), [[4], [4]]);
    await gradcheck(device, ([a]) => E.clamp(a!, -0.5, 0.5), [[9]]);
    await gradcheck(device, ([a]) => E.mulScalar(a!, -3), [[9]]);
  });
  it('relu keeps NaN and infinities as torch.relu does', async () => {
    const x = E.Tensor.fromArray([NaN, -Infinity, -2, 0, 3, Infinity], [6], { device });
    expect(Array.from((await E.relu(x).read()) as Float32Array)).toEqual([NaN, 0, 0, 0, 3, Infinity]);
  });
  it('where', async () => {
    const cond = new Float32Array([1, 0, 1, 0, 0, 1]);
    await gradcheck(device, ([c, a, b]) => E.where(c!, a!, b!), [[2, 3], [2, 3], [3]], { constant: [0], values: [cond] });
  });
});

describe.each(await testDevices())('reduction and movement gradients on %s', (_name, device) => {
  it('reductions', async () => {
    await gradcheck(device, ([a]) => E.sum(a!, [1]), [[2, 3, 4]]);
    await gradcheck(device, ([a]) => E.mean(a!, [0, 2], { keepDims: true }), [[2, 3, 4]]);
    await gradcheck(device, ([a]) => E.max(a!, -1), [[3, 5]]);
    await gradcheck(device, ([a]) => E.min(a!, 0), [[3, 5]]);
  });
  it('movement', async () => {
    await gradcheck(device, ([a]) => E.permute(a!, [2, 0, 1]), [[2, 3, 4]]);
    await gradcheck(device, ([a]) => E.reshape(a!, [4, -1]), [[2, 3, 4]]);
    await gradcheck(device, ([a]) => E.slice(a!, [{ start: 1 }, { start: -3, end: -1 }]), [[3, 5]]);
    await gradcheck(device, ([a]) => E.slice(a!, [undefined, { start: 0, step: 2 }]), [[3, 5]]);
    await gradcheck(device, ([a, b]) => E.concat([a!, b!], 1), [[2, 3], [2, 2]]);
    await gradcheck(device, ([a]) => E.pad(a!, [[1, 2], [0, 1]], 0.5), [[2, 3]]);
    await gradcheck(device, ([a]) => E.expand(a!, [4, 2, 3]), [[2, 1]]);
  });
});
