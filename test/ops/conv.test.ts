/**
 * conv2d / convTranspose2d: values and full gradients against an independent naive implementation
 * (conv2d as the PyTorch sum, convTranspose2d as a scatter from each input pixel), finite-difference
 * gradchecks for every variant, hand-computed cases and shape errors. Runs on cpu and webgpu.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { type Conv2dParams, conv2dKernel } from '../../src/kernels/conv2d/conv2d.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

type Shape = readonly number[];
type Pair = number | [number, number];
const pair = (v: Pair | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);
const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);
/** a[i] += v (typed-array indexing is possibly undefined under noUncheckedIndexedAccess). */
const addAt = (a: Float64Array, i: number, v: number): void => {
  a[i] = a[i]! + v;
};

/** out[o] += x[i] * w[k] for every term; channel[o] says which bias entry o gets. */
interface Terms {
  outShape: number[];
  terms: [number, number, number][];
  channel: (o: number) => number;
}

/** PyTorch conv2d, written as the definition: out = sum over (ci, kh, kw) of x * w. */
function conv2dTerms(xs: Shape, ws: Shape, o: E.Conv2dOptions): Terms {
  const [n, cIn, h, w] = xs as number[];
  const [cOut, cPerG, kH, kW] = ws as number[];
  const [sH, sW] = pair(o.stride, 1);
  const [pH, pW] = pair(o.padding, 0);
  const [dH, dW] = pair(o.dilation, 1);
  const groups = o.groups ?? 1;
  const hO = Math.floor((h! + 2 * pH - dH * (kH! - 1) - 1) / sH) + 1;
  const wO = Math.floor((w! + 2 * pW - dW * (kW! - 1) - 1) / sW) + 1;
  const terms: [number, number, number][] = [];
  for (let b = 0; b < n!; b++)
    for (let co = 0; co < cOut!; co++)
      for (let oy = 0; oy < hO; oy++)
        for (let ox = 0; ox < wO; ox++)
          for (let cl = 0; cl < cPerG!; cl++)
            for (let kh = 0; kh < kH!; kh++)
              for (let kw = 0; kw < kW!; kw++) {
                const y = oy * sH - pH + kh * dH;
                const x = ox * sW - pW + kw * dW;
                if (y < 0 || y >= h! || x < 0 || x >= w!) continue;
                const ci = Math.floor(co / (cOut! / groups)) * cPerG! + cl;
                terms.push([((b * cOut! + co) * hO + oy) * wO + ox, ((b * cIn! + ci) * h! + y) * w! + x, ((co * cPerG! + cl) * kH! + kh) * kW! + kw]);
              }
  return { outShape: [n!, cOut!, hO, wO], terms, channel: (i) => Math.floor(i / (hO * wO)) % cOut! };
}

/** PyTorch conv_transpose2d as a scatter: each x pixel adds x * w[ci, co] into the window it maps to. */
function convTranspose2dTerms(xs: Shape, ws: Shape, o: E.ConvTranspose2dOptions): Terms {
  const [n, cIn, h, w] = xs as number[];
  const [, cPerG, kH, kW] = ws as number[];
  const [sH, sW] = pair(o.stride, 1);
  const [pH, pW] = pair(o.padding, 0);
  const [dH, dW] = pair(o.dilation, 1);
  const [opH, opW] = pair(o.outputPadding, 0);
  const groups = o.groups ?? 1;
  const cOut = cPerG! * groups;
  const hO = (h! - 1) * sH - 2 * pH + dH * (kH! - 1) + opH + 1;
  const wO = (w! - 1) * sW - 2 * pW + dW * (kW! - 1) + opW + 1;
  const terms: [number, number, number][] = [];
  for (let b = 0; b < n!; b++)
    for (let ci = 0; ci < cIn!; ci++)
      for (let iy = 0; iy < h!; iy++)
        for (let ix = 0; ix < w!; ix++)
          for (let cl = 0; cl < cPerG!; cl++)
            for (let kh = 0; kh < kH!; kh++)
              for (let kw = 0; kw < kW!; kw++) {
                const y = iy * sH - pH + kh * dH;
                const x = ix * sW - pW + kw * dW;
                if (y < 0 || y >= hO || x < 0 || x >= wO) continue;
                const co = Math.floor(ci / (cIn! / groups)) * cPerG! + cl;
                terms.push([((b * cOut + co) * hO + y) * wO + x, ((b * cIn! + ci) * h! + iy) * w! + ix, ((ci * cPerG! + cl) * kH! + kh) * kW! + kw]);
              }
  return { outShape: [n!, cOut, hO, wO], terms, channel: (i) => Math.floor(i / (hO * wO)) % cOut };
}

