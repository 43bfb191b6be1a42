/**
 * The look of the synthetic "modalities", on a float RGB canvas (0..255):
 *
 * - endoscopy: a pink, textured mucosa with faint vessels, specular glints and a vignette (the light
 *   of an endoscope); polyps are shaded domes coloured red, white, yellow or brown.
 * - ultrasound: grey tissue with Rayleigh speckle, layered texture and depth-dependent gain; lesions
 *   are black, grey (hypoechoic) or white (hyperechoic) with their own speckle; dark lesions get
 *   posterior acoustic enhancement below them. Written as one-channel PNGs.
 *
 * `shift` in [0, 1] moves every appearance parameter from the source domain (0) towards the shifted
 * one (1): an orange, coarser-textured, off-centre-lit, noisier and blurred endoscope; a brighter
 * ultrasound with coarser speckle, inverted depth gain and banding. Colour names stay true under
 * the shift (a red polyp is still the reddest object), so the same prompts describe both domains.
 */
import type { Image } from '../../models/image/index.js';
import { randInt, randRange } from '../data/random.js';
import { boxBlur, fbm, gaussian, speckle } from './noise.js';

export type Modality = 'endoscopy' | 'ultrasound';

export interface ModalityInfo {
  className: string;
  colours: readonly string[];
  /** Written as one-channel images. */
  grey: boolean;
}

export const MODALITIES: Readonly<Record<Modality, ModalityInfo>> = {
  endoscopy: { className: 'polyp', colours: ['red', 'white', 'yellow', 'brown'], grey: false },
  ultrasound: { className: 'lesion', colours: ['black', 'grey', 'white'], grey: true },
};

export interface Canvas {
  width: number;
  height: number;
  /** RGB per pixel, 0..255 floats. */
  rgb: Float32Array;
}

const lerp = (a: number, b: number, t: number) => a + (b - a) * t;

const POLYP_RGB: Readonly<Record<string, readonly [number, number, number]>> = {
  red: [178, 42, 50],
  white: [236, 226, 214],
  yellow: [224, 188, 72],
  brown: [118, 70, 40],
};

/** Lesion grey levels in the source and shifted domains, and the strength of their own speckle. */
const LESION_LEVEL: Readonly<Record<string, readonly [number, number, number]>> = {
  black: [12, 35, 0.3],
  grey: [58, 85, 0.5],
  white: [212, 236, 0.6],
};

export function renderBackground(modality: Modality, width: number, height: number, shift: number, rng: () => number): Canvas {
  const rgb = new Float32Array(width * height * 3);
  if (modality === 'endoscopy') {
    const base = [lerp(200, 214, shift), lerp(112, 150, shift), lerp(115, 100, shift)];
    const tex = fbm(width, height, width * lerp(0.22, 0.1, shift), 3, rng);
    const vessels = fbm(width, height, width * 0.3, 2, rng);
    const texAmp = lerp(0.35, 0.55, shift);
    for (let i = 0; i < width * height; i++) {
      const t = 1 + texAmp * tex[i]!;
      const vessel = Math.abs(vessels[i]!) < 0.035 ? 0.82 : 1;
      rgb[3 * i] = base[0]! * t;
      rgb[3 * i + 1] = base[1]! * t * vessel;
      rgb[3 * i + 2] = base[2]! * t * vessel;
    }
    const glints = randInt(rng, 3);
    for (let g = 0; g < glints; g++) {
      const gx = randRange(rng, 2, width - 2);
      const gy = randRange(rng, 2, height - 2);
      const gr = randRange(rng, 0.7, 1.4);
      for (let y = Math.floor(gy - 2); y <= gy + 2; y++) {
        for (let x = Math.floor(gx - 2); x <= gx + 2; x++) {
          const d = Math.hypot(x + 0.5 - gx, y + 0.5 - gy);
          if (d > gr + 0.5) continue;
          const a = Math.min(1, gr + 0.5 - d);
          for (let c = 0; c < 3; c++) rgb[3 * (y * width + x) + c] = lerp(rgb[3 * (y * width + x) + c]!, 250, a);
        }
      }
    }
  } else {
    const level = lerp(100, 135, shift);
    const tissue = fbm(width, height, width * 0.25, 3, rng);
    const layers = fbm(width, height, width * 0.12, 2, rng);
    const spk = speckle(width, height, shift < 0.5 ? 1 : 2, rng);
    const sm = lerp(0.6, 0.8, shift);
    const period = height * randRange(rng, 0.25, 0.4);
    const phase = randRange(rng, 0, 2 * Math.PI);
    for (let y = 0; y < height; y++) {
      const band = 0.12 * Math.sin((2 * Math.PI * y) / period + phase);
      for (let x = 0; x < width; x++) {
        const i = y * width + x;
        const v = level * (1 + 0.5 * tissue[i]! + band * (1 + layers[i]!)) * (1 - sm + sm * spk[i]!);
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
      }
    }
  }
  return { width, height, rgb };
}

