/** CPU reference for the losses family: the same per-element formulas (float64, rounded on store). */
import type { HostArray } from '../kernel-spec.js';
import type { LossParams } from './losses.js';

function stableSigmoid(v: number): number {
  const e = Math.exp(-Math.abs(v));
  return v >= 0 ? 1 / (1 + e) : e / (1 + e);
}

export function lossesReference(p: LossParams, buffers: HostArray[]): void {
  const scale = Math.fround(p.scale ?? 1);
  switch (p.fn) {
    case 'bce_forward': {
      const [x, t, out] = buffers as [HostArray, HostArray, HostArray];
      for (let i = 0; i < p.n; i++) {
        const v = x[i]!;
        out[i] = Math.max(v, 0) - v * t[i]! + Math.log1p(Math.exp(-Math.abs(v)));
      }
      return;
    }
    case 'bce_grad_logits': {
      const [x, t, dOut, dX] = buffers as [HostArray, HostArray, HostArray, HostArray];
      const g = Math.fround(dOut[0]! * scale);
      for (let i = 0; i < p.n; i++) dX[i] = (stableSigmoid(x[i]!) - t[i]!) * g;
      return;
    }
    case 'bce_grad_target': {
      const [x, dOut, dT] = buffers as [HostArray, HostArray, HostArray];
      const g = Math.fround(dOut[0]! * scale);
      for (let i = 0; i < p.n; i++) dT[i] = -x[i]! * g;
      return;
    }
  }
}
