/** CPU reference for the batchnorm family: same stages, bindings and formulas as the WGSL. */
import type { HostArray } from '../kernel-spec.js';
import type { BatchNormParams } from './batchnorm.js';

export function batchNormReference(p: BatchNormParams, buffers: HostArray[]): void {
  const { n, channels: C, inner: S } = p;
  const eps = Math.fround(p.eps);
  const rstdOf = (v: number): number => Math.fround(1 / Math.sqrt(Math.fround(v + eps)));
  let i = 0;
  if (p.stage === 'forward') {
    const [x, runMean, runVar] = [buffers[i++]!, buffers[i++]!, buffers[i++]!];
    const w = p.hasWeight ? buffers[i++]! : null;
    const b = p.hasBias ? buffers[i++]! : null;
    const y = buffers[i]!;
    for (let e = 0; e < n; e++) {
      const c = Math.floor(e / S) % C;
      y[e] = (x[e]! - runMean[c]!) * rstdOf(runVar[c]!) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
    }
    return;
  }
  if (p.stage === 'backward_input') {
    const [dY, runVar] = [buffers[i++]!, buffers[i++]!];
    const w = p.hasWeight ? buffers[i++]! : null;
    const dX = buffers[i]!;
    for (let e = 0; e < n; e++) {
      const c = Math.floor(e / S) % C;
      dX[e] = dY[e]! * rstdOf(runVar[c]!) * (w ? w[c]! : 1);
    }
    return;
  }
  const [x, dY, runMean, runVar, dW, dB] = buffers as [HostArray, HostArray, HostArray, HostArray, HostArray, HostArray];
  const count = C > 0 ? n / C : 0;
  for (let c = 0; c < C; c++) {
    const rstd = rstdOf(runVar[c]!);
    let dw = 0;
    let db = 0;
    for (let j = 0; j < count; j++) {
      const e = (Math.floor(j / S) * C + c) * S + (j % S);
      dw += dY[e]! * (x[e]! - runMean[c]!) * rstd;
      db += dY[e]!;
    }
    dW[c] = dw;
    dB[c] = db;
  }
}
