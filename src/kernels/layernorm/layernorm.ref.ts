/**
 * CPU reference for the layernorm family: the same stages and bindings as the WGSL. Row statistics
 * are accumulated in float64; mean and rstd are rounded to float32 as the kernel stores them, and
 * the backward stages use those stored values.
 */
import type { HostArray } from '../kernel-spec.js';
import type { LayerNormParams } from './layernorm.js';

export function layerNormReference(p: LayerNormParams, buffers: HostArray[]): void {
  const { rows, cols: C } = p;
  if (p.stage === 'forward') {
    let i = 0;
    const x = buffers[i++]!;
    const w = p.hasWeight ? buffers[i++]! : null;
    const b = p.hasBias ? buffers[i++]! : null;
    const [y, meanOut, rstdOut] = [buffers[i]!, buffers[i + 1]!, buffers[i + 2]!];
    for (let r = 0; r < rows; r++) {
      const base = r * C;
      let s = 0;
      for (let k = 0; k < C; k++) s += x[base + k]!;
      const mean = Math.fround(s / C);
      let q = 0;
      for (let k = 0; k < C; k++) {
        const d = x[base + k]! - mean;
        q += d * d;
      }
      const rstd = Math.fround(1 / Math.sqrt(q / C + Math.fround(p.eps)));
      for (let k = 0; k < C; k++) {
        y[base + k] = (x[base + k]! - mean) * rstd * (w ? w[k]! : 1) + (b ? b[k]! : 0);
      }
      meanOut[r] = mean;
      rstdOut[r] = rstd;
    }
    return;
  }
  if (p.stage === 'backward_input') {
    let i = 0;
    const [x, mean, rstd] = [buffers[i++]!, buffers[i++]!, buffers[i++]!];
    const w = p.hasWeight ? buffers[i++]! : null;
    const [dY, dX] = [buffers[i]!, buffers[i + 1]!];
    for (let r = 0; r < rows; r++) {
      const base = r * C;
      let sumG = 0;
      let sumGX = 0;
      for (let k = 0; k < C; k++) {
        const xhat = (x[base + k]! - mean[r]!) * rstd[r]!;
        const g = dY[base + k]! * (w ? w[k]! : 1);
        sumG += g;
        sumGX += g * xhat;
      }
      sumG /= C;
      sumGX /= C;
      for (let k = 0; k < C; k++) {
        const xhat = (x[base + k]! - mean[r]!) * rstd[r]!;
        const g = dY[base + k]! * (w ? w[k]! : 1);
        dX[base + k] = rstd[r]! * (g - sumG - xhat * sumGX);
      }
    }
    return;
  }
  const [x, mean, rstd, dY, dW, dB] = buffers as [HostArray, HostArray, HostArray, HostArray, HostArray, HostArray];
  for (let c = 0; c < C; c++) {
    let dw = 0;
    let db = 0;
    for (let r = 0; r < rows; r++) {
      const i = r * C + c;
      dw += dY[i]! * (x[i]! - mean[r]!) * rstd[r]!;
      db += dY[i]!;
    }
    dW[c] = dw;
    dB[c] = db;
  }
}
