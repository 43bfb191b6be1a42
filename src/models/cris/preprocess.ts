/**
 * CRIS image preprocessing and its inverse (docs/architectures.md §3.2, §3.8; CRIS.pytorch
 * utils/dataset.py `getTransformMat` + `cv2.warpAffine`, test.py). Pure TypeScript, no engine.
 *
 * Letterbox (keeps the aspect ratio): for an image w x h and network side S (416 in CRIS),
 *   scale = min(S / h, S / w), new size (w·scale, h·scale), offsets bx = (S − w·scale) / 2,
 *   by = (S − h·scale) / 2 (fractional allowed), forward map x' = scale·x + bx (OpenCV pixel
 *   coordinates: pixel centres at integers). Each network pixel (X, Y) samples the image at
 *   ((X − bx) / scale, (Y − by) / scale) with INTER_CUBIC and a constant border of the CLIP mean
 *   × 255 saturated to uint8 ([123, 117, 104]); the result is uint8 again, then
 *   (x / 255 − mean) / std with the CLIP statistics, CHW float32.
 * Inverse (postprocessing): each original pixel (x, y) samples the S x S probability map at
 *   (scale·x + bx, scale·y + by), INTER_CUBIC, border 0 (CRIS test.py), then the values are
 *   clamped to [0, 1] (cubic overshoot; CRIS thresholds the unclamped values, which gives the same
 *   masks for any threshold in (0, 1)).
 *
 * APPROXIMATION (§0.3): OpenCV's remap is reproduced in its structure, not bit for bit.
 * - Source coordinates are quantised to 1/32 pixel like warpAffine (AB_BITS = 10, INTER_BITS = 5:
 *   round to 1/1024, then to the nearest 1/32) — reproduced.
 * - Cubic weights are Keys' kernel with A = −0.75 (OpenCV's interpolateCubic) over taps i−1..i+2;
 *   taps outside the image take the border value; a window entirely outside gives the border
 *   value — reproduced.
 * - For uint8 images OpenCV uses 15-bit fixed-point weights and integer accumulation; here the
 *   weights and the sum are float64, rounded half away from zero and saturated to 0..255. Expect
 *   ±1 LSB differences on some pixels (the float32 inverse warp has no such difference beyond
 *   float rounding).
 */
import { toRgb } from '../image/image.js';
import type { ProbabilityMap } from '../image/postprocess.js';
import { CLIP_MEAN, CLIP_STD, type Rgb3 } from '../image/preprocess.js';
import { type Image, ImageError } from '../image/types.js';

/** CRIS's network side. */
export const CRIS_INPUT_SIZE = 416;

/** The letterbox affine map original -> network: x' = scale·x + offsetX, y' = scale·y + offsetY. */
export interface LetterboxTransform {
  /** Original image size. */
  width: number;
  height: number;
  /** Square network side S. */
  inputSize: number;
  scale: number;
  offsetX: number;
  offsetY: number;
}

export interface CrisPreprocessOptions {
  /** Network side S (default 416, CRIS's `input_size`); the model needs a multiple of 32. */
  inputSize?: number;
  /** Default CLIP statistics. */
  mean?: Rgb3;
  std?: Rgb3;
}

export interface CrisPreprocessedImage {
  /** NCHW float32 [1, 3, S, S]. */
  pixelValues: Float32Array;
  shape: [1, 3, number, number];
  /** Letterbox map (kept for the inverse in postprocessing). */
  transform: LetterboxTransform;
}

/** CRIS getTransformMat: the letterbox of a width x height image into inputSize². */
export function letterboxTransform(width: number, height: number, inputSize = CRIS_INPUT_SIZE): LetterboxTransform {
  for (const [name, v] of [['width', width], ['height', height], ['inputSize', inputSize]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ImageError('CRIS preprocess', `${name} must be a positive integer, got ${v}`);
  }
  const scale = Math.min(inputSize / height, inputSize / width);
  return { width, height, inputSize, scale, offsetX: (inputSize - width * scale) / 2, offsetY: (inputSize - height * scale) / 2 };
}

/** OpenCV interpolateCubic (A = −0.75): weights of taps i−1, i, i+1, i+2 at fraction t. */
export function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const w0 = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
  const w1 = ((A + 2) * t - (A + 3)) * t * t + 1;
  const w2 = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;
  return [w0, w1, w2, 1 - w0 - w1 - w2];
}

/** warpAffine's 1/32-pixel quantisation of a source coordinate a·o + b. */
function quantise(a: number, o: number, b: number): number {
  return Math.floor((Math.round(a * o * 1024) + Math.round(b * 1024) + 16) / 32) / 32;
}

