/**
 * avgPool2d / maxPool2d / adaptiveAvgPool2d: values and full gradients against naive versions
 * written over an explicitly padded input, finite-difference gradchecks for every option, tie and
 * padding rules, and shape errors. Runs on cpu and webgpu.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { type PoolParams, poolKernel } from '../../src/kernels/pool/pool.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal, seededRandom } from '../helpers/gradcheck.js';

type Shape = readonly number[];
type Pair = number | [number, number];
const pair = (v: Pair | undefined, d: Pair): [number, number] => {
  const g = v ?? d;
  return typeof g === 'number' ? [g, g] : g;
};
const numel = (s: Shape) => s.reduce((a, b) => a * b, 1);
/** a[i] += v (typed-array indexing is possibly undefined under noUncheckedIndexedAccess). */
const addAt = (a: Float64Array, i: number, v: number): void => {
  a[i] = a[i]! + v;
};

/** out[o] = sum coef * x[i] over the terms (avg and adaptive pooling are linear in x). */
interface Linear {
  outShape: number[];
  terms: [number, number, number][];
}

/** PyTorch's output length, ceil rule included. */
function outLen(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const span = (size + 2 * p - d * (k - 1) - 1) / s;
  let n = (ceil ? Math.ceil(span) : Math.floor(span)) + 1;
  if (ceil && (n - 1) * s >= size + p) n--;
  return n;
}

/**
 * avg_pool2d over the input padded with p zeros on each side: a window counts its cells inside the
 * padded extent (countIncludePad) or inside the image; cells past the padded extent (ceil mode)
 * never count.
 */
function avgTerms(xs: Shape, o: E.AvgPool2dOptions): Linear {
  const [n, c, h, w] = xs as number[];
  const k = pair(o.kernelSize, 1);
  const s = pair(o.stride, o.kernelSize);
  const p = pair(o.padding, 0);
  const hO = outLen(h!, k[0], s[0], p[0], 1, o.ceilMode ?? false);
  const wO = outLen(w!, k[1], s[1], p[1], 1, o.ceilMode ?? false);
  const terms: [number, number, number][] = [];
  for (let plane = 0; plane < n! * c!; plane++)
    for (let oy = 0; oy < hO; oy++)
      for (let ox = 0; ox < wO; ox++) {
        const cells: number[] = [];
        let padded = 0;
        for (let py = oy * s[0]; py < oy * s[0] + k[0]; py++)
          for (let px = ox * s[1]; px < ox * s[1] + k[1]; px++) {
            if (py >= h! + 2 * p[0] || px >= w! + 2 * p[1]) continue;
            padded++;
            const y = py - p[0];
            const x = px - p[1];
            if (y >= 0 && y < h! && x >= 0 && x < w!) cells.push((plane * h! + y) * w! + x);
          }
        const divisor = (o.countIncludePad ?? true) ? padded : cells.length;
        for (const i of cells) terms.push([(plane * hO + oy) * wO + ox, i, 1 / divisor]);
      }
  return { outShape: [n!, c!, hO, wO], terms };
}

function adaptiveTerms(xs: Shape, size: Pair): Linear {
  const [n, c, h, w] = xs as number[];
  const [hO, wO] = pair(size, 1);
  const terms: [number, number, number][] = [];
  for (let plane = 0; plane < n! * c!; plane++)
    for (let oy = 0; oy < hO; oy++)
      for (let ox = 0; ox < wO; ox++) {
        const [y0, y1] = [Math.floor((oy * h!) / hO), Math.ceil(((oy + 1) * h!) / hO)];
        const [x0, x1] = [Math.floor((ox * w!) / wO), Math.ceil(((ox + 1) * w!) / wO)];
        for (let y = y0; y < y1; y++)
          for (let x = x0; x < x1; x++) terms.push([(plane * hO + oy) * wO + ox, (plane * h! + y) * w! + x, 1 / ((y1 - y0) * (x1 - x0))]);
      }
  return { outShape: [n!, c!, hO, wO], terms };
}

/** max_pool2d over -inf padding: value and flat input index of the first maximum per window. */
function naiveMax(xs: Shape, x: Float32Array, o: E.MaxPool2dOptions) {
  const [n, c, h, w] = xs as number[];
  const k = pair(o.kernelSize, 1);
  const s = pair(o.stride, o.kernelSize);
  const p = pair(o.padding, 0);
  const d = pair(o.dilation, 1);
  const hO = outLen(h!, k[0], s[0], p[0], d[0], o.ceilMode ?? false);
  const wO = outLen(w!, k[1], s[1], p[1], d[1], o.ceilMode ?? false);
  const out = new Float64Array(n! * c! * hO * wO);
  const arg = new Int32Array(out.length);
  for (let plane = 0; plane < n! * c!; plane++)
    for (let oy = 0; oy < hO; oy++)
      for (let ox = 0; ox < wO; ox++) {
        let best = -Infinity;
        let at = -1;
        for (let kh = 0; kh < k[0]; kh++)
          for (let kw = 0; kw < k[1]; kw++) {
            const y = oy * s[0] - p[0] + kh * d[0];
            const xx = ox * s[1] - p[1] + kw * d[1];
            const v = y >= 0 && y < h! && xx >= 0 && xx < w! ? x[(plane * h! + y) * w! + xx]! : -Infinity;
            if (v > best) [best, at] = [v, (plane * h! + y) * w! + xx];
          }
        const oi = (plane * hO + oy) * wO + ox;
        out[oi] = best;
        arg[oi] = at;
      }
  return { outShape: [n!, c!, hO, wO], out, arg };
}

