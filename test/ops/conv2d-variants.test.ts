/**
 * The implicit-GEMM backward kernels of conv2d against independent naive loops at odd shapes
 * (channel counts off every tile, output widths off the 4-pixel chunk, strides, padding,
 * dilation): the weight gradient (conv2d-gemm-weight.ts) and the input gradient as the flipped-tap
 * conv2d-gemm.ts (stride 1, with and without bias, scalar and vec4 weights). Subgroup kernels run
 * where the adapter has 8-wide subgroups (always on cpu, which runs the references); the ops are
 * also compared with and without those variants.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { conv2dGemmFlipPadding, conv2dGemmKernel } from '../../src/kernels/conv2d/conv2d-gemm.js';
import {
  type Conv2dGemmWeightParams, conv2dGemmWeightKernel, conv2dGemmWeightSplits,
} from '../../src/kernels/conv2d/conv2d-gemm-weight.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

type Geo = Omit<Conv2dGemmWeightParams, 'rows' | 'splits'>;

/** Calls f(n, ca, iy, ix, cb, oy, ox, kh, kw) for every tap of the relation that lands inside A. */
function eachTap(g: Geo, f: (a: number, b: number, w: number) => void): void {
  const [aC, aH, aW] = g.a;
  const [bC, bH, bW] = g.b;
  const [kH, kW] = g.kernel;
  for (let n = 0; n < g.batch; n++)
    for (let cb = 0; cb < bC; cb++)
      for (let oy = 0; oy < bH; oy++)
        for (let ox = 0; ox < bW; ox++)
          for (let ca = 0; ca < aC; ca++)
            for (let kh = 0; kh < kH; kh++)
              for (let kw = 0; kw < kW; kw++) {
                const iy = oy * g.stride[0] - g.padding[0] + kh * g.dilation[0];
                const ix = ox * g.stride[1] - g.padding[1] + kw * g.dilation[1];
                if (iy < 0 || iy >= aH || ix < 0 || ix >= aW) continue;
                f(((n * aC + ca) * aH + iy) * aW + ix, ((n * bC + cb) * bH + oy) * bW + ox, ((cb * aC + ca) * kH + kh) * kW + kw);
              }
}

const size = (g: Geo) => ({
  a: g.batch * g.a[0] * g.a[1] * g.a[2],
  b: g.batch * g.b[0] * g.b[1] * g.b[2],
  w: g.b[0] * g.a[0] * g.kernel[0] * g.kernel[1],
});

/** B's spatial size for A's, as conv2d computes it. */
function geo(batch: number, a: [number, number, number], bC: number, kernel: [number, number], stride: [number, number], padding: [number, number], dilation: [number, number]): Geo {
  const out = [0, 1].map((d) => Math.floor((a[d + 1]! + 2 * padding[d]! - dilation[d]! * (kernel[d]! - 1) - 1) / stride[d]!) + 1);
  return { batch, a, b: [bC, out[0]!, out[1]!], kernel, stride, padding, dilation };
}

function sgSupported(device: E.Device): boolean {
  return device.kind === 'cpu' || E.useSubgroupKernels(device);
}

