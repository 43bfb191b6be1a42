/** CPU reference for the span reduction (reduce-span.ts): same partial sums, float64 then rounded. */
import type { HostArray } from '../kernel-spec.js';
import { type ReduceSpanParams, reduceSpanParts } from './reduce-span.js';

export function reduceSpanReference(p: ReduceSpanParams, [x, out]: HostArray[]): void {
  const parts = reduceSpanParts(p);
  for (let o = 0; o < p.outer; o++) {
    for (let part = 0; part < parts; part++) {
      const r0 = part * p.chunk;
      const r1 = Math.min(p.R, r0 + p.chunk);
      for (let i = 0; i < p.inner; i++) {
        let acc = 0;
        for (let r = r0; r < r1; r++) acc += x![(o * p.R + r) * p.inner + i]!;
        out![(o * parts + part) * p.inner + i] = acc;
      }
    }
  }
}
