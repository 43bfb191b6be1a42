/**
 * CPU reference for the conv2d family: the same A/B/W relation and the same per-element gathers as
 * the WGSL (see conv2d.ts), accumulated in float64 and rounded once on store.
 */
import type { HostArray } from '../kernel-spec.js';
import { type Conv2dParams, conv2dTotal } from './conv2d.js';

export function conv2dReference(p: Conv2dParams, buffers: HostArray[]): void {
  if (p.variant === 'forward') forwardRef(p, buffers);
  else if (p.variant === 'transposed') transposedRef(p, buffers);
  else weightRef(p, buffers);
}

interface Geometry {
  aC: number; aH: number; aW: number;
  bC: number; bH: number; bW: number;
  kH: number; kW: number; sH: number; sW: number;
  pH: number; pW: number; dilH: number; dilW: number;
  aPerG: number; bPerG: number;
}

function geometry(p: Conv2dParams): Geometry {
  const [aC, aH, aW] = p.a;
  const [bC, bH, bW] = p.b;
  return {
    aC, aH, aW, bC, bH, bW,
    kH: p.kernel[0], kW: p.kernel[1], sH: p.stride[0], sW: p.stride[1],
    pH: p.padding[0], pW: p.padding[1], dilH: p.dilation[0], dilW: p.dilation[1],
    aPerG: aC / p.groups, bPerG: bC / p.groups,
  };
}

/** B[n, cb, oy, ox] = sum A * W (+ bias[cb]). Buffers: a, w, [bias], out. */
function forwardRef(p: Conv2dParams, buffers: HostArray[]): void {
  const g = geometry(p);
  const [a, w] = buffers;
  const bias = p.bias ? buffers[2]! : null;
  const out = buffers[buffers.length - 1]!;
  const total = conv2dTotal(p);
  for (let i = 0; i < total; i++) {
    const ox = i % g.bW;
    const oy = Math.floor(i / g.bW) % g.bH;
    const cb = Math.floor(i / (g.bW * g.bH)) % g.bC;
    const n = Math.floor(i / (g.bW * g.bH * g.bC));
    const group = Math.floor(cb / g.bPerG);
    let acc = 0;
    for (let cl = 0; cl < g.aPerG; cl++) {
      const aPlane = (n * g.aC + group * g.aPerG + cl) * g.aH;
      const wPlane = (cb * g.aPerG + cl) * g.kH;
      for (let kh = 0; kh < g.kH; kh++) {
        const y = oy * g.sH - g.pH + kh * g.dilH;
        if (y < 0 || y >= g.aH) continue;
        for (let kw = 0; kw < g.kW; kw++) {
          const x = ox * g.sW - g.pW + kw * g.dilW;
          if (x < 0 || x >= g.aW) continue;
          acc += a![(aPlane + y) * g.aW + x]! * w![(wPlane + kh) * g.kW + kw]!;
        }
      }
    }
    out[i] = acc + (bias ? bias[cb]! : 0);
  }
}

/** First B index o with o*stride + span >= t. */
function firstOut(t: number, span: number, stride: number): number {
  return t <= span ? 0 : Math.ceil((t - span) / stride);
}

/** A[n, ca, iy, ix] = sum over the B elements that read it, times W (+ bias[ca]). Buffers: b, w, [bias], out. */
function transposedRef(p: Conv2dParams, buffers: HostArray[]): void {
  const g = geometry(p);
  const [b, w] = buffers;
  const bias = p.bias ? buffers[2]! : null;
  const out = buffers[buffers.length - 1]!;
  const total = conv2dTotal(p);
  for (let i = 0; i < total; i++) {
    const ix = i % g.aW;
    const iy = Math.floor(i / g.aW) % g.aH;
    const ca = Math.floor(i / (g.aW * g.aH)) % g.aC;
    const n = Math.floor(i / (g.aW * g.aH * g.aC));
    const group = Math.floor(ca / g.aPerG);
    const cl = ca % g.aPerG;
    // B pixel oy reads row iy through tap kh when oy*sH + kh*dilH = iy + pH (as in the WGSL).
    const ty = iy + g.pH;
    const tx = ix + g.pW;
    let acc = 0;
    for (let oy = firstOut(ty, (g.kH - 1) * g.dilH, g.sH); oy < Math.min(Math.floor(ty / g.sH) + 1, g.bH); oy++) {
      const dy = ty - oy * g.sH;
      if (dy % g.dilH !== 0) continue;
      const kh = dy / g.dilH;
      for (let ox = firstOut(tx, (g.kW - 1) * g.dilW, g.sW); ox < Math.min(Math.floor(tx / g.sW) + 1, g.bW); ox++) {
        const dx = tx - ox * g.sW;
        if (dx % g.dilW !== 0) continue;
        const kw = dx / g.dilW;
        for (let cbl = 0; cbl < g.bPerG; cbl++) {
          const cb = group * g.bPerG + cbl;
          acc += b![((n * g.bC + cb) * g.bH + oy) * g.bW + ox]! * w![((cb * g.aPerG + cl) * g.kH + kh) * g.kW + kw]!;
        }
      }
    }
    out[i] = acc + (bias ? bias[ca]! : 0);
  }
}

/** W[cb, cl, kh, kw] = sum over n, oy, ox of B * A. Buffers: a, b, out. */
function weightRef(p: Conv2dParams, [a, b, out]: HostArray[]): void {
  const g = geometry(p);
  const total = conv2dTotal(p);
  for (let i = 0; i < total; i++) {
    const kw = i % g.kW;
    const kh = Math.floor(i / g.kW) % g.kH;
    const cl = Math.floor(i / (g.kW * g.kH)) % g.aPerG;
    const cb = Math.floor(i / (g.kW * g.kH * g.aPerG));
    const ca = Math.floor(cb / g.bPerG) * g.aPerG + cl;
    let acc = 0;
    for (let n = 0; n < p.batch; n++) {
      const aPlane = (n * g.aC + ca) * g.aH;
      const bPlane = (n * g.bC + cb) * g.bH;
      for (let oy = 0; oy < g.bH; oy++) {
        const y = oy * g.sH - g.pH + kh * g.dilH;
        if (y < 0 || y >= g.aH) continue;
        for (let ox = 0; ox < g.bW; ox++) {
          const x = ox * g.sW - g.pW + kw * g.dilW;
          if (x < 0 || x >= g.aW) continue;
          acc += a![(aPlane + y) * g.aW + x]! * b![(bPlane + oy) * g.bW + ox]!;
        }
      }
    }
    out![i] = acc;
  }
}
