/** CPU reference for the dropout family: the identical hash, bit for bit (Math.imul wraps like u32). */
import type { HostArray } from '../kernel-spec.js';
import type { DropoutParams } from './dropout.js';

function lowbias32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The keep threshold on 24 random bits: an element is kept when (r >> 8) >= threshold. */
export function dropoutThreshold(p: number): number {
  return Math.min(2 ** 24, Math.max(0, Math.round(p * 2 ** 24)));
}

/** Multiplier of kept values: 1 / (1 - p), or 0 when everything is dropped. */
export function dropoutScale(p: number): number {
  return p >= 1 ? 0 : 1 / (1 - p);
}

/** Whether element i is kept for this seed and threshold (see dropout.ts). */
export function dropoutKeeps(seed: number, threshold: number, i: number): boolean {
  const r = lowbias32((lowbias32(i) ^ lowbias32((seed ^ 0x9e3779b9) >>> 0)) >>> 0);
  return r >>> 8 >= threshold;
}

export function dropoutReference(p: DropoutParams, [x, out]: HostArray[]): void {
  // Same threshold and f32 scale as the uniforms carry.
  const threshold = dropoutThreshold(p.p);
  const scale = Math.fround(dropoutScale(p.p));
  const seed = p.seed >>> 0;
  for (let i = 0; i < p.n; i++) out![i] = dropoutKeeps(seed, threshold, i) ? x![i]! * scale : 0;
}