describe.each(await testDevices())('conv2d GEMM backward variants on %s', (_name, device) => {
  const tensor = (data: Float32Array) => E.Tensor.fromArray(data, [data.length], { device });

  it.skipIf(!sgSupported(device))('weight gradient: odd channels, widths, strides, padding, dilation', async () => {
    const geos: Geo[] = [
      geo(2, [5, 7, 9], 29, [3, 2], [2, 1], [1, 0], [1, 2]),
      geo(3, [3, 8, 12], 6, [4, 4], [4, 4], [0, 0], [1, 1]),
      geo(1, [8, 6, 5], 40, [3, 3], [1, 1], [1, 1], [1, 1]),
      geo(0, [4, 5, 5], 9, [3, 3], [1, 1], [1, 1], [1, 1]), // empty batch: zeros
    ];
    for (const g of geos) {
      const n = size(g);
      const a = randomNormal(n.a, n.a + 1);
      const b = randomNormal(n.b, n.b + 2);
      const want = new Float64Array(n.w);
      eachTap(g, (ia, ib, iw) => (want[iw] = want[iw]! + a[ia]! * b[ib]!));
      const at = tensor(a);
      const bt = tensor(b);
      // Split-K: 3 image ranges (the last one short or empty) must sum to the same gradient.
      for (const splits of [1, 3]) {
        const out = E.Tensor.empty([splits * n.w], 'f32', device);
        device.run(conv2dGemmWeightKernel, { ...g, splits }, [at.storage, bt.storage, out.storage]);
        const parts = await out.read();
        const got = new Float64Array(n.w).map((_, i) => Array.from({ length: splits }, (_, s) => parts[s * n.w + i]!).reduce((x, y) => x + y, 0));
        expectClose(got, want, 1e-5, 1e-4, `dW splits ${splits} ${JSON.stringify(g)}`);
        out.dispose();
      }
      for (const t of [at, bt]) t.dispose();
    }
  });

  it('split-K heuristic: whole image ranges, none empty, enough workgroups', () => {
    expect(conv2dGemmWeightSplits(geo(8, [5, 8, 8], 8, [3, 3], [1, 1], [1, 1], [1, 1]))).toBe(2);
    const g = geo(32, [1, 32, 32], 32, [2, 2], [2, 2], [0, 0], [1, 1]);
    const s = conv2dGemmWeightSplits(g);
    expect(s).toBeGreaterThan(1);
    expect(Math.ceil(32 / Math.ceil(32 / s))).toBe(s);
    expect(conv2dGemmWeightSplits(geo(0, [4, 5, 5], 9, [3, 3], [1, 1], [1, 1], [1, 1]))).toBe(1);
    expect(conv2dGemmWeightSplits(geo(2, [2, 4, 4], 4, [3, 3], [1, 1], [1, 1], [1, 1]))).toBe(1); // 32 pixels: not worth it
  });

  it.skipIf(!sgSupported(device))('input gradient as the flipped-tap GEMM at stride 1 (scalar / vec4 weights, bias)', async () => {
    const cases: [Geo, boolean][] = [
      [geo(2, [6, 5, 7], 9, [3, 3], [1, 1], [1, 1], [1, 1]), false],
      [geo(1, [8, 9, 6], 5, [3, 2], [1, 1], [2, 0], [2, 3]), true],
      [geo(2, [4, 4, 4], 12, [1, 1], [1, 1], [0, 0], [1, 1]), true],
    ];
    const keys = new Set<string>();
    for (const [g, bias] of cases) {
      const n = size(g);
      const [bC, aC] = [g.b[0], g.a[0]];
      const [kH, kW] = g.kernel;
      const b = randomNormal(n.b, n.b + 3);
      const w = randomNormal(n.w, n.w + 4);
      const bv = randomNormal(aC, 5);
      const want = new Float64Array(n.a);
      eachTap(g, (ia, ib, iw) => (want[ia] = want[ia]! + b[ib]! * w[iw]!));
      if (bias) want.forEach((v, i) => (want[i] = v + bv[Math.floor(i / (g.a[1] * g.a[2])) % aC]!));
      // Wt [bC, kH, kW, aC] = W [bC, aC, kH, kW] permuted (the op makes it with a copy).
      const wt = new Float32Array(n.w);
      for (let cb = 0; cb < bC; cb++)
        for (let ca = 0; ca < aC; ca++)
          for (let t = 0; t < kH * kW; t++) wt[(cb * kH * kW + t) * aC + ca] = w[(cb * aC + ca) * kH * kW + t]!;
      const params = {
        batch: g.batch, a: g.b, b: g.a, kernel: g.kernel, stride: [1, 1] as const,
        padding: conv2dGemmFlipPadding(g.kernel, g.padding, g.dilation)!, dilation: g.dilation, bias, flip: true,
      };
      const inputs = [tensor(b), tensor(wt), ...(bias ? [tensor(bv)] : [])];
      const out = E.Tensor.empty([n.a], 'f32', device);
      device.run(conv2dGemmKernel, params, [...inputs, out].map((t) => t.storage));
      keys.add(conv2dGemmKernel.key(params));
      expectClose(await out.read(), want, 1e-5, 1e-4, `dX ${conv2dGemmKernel.key(params)} ${JSON.stringify(g)}`);
      for (const t of [...inputs, out]) t.dispose();
    }
    expect([...keys].some((k) => k.includes(':v4') && k.endsWith(':bias:flip'))).toBe(true);
    expect([...keys].some((k) => k.includes(':s:flip'))).toBe(true);
    expect(conv2dGemmFlipPadding([3, 3], [3, 1], [1, 1])).toBeNull();
  });

  it('ops give the same values and gradients with and without the subgroup variants', async () => {
    const run = async (): Promise<ArrayLike<number>[]> => {
      // 8 images of 8x8: the 3x3 weight gradient runs split-K (2 ranges) on the GEMM path.
      const x = E.Tensor.fromArray(randomNormal(8 * 5 * 8 * 8, 1), [8, 5, 8, 8], { device, requiresGrad: true });
      const w = E.Tensor.fromArray(randomNormal(8 * 5 * 9, 2), [8, 5, 3, 3], { device, requiresGrad: true });
      const wt = E.Tensor.fromArray(randomNormal(8 * 3 * 4, 3), [8, 3, 2, 2], { device, requiresGrad: true });
      const bt = E.Tensor.fromArray(randomNormal(3, 4), [3], { device, requiresGrad: true });
      // conv2d (3x3, stride 1, padding 1) then an overlapping convTranspose2d (k2, stride 1).
      const y = E.convTranspose2d(E.conv2d(x, w, null, { padding: 1 }), wt, bt);
      const r = E.Tensor.fromArray(randomNormal(y.size, 5), y.shape, { device });
      E.backward(E.sum(E.mul(y, r)));
      const got = [await y.read(), await x.grad!.read(), await w.grad!.read(), await wt.grad!.read(), await bt.grad!.read()];
      for (const t of [x, w, wt, bt, r]) t.dispose();
      return got;
    };
    const auto = await run();
    E.kernelVariants.mode = 'portable';
    try {
      const portable = await run();
      // Sums of up to ~180 products of O(1..10) values: cancellation leaves ~1e-4 absolute noise.
      ['y', 'dX', 'dW', 'dWt', 'dB'].forEach((name, i) => expectClose(portable[i]!, auto[i]!, 2e-4, 1e-4, `${name}: portable vs auto`));
    } finally {
      E.kernelVariants.mode = 'auto';
    }
  });
});
