/**
 * CPU reference for the softmax family: same row layout, masking and formulas as the WGSL
 * (row sums in float64, results rounded to float32 on store).
 */
import type { HostArray } from '../kernel-spec.js';
import type { SoftmaxParams } from './softmax.js';

const isMasked = (v: number): boolean => v === -Infinity;

export function softmaxReference(p: SoftmaxParams, buffers: HostArray[]): void {
  const st = p.inner;
  for (let r = 0; r < p.rows; r++) {
    const base = Math.floor(r / p.inner) * p.len * p.inner + (r % p.inner);
    if (p.dir === 'forward') {
      const [x, y] = buffers as [HostArray, HostArray];
      let m = -3.4028234663852886e38;
      for (let k = 0; k < p.len; k++) {
        const v = x[base + k * st]!;
        if (!isMasked(v)) m = Math.max(m, v);
      }
      // Round m like the kernel holds it (an f32), so exp(v - m) sees the same argument.
      let s = 0;
      for (let k = 0; k < p.len; k++) {
        const v = x[base + k * st]!;
        if (!isMasked(v)) s += Math.exp(Math.fround(v - m));
      }
      const logS = Math.log(s);
      for (let k = 0; k < p.len; k++) {
        const v = x[base + k * st]!;
        const live = !isMasked(v) && s > 0;
        if (p.op === 'softmax') y[base + k * st] = live ? Math.exp(Math.fround(v - m)) / s : 0;
        else y[base + k * st] = live ? Math.fround(v - m) - logS : -Infinity;
      }
    } else {
      const [y, dY, dX] = buffers as [HostArray, HostArray, HostArray];
      if (p.op === 'softmax') {
        let dot = 0;
        for (let k = 0; k < p.len; k++) {
          const yk = y[base + k * st]!;
          if (yk !== 0) dot += dY[base + k * st]! * yk;
        }
        for (let k = 0; k < p.len; k++) {
          const yk = y[base + k * st]!;
          dX[base + k * st] = yk !== 0 ? yk * (dY[base + k * st]! - dot) : 0;
        }
      } else {
        let total = 0;
        for (let k = 0; k < p.len; k++) {
          if (!isMasked(y[base + k * st]!)) total += dY[base + k * st]!;
        }
        for (let k = 0; k < p.len; k++) {
          const yk = y[base + k * st]!;
          dX[base + k * st] = isMasked(yk) ? 0 : dY[base + k * st]! - Math.exp(yk) * total;
        }
      }
    }
  }
}