/** Naive forward and the gradients of L = sum(out * R). */
function naive(t: Terms, x: Float32Array, w: Float32Array, bias: Float32Array | null, r: Float32Array) {
  const out = new Float64Array(numel(t.outShape));
  const dX = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  const dB = new Float64Array(bias?.length ?? 0);
  for (const [o, i, k] of t.terms) {
    addAt(out, o, x[i]! * w[k]!);
    addAt(dX, i, r[o]! * w[k]!);
    addAt(dW, k, r[o]! * x[i]!);
  }
  if (bias) {
    for (let o = 0; o < out.length; o++) {
      addAt(out, o, bias[t.channel(o)]!);
      addAt(dB, t.channel(o), r[o]!);
    }
  }
  return { out, dX, dW, dB };
}

interface Case {
  name: string;
  x: Shape;
  w: Shape;
  bias: boolean;
  o: E.ConvTranspose2dOptions;
}

const CONV_CASES: Case[] = [
  { name: 'k3 s1 p1', x: [2, 3, 5, 6], w: [4, 3, 3, 3], bias: true, o: { padding: 1 } },
  { name: 'k1', x: [1, 3, 4, 4], w: [5, 3, 1, 1], bias: true, o: {} },
  { name: 'stride [2,1] padding [1,0], no bias', x: [1, 2, 7, 6], w: [3, 2, 3, 2], bias: false, o: { stride: [2, 1], padding: [1, 0] } },
  { name: 'dilation 2', x: [1, 2, 7, 7], w: [2, 2, 3, 3], bias: true, o: { dilation: 2, padding: 2 } },
  { name: 'groups 2', x: [1, 4, 5, 5], w: [6, 2, 3, 3], bias: true, o: { groups: 2, padding: 1 } },
  { name: 'depthwise s2', x: [2, 3, 6, 5], w: [3, 1, 3, 3], bias: true, o: { groups: 3, padding: 1, stride: 2 } },
  { name: 'depthwise 5x5 multiplier 2', x: [1, 2, 7, 9], w: [4, 1, 5, 5], bias: true, o: { groups: 2, padding: 2 } },
  { name: 'depthwise 3x3 dilation 2, no bias', x: [1, 3, 6, 6], w: [3, 1, 3, 3], bias: false, o: { groups: 3, padding: 2, dilation: 2 } },
  { name: 'groups 3 s2 dilation [1,2] padding [0,2]', x: [1, 6, 9, 10], w: [3, 2, 3, 2], bias: false, o: { groups: 3, stride: 2, dilation: [1, 2], padding: [0, 2] } },
];

const CONVT_CASES: Case[] = [
  { name: 'k2 s2 p1', x: [1, 3, 3, 4], w: [3, 2, 2, 2], bias: true, o: { stride: 2, padding: 1 } },
  { name: 'k4 s2 p1', x: [2, 2, 3, 3], w: [2, 3, 4, 4], bias: true, o: { stride: 2, padding: 1 } },
  { name: 'k4 s4', x: [1, 3, 2, 3], w: [3, 2, 4, 4], bias: true, o: { stride: 4 } },
  { name: 'k16 s16', x: [1, 2, 2, 2], w: [2, 1, 16, 16], bias: true, o: { stride: 16 } },
  { name: 'k3 s1 p1, no bias', x: [1, 2, 4, 4], w: [2, 3, 3, 3], bias: false, o: { padding: 1 } },
  { name: 'groups 2 s2 d2 p1 outputPadding 1', x: [1, 4, 3, 4], w: [4, 1, 3, 3], bias: true, o: { groups: 2, stride: 2, dilation: 2, padding: 1, outputPadding: 1 } },
  { name: 'depthwise s1 p1 (forward through the flipped depthwise kernel)', x: [2, 3, 4, 5], w: [3, 1, 3, 3], bias: true, o: { groups: 3, padding: 1 } },
  { name: 'depthwise s2 p1 (dX through the depthwise kernel)', x: [1, 2, 3, 4], w: [2, 1, 3, 3], bias: true, o: { groups: 2, stride: 2, padding: 1 } },
  { name: 'stride [2,3] outputPadding [1,2]', x: [1, 2, 3, 2], w: [2, 2, 2, 3], bias: false, o: { stride: [2, 3], outputPadding: [1, 2] } },
];

