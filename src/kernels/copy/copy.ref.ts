/** CPU reference for the strided copy family (raw 32-bit words). */
import type { HostArray } from '../kernel-spec.js';
import { type CopyParams, copyCount } from './copy.js';

export function copyReference(p: CopyParams, [src, dst]: HostArray[]): void {
  const n = copyCount(p);
  const rank = p.shape.length;
  const pad = p.padBefore;
  for (let i = 0; i < n; i++) {
    let rem = i;
    let srcOff = p.srcOffset;
    let dstOff = p.dstOffset;
    let inside = true;
    for (let d = rank - 1; d >= 0; d--) {
      const c = rem % p.shape[d]!;
      rem = Math.floor(rem / p.shape[d]!);
      dstOff += c * p.dstStrides[d]!;
      const s = c * p.srcStep[d]! - (pad ? pad[d]! : 0);
      if (pad && (s < 0 || s >= p.srcShape[d]!)) inside = false;
      srcOff += Math.max(s, 0) * p.srcStrides[d]!;
    }
    dst![dstOff] = inside ? src![srcOff]! : (p.fillBits ?? 0);
  }
}