/** Distinct values 0.1 apart in random order, so max windows never tie within a gradcheck step. */
function spaced(count: number, seed: number): Float32Array {
  const values = Array.from({ length: count }, (_, i) => (i - count / 2) * 0.1);
  const rand = seededRandom(seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return Float32Array.from(values);
}

const AVG_CASES: [Shape, E.AvgPool2dOptions][] = [
  [[2, 3, 6, 6], { kernelSize: 2 }],
  [[1, 2, 7, 8], { kernelSize: 3, stride: 2, padding: 1 }],
  [[1, 2, 5, 5], { kernelSize: 3, stride: 1, padding: 1, countIncludePad: false }],
  [[1, 2, 6, 7], { kernelSize: 3, stride: 2, ceilMode: true }],
  [[1, 1, 6, 6], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }],
  [[1, 1, 5, 5], { kernelSize: 2, stride: 2, padding: 1, ceilMode: true }],
  [[1, 2, 5, 7], { kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], ceilMode: true, countIncludePad: false }],
];

const MAX_CASES: [Shape, E.MaxPool2dOptions][] = [
  [[1, 2, 4, 6], { kernelSize: 2 }],
  [[1, 2, 7, 7], { kernelSize: 3, stride: 2, padding: 1 }],
  [[1, 1, 7, 6], { kernelSize: 3, stride: 1, padding: 1, dilation: 2 }],
  [[1, 2, 6, 6], { kernelSize: 3, stride: 2, ceilMode: true }],
  [[2, 1, 7, 8], { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], ceilMode: true }],
];

const ADAPTIVE_CASES: [Shape, Pair][] = [
  [[2, 3, 7, 9], [3, 4]],
  [[1, 2, 8, 8], 1],
  [[1, 2, 5, 5], [7, 7]],
  [[1, 1, 5, 6], [2, 3]],
  [[1, 1, 4, 3], [4, 5]],
];

