/** CPU reference for the cast family: the host f16 helpers (same bits as the WGSL). */
import type { HostArray } from '../kernel-spec.js';
import type { CastParams } from './cast.js';
import { floatToHalfBits, halfBitsToFloat32 } from './half.js';

export function castReference(p: CastParams, [src, out]: HostArray[]): void {
  const { n } = p;
  if (p.to === 'f16') {
    for (let i = 0; i < n; i++) out![i] = floatToHalfBits(src![i]!);
    // The padding half of an odd-length tensor, as the kernel writes it.
    if (n % 2 === 1) out![n] = 0;
    return;
  }
  out!.set(halfBitsToFloat32(src as Uint16Array, n));
}
