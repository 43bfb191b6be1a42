/**
 * Drawing images, probability maps and mask overlays onto canvases. Canvases keep the image's own
 * pixel size; CSS scales them (pixelated), so small medical images stay crisp.
 */
import { type Image, PALETTE, type ProbabilityMap, overlay, thresholdMask, toRgba } from '../../src/models/image/index.js';

/** Puts an 8-bit image (any channel count) on the canvas at its own size. */
export function drawImage(canvas: HTMLCanvasElement, image: Image): void {
  const rgba = toRgba(image);
  canvas.width = rgba.width;
  canvas.height = rgba.height;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('webvlsm app: this browser gives no 2D canvas context');
  // A copy: ImageData wants a plain (non-shared) ArrayBuffer-backed array.
  ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba.data), rgba.width, rgba.height), 0, 0);
}

/** Colour stops of a perceptually ordered map (viridis, sampled): p = 0 dark blue, p = 1 yellow. */
const VIRIDIS: ReadonlyArray<readonly [number, number, number]> = [
  [68, 1, 84],
  [72, 40, 120],
  [62, 74, 137],
  [49, 104, 142],
  [38, 130, 142],
  [31, 158, 137],
  [53, 183, 121],
  [109, 205, 89],
  [180, 222, 44],
  [253, 231, 37],
];

function viridis(p: number): [number, number, number] {
  const x = Math.min(Math.max(p, 0), 1) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const t = x - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** The probability map in colour (viridis). */
export function heatmapImage(map: ProbabilityMap): Image {
  const data = new Uint8Array(map.width * map.height * 3);
  for (let i = 0; i < map.data.length; i++) {
    const [r, g, b] = viridis(map.data[i]!);
    data[i * 3] = r;
    data[i * 3 + 1] = g;
    data[i * 3 + 2] = b;
  }
  return { width: map.width, height: map.height, channels: 3, data };
}

/** The image with each prompt's thresholded mask blended in its palette colour. */
export function overlayImage(image: Image, maps: readonly ProbabilityMap[], threshold: number): Image {
  return overlay(
    image,
    maps.map((m, k) => ({ mask: thresholdMask(m, threshold), color: promptColor(k) })),
    0.55,
  );
}

/** The colour of prompt k (PALETTE[0] is the background of label maps). */
export function promptColor(k: number): readonly [number, number, number] {
  return PALETTE[1 + (k % (PALETTE.length - 1))]!;
}

/** Fraction of pixels above the threshold. */
export function coverage(map: ProbabilityMap, threshold: number): number {
  let n = 0;
  for (let i = 0; i < map.data.length; i++) if (map.data[i]! > threshold) n++;
  return n / map.data.length;
}
