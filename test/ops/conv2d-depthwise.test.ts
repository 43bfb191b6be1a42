/**
 * The depthwise conv2d kernel (kernels/conv2d/conv2d-depthwise.ts) against an independent naive
 * loop at odd shapes: output sizes off every tile, strides, padding wider than the window reach,
 * dilation, rectangular kernels, channel multipliers, several tile shapes, flipped taps; and
 * which geometries the op hands it (conv2dDepthwiseSupported). The op's own values and gradients
 * through this kernel are in conv.test.ts (its depthwise cases).
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import {
  type Conv2dDepthwiseParams, conv2dDepthwiseKernel, conv2dDepthwiseSupported,
} from '../../src/kernels/conv2d/conv2d-depthwise.js';
import { conv2dDepthwiseWeightKernel, conv2dDepthwiseWeightPartialShape } from '../../src/kernels/conv2d/conv2d-depthwise-weight.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

type Geo = Omit<Conv2dDepthwiseParams, 'bias' | 'tileX' | 'tileY'>;

/** out[n, co, oy, ox] = bias[co] + sum X[n, co / m, ...] * W[co, 0, kh, kw], in float64. */
function naive(g: Geo, x: Float32Array, w: Float32Array, bias: Float32Array | null): Float64Array {
  const [cin, h, wd] = g.a;
  const [cout, ho, wo] = g.b;
  const [kH, kW] = g.kernel;
  const m = cout / cin;
  const out = new Float64Array(g.batch * cout * ho * wo);
  for (let n = 0; n < g.batch; n++)
    for (let co = 0; co < cout; co++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          let acc = bias ? bias[co]! : 0;
          for (let kh = 0; kh < kH; kh++)
            for (let kw = 0; kw < kW; kw++) {
              const iy = oy * g.stride[0] - g.padding[0] + kh * g.dilation[0];
              const ix = ox * g.stride[1] - g.padding[1] + kw * g.dilation[1];
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              acc += x[((n * cin + Math.floor(co / m)) * h + iy) * wd + ix]! * w[(co * kH + kh) * kW + kw]!;
            }
          out[((n * cout + co) * ho + oy) * wo + ox] = acc;
        }
  return out;
}

/** W [C, 1, kH, kW] with every channel's taps mirrored in both dims. */
function flipTaps(w: Float32Array, kH: number, kW: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let c = 0; c < w.length / (kH * kW); c++)
    for (let kh = 0; kh < kH; kh++)
      for (let kw = 0; kw < kW; kw++) out[(c * kH + kh) * kW + kw] = w[(c * kH + kH - 1 - kh) * kW + kW - 1 - kw]!;
  return out;
}

function geo(batch: number, a: [number, number, number], multiplier: number, kernel: [number, number], stride: [number, number], padding: [number, number], dilation: [number, number]): Geo {
  const out = [0, 1].map((d) => Math.floor((a[d + 1]! + 2 * padding[d]! - dilation[d]! * (kernel[d]! - 1) - 1) / stride[d]!) + 1);
  return { batch, a, b: [a[0] * multiplier, out[0]!, out[1]!], kernel, stride, padding, dilation };
}

const GEOS: [string, Geo][] = [
  ['3x3 s1 p1, 5x7 output', geo(2, [3, 5, 7], 1, [3, 3], [1, 1], [1, 1], [1, 1])],
  ['3x3 s2 p1, multiplier 2', geo(1, [2, 9, 6], 2, [3, 3], [2, 2], [1, 1], [1, 1])],
  ['5x5 s1 p2', geo(1, [4, 6, 11], 1, [5, 5], [1, 1], [2, 2], [1, 1])],
  ['7x7 s2 p3', geo(1, [2, 13, 10], 1, [7, 7], [2, 2], [3, 3], [1, 1])],
  ['3x3 dilation 2 p2', geo(1, [3, 8, 8], 1, [3, 3], [1, 1], [2, 2], [2, 2])],
  ['3x1 stride [1,2] padding [1,0]', geo(2, [2, 5, 9], 3, [3, 1], [1, 2], [1, 0], [1, 1])],
  ['1x1', geo(1, [3, 4, 5], 1, [1, 1], [1, 1], [0, 0], [1, 1])],
  ['3x3 padding 3 (wider than the reach)', geo(1, [2, 3, 3], 1, [3, 3], [1, 1], [3, 3], [1, 1])],
];

