/**
 * Seeded noise fields for synthetic textures (row-major Float32Array, one value per pixel).
 */
import { randInt } from '../data/random.js';

/** Smooth value noise in about [0, 1]: random lattice values every `cell` pixels, smoothstep-blended. */
export function valueNoise(width: number, height: number, cell: number, rng: () => number): Float32Array {
  const cols = Math.ceil(width / cell) + 2;
  const rows = Math.ceil(height / cell) + 2;
  const lattice = new Float32Array(cols * rows);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng();
  const ox = rng() * cell;
  const oy = rng() * cell;
  const out = new Float32Array(width * height);
  const smooth = (t: number) => t * t * (3 - 2 * t);
  for (let y = 0; y < height; y++) {
    const fy = (y + oy) / cell;
    const y0 = Math.floor(fy);
    const ty = smooth(fy - y0);
    for (let x = 0; x < width; x++) {
      const fx = (x + ox) / cell;
      const x0 = Math.floor(fx);
      const tx = smooth(fx - x0);
      const v00 = lattice[y0 * cols + x0]!;
      const v10 = lattice[y0 * cols + x0 + 1]!;
      const v01 = lattice[(y0 + 1) * cols + x0]!;
      const v11 = lattice[(y0 + 1) * cols + x0 + 1]!;
      out[y * width + x] = (v00 * (1 - tx) + v10 * tx) * (1 - ty) + (v01 * (1 - tx) + v11 * tx) * ty;
    }
  }
  return out;
}

/** Fractal sum of value noise (octaves halve the cell size and the amplitude), centred on 0. */
export function fbm(width: number, height: number, cell: number, octaves: number, rng: () => number): Float32Array {
  const out = new Float32Array(width * height);
  let amp = 1;
  let norm = 0;
  for (let o = 0; o < octaves; o++) {
    const layer = valueNoise(width, height, Math.max(1, cell / 2 ** o), rng);
    for (let i = 0; i < out.length; i++) out[i]! += amp * (layer[i]! - 0.5);
    norm += amp;
    amp /= 2;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= norm;
  return out;
}

/** Standard normal samples (Box-Muller). */
export function gaussian(rng: () => number): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Ultrasound-like speckle: Rayleigh magnitudes with mean 1, box-blurred `passes` times. */
export function speckle(width: number, height: number, passes: number, rng: () => number): Float32Array {
  let field: Float32Array = new Float32Array(width * height);
  const rayleighMean = Math.sqrt(Math.PI / 2);
  for (let i = 0; i < field.length; i++) field[i] = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) / rayleighMean;
  for (let p = 0; p < passes; p++) field = boxBlur(field, width, height);
  return field;
}

/** 3x3 box blur with edge clamping. */
export function boxBlur(src: Float32Array, width: number, height: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = Math.min(height - 1, Math.max(0, y + dy));
        for (let dx = -1; dx <= 1; dx++) {
          const xx = Math.min(width - 1, Math.max(0, x + dx));
          s += src[yy * width + xx]!;
        }
      }
      out[y * width + x] = s / 9;
    }
  }
  return out;
}

/** Picks one element uniformly. */
export function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[randInt(rng, items.length)]!;
}
