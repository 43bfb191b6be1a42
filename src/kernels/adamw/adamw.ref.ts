/** CPU reference for the AdamW family: the same fused update, rounding to f32 after each step. */
import type { HostArray } from '../kernel-spec.js';
import type { AdamwParams } from './adamw.js';

export function adamwReference(p: AdamwParams, buffers: HostArray[]): void {
  const [param, grad, expAvg, expAvgSq] = buffers as [HostArray, HostArray, HostArray, HostArray];
  const f = Math.fround;
  const decay = f(p.decay);
  const oneMinusBeta1 = f(p.oneMinusBeta1);
  const beta2 = f(p.beta2);
  const oneMinusBeta2 = f(p.oneMinusBeta2);
  const stepSize = f(p.stepSize);
  const bc2Sqrt = f(p.bc2Sqrt);
  const eps = f(p.eps);
  for (let i = 0; i < p.n; i++) {
    const g = grad[i]!;
    const m0 = expAvg[i]!;
    const pw = f(param[i]! * decay);
    const m = f(m0 + f(oneMinusBeta1 * f(g - m0)));
    const v = f(f(expAvgSq[i]! * beta2) + f(f(oneMinusBeta2 * g) * g));
    const denom = f(f(f(Math.sqrt(v)) / bc2Sqrt) + eps);
    expAvg[i] = m;
    expAvgSq[i] = v;
    param[i] = f(pw - f(f(stepSize * m) / denom));
  }
}
