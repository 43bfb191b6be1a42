/** CPU reference for the elementwise family: the same broadcasting index walk, in TypeScript. */
import type { HostArray } from '../kernel-spec.js';
import type { ElementwiseParams } from './elementwise.js';
import { ELEMENTWISE_FNS } from './elementwise.ops.js';

export function elementwiseReference(p: ElementwiseParams, buffers: HostArray[]): void {
  const fn = ELEMENTWISE_FNS[p.fn];
  const inputs = buffers.slice(0, fn.arity);
  const out = buffers[fn.arity]!;
  const rank = p.shape.length;
  let n = 1;
  for (const d of p.shape) n *= d;
  const s0 = Math.fround(p.s0 ?? 0);
  const s1 = Math.fround(p.s1 ?? 0);
  const offsets = [0, 0, 0];
  const values = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    if (p.flat) {
      offsets[0] = offsets[1] = offsets[2] = i;
    } else {
      offsets[0] = offsets[1] = offsets[2] = 0;
      let rem = i;
      for (let d = rank - 1; d >= 0; d--) {
        const coord = rem % p.shape[d]!;
        rem = Math.floor(rem / p.shape[d]!);
        for (let k = 0; k < fn.arity; k++) offsets[k]! += coord * p.inputStrides[k]![d]!;
      }
    }
    for (let k = 0; k < fn.arity; k++) values[k] = inputs[k]![offsets[k]!]!;
    out[i] = fn.ref(values[0]!, values[1]!, values[2]!, s0, s1);
  }
}