/** Per output index: first tap and 4 weights for the map src = a·o + b. */
function taps(outSize: number, a: number, b: number): { first: Int32Array; weights: Float64Array } {
  const first = new Int32Array(outSize);
  const weights = new Float64Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    const s = quantise(a, o, b);
    const i = Math.floor(s);
    first[o] = i - 1;
    weights.set(cubicWeights(s - i), o * 4);
  }
  return { first, weights };
}

/**
 * Axis-aligned affine warp (src = a·dst + b per axis) of `planes` ([count, inH, inW] row-major)
 * to [count, outH, outW] with OpenCV INTER_CUBIC + BORDER_CONSTANT semantics (see the header).
 * `border[c]` is plane c's constant. Returns float64-accurate values in a Float32Array.
 */
export function warpCubic(
  planes: Float32Array,
  count: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  map: { ax: number; bx: number; ay: number; by: number },
  border: readonly number[],
): Float32Array {
  if (planes.length !== count * inH * inW) throw new ImageError('CRIS warp', `planes have ${planes.length} values, [${count}, ${inH}, ${inW}] expected`);
  const tx = taps(outW, map.ax, map.bx);
  const ty = taps(outH, map.ay, map.by);
  const out = new Float32Array(count * outH * outW);
  for (let c = 0; c < count; c++) {
    const base = c * inH * inW;
    const cval = border[c] ?? 0;
    for (let y = 0; y < outH; y++) {
      const y0 = ty.first[y]!;
      const yOutside = y0 >= inH || y0 + 4 <= 0;
      for (let x = 0; x < outW; x++) {
        const x0 = tx.first[x]!;
        const o = c * outH * outW + y * outW + x;
        if (yOutside || x0 >= inW || x0 + 4 <= 0) {
          out[o] = cval;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < 4; j++) {
          const yy = y0 + j;
          const wy = ty.weights[y * 4 + j]!;
          let row = 0;
          for (let i = 0; i < 4; i++) {
            const xx = x0 + i;
            const v = yy < 0 || yy >= inH || xx < 0 || xx >= inW ? cval : planes[base + yy * inW + xx]!;
            row += tx.weights[x * 4 + i]! * v;
          }
          sum += wy * row;
        }
        out[o] = sum;
      }
    }
  }
  return out;
}

/** CRIS preprocessing of an 8-bit image (grey/alpha converted to RGB like Pillow): see the header. */
export function crisPreprocess(image: Image, options: CrisPreprocessOptions = {}): CrisPreprocessedImage {
  const size = options.inputSize ?? CRIS_INPUT_SIZE;
  if (!Number.isInteger(size) || size < 32 || size % 32 !== 0) {
    throw new ImageError('CRIS preprocess', `inputSize must be a positive multiple of 32, got ${size}`);
  }
  const mean = options.mean ?? CLIP_MEAN;
  const std = options.std ?? CLIP_STD;
  const rgb = toRgb(image);
  const { width, height } = rgb;
  const t = letterboxTransform(width, height, size);
  const planes = new Float32Array(3 * width * height);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) planes[c * width * height + i] = rgb.data[i * 3 + c]!;
  }
  const border = mean.map((m) => Math.min(255, Math.max(0, Math.round(m * 255))));
  const warped = warpCubic(planes, 3, height, width, size, size, { ax: 1 / t.scale, bx: -t.offsetX / t.scale, ay: 1 / t.scale, by: -t.offsetY / t.scale }, border);
  const n = size * size;
  const pixelValues = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(mean[c]!);
    const s = Math.fround(std[c]!);
    for (let i = 0; i < n; i++) {
      const v = Math.min(255, Math.max(0, Math.round(warped[c * n + i]!)));
      pixelValues[c * n + i] = (Math.fround(v / 255) - m) / s;
    }
  }
  return { pixelValues, shape: [1, 3, size, size], transform: t };
}

/**
 * Inverse letterbox of probability maps [count, S, S] (S = transform.inputSize) to the original
 * size: one ProbabilityMap per plane, clamped to [0, 1] (see the header).
 */
export function unletterbox(probabilities: Float32Array, count: number, transform: LetterboxTransform): ProbabilityMap[] {
  const { width, height, inputSize: s, scale, offsetX, offsetY } = transform;
  const warped = warpCubic(probabilities, count, s, s, height, width, { ax: scale, bx: offsetX, ay: scale, by: offsetY }, new Array(count).fill(0));
  const maps: ProbabilityMap[] = [];
  const n = width * height;
  for (let k = 0; k < count; k++) {
    const data = warped.subarray(k * n, (k + 1) * n);
    for (let i = 0; i < n; i++) data[i] = Math.min(1, Math.max(0, data[i]!));
    maps.push({ width, height, data: warped.slice(k * n, (k + 1) * n) });
  }
  return maps;
}
