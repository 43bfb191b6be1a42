/**
 * Seeded randomness for datasets: every random choice (epoch order, the prompt drawn for a sample,
 * a synthetic image) comes from a generator seeded by a hash of (seed, what, epoch, index), so it
 * depends only on those numbers, never on the order in which samples are visited. A run resumed in
 * the middle of an epoch therefore sees exactly the batches and prompts it would have seen.
 */
import { createRng } from '../../models/nn/init.js';

export { createRng };

/** A 32-bit hash of integers and strings (FNV-1a over the parts, then a murmur3 finaliser). */
export function hashSeed(...parts: Array<number | string>): number {
  let h = 0x811c9dc5;
  const mix = (byte: number) => {
    h ^= byte & 0xff;
    h = Math.imul(h, 0x01000193);
  };
  for (const part of parts) {
    if (typeof part === 'number') {
      // Integers in [-2^53, 2^53]: hash the low and high 32-bit words.
      const lo = part >>> 0;
      const hi = Math.floor(part / 4294967296) >>> 0;
      for (const word of [lo, hi]) for (let s = 0; s < 32; s += 8) mix(word >>> s);
      mix(0x6e); // type tag keeps 1 and '1' apart
    } else {
      for (let i = 0; i < part.length; i++) {
        const c = part.charCodeAt(i);
        mix(c);
        mix(c >>> 8);
      }
      mix(0x73);
    }
    mix(0xff); // part separator: ('ab', 'c') != ('a', 'bc')
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform [0, 1) generator seeded by hashSeed(...parts). */
export function rngFor(...parts: Array<number | string>): () => number {
  return createRng(hashSeed(...parts));
}

/** A uniform integer in [0, n). */
export function randInt(rng: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n));
}

/** A uniform number in [lo, hi). */
export function randRange(rng: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Fisher-Yates shuffle in place; returns `items`. */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
