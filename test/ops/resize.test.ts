/**
 * interpolate: values and full gradients against a naive version built from per-axis weight
 * matrices (out = Wy X Wxᵀ, dX = Wyᵀ R Wx, coordinates in float64 from docs/architectures.md §0.2),
 * finite-difference gradchecks for every mode and alignCorners, hand-computed cases, PyTorch's
 * scaleFactor rules, errors, and a compile check of every WGSL variant. Runs on cpu and webgpu.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { resizeKernel, type ResizeParams } from '../../src/kernels/resize/resize.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

type Shape = readonly number[];
const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);
/** a[i] += v (typed-array indexing is possibly undefined under noUncheckedIndexedAccess). */
const addAt = (a: Float64Array, i: number, v: number): void => {
  a[i] = a[i]! + v;
};

/** [outLen * inLen] interpolation weights along one axis; scale is the user's scale factor, if any. */
function axisWeights(o: E.InterpolateOptions, inLen: number, outLen: number, scale?: number): Float64Array {
  const m = new Float64Array(outLen * inLen);
  const add = (out: number, i: number, w: number) => addAt(m, out * inLen + Math.min(Math.max(i, 0), inLen - 1), w);
  const mode = o.mode ?? 'nearest';
  const ratio = o.alignCorners ? (outLen > 1 ? (inLen - 1) / (outLen - 1) : 0) : scale !== undefined ? 1 / scale : inLen / outLen;
  for (let out = 0; out < outLen; out++) {
    if (mode === 'nearest') {
      // PyTorch's legacy nearest: index copy, shift for exact doubling, else floorf(o * float scale).
      const f = Math.fround(ratio);
      const i = outLen === inLen ? out : outLen === 2 * inLen ? out >> 1 : Math.min(Math.floor(Math.fround(out * f)), inLen - 1);
      add(out, i, 1);
      continue;
    }
    let src = o.alignCorners ? out * ratio : (out + 0.5) * ratio - 0.5;
    if (mode === 'bilinear') {
      src = Math.max(src, 0);
      const i0 = Math.min(Math.floor(src), inLen - 1);
      const l = src - i0;
      add(out, i0, 1 - l);
      add(out, Math.min(i0 + 1, inLen - 1), l);
    } else {
      const i = Math.floor(src);
      const t = src - i;
      const A = -0.75;
      const near = (d: number) => ((A + 2) * d - (A + 3)) * d * d + 1;
      const far = (d: number) => ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
      add(out, i - 1, far(t + 1));
      add(out, i, near(t));
      add(out, i + 1, near(1 - t));
      add(out, i + 2, far(2 - t));
    }
  }
  return m;
}

interface Case {
  x: Shape;
  o: E.InterpolateOptions;
}

function outSize(c: Case): [number, number] {
  if (c.o.size) return c.o.size;
  const s = c.o.scaleFactor!;
  const [sh, sw] = typeof s === 'number' ? [s, s] : s;
  return [Math.floor(c.x[2]! * sh), Math.floor(c.x[3]! * sw)];
}

/** Naive value and dX for L = sum(out * R). */
function naive(c: Case, x: Float32Array, r: Float32Array) {
  const [n, ch, h, w] = c.x as number[];
  const [hO, wO] = outSize(c);
  const s = c.o.scaleFactor;
  const [sh, sw] = s === undefined ? [undefined, undefined] : typeof s === 'number' ? [s, s] : s;
  const wy = axisWeights(c.o, h!, hO, sh);
  const wx = axisWeights(c.o, w!, wO, sw);
  const out = new Float64Array(n! * ch! * hO * wO);
  const dX = new Float64Array(x.length);
  for (let p = 0; p < n! * ch!; p++)
    for (let oy = 0; oy < hO; oy++)
      for (let ox = 0; ox < wO; ox++)
        for (let iy = 0; iy < h!; iy++)
          for (let ix = 0; ix < w!; ix++) {
            const weight = wy[oy * h! + iy]! * wx[ox * w! + ix]!;
            if (weight === 0) continue;
            const o = (p * hO + oy) * wO + ox;
            const i = (p * h! + iy) * w! + ix;
            addAt(out, o, weight * x[i]!);
            addAt(dX, i, weight * r[o]!);
          }
  return { outShape: [n!, ch!, hO, wO], out, dX };
}

const CASES: Case[] = [
  { x: [2, 3, 4, 5], o: { mode: 'bilinear', size: [7, 9] } },
  { x: [1, 2, 9, 8], o: { mode: 'bilinear', size: [4, 3] } },
  { x: [1, 2, 3, 4], o: { mode: 'bilinear', scaleFactor: 2 } },
  { x: [1, 1, 4, 5], o: { mode: 'bilinear', scaleFactor: 2.5 } },
  { x: [1, 2, 4, 6], o: { mode: 'bilinear', scaleFactor: [1.5, 0.5] } },
  { x: [1, 1, 40, 33], o: { mode: 'bilinear', size: [3, 4] } },
  { x: [1, 2, 4, 5], o: { mode: 'bilinear', size: [7, 9], alignCorners: true } },
  { x: [1, 2, 9, 8], o: { mode: 'bilinear', size: [4, 1], alignCorners: true } },
  { x: [1, 2, 4, 4], o: { mode: 'bicubic', size: [6, 6] } },
  { x: [1, 2, 7, 7], o: { mode: 'bicubic', size: [3, 3] } },
  { x: [1, 1, 3, 3], o: { mode: 'bicubic', size: [40, 37] } },
  { x: [1, 1, 3, 4], o: { mode: 'bicubic', scaleFactor: 2 } },
  { x: [1, 1, 4, 5], o: { mode: 'bicubic', size: [7, 8], alignCorners: true } },
  { x: [1, 2, 8, 7], o: { mode: 'bicubic', size: [3, 1], alignCorners: true } },
  { x: [1, 2, 3, 4], o: { mode: 'nearest', size: [7, 5] } },
  { x: [1, 2, 3, 4], o: { size: [6, 8] } },
  { x: [1, 1, 5, 5], o: { mode: 'nearest', scaleFactor: 2.1 } },
  { x: [1, 1, 9, 7], o: { mode: 'nearest', size: [4, 3] } },
  { x: [1, 1, 2, 3], o: { mode: 'nearest', scaleFactor: 3 } },
];

