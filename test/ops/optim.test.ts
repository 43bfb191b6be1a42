import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { readSafetensorsFile } from '../../src/engine/io/safetensors-node.js';
import { AdamW } from '../../src/train/optim.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW in float64: returns p, m, v after each step. */
function adamwReference64(p0: ArrayLike<number>, grads: ArrayLike<number>[], h: Hyper) {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const history: { p: Float64Array; m: Float64Array; v: Float64Array }[] = [];
  grads.forEach((g, k) => {
    const t = k + 1;
    const bc1 = 1 - h.beta1 ** t;
    const bc2 = 1 - h.beta2 ** t;
    for (let i = 0; i < p.length; i++) {
      p[i] = p[i]! * (1 - h.lr * h.weightDecay);
      m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g[i]!;
      v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g[i]! * g[i]!;
      p[i] = p[i]! - (h.lr / bc1) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + h.eps));
    }
    history.push({ p: p.slice(), m: m.slice(), v: v.slice() });
  });
  return history;
}

const TORCH_DEFAULTS: Hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 };

describe.each(await testDevices())('adamwStep on %s', (_name, device) => {
  it.each([
    ['torch defaults', [5, 7], TORCH_DEFAULTS],
    ['large lr and decay, odd size', [300], { lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.5 }],
  ] as const)('matches a float64 reference over 3 steps (%s)', async (_label, shape, h) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const p0 = randomNormal(n, 11);
    const grads = [1, 2, 3].map((s) => randomNormal(n, 100 + s));
    const expected = adamwReference64(p0, grads, h);
    const param = E.Tensor.fromArray(p0, shape, { device });
    const m = E.Tensor.zeros(shape, { device });
    const v = E.Tensor.zeros(shape, { device });
    for (let k = 0; k < 3; k++) {
      const g = E.Tensor.fromArray(grads[k]!, shape, { device });
      E.adamwStep(param, g, m, v, { ...h, step: k + 1 });
      g.dispose();
      expectClose(await param.read(), expected[k]!.p, 1e-6, 1e-5, `param after step ${k + 1}`);
      expectClose(await m.read(), expected[k]!.m, 1e-6, 1e-5, `exp_avg after step ${k + 1}`);
      expectClose(await v.read(), expected[k]!.v, 1e-6, 1e-5, `exp_avg_sq after step ${k + 1}`);
    }
    [param, m, v].forEach((t) => t.dispose());
  });

  it('refuses mismatched shapes, aliasing, bad dtypes and bad hyperparameters', () => {
    const h = { ...TORCH_DEFAULTS, step: 1 };
    const p = E.Tensor.zeros([2, 3], { device });
    const g = E.Tensor.zeros([2, 3], { device });
    const m = E.Tensor.zeros([2, 3], { device });
    const v = E.Tensor.zeros([2, 3], { device });
    const short = E.Tensor.zeros([6], { device });
    const ints = E.Tensor.zeros([2, 3], { device, dtype: 'i32' });
    expect(() => E.adamwStep(p, short, m, v, h)).toThrow(/adamwStep: grad \[6\] does not match param \[2, 3\]/);
    expect(() => E.adamwStep(p, p, m, v, h)).toThrow(/adamwStep: param and grad share one storage/);
    // A view shares the storage too.
    const flat = p.view([6]);
    const view = flat.view([2, 3]);
    expect(() => E.adamwStep(p, view, m, v, h)).toThrow(/param and grad share one storage/);
    expect(() => E.adamwStep(p, g, m, m, h)).toThrow(/expAvg and expAvgSq share one storage/);
    expect(() => E.adamwStep(p, ints, m, v, h)).toThrow(/adamwStep: grad \[2, 3\] has dtype i32/);
    expect(() => E.adamwStep(p, g, m, v, { ...h, step: 0 })).toThrow(/step must be an integer >= 1/);
    expect(() => E.adamwStep(p, g, m, v, { ...h, beta2: 1 })).toThrow(/beta2 must be in \[0, 1\)/);
    [p, g, m, v, short, ints, flat, view].forEach((t) => t.dispose());
  });

  it('is a no-op on zero-size tensors', () => {
    const [p, g, m, v] = [0, 1, 2, 3].map(() => E.Tensor.zeros([0, 4], { device }));
    E.adamwStep(p!, g!, m!, v!, { ...TORCH_DEFAULTS, step: 1 });
    [p, g, m, v].forEach((t) => t!.dispose());
  });
});