describe.each(await testDevices())('depthwise conv2d kernel on %s', (_name, device) => {
  const tensor = (data: Float32Array) => E.Tensor.fromArray(data, [data.length], { device });

  it('matches the naive sum at every geometry, with and without bias, and at other tiles', async () => {
    for (const [name, g] of GEOS) {
      const [cin, h, w] = g.a;
      const [cout, ho, wo] = g.b;
      const xv = randomNormal(g.batch * cin * h * w, cin * h + 1);
      const wv = randomNormal(cout * g.kernel[0] * g.kernel[1], w + 2);
      const bv = randomNormal(cout, 3);
      const x = tensor(xv);
      const wt = tensor(wv);
      const b = tensor(bv);
      // Every geometry at the op's 4x4 tile, with and without bias; other tiles on two geometries
      // (each variant is a pipeline LLVM compiles: ~1 s apiece here).
      // Flipped taps (the input-gradient form) on a few geometries as well.
      const variants: [number, number, boolean, boolean][] = [[4, 4, true, false], [4, 4, false, false]];
      if (name.startsWith('3x3 s2') || name.startsWith('7x7')) variants.push([1, 1, true, false], [2, 3, true, false], [1, 8, false, false]);
      if (name.startsWith('3x3 s1') || name.startsWith('5x5') || name.startsWith('3x1')) variants.push([4, 4, true, true]);
      for (const [tileY, tileX, bias, flip] of variants) {
        const p: Conv2dDepthwiseParams = { ...g, bias, tileY, tileX, flip };
        const out = E.Tensor.empty([g.batch * cout * ho * wo], 'f32', device);
        device.run(conv2dDepthwiseKernel, p, bias ? [x.storage, wt.storage, b.storage, out.storage] : [x.storage, wt.storage, out.storage]);
        const want = naive(g, xv, flip ? flipTaps(wv, g.kernel[0], g.kernel[1]) : wv, bias ? bv : null);
        expectClose(await out.read(), want, 1e-5, 1e-5, `${name} ${conv2dDepthwiseKernel.key(p)}`);
        out.dispose();
      }
      for (const t of [x, wt, b]) t.dispose();
    }
  });

  it('weight gradient: the per-image, per-block partial sums add up to the naive dW at every geometry', async () => {
    for (const [name, g] of [...GEOS, ['empty batch', { ...GEOS[0]![1], batch: 0 }] as [string, Geo]]) {
      const [cin, h, w] = g.a;
      const [cout, ho, wo] = g.b;
      const [kH, kW] = g.kernel;
      const xv = randomNormal(g.batch * cin * h * w, cin * h + 4);
      const gv = randomNormal(g.batch * cout * ho * wo, w + 5);
      const want = new Float64Array(cout * kH * kW);
      // dW[co, tap] = sum over images and output pixels of dOut * X: the forward relation's taps.
      for (let n = 0; n < g.batch; n++)
        for (let co = 0; co < cout; co++)
          for (let oy = 0; oy < ho; oy++)
            for (let ox = 0; ox < wo; ox++)
              for (let kh = 0; kh < kH; kh++)
                for (let kw = 0; kw < kW; kw++) {
                  const iy = oy * g.stride[0] - g.padding[0] + kh * g.dilation[0];
                  const ix = ox * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  want[(co * kH + kh) * kW + kw]! += gv[((n * cout + co) * ho + oy) * wo + ox]! * xv[((n * cin + Math.floor(co / (cout / cin))) * h + iy) * w + ix]!;
                }
      const x = tensor(xv);
      const gt = tensor(gv);
      const tileSets: [number, number][] = name.startsWith('7x7') ? [[4, 4], [2, 3]] : [[4, 4]];
      for (const [tileY, tileX] of tileSets) {
        const p = { ...g, tileY, tileX };
        const [, , blocks, taps] = conv2dDepthwiseWeightPartialShape(p);
        const partial = E.Tensor.empty([Math.max(1, g.batch * cout * blocks * taps)], 'f32', device);
        device.run(conv2dDepthwiseWeightKernel, p, [x.storage, gt.storage, partial.storage]);
        const parts = await partial.read();
        const got = new Float64Array(cout * taps).map((_, i) => {
          let s = 0;
          for (let n = 0; n < g.batch; n++)
            for (let b = 0; b < blocks; b++) s += parts[((n * cout + Math.floor(i / taps)) * blocks + b) * taps + (i % taps)]!;
          return s;
        });
        expectClose(got, want, 1e-5, 1e-4, `${name} ${conv2dDepthwiseWeightKernel.key(p)}`);
        partial.dispose();
      }
      for (const t of [x, gt]) t.dispose();
    }
  });
});

describe('depthwise conv2d geometry', () => {
  const base = geo(1, [4, 8, 8], 1, [3, 3], [1, 1], [1, 1], [1, 1]);

  it('the op hands it depthwise convolutions with windows it can unroll, nothing else', () => {
    expect(conv2dDepthwiseSupported({ ...base, groups: 4 })).toBe(true);
    expect(conv2dDepthwiseSupported({ ...geo(1, [4, 8, 8], 3, [7, 7], [2, 2], [3, 3], [1, 1]), groups: 4 })).toBe(true);
    expect(conv2dDepthwiseSupported({ ...base, groups: 2 })).toBe(false); // grouped, not depthwise
    expect(conv2dDepthwiseSupported({ ...base, groups: 1 })).toBe(false);
    expect(conv2dDepthwiseSupported({ ...geo(1, [1, 8, 8], 4, [3, 3], [1, 1], [1, 1], [1, 1]), groups: 1 })).toBe(false); // one input channel: ungrouped
    expect(conv2dDepthwiseSupported({ ...geo(1, [4, 20, 20], 1, [9, 9], [1, 1], [4, 4], [1, 1]), groups: 4 })).toBe(false); // 81 taps
    expect(conv2dDepthwiseSupported({ ...geo(1, [4, 40, 40], 1, [7, 7], [1, 1], [3, 3], [3, 3]), groups: 4 })).toBe(false); // 22x22 window
  });

  it('sizes travel in the uniforms: one pipeline key per tap geometry', () => {
    const other = geo(3, [16, 40, 30], 2, [3, 3], [1, 1], [2, 2], [1, 1]);
    expect(conv2dDepthwiseKernel.key({ ...other, bias: true })).toBe(conv2dDepthwiseKernel.key({ ...base, bias: true }));
    expect(conv2dDepthwiseKernel.key({ ...base, bias: true, stride: [2, 2] })).not.toBe(conv2dDepthwiseKernel.key({ ...base, bias: true }));
  });

  it('refuses a window too large to unroll, naming it', () => {
    const g = geo(1, [2, 40, 40], 1, [7, 7], [1, 1], [3, 3], [3, 3]);
    expect(() => conv2dDepthwiseKernel.source({ ...g, bias: false })).toThrow(/window 22x22 exceeds 196 inputs \(conv2d:dw:k7x7:s1x1:d3x3/);
  });
});
