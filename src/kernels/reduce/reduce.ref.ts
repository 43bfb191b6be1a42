/** CPU reference for the reduce family (same index walk; sums in float64, then rounded). */
import type { HostArray } from '../kernel-spec.js';
import { type ReduceParams, reduceCounts } from './reduce.js';

export function reduceReference(p: ReduceParams, [x, out]: HostArray[]): void {
  const { nOut, reduceCount } = reduceCounts(p);
  for (let o = 0; o < nOut; o++) {
    let base = 0;
    let rem = o;
    for (let d = p.keptShape.length - 1; d >= 0; d--) {
      base += (rem % p.keptShape[d]!) * p.keptStrides[d]!;
      rem = Math.floor(rem / p.keptShape[d]!);
    }
    let acc = p.op === 'sum' ? 0 : p.op === 'min' ? Infinity : -Infinity;
    let best = 0;
    for (let r = 0; r < reduceCount; r++) {
      let off = base;
      let rr = r;
      for (let d = p.reducedShape.length - 1; d >= 0; d--) {
        off += (rr % p.reducedShape[d]!) * p.reducedStrides[d]!;
        rr = Math.floor(rr / p.reducedShape[d]!);
      }
      const v = x![off]!;
      if (p.op === 'sum') acc += v;
      else if (p.op === 'max') acc = Math.max(acc, v);
      else if (p.op === 'min') acc = Math.min(acc, v);
      else if (v > acc || r === 0) {
        acc = v;
        best = r;
      }
    }
    out![o] = p.op === 'argmax' ? best : acc;
  }
}