/** One case per mode x alignCorners x (size | scale) for the finite-difference checks. */
const GRADCHECK_CASES: Case[] = [0, 3, 6, 8, 11, 12, 14, 16].map((i) => CASES[i]!);

describe.each(await testDevices())('interpolate on %s', (_name, device) => {
  it('matches the naive weight matrices, values and gradients', async () => {
    for (const c of CASES) {
      const label = `${JSON.stringify(c.x)} ${JSON.stringify(c.o)}`;
      const xv = randomNormal(numel(c.x), 31);
      const rv = randomNormal(c.x[0]! * c.x[1]! * numel(outSize(c)), 32);
      const ref = naive(c, xv, rv);
      const x = E.Tensor.fromArray(xv, c.x, { device, requiresGrad: true });
      const y = E.interpolate(x, c.o);
      expect(y.shape, label).toEqual(ref.outShape);
      expectClose(await y.read(), ref.out, 1e-5, 1e-4, `${label} out`);
      const loss = E.scope(() => E.sum(E.mul(y, E.Tensor.fromArray(rv, ref.outShape, { device }))));
      E.backward(loss);
      expectClose(await x.grad!.read(), ref.dX, 1e-5, 1e-4, `${label} dX`);
      for (const t of [x, y, loss]) t.dispose();
    }
  });

  it('gradcheck every mode and alignCorners', async () => {
    for (const c of GRADCHECK_CASES) await gradcheck(device, ([x]) => E.interpolate(x!, c.o), [c.x]);
  });

  it('hand-computed values', async () => {
    const x = E.Tensor.fromArray([0, 1, 2, 3], [1, 1, 2, 2], { device });
    const up = await E.interpolate(x, { scaleFactor: 2, mode: 'bilinear' }).read();
    expectClose(up, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
    const ac = await E.interpolate(x, { size: [3, 3], mode: 'bilinear', alignCorners: true }).read();
    expectClose(ac, [0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3]);
    const nearest = await E.interpolate(x, { scaleFactor: 2 }).read();
    expect(Array.from(nearest)).toEqual([0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]);
    // bicubic of a constant is the constant (weights sum to 1, clamped taps)
    const ones = await E.interpolate(E.Tensor.ones([1, 1, 3, 3], { device }), { size: [5, 4], mode: 'bicubic' }).read();
    expectClose(ones, new Array(20).fill(1), 1e-6, 1e-6);
  });

  it('errors', () => {
    const x = E.Tensor.zeros([1, 1, 4, 4], { device });
    expect(() => E.interpolate(E.Tensor.zeros([4, 4], { device }), { size: [2, 2] })).toThrow(/interpolate: input must have rank 4, got shape \[4, 4\]/);
    expect(() => E.interpolate(x, { size: [2, 2], scaleFactor: 2 })).toThrow(/exactly one of size and scaleFactor/);
    expect(() => E.interpolate(x, {})).toThrow(/exactly one of size and scaleFactor/);
    expect(() => E.interpolate(x, { size: [2, 2], alignCorners: true })).toThrow(/alignCorners/);
    expect(() => E.interpolate(x, { scaleFactor: 0.1 })).toThrow(/output size/);
  });

  it('frees every temporary', async () => {
    const before = device.stats().liveBuffers;
    const x = E.Tensor.fromArray(randomNormal(2 * 2 * 4 * 5, 1), [2, 2, 4, 5], { device, requiresGrad: true });
    E.scope(() => {
      for (const mode of ['nearest', 'bilinear', 'bicubic'] as const) E.backward(E.sum(E.interpolate(x, { mode, size: [7, 3] })));
    });
    await x.grad!.read();
    x.dispose();
    expect(device.stats().liveBuffers).toBe(before);
  });

  // Only the WebGPU device compiles WGSL; the CPU device has nothing to compile.
  if (device.kind === 'webgpu') {
    it('every WGSL variant compiles', async () => {
      const gpu = (device as E.WebGpuDevice).gpu;
      const base = { planes: 1, inH: 2, inW: 2, outH: 3, outW: 3, ratioH: 1, ratioW: 1 };
      for (const mode of ['nearest', 'bilinear', 'bicubic'] as const)
        for (const alignCorners of [false, true])
          for (const grad of [false, true]) {
            const p: ResizeParams = { ...base, mode, alignCorners, grad };
            gpu.pushErrorScope('validation');
            const module = gpu.createShaderModule({ code: resizeKernel.source(p) });
            gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
            const err = await gpu.popErrorScope();
            expect(err?.message ?? '', resizeKernel.key(p)).toBe('');
          }
    });
  }
});