describe.each(await testDevices())('AdamW optimizer on %s', (_name, device) => {
  it('steps parameters like torch.optim.AdamW, skipping those without a gradient', async () => {
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
    const a0 = randomNormal(12, 1);
    const b0 = randomNormal(4, 2);
    const a = E.Tensor.fromArray(a0, [3, 4], { device, requiresGrad: true });
    const b = E.Tensor.fromArray(b0, [4], { device, requiresGrad: true });
    const opt = new AdamW([['a', a], ['b', b]], { lr: h.lr, betas: [h.beta1, h.beta2], weightDecay: h.weightDecay });
    const gA = [1, 2, 3].map((s) => randomNormal(12, 10 + s));
    const gB = randomNormal(4, 20);
    for (let k = 0; k < 3; k++) {
      opt.zeroGrad();
      a.grad = E.Tensor.fromArray(gA[k]!, [3, 4], { device });
      // b gets a gradient only at the second step: it is skipped at steps 1 and 3.
      if (k === 1) b.grad = E.Tensor.fromArray(gB, [4], { device });
      opt.step();
    }
    expectClose(await a.read(), adamwReference64(a0, gA, h)[2]!.p, 1e-6, 1e-5, 'a');
    expectClose(await b.read(), adamwReference64(b0, [gB], h)[0]!.p, 1e-6, 1e-5, 'b (one step)');
    const state = opt.stateDict();
    expect(state.get('a')!.step).toBe(3);
    expect(state.get('b')!.step).toBe(1);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    // With no gradients, step() changes nothing.
    opt.step();
    expectClose(await a.read(), adamwReference64(a0, gA, h)[2]!.p, 1e-6, 1e-5, 'a unchanged');
    opt.dispose();
    a.dispose();
    b.dispose();
  });

  it('names plain parameter lists by index and rejects duplicates', () => {
    const p = E.Tensor.zeros([2], { device, requiresGrad: true });
    const q = E.Tensor.zeros([2], { device, requiresGrad: true });
    expect(new AdamW([p, q], { lr: 1 }).params.map(([n]) => n)).toEqual(['0', '1']);
    expect(() => new AdamW([p, p], { lr: 1 })).toThrow(/appears twice/);
    p.dispose();
    q.dispose();
  });

  it('restores saved state so that the next step continues identically', async () => {
    const w0 = randomNormal(6, 3);
    const grads = [1, 2, 3].map((s) => randomNormal(6, 30 + s));
    const run = (w: E.Tensor, opt: AdamW, g: Float32Array) => {
      w.grad = E.Tensor.fromArray(g, [6], { device });
      opt.step();
      opt.zeroGrad();
    };
    const w1 = E.Tensor.fromArray(w0, [6], { device, requiresGrad: true });
    const opt1 = new AdamW([['w', w1]], { lr: 0.05 });
    for (const g of grads) run(w1, opt1, g);

    const w2 = E.Tensor.fromArray(w0, [6], { device, requiresGrad: true });
    const opt2 = new AdamW([['w', w2]], { lr: 0.05 });
    run(w2, opt2, grads[0]!);
    run(w2, opt2, grads[1]!);
    // Round trip through host arrays, as a checkpoint would.
    const saved = opt2.stateDict().get('w')!;
    const host = { step: saved.step, expAvg: (await saved.expAvg.read()) as Float32Array, expAvgSq: (await saved.expAvgSq.read()) as Float32Array };
    const w3 = E.Tensor.fromArray(await w2.read(), [6], { device, requiresGrad: true });
    const opt3 = new AdamW([['w', w3]], { lr: 0.05 });
    opt3.loadStateDict(new Map([['w', host]]));
    run(w3, opt3, grads[2]!);
    expectClose(await w3.read(), await w1.read(), 0, 0, 'resumed');
    expect(() => opt3.loadStateDict(new Map([['nope', host]]))).toThrow(/unknown parameter 'nope'/);
    expect(() => opt3.loadStateDict(new Map([['w', { ...host, expAvg: new Float32Array(5) }]]))).toThrow(/'w' exp_avg has 5 values/);
    for (const x of [opt1, opt2, opt3, w1, w2, w3]) x.dispose();
  });
});

const GOLDEN = fileURLToPath(new URL('../fixtures/golden/ops/adamw_3steps.safetensors', import.meta.url));

async function readSafetensors(path: string): Promise<Map<string, Float32Array>> {
  const file = await readSafetensorsFile(path);
  return new Map(file.keys().map((k) => [k, file.get(k).data as Float32Array]));
}

describe.each(await testDevices())('AdamW against PyTorch (golden adamw_3steps) on %s', (_name, device) => {
  it('matches torch.optim.AdamW after each of 3 steps', async () => {
    const t = await readSafetensors(GOLDEN);
    const shapes = [[5, 7], [7]];
    const params = shapes.map((s, i) => E.Tensor.fromArray(t.get(`param${i}.initial`)!, s, { device, requiresGrad: true }));
    const opt = new AdamW(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    for (let step = 1; step <= 3; step++) {
      params.forEach((p, i) => {
        p.grad = E.Tensor.fromArray(t.get(`param${i}.grad.step${step}`)!, shapes[i]!, { device });
      });
      opt.step();
      opt.zeroGrad();
      const state = opt.stateDict();
      for (let i = 0; i < params.length; i++) {
        expectClose(await params[i]!.read(), t.get(`param${i}.after_step${step}`)!, 1e-6, 1e-5, `param${i} step ${step}`);
        expectClose(await state.get(String(i))!.expAvg.read(), t.get(`param${i}.exp_avg.after_step${step}`)!, 1e-6, 1e-5);
        expectClose(await state.get(String(i))!.expAvgSq.read(), t.get(`param${i}.exp_avg_sq.after_step${step}`)!, 1e-6, 1e-5);
      }
    }
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
});
