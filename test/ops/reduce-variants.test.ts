/**
 * The span reduction (reduce-span.ts) against independent float64 sums: every layout (i4 / r4 /
 * s), with and without parts; the chunk heuristic; and the sum op over axis patterns that take
 * one or two span passes, the general kernel (three spans), size-1 axes, keepDims and zero-size
 * inputs. On cpu the kernel runs its reference.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import {
  type ReduceSpanParams, reduceSpanChunk, reduceSpanKernel, reduceSpanLayout, reduceSpanParts,
} from '../../src/kernels/reduce/reduce-span.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

/** Partial sums of [outer, R, inner] over parts of `chunk` rows, in float64. */
function naiveSpan(p: ReduceSpanParams, x: Float32Array): Float64Array {
  const parts = Math.max(1, Math.ceil(p.R / p.chunk));
  const out = new Float64Array(p.outer * parts * p.inner);
  for (let o = 0; o < p.outer; o++) {
    for (let r = 0; r < p.R; r++) {
      for (let i = 0; i < p.inner; i++) {
        const at = (o * parts + Math.floor(r / p.chunk)) * p.inner + i;
        out[at] = out[at]! + x[(o * p.R + r) * p.inner + i]!;
      }
    }
  }
  return out;
}

/** Sum of x [shape] over `axes` (kept axes in order), float64. */
function naiveSum(x: Float32Array, shape: number[], axes: number[]): Float64Array {
  const kept = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const out = new Float64Array(kept.reduce((n, i) => n * shape[i]!, 1));
  const coord = new Array<number>(shape.length).fill(0);
  for (let e = 0; e < x.length; e++) {
    let rem = e;
    for (let d = shape.length - 1; d >= 0; d--) {
      coord[d] = rem % shape[d]!;
      rem = Math.floor(rem / shape[d]!);
    }
    const o = kept.reduce((acc, i) => acc * shape[i]! + coord[i]!, 0);
    out[o] = out[o]! + x[e]!;
  }
  return out;
}

describe.each(await testDevices())('reduce span variants on %s', (_name, device) => {
  it('every layout, with and without parts', async () => {
    const cases: ReduceSpanParams[] = [
      { outer: 3, R: 37, inner: 8, chunk: 37 }, // i4
      { outer: 2, R: 103, inner: 12, chunk: 16 }, // i4, parts with a short last one
      { outer: 5, R: 64, inner: 1, chunk: 64 }, // r4
      { outer: 1, R: 1000, inner: 1, chunk: 128 }, // r4, parts
      { outer: 4, R: 33, inner: 3, chunk: 10 }, // s, parts
      { outer: 2, R: 7, inner: 1, chunk: 7 }, // s (R % 4 != 0)
      { outer: 3, R: 0, inner: 4, chunk: 1 }, // empty span: zeros (scalar: x binds 4 bytes)
    ];
    const layouts = new Set<string>();
    for (const p of cases) {
      layouts.add(reduceSpanLayout(p));
      const n = p.outer * p.R * p.inner;
      const x = randomNormal(n, n + 1);
      const xt = E.Tensor.fromArray(x, [n], { device });
      const out = E.Tensor.empty([p.outer * reduceSpanParts(p) * p.inner], 'f32', device);
      device.run(reduceSpanKernel, p, [xt.storage, out.storage]);
      expectClose(await out.read(), naiveSpan(p, x), 1e-5, 1e-4, `${reduceSpanKernel.key(p)} ${JSON.stringify(p)}`);
      xt.dispose();
      out.dispose();
    }
    expect([...layouts].sort()).toEqual(['i4', 'r4', 's']);
  });

  it('chunk heuristic: whole spans for many outputs, parts of >= 64 rows (multiple of 4) for few', () => {
    expect(reduceSpanChunk(4096, 500, 1)).toBe(500);
    expect(reduceSpanChunk(1, 40, 64)).toBe(40);
    const full = reduceSpanChunk(1, 3162112, 1);
    expect(full % 4).toBe(0);
    expect(Math.ceil(3162112 / full)).toBeLessThanOrEqual(1024);
    const bias = reduceSpanChunk(1, 2080, 64);
    expect(bias).toBeGreaterThanOrEqual(64);
    expect(Math.ceil(2080 / bias)).toBeGreaterThan(1);
  });

  it('the sum op over one, two and three spans, size-1 axes, keepDims, gradients', async () => {
    const cases: [number[], number[]][] = [
      [[33, 64], [0]], // bias gradient: one span, i4 with parts
      [[5, 1, 37], [2]], // per-row sums (size-1 axis ignored)
      [[4, 6, 5], [0, 2]], // two spans: [R, K, R]
      [[3, 4, 5, 6], [0, 2]], // two spans with a kept tail
      [[2, 3, 4, 5, 3], [0, 2, 4]], // three spans: the general kernel
      [[7, 9], [0, 1]], // everything
      [[6, 1], [1]], // only a size-1 axis: the general kernel
      [[2, 5, 7], [1]],
    ];
    for (const [shape, axes] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randomNormal(n, n);
      const xt = E.Tensor.fromArray(x, shape, { device, requiresGrad: true });
      const s = E.sum(xt, axes, { keepDims: true });
      expect(s.shape).toEqual(shape.map((d, i) => (axes.includes(i) ? 1 : d)));
      expectClose(await s.read(), naiveSum(x, shape, axes), 1e-5, 1e-4, `sum [${shape}] over [${axes}]`);
      E.backward(E.sum(s));
      expectClose(await xt.grad!.read(), new Float32Array(n).fill(1), 0, 0, `sum grad [${shape}]`);
      xt.dispose();
    }
  });

  it('zero-size inputs and empty reductions', async () => {
    const empty = E.Tensor.zeros([0, 4], { device });
    expect(Array.from(await E.sum(empty, 0).read())).toEqual([0, 0, 0, 0]);
    expect(E.sum(empty, 1).shape).toEqual([0]);
    const m = E.mean(E.Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { device }), 0);
    expectClose(await m.read(), [2.5, 3.5, 4.5], 1e-6, 1e-6);
    empty.dispose();
  });
});
