/**
 * CPU reference for the resize family. Source coordinates are computed in f32 (Math.fround at
 * each step) exactly like the WGSL and PyTorch, so the chosen taps agree; the sums are float64.
 * The gradient scatters each output's dOut into its taps (the WGSL gathers the same terms).
 */
import type { HostArray } from '../kernel-spec.js';
import { CUBIC_A, RESIZE_TAPS, type ResizeParams } from './resize.js';

const fr = Math.fround;

interface AxisTaps {
  /** outLen * taps indices and weights, row-major. */
  idx: Int32Array;
  w: Float64Array;
}

function srcCoord(p: ResizeParams, o: number, ratio: number): number {
  if (p.mode === 'nearest' || p.alignCorners) return fr(ratio * o);
  const s = fr(fr(ratio * (o + 0.5)) - 0.5);
  return p.mode === 'bilinear' ? Math.max(s, 0) : s;
}

const cubic1 = (x: number) => ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1;
const cubic2 = (x: number) => ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A;

/** Taps and weights of every output coordinate along one axis. */
function axisTaps(p: ResizeParams, inLen: number, outLen: number, ratio: number): AxisTaps {
  const nt = RESIZE_TAPS[p.mode];
  const idx = new Int32Array(outLen * nt);
  const w = new Float64Array(outLen * nt);
  const last = inLen - 1;
  const clampIdx = (i: number) => Math.min(Math.max(i, 0), last);
  for (let o = 0; o < outLen; o++) {
    const s = srcCoord(p, o, ratio);
    const k = o * nt;
    if (p.mode === 'nearest') {
      idx[k] = Math.min(Math.floor(s), last);
      w[k] = 1;
      continue;
    }
    const i0 = Math.min(Math.floor(s), last);
    const t = Math.min(Math.max(fr(s - i0), 0), 1);
    if (p.mode === 'bilinear') {
      idx[k] = i0;
      idx[k + 1] = i0 < last ? i0 + 1 : i0;
      w[k] = 1 - t;
      w[k + 1] = t;
    } else {
      for (let j = 0; j < 4; j++) idx[k + j] = clampIdx(i0 - 1 + j);
      w[k] = cubic2(t + 1);
      w[k + 1] = cubic1(t);
      w[k + 2] = cubic1(1 - t);
      w[k + 3] = cubic2(2 - t);
    }
  }
  return { idx, w };
}

export function resizeReference(p: ResizeParams, [src, dst]: HostArray[]): void {
  const nt = RESIZE_TAPS[p.mode];
  const { planes, inH, inW, outH, outW } = p;
  const ty = axisTaps(p, inH, outH, p.ratioH);
  const tx = axisTaps(p, inW, outW, p.ratioW);
  const acc = p.grad ? new Float64Array(planes * inH * inW) : null;
  for (let plane = 0; plane < planes; plane++) {
    const inBase = plane * inH * inW;
    const outBase = plane * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const o = outBase + oy * outW + ox;
        let value = 0;
        for (let j = 0; j < nt; j++) {
          const row = inBase + ty.idx[oy * nt + j]! * inW;
          const wy = ty.w[oy * nt + j]!;
          for (let k = 0; k < nt; k++) {
            const at = row + tx.idx[ox * nt + k]!;
            const weight = wy * tx.w[ox * nt + k]!;
            if (acc) acc[at] = acc[at]! + weight * src![o]!;
            else value += weight * src![at]!;
          }
        }
        if (!acc) dst![o] = value;
      }
    }
  }
  if (acc) dst!.set(acc);
}
