/** CPU reference for the pool family: the same windows and gathers as the WGSL (see pool.ts). */
import type { HostArray } from '../kernel-spec.js';
import { type PoolParams, poolTotal } from './pool.js';

interface AvgWindow {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
  divisor: number;
}

function avgWindow(p: PoolParams, oy: number, ox: number): AvgWindow {
  let y0 = oy * p.stride[0] - p.padding[0];
  let x0 = ox * p.stride[1] - p.padding[1];
  let y1 = Math.min(y0 + p.kernel[0], p.inH + p.padding[0]);
  let x1 = Math.min(x0 + p.kernel[1], p.inW + p.padding[1]);
  const poolSize = (y1 - y0) * (x1 - x0);
  y0 = Math.max(y0, 0);
  x0 = Math.max(x0, 0);
  y1 = Math.min(y1, p.inH);
  x1 = Math.min(x1, p.inW);
  const divisor = p.countIncludePad ? poolSize : (y1 - y0) * (x1 - x0);
  return { y0, y1, x0, x1, divisor };
}

/** Outputs [first, end) whose windows [o*stride - pad, + span) can contain input i. */
function windowRange(i: number, pad: number, span: number, stride: number, outLen: number): [number, number] {
  const t = i + pad - span + 1;
  const first = t <= 0 ? 0 : Math.ceil(t / stride);
  return [first, Math.min(Math.floor((i + pad) / stride) + 1, outLen)];
}

const binStart = (o: number, inLen: number, outLen: number) => Math.floor((o * inLen) / outLen);
const binEnd = (o: number, inLen: number, outLen: number) => Math.ceil(((o + 1) * inLen) / outLen);

export function poolReference(p: PoolParams, buffers: HostArray[]): void {
  const total = poolTotal(p);
  const { inH, inW, outH, outW } = p;
  const grad = p.variant.endsWith('_grad');
  const rows = grad ? inH : outH;
  const cols = grad ? inW : outW;
  for (let i = 0; i < total; i++) {
    const c = i % cols;
    const r = Math.floor(i / cols) % rows;
    const plane = Math.floor(i / (cols * rows));
    const inBase = plane * inH * inW;
    const outBase = plane * outH * outW;
    switch (p.variant) {
      case 'avg': {
        const [src, out] = buffers;
        const win = avgWindow(p, r, c);
        let acc = 0;
        for (let y = win.y0; y < win.y1; y++) {
          for (let x = win.x0; x < win.x1; x++) acc += src![inBase + y * inW + x]!;
        }
        out![i] = Math.fround(acc) / win.divisor;
        break;
      }
      case 'avg_grad': {
        const [dOut, dIn] = buffers;
        const [oy0, oy1] = windowRange(r, p.padding[0], p.kernel[0], p.stride[0], outH);
        const [ox0, ox1] = windowRange(c, p.padding[1], p.kernel[1], p.stride[1], outW);
        let acc = 0;
        for (let oy = oy0; oy < oy1; oy++) {
          for (let ox = ox0; ox < ox1; ox++) {
            const win = avgWindow(p, oy, ox);
            if (r >= win.y0 && r < win.y1 && c >= win.x0 && c < win.x1) acc += dOut![outBase + oy * outW + ox]! / win.divisor;
          }
        }
        dIn![i] = acc;
        break;
      }
      case 'max': {
        const [src, out, idx] = buffers;
        let best = -Infinity;
        let bestIdx = -1;
        for (let kh = 0; kh < p.kernel[0]; kh++) {
          const y = r * p.stride[0] - p.padding[0] + kh * p.dilation[0];
          if (y < 0 || y >= inH) continue;
          for (let kw = 0; kw < p.kernel[1]; kw++) {
            const x = c * p.stride[1] - p.padding[1] + kw * p.dilation[1];
            if (x < 0 || x >= inW) continue;
            const v = src![inBase + y * inW + x]!;
            if (bestIdx < 0 || v > best || Number.isNaN(v)) {
              best = v;
              bestIdx = y * inW + x;
            }
          }
        }
        out![i] = best;
        idx![i] = bestIdx;
        break;
      }
      case 'max_grad': {
        const [dOut, idx, dIn] = buffers;
        const target = r * inW + c;
        const spanH = (p.kernel[0] - 1) * p.dilation[0] + 1;
        const spanW = (p.kernel[1] - 1) * p.dilation[1] + 1;
        const [oy0, oy1] = windowRange(r, p.padding[0], spanH, p.stride[0], outH);
        const [ox0, ox1] = windowRange(c, p.padding[1], spanW, p.stride[1], outW);
        let acc = 0;
        for (let oy = oy0; oy < oy1; oy++) {
          for (let ox = ox0; ox < ox1; ox++) {
            const o = outBase + oy * outW + ox;
            if (idx![o] === target) acc += dOut![o]!;
          }
        }
        dIn![i] = acc;
        break;
      }
      case 'adaptive_avg': {
        const [src, out] = buffers;
        const y0 = binStart(r, inH, outH);
        const y1 = binEnd(r, inH, outH);
        const x0 = binStart(c, inW, outW);
        const x1 = binEnd(c, inW, outW);
        let acc = 0;
        for (let y = y0; y < y1; y++) {
          for (let x = x0; x < x1; x++) acc += src![inBase + y * inW + x]!;
        }
        out![i] = Math.fround(acc) / ((y1 - y0) * (x1 - x0));
        break;
      }
      case 'adaptive_avg_grad': {
        const [dOut, dIn] = buffers;
        let acc = 0;
        for (let oy = 0; oy < outH; oy++) {
          const y0 = binStart(oy, inH, outH);
          const y1 = binEnd(oy, inH, outH);
          if (r < y0 || r >= y1) continue;
          for (let ox = 0; ox < outW; ox++) {
            const x0 = binStart(ox, inW, outW);
            const x1 = binEnd(ox, inW, outW);
            if (c < x0 || c >= x1) continue;
            acc += dOut![outBase + oy * outW + ox]! / ((y1 - y0) * (x1 - x0));
          }
        }
        dIn![i] = acc;
        break;
      }
    }
  }
}