describe.each(await testDevices())('pool on %s', (_name, device) => {
  /** Runs op, compares value and dX (L = sum(out * R)) with the naive ones. */
  async function check(label: string, xs: Shape, xv: Float32Array, op: (x: E.Tensor) => E.Tensor, outShape: number[], out: ArrayLike<number>, dX: (r: Float32Array) => Float64Array) {
    const rv = randomNormal(numel(outShape), 21);
    const x = E.Tensor.fromArray(xv, xs, { device, requiresGrad: true });
    const y = op(x);
    expect(y.shape, label).toEqual(outShape);
    expectClose(await y.read(), out, 1e-6, 1e-5, `${label} out`);
    const loss = E.scope(() => E.sum(E.mul(y, E.Tensor.fromArray(rv, outShape, { device }))));
    E.backward(loss);
    expectClose(await x.grad!.read(), dX(rv), 1e-6, 1e-5, `${label} dX`);
    for (const t of [x, y, loss]) t.dispose();
  }

  async function checkLinear(label: string, xs: Shape, lin: Linear, op: (x: E.Tensor) => E.Tensor) {
    const xv = randomNormal(numel(xs), 20);
    const out = new Float64Array(numel(lin.outShape));
    for (const [o, i, c] of lin.terms) addAt(out, o, c * xv[i]!);
    await check(label, xs, xv, op, lin.outShape, out, (r) => {
      const dX = new Float64Array(xv.length);
      for (const [o, i, c] of lin.terms) addAt(dX, i, c * r[o]!);
      return dX;
    });
  }

  it('avgPool2d matches the naive padded average, values and gradients', async () => {
    for (const [xs, o] of AVG_CASES) await checkLinear(`avg ${JSON.stringify(o)}`, xs, avgTerms(xs, o), (x) => E.avgPool2d(x, o));
  });

  it('adaptiveAvgPool2d matches the naive bins, values and gradients', async () => {
    for (const [xs, size] of ADAPTIVE_CASES) {
      await checkLinear(`adaptive ${JSON.stringify(size)}`, xs, adaptiveTerms(xs, size), (x) => E.adaptiveAvgPool2d(x, size));
    }
  });

  it('maxPool2d matches the naive -inf padded max, values and gradients', async () => {
    for (const [xs, o] of MAX_CASES) {
      const xv = spaced(numel(xs), 5);
      const ref = naiveMax(xs, xv, o);
      await check(`max ${JSON.stringify(o)}`, xs, xv, (x) => E.maxPool2d(x, o), ref.outShape, ref.out, (r) => {
        const dX = new Float64Array(xv.length);
        ref.arg.forEach((i, o) => addAt(dX, i, r[o]!));
        return dX;
      });
    }
  });

  it('gradcheck every pooling variant', async () => {
    for (const [xs, o] of AVG_CASES) await gradcheck(device, ([x]) => E.avgPool2d(x!, o), [xs]);
    for (const [xs, size] of ADAPTIVE_CASES) await gradcheck(device, ([x]) => E.adaptiveAvgPool2d(x!, size), [xs]);
    for (const [xs, o] of MAX_CASES) {
      await gradcheck(device, ([x]) => E.maxPool2d(x!, o), [xs], { values: [spaced(numel(xs), 7)] });
    }
  });

  it('max ties send the gradient to the first maximum; padding is -inf', async () => {
    const x = E.Tensor.fromArray([1, 1, 1, 1], [1, 1, 2, 2], { device, requiresGrad: true });
    const y = E.maxPool2d(x, { kernelSize: 2 });
    E.backward(y);
    expect(Array.from(await x.grad!.read())).toEqual([1, 0, 0, 0]);
    const neg = E.Tensor.fromArray([-5, -3, -4, -6], [1, 1, 2, 2], { device });
    expect(Array.from(await E.maxPool2d(neg, { kernelSize: 2, stride: 1, padding: 1 }).read())).toEqual([-5, -3, -3, -4, -3, -3, -4, -4, -6]);
  });

  it('hand-computed averages', async () => {
    const x = E.Tensor.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3], { device });
    // k2 s1 p0: means of the four 2x2 windows
    expectClose(await E.avgPool2d(x, { kernelSize: 2, stride: 1 }).read(), [3, 4, 6, 7]);
    // k2 s2 p1: corners alone (divided by 4 with padding, by 1 without)
    expectClose(await E.avgPool2d(x, { kernelSize: 2, padding: 1 }).read(), [0.25, 1.25, 2.75, 7]);
    expectClose(await E.avgPool2d(x, { kernelSize: 2, padding: 1, countIncludePad: false }).read(), [1, 2.5, 5.5, 7]);
    expectClose(await E.adaptiveAvgPool2d(x, 1).read(), [5]);
    // 3 -> 2 bins: rows [0, 2) and [1, 3)
    expectClose(await E.adaptiveAvgPool2d(x, 2).read(), [3, 4, 6, 7]);
  });

  it('empty batch and shape errors', () => {
    expect(E.avgPool2d(E.Tensor.zeros([0, 2, 4, 4], { device }), { kernelSize: 2 }).shape).toEqual([0, 2, 2, 2]);
    expect(E.maxPool2d(E.Tensor.zeros([2, 0, 4, 4], { device }), { kernelSize: 2 }).shape).toEqual([2, 0, 2, 2]);
    const x = E.Tensor.zeros([1, 1, 4, 4], { device });
    expect(() => E.avgPool2d(E.Tensor.zeros([4, 4], { device }), { kernelSize: 2 })).toThrow(/avgPool2d: input must have rank 4, got shape \[4, 4\]/);
    expect(() => E.maxPool2d(x, { kernelSize: 2, padding: 2 })).toThrow(/maxPool2d: padding \[2, 2\] must be at most half/);
    expect(() => E.avgPool2d(x, { kernelSize: 5 })).toThrow(/too small/);
    expect(() => E.adaptiveAvgPool2d(x, 0)).toThrow(/adaptiveAvgPool2d: outputSize/);
  });

  it('frees every temporary (the saved max indices included)', async () => {
    const before = device.stats().liveBuffers;
    const x = E.Tensor.fromArray(randomNormal(2 * 2 * 5 * 5, 1), [2, 2, 5, 5], { device, requiresGrad: true });
    E.scope(() => {
      E.backward(E.sum(E.maxPool2d(x, { kernelSize: 2 })));
      E.backward(E.sum(E.avgPool2d(x, { kernelSize: 3, padding: 1, stride: 2 })));
      E.backward(E.sum(E.adaptiveAvgPool2d(x, 3)));
      E.noGrad(() => E.maxPool2d(x, { kernelSize: 3 }));
    });
    await x.grad!.read();
    x.dispose();
    expect(device.stats().liveBuffers).toBe(before);
  });

  // Only the WebGPU device compiles WGSL; the CPU device has nothing to compile.
  if (device.kind === 'webgpu') {
    it('every WGSL variant compiles', async () => {
      const gpu = (device as E.WebGpuDevice).gpu;
      const geom = {
        planes: 1, inH: 3, inW: 3, outH: 2, outW: 2, kernel: [2, 2], stride: [1, 1], padding: [0, 0], dilation: [1, 1], countIncludePad: true,
      } as const;
      for (const variant of ['avg', 'avg_grad', 'max', 'max_grad', 'adaptive_avg', 'adaptive_avg_grad'] as const) {
        const p: PoolParams = { ...geom, variant };
        gpu.pushErrorScope('validation');
        const module = gpu.createShaderModule({ code: poolKernel.source(p) });
        gpu.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
        const err = await gpu.popErrorScope();
        expect(err?.message ?? '', poolKernel.key(p)).toBe('');
      }
    });
  }
});
