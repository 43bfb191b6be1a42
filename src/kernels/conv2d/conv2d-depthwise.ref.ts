/**
 * CPU reference for the depthwise conv2d kernel: the direct gather's forward reference
 * (conv2d.ref.ts) with groups = Cin, which computes the same relation (each output channel co
 * reads input channel co / (Cout / Cin)); `flip` reverses each channel's kH*kW taps, which is the
 * same as reversing kh and kw; `activation` then applies to every output. Buffers: x, w, [bias], out.
 */
import { activationRef } from '../elementwise/elementwise.ops.js';
import type { HostArray } from '../kernel-spec.js';
import { conv2dReference } from './conv2d.ref.js';
import type { Conv2dDepthwiseParams } from './conv2d-depthwise.js';
import type { Conv2dDepthwiseWeightParams } from './conv2d-depthwise-weight.js';

export function conv2dDepthwiseReference(p: Conv2dDepthwiseParams, buffers: HostArray[]): void {
  const { tileX: _tileX, tileY: _tileY, flip, activation, ...geom } = p;
  const [kH, kW] = p.kernel;
  const taps = kH * kW;
  // `flip`: the same relation over W with each channel's taps reversed.
  const w = flip ? buffers[1]!.map((_, i) => buffers[1]![i - (i % taps) + taps - 1 - (i % taps)]!) : buffers[1]!;
  conv2dReference({ ...geom, variant: 'forward', groups: p.a[0] }, [buffers[0]!, w, ...buffers.slice(2)]);
  const out = buffers[buffers.length - 1]!;
  const act = activationRef(activation);
  if (activation) out.forEach((v, i) => (out[i] = act(v)));
}

/**
 * The depthwise weight gradient's partial sums: partial[n, co, block, tap] = the sum over the
 * block's pixels of image n of the dOut * X products for that tap (float64, rounded once).
 * Buffers: x, g, partial.
 */
export function conv2dDepthwiseWeightReference(p: Conv2dDepthwiseWeightParams, buffers: HostArray[]): void {
  const [x, g, partial] = buffers as [HostArray, HostArray, HostArray];
  const [cin, h, w] = p.a;
  const [cout, ho, wo] = p.b;
  const [kH, kW] = p.kernel;
  const [TY, TX] = [p.tileY ?? 4, p.tileX ?? 4];
  const tilesX = Math.ceil(wo / TX);
  const blocks = Math.ceil(ho / TY) * tilesX;
  const m = cout / cin;
  for (let n = 0; n < p.batch; n++)
    for (let co = 0; co < cout; co++)
      for (let b = 0; b < blocks; b++) {
        const [oy0, ox0] = [Math.floor(b / tilesX) * TY, (b % tilesX) * TX];
        for (let kh = 0; kh < kH; kh++)
          for (let kw = 0; kw < kW; kw++) {
            let acc = 0;
            for (let oy = oy0; oy < Math.min(ho, oy0 + TY); oy++)
              for (let ox = ox0; ox < Math.min(wo, ox0 + TX); ox++) {
                const iy = oy * p.stride[0] - p.padding[0] + kh * p.dilation[0];
                const ix = ox * p.stride[1] - p.padding[1] + kw * p.dilation[1];
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                acc += g[((n * cout + co) * ho + oy) * wo + ox]! * x[((n * cin + Math.floor(co / m)) * h + iy) * w + ix]!;
              }
            partial[((n * cout + co) * blocks + b) * kH * kW + kh * kW + kw] = acc;
          }
      }
}