/** Paints one object given its coverage map (see shapes.ts) and centre/extent. */
export function paintObject(
  canvas: Canvas,
  modality: Modality,
  colour: string,
  coverage: Float32Array,
  centre: { cx: number; cy: number; extent: number },
  shift: number,
  rng: () => number,
): void {
  const { width, height, rgb } = canvas;
  const { cx, cy, extent } = centre;
  if (modality === 'endoscopy') {
    const base = POLYP_RGB[colour];
    if (base === undefined) throw new Error(`synthetic endoscopy: unknown colour "${colour}"`);
    const tint = [lerp(1, 1.04, shift), lerp(1, 0.96, shift), lerp(1, 0.86, shift)];
    const tex = fbm(width, height, Math.max(2, extent * 0.6), 2, rng);
    for (let i = 0; i < width * height; i++) {
      const a = coverage[i]!;
      if (a === 0) continue;
      const x = (i % width) + 0.5;
      const y = Math.floor(i / width) + 0.5;
      const d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (extent * extent);
      // Dome shading, lit slightly from the top left, plus a faint surface texture.
      const lit = 0.82 + 0.3 * Math.max(0, 1 - d2) + 0.08 * ((cx - x) + (cy - y)) / extent;
      const t = 1 + 0.15 * tex[i]!;
      for (let c = 0; c < 3; c++) {
        const v = Math.min(255, base[c]! * tint[c]! * lit * t);
        rgb[3 * i + c] = lerp(rgb[3 * i + c]!, v, a);
      }
    }
    return;
  }
  const level = LESION_LEVEL[colour];
  if (level === undefined) throw new Error(`synthetic ultrasound: unknown colour "${colour}"`);
  const target = lerp(level[0], level[1], shift);
  const spk = speckle(width, height, 1, rng);
  const k = level[2];
  const enhance = colour === 'white' ? 0 : lerp(0.25, 0.1, shift);
  for (let i = 0; i < width * height; i++) {
    const x = (i % width) + 0.5;
    const y = Math.floor(i / width) + 0.5;
    const a = coverage[i]!;
    // Posterior acoustic enhancement: brighter tissue in a band below dark lesions.
    if (enhance > 0 && a < 1 && y > cy && y < cy + 2.5 * extent && Math.abs(x - cx) < 0.8 * extent) {
      const f = 1 + enhance * (1 - (y - cy) / (2.5 * extent)) * (1 - a);
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = rgb[3 * i + c]! * f;
    }
    if (a === 0) continue;
    const v = target * (1 - k + k * spk[i]!);
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = lerp(rgb[3 * i + c]!, v, a);
  }
}

/** Lighting, sensor noise, blur and gamma; returns the 8-bit image (one channel for ultrasound). */
export function finishCanvas(canvas: Canvas, modality: Modality, shift: number, rng: () => number): Image {
  const { width, height } = canvas;
  let rgb = canvas.rgb;
  const n = width * height;
  if (modality === 'endoscopy') {
    const lx = width * (0.5 + lerp(0, 0.2, shift) * (rng() < 0.5 ? -1 : 1));
    const ly = height * (0.5 - lerp(0, 0.12, shift));
    const strength = lerp(0.55, 0.35, shift);
    const dmax = Math.hypot(width, height) / 2;
    for (let i = 0; i < n; i++) {
      const d = Math.hypot((i % width) + 0.5 - lx, Math.floor(i / width) + 0.5 - ly) / dmax;
      const f = Math.max(0.15, 1 - strength * d * d);
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = rgb[3 * i + c]! * f;
    }
  } else {
    const top = lerp(1.15, 0.8, shift);
    const bottom = lerp(0.7, 1.1, shift);
    for (let i = 0; i < n; i++) {
      const y = Math.floor(i / width);
      const f = lerp(top, bottom, y / Math.max(1, height - 1)) * (1 + 0.12 * shift * Math.sin((2 * Math.PI * y) / 7));
      for (let c = 0; c < 3; c++) rgb[3 * i + c] = rgb[3 * i + c]! * f;
    }
  }
  const sigma = modality === 'endoscopy' ? lerp(2.5, 8, shift) : lerp(3, 6, shift);
  for (let i = 0; i < n; i++) {
    const e = sigma * gaussian(rng);
    for (let c = 0; c < 3; c++) rgb[3 * i + c] = rgb[3 * i + c]! + (modality === 'endoscopy' ? sigma * gaussian(rng) : e);
  }
  const blur = modality === 'endoscopy' ? lerp(0, 0.6, shift) : 0;
  if (blur > 0) {
    const out = new Float32Array(rgb.length);
    for (let c = 0; c < 3; c++) {
      const plane = new Float32Array(n);
      for (let i = 0; i < n; i++) plane[i] = rgb[3 * i + c]!;
      const b = boxBlur(plane, width, height);
      for (let i = 0; i < n; i++) out[3 * i + c] = lerp(plane[i]!, b[i]!, blur);
    }
    rgb = out;
  }
  const gamma = modality === 'endoscopy' ? lerp(1, 0.85, shift) : lerp(1, 1.15, shift);
  const to8 = (v: number) => Math.round(255 * Math.min(1, Math.max(0, v / 255)) ** gamma);
  if (MODALITIES[modality].grey) {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = to8(rgb[3 * i]!);
    return { width, height, channels: 1, data };
  }
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < 3 * n; i++) data[i] = to8(rgb[i]!);
  return { width, height, channels: 3, data };
}
