/**
 * CPU reference for the implicit-GEMM conv2d (conv2d-gemm.ts): the same bindings (x, wt laid out
 * [Cin, kH, kW, Cout], optional bias, out; taps read in reverse order under `flip`), float64 sums
 * rounded once on store, the activation applied to the float64 value.
 */
import { activationRef } from '../elementwise/elementwise.ops.js';
import type { HostArray } from '../kernel-spec.js';
import type { Conv2dGemmParams } from './conv2d-gemm.js';

export function conv2dGemmReference(p: Conv2dGemmParams, buffers: HostArray[]): void {
  const [x, wt] = buffers as [HostArray, HostArray];
  const bias = p.bias ? buffers[2]! : null;
  const out = buffers[buffers.length - 1]!;
  const [cin, h, w] = p.a;
  const [cout, ho, wo] = p.b;
  const [kH, kW] = p.kernel;
  const [sH, sW] = p.stride;
  const [pH, pW] = p.padding;
  const [dH, dW] = p.dilation;
  const act = activationRef(p.activation);
  for (let n = 0; n < p.batch; n++) {
    for (let co = 0; co < cout; co++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          let acc = 0;
          for (let kh = 0; kh < kH; kh++) {
            const iy = oy * sH - pH + kh * dH;
            if (iy < 0 || iy >= h) continue;
            for (let kw = 0; kw < kW; kw++) {
              const ix = ox * sW - pW + kw * dW;
              if (ix < 0 || ix >= w) continue;
              const tap = kh * kW + kw;
              const tapAt = p.flip ? kH * kW - 1 - tap : tap;
              for (let ci = 0; ci < cin; ci++) {
                acc += x[((n * cin + ci) * h + iy) * w + ix]! * wt[(ci * kH * kW + tapAt) * cout + co]!;
              }
            }
          }
          out[((n * cout + co) * ho + oy) * wo + ox] = act(acc + (bias ? bias[co]! : 0));
        }
      }
    }
  }
}