type ConvFn = (x: E.Tensor, w: E.Tensor, b: E.Tensor | null, o: E.ConvTranspose2dOptions) => E.Tensor;
const convFn: ConvFn = (x, w, b, o) => E.conv2d(x, w, b, o);
const convTFn: ConvFn = (x, w, b, o) => E.convTranspose2d(x, w, b, o);

describe.each(await testDevices())('conv on %s', (_name, device) => {
  async function checkAgainstNaive(c: Case, fn: ConvFn, termsOf: (x: Shape, w: Shape, o: E.ConvTranspose2dOptions) => Terms) {
    const t = termsOf(c.x, c.w, c.o);
    const xv = randomNormal(numel(c.x), 11);
    const wv = randomNormal(numel(c.w), 12);
    const bv = c.bias ? randomNormal(t.outShape[1]!, 13) : null;
    const rv = randomNormal(numel(t.outShape), 14);
    const ref = naive(t, xv, wv, bv, rv);
    const x = E.Tensor.fromArray(xv, c.x, { device, requiresGrad: true });
    const w = E.Tensor.fromArray(wv, c.w, { device, requiresGrad: true });
    const b = bv ? E.Tensor.fromArray(bv, [bv.length], { device, requiresGrad: true }) : null;
    const out = fn(x, w, b, c.o);
    expect(out.shape).toEqual(t.outShape);
    expectClose(await out.read(), ref.out, 1e-5, 1e-4, `${c.name} out`);
    const loss = E.scope(() => E.sum(E.mul(out, E.Tensor.fromArray(rv, t.outShape, { device }))));
    E.backward(loss);
    expectClose(await x.grad!.read(), ref.dX, 1e-5, 1e-4, `${c.name} dX`);
    expectClose(await w.grad!.read(), ref.dW, 1e-5, 1e-4, `${c.name} dW`);
    if (b) expectClose(await b.grad!.read(), ref.dB, 1e-5, 1e-4, `${c.name} dB`);
    for (const v of [x, w, b, out, loss]) v?.dispose();
  }

  it('conv2d matches the naive sum, values and gradients', async () => {
    for (const c of CONV_CASES) await checkAgainstNaive(c, convFn, conv2dTerms);
  });

  it('convTranspose2d matches the naive scatter, values and gradients', async () => {
    for (const c of CONVT_CASES) await checkAgainstNaive(c, convTFn, convTranspose2dTerms);
  });

  it('gradcheck every conv2d variant', async () => {
    for (const c of CONV_CASES) {
      const shapes = c.bias ? [c.x, c.w, [c.w[0]!]] : [c.x, c.w];
      await gradcheck(device, ([x, w, b]) => E.conv2d(x!, w!, b ?? null, c.o), shapes);
    }
  });

  it('gradcheck every convTranspose2d variant', async () => {
    for (const c of CONVT_CASES) {
      const shapes = c.bias ? [c.x, c.w, [c.w[1]! * (c.o.groups ?? 1)]] : [c.x, c.w];
      await gradcheck(device, ([x, w, b]) => E.convTranspose2d(x!, w!, b ?? null, c.o), shapes);
    }
  });

  it('conv2d: a fused activation equals the recorded op after the conv, and gradients go through the recorded one', async () => {
    // Ungrouped (the implicit GEMM on lavapipe), depthwise (its own kernel) and grouped (the direct
    // gather, then the op) convolutions, each activation.
    const convs: [string, Shape, Shape, E.Conv2dOptions][] = [
      ['ungrouped', [2, 5, 7, 6], [9, 5, 3, 3], { padding: 1 }],
      ['depthwise', [1, 4, 6, 9], [4, 1, 3, 3], { padding: 1, groups: 4 }],
      ['grouped', [1, 4, 5, 5], [6, 2, 3, 3], { padding: 1, groups: 2 }],
    ];
    const acts = [['relu', E.relu], ['gelu_erf', E.gelu], ['gelu_tanh', E.geluTanh], ['quick_gelu', E.quickGelu]] as const;
    for (const [name, xs, ws, o] of convs) {
      const xv = randomNormal(numel(xs), 21);
      const wv = randomNormal(numel(ws), 22);
      const bv = randomNormal(ws[0]!, 23);
      for (const [activation, composed] of acts) {
        const run = async (fused: boolean, grad: boolean) => {
          const x = E.Tensor.fromArray(xv, xs, { device, requiresGrad: grad });
          const w = E.Tensor.fromArray(wv, ws, { device, requiresGrad: grad });
          const b = E.Tensor.fromArray(bv, [ws[0]!], { device, requiresGrad: grad });
          const y = fused ? E.conv2d(x, w, b, { ...o, activation }) : composed(E.conv2d(x, w, b, o));
          const out = [await y.read()];
          if (grad) {
            E.backward(E.sum(E.mul(y, y)));
            out.push(await x.grad!.read(), await w.grad!.read(), await b.grad!.read());
          }
          for (const t of [x, w, b, y]) t.dispose();
          return out;
        };
        const [want] = await run(false, false);
        const [got] = await run(true, false);
        expect(Array.from(want!).some((v) => v === 0) || activation !== 'relu', 'relu clips some outputs').toBe(true);
        expectClose(got!, want!, 1e-6, 1e-5, `${name} conv2d + ${activation}, fused`);
        const wantGrads = await run(false, true);
        const gotGrads = await run(true, true);
        gotGrads.forEach((g, i) => expectClose(g, wantGrads[i]!, 1e-6, 1e-5, `${name} conv2d + ${activation} under autograd, output ${i}`));
      }
    }
    const x = E.Tensor.zeros([1, 2, 4, 4], { device });
    const w = E.Tensor.zeros([2, 2, 3, 3], { device });
    expect(() => E.conv2d(x, w, null, { activation: 'tanh' as E.MatmulActivation })).toThrow(/conv2d: activation 'tanh' is not one of relu/);
  });

  it('hand-computed values', async () => {
    const x = E.Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3], { device });
    const ones = E.Tensor.ones([1, 1, 2, 2], { device });
    expect(Array.from(await E.conv2d(x, ones).read())).toEqual([12, 16, 24, 28]);
    // padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1)
    expect(Array.from(await E.conv2d(x, ones, null, { padding: 1, stride: 2 }).read())).toEqual([1, 5, 11, 28]);
    const xt = E.Tensor.fromArray([1, 2], [1, 1, 1, 2], { device });
    const wt = E.Tensor.fromArray([1, 2, 3, 4], [1, 1, 2, 2], { device });
    const bias = E.Tensor.fromArray([10], [1], { device });
    expect(Array.from(await E.convTranspose2d(xt, wt, bias, { stride: 2 }).read())).toEqual([11, 12, 12, 14, 13, 14, 16, 18]);
  });

  it('empty batch: empty output, zero weight gradient', async () => {
    const x = E.Tensor.zeros([0, 2, 4, 4], { device });
    const w = E.Tensor.fromArray(randomNormal(3 * 2 * 3 * 3, 3), [3, 2, 3, 3], { device, requiresGrad: true });
    const out = E.conv2d(x, w, null, { padding: 1 });
    expect(out.shape).toEqual([0, 3, 4, 4]);
    E.backward(E.sum(out));
    expect(Array.from(await w.grad!.read()).every((v) => v === 0)).toBe(true);
    const wt = E.Tensor.fromArray(randomNormal(2 * 3 * 4, 4), [2, 3, 2, 2], { device });
    expect(E.convTranspose2d(x, wt, null, { stride: 2 }).shape).toEqual([0, 3, 8, 8]);
    // Depthwise: the weight gradient's partial sums are empty too.
    const wd = E.Tensor.fromArray(randomNormal(2 * 9, 5), [2, 1, 3, 3], { device, requiresGrad: true });
    E.backward(E.sum(E.conv2d(x, wd, null, { padding: 1, groups: 2 })));
    expect(Array.from(await wd.grad!.read())).toEqual(new Array(18).fill(0));
  });

  it('shape errors name the op and the shapes', () => {
    const x = E.Tensor.zeros([1, 4, 5, 5], { device });
    expect(() => E.conv2d(E.Tensor.zeros([2, 3, 8], { device }), x)).toThrow(/conv2d: input must have rank 4, got shape \[2, 3, 8\]/);
    expect(() => E.conv2d(x, E.Tensor.zeros([2, 3, 3, 3], { device }))).toThrow(/conv2d: .*\[1, 4, 5, 5\].*\[2, 3, 3, 3\].*groups=1/);
    expect(() => E.conv2d(x, E.Tensor.zeros([3, 2, 3, 3], { device }), null, { groups: 2 })).toThrow(/Cout divisible/);
    expect(() => E.conv2d(x, E.Tensor.zeros([2, 4, 3, 3], { device }), E.Tensor.zeros([3], { device }))).toThrow(/bias \[3\] must have shape \[2\]/);
    expect(() => E.conv2d(x, E.Tensor.zeros([2, 4, 7, 7], { device }))).toThrow(/too small/);
    expect(() => E.conv2d(x, E.Tensor.zeros([2, 4, 3, 3], { device }), null, { stride: 0 })).toThrow(/stride/);
    expect(() => E.convTranspose2d(x, E.Tensor.zeros([3, 2, 3, 3], { device }))).toThrow(/convTranspose2d: .*weight\[0\] = Cin/);
    expect(() => E.convTranspose2d(x, E.Tensor.zeros([4, 2, 3, 3], { device }), null, { stride: 2, outputPadding: 2 })).toThrow(/outputPadding/);
  });

  it('frees every temporary', async () => {
    const before = device.stats().liveBuffers;
    const x = E.Tensor.fromArray(randomNormal(2 * 4 * 5 * 5, 1), [2, 4, 5, 5], { device, requiresGrad: true });
    const w = E.Tensor.fromArray(randomNormal(4 * 2 * 3 * 3, 2), [4, 2, 3, 3], { device, requiresGrad: true });
    const b = E.Tensor.fromArray(randomNormal(4, 3), [4], { device, requiresGrad: true });
    E.scope(() => {
      E.backward(E.sum(E.conv2d(x, w, b, { groups: 2, padding: 1 })));
      E.backward(E.sum(E.convTranspose2d(x, w, null, { stride: 2, groups: 2 })));
    });
    await w.grad!.read();
    for (const t of [x, w, b]) t.dispose();
    expect(device.stats().liveBuffers).toBe(before);
  });

  // Only the WebGPU device compiles WGSL; the CPU device has nothing to compile.
  if (device.kind === 'webgpu') {
    it('every WGSL variant compiles', async () => {
      const gpu = (device as E.WebGpuDevice).gpu;
      const geom = { batch: 1, groups: 1, a: [1, 3, 3], b: [1, 2, 2], kernel: [2, 2], stride: [1, 1], padding: [0, 0], dilation: [1, 1] } as const;
      for (const variant of ['forward', 'transposed', 'weight'] as const)
        for (const bias of [false, true]) {
          const p: Conv2dParams = { ...geom, variant, bias };
          gpu.pushErrorScope('validation');
          const module = gpu.createShaderModule({ code: conv2dKernel.source(p) });
          gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
          const err = await gpu.popErrorScope();
          expect(err?.message ?? '', conv2dKernel.key(p)).toBe('');
        }
    });
  }
});
