import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { Conv2d, LayerNorm, Linear, createRng } from '../../src/models/nn/index.js';
import { AdamW } from '../../src/train/optim.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';

class Block extends E.Module {
  readonly fc: Linear;
  readonly norm: LayerNorm;
  constructor(device: E.Device, seed: number) {
    super();
    this.fc = this.registerModule('fc', new Linear(3, 4, { device, rng: createRng(seed) }));
    this.norm = this.registerModule('norm', new LayerNorm(4, { device }));
  }
  forward(x: E.Tensor): E.Tensor {
    return this.norm.forward(E.relu(this.fc.forward(x)));
  }
}

class Net extends E.Module {
  readonly layers: E.ModuleList<Block>;
  readonly scale: E.Tensor;
  readonly counter: E.Tensor;
  constructor(device: E.Device, seed = 1) {
    super();
    this.layers = this.registerModule('layers', new E.ModuleList([new Block(device, seed), new Block(device, seed + 1)]));
    this.scale = this.registerParameter('scale', E.Tensor.ones([1], { device }));
    this.counter = this.registerBuffer('counter', E.Tensor.zeros([2], { device }));
  }
}

describe.each(await testDevices())('Module on %s', (_name, device) => {
  it('names nested parameters with dots and keeps them out of scopes', () => {
    const net = E.scope(() => new Net(device));
    const names = net.namedParameters().map(([n]) => n);
    expect(names).toEqual([
      'scale',
      'layers.0.fc.weight', 'layers.0.fc.bias', 'layers.0.norm.weight', 'layers.0.norm.bias',
      'layers.1.fc.weight', 'layers.1.fc.bias', 'layers.1.norm.weight', 'layers.1.norm.bias',
    ]);
    expect(net.parameters().every((p) => !p.disposed && p.requiresGrad)).toBe(true);
    expect(net.namedBuffers().map(([n]) => n)).toEqual(['counter']);
    expect(net.counter.requiresGrad).toBe(false);
    expect([...net.stateDict().keys()]).toEqual([...names, 'counter']);
    expect(net.numParameters()).toBe(1 + 2 * (12 + 4 + 4 + 4));
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'layers', 'layers.0', 'layers.0.fc', 'layers.0.norm', 'layers.1', 'layers.1.fc', 'layers.1.norm']);
    net.dispose();
  });

  it('rejects bad and duplicate member names, and non-leaf parameters', () => {
    const m = new E.Module();
    m.registerParameter('w', E.Tensor.zeros([1], { device }));
    expect(() => m.registerParameter('w', E.Tensor.zeros([1], { device }))).toThrow(/'w' is already registered/);
    expect(() => m.registerModule('a.b', new E.Module())).toThrow(/invalid member name 'a.b'/);
    const x = E.Tensor.ones([2], { device, requiresGrad: true });
    const y = E.mulScalar(x, 2);
    expect(() => m.registerParameter('y', y)).toThrow(/output of 'mul_scalar'; pass a leaf tensor/);
    [x, y].forEach((t) => t.dispose());
    m.dispose();
  });

  it('zeroGrad, train/eval and freeze/unfreeze', async () => {
    const net = new Net(device);
    const loss = E.scope(() => E.sum(E.mul(net.layers.get(0).forward(E.Tensor.ones([2, 3], { device })), net.scale)));
    E.backward(loss);
    loss.dispose();
    const withGrad = net.namedParameters().filter(([, p]) => p.grad !== null).map(([n]) => n);
    expect(withGrad).toEqual(['scale', 'layers.0.fc.weight', 'layers.0.fc.bias', 'layers.0.norm.weight', 'layers.0.norm.bias']);
    net.zeroGrad();
    expect(net.parameters().every((p) => p.grad === null)).toBe(true);

    expect(net.eval().namedModules().every(([, m]) => !m.training)).toBe(true);
    expect(net.train().namedModules().every(([, m]) => m.training)).toBe(true);

    net.freeze('layers.0');
    const frozen = net.namedParameters().filter(([, p]) => !p.requiresGrad).map(([n]) => n);
    expect(frozen).toEqual(['layers.0.fc.weight', 'layers.0.fc.bias', 'layers.0.norm.weight', 'layers.0.norm.bias']);
    // A prefix matches whole name segments only, and a typo is an error.
    expect(() => net.freeze('layers.0.f')).toThrow(/no parameter is named 'layers.0.f'/);
    net.unfreeze();
    expect(net.parameters().every((p) => p.requiresGrad)).toBe(true);
    net.freeze();
    expect(net.parameters().some((p) => p.requiresGrad)).toBe(false);
    net.dispose();
  });

  it('loads a state dict in place, with clear errors', async () => {
    const a = new Net(device, 1);
    const b = new Net(device, 7);
    const bWeight = b.layers.get(1).fc.weight;
    const result = b.loadStateDict(a.stateDict());
    expect(result).toEqual({ missing: [], unexpected: [] });
    // Same tensor objects (an optimizer holding them stays valid), new values.
    expect(b.layers.get(1).fc.weight).toBe(bWeight);
    for (const [name, t] of a.stateDict()) {
      expectClose(await b.stateDict().get(name)!.read(), await t.read(), 0, 0, name);
    }
    // Host values are accepted too.
    b.loadStateDict({ scale: { shape: [1], data: new Float32Array([3]) } }, { strict: false });
    expect(await b.scale.item()).toBe(3);

    const state = new Map<string, E.StateValue>(a.stateDict());
    state.delete('layers.0.fc.bias');
    const extra = E.Tensor.zeros([1], { device });
    state.set('layers.9.weight', extra);
    expect(() => b.loadStateDict(state)).toThrow(/missing keys: 'layers.0.fc.bias'; unexpected keys: 'layers.9.weight'/);
    const loose = b.loadStateDict(state, { strict: false });
    expect(loose).toEqual({ missing: ['layers.0.fc.bias'], unexpected: ['layers.9.weight'] });
    extra.dispose();

    const wrong = E.Tensor.zeros([3, 4], { device });
    const before = await b.scale.item();
    expect(() => b.loadStateDict({ 'layers.0.fc.weight': wrong, scale: { shape: [1], data: new Float32Array([9]) } }, { strict: false })).toThrow(
      /'layers.0.fc.weight': shape \[3, 4\] in the state dict, \[4, 3\] in the model/,
    );
    // Nothing was written when a check failed.
    expect(await b.scale.item()).toBe(before);
    wrong.dispose();
    a.dispose();
    b.dispose();
  });

  it('Linear, LayerNorm and Conv2d have PyTorch shapes and compute', async () => {
    const lin = new Linear(3, 2, { device, rng: createRng(5) });
    expect(lin.weight.shape).toEqual([2, 3]);
    const bound = 1 / Math.sqrt(3);
    expect(Array.from(await lin.weight.read()).every((v) => Math.abs(v) <= bound)).toBe(true);
    lin.loadStateDict({ weight: { shape: [2, 3], data: new Float32Array([1, 0, 0, 0, 1, 1]) }, bias: { shape: [2], data: new Float32Array([0.5, -1]) } });
    const y = E.scope(() => lin.forward(E.Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { device })));
    expectClose(await y.read(), [1.5, 4, 4.5, 10]);
    y.dispose();
    expect(new Linear(3, 2, { device, bias: false }).namedParameters().map(([n]) => n)).toEqual(['weight']);

    const ln = new LayerNorm(4, { device });
    const z = E.scope(() => ln.forward(E.Tensor.fromArray([1, 2, 3, 4], [1, 4], { device })));
    const sd = Math.sqrt(1.25 + 1e-5);
    expectClose(await z.read(), [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd], 1e-5, 1e-5);
    z.dispose();
    expect(() => ln.forward(E.Tensor.zeros([2, 3], { device }))).toThrow(/LayerNorm\(4\): input \[2, 3\]/);

    const conv = new Conv2d(4, 6, 3, { device, padding: 1, groups: 2 });
    expect(conv.weight.shape).toEqual([6, 2, 3, 3]);
    const c = E.scope(() => conv.forward(E.Tensor.zeros([1, 4, 5, 5], { device })));
    expect(c.shape).toEqual([1, 6, 5, 5]);
    c.dispose();
    [lin, ln, conv].forEach((m) => m.dispose());
  });

  it('feeds AdamW through namedParameters', () => {
    const net = new Net(device);
    const opt = new AdamW(net.namedParameters(), { lr: 0.1 });
    expect(opt.params.map(([n]) => n)).toContain('layers.1.norm.bias');
    opt.dispose();
    net.dispose();
  });
});
