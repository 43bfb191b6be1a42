// Segmentation postprocessing: logits -> probabilities at the original image size -> binary masks,
// label maps, PNG masks and colour overlays.
//
// logitsToProbabilities() resizes the logits with PyTorch's bilinear interpolation
// (F.interpolate(logits[:, None], size=(H, W), mode='bilinear', align_corners=False), no antialiasing)
// and applies the sigmoid afterwards, so thresholding the probability at t is thresholding the
// interpolated logit at log(t / (1 - t)). Masks are `p > threshold` (strict), stored as 0/255 grey.

import { encodePng } from './png-encode.js';
import { resizeBilinearPlanes } from './resize.js';
import { type Image, ImageError } from './types.js';

/** A per-pixel probability map (row-major, width * height values in [0, 1]). */
export interface ProbabilityMap {
  width: number;
  height: number;
  data: Float32Array;
}

export type Rgb = readonly [number, number, number];

/** Distinct colours for label maps and overlays (label i uses PALETTE[i % length]). */
export const PALETTE: readonly Rgb[] = [
  [230, 25, 75],
  [60, 180, 75],
  [0, 130, 200],
  [255, 225, 25],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
];

/** Elementwise logistic sigmoid, numerically safe for large |x|. */
export function sigmoid(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    out[i] = v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));
  }
  return out;
}

/**
 * Logits [count, inH, inW] (count = number of prompts, 1 by default) -> one probability map per plane at
 * width x height (the original image size).
 */
export function logitsToProbabilities(
  logits: Float32Array,
  inH: number,
  inW: number,
  width: number,
  height: number,
  count = 1,
): ProbabilityMap[] {
  if (logits.length !== count * inH * inW) {
    throw new ImageError('postprocess', `logits have ${logits.length} values, [${count}, ${inH}, ${inW}] expected`);
  }
  const resized = inH === height && inW === width ? logits : resizeBilinearPlanes(logits, count, inH, inW, height, width);
  const probs = sigmoid(resized);
  const maps: ProbabilityMap[] = [];
  for (let i = 0; i < count; i++) {
    maps.push({ width, height, data: probs.slice(i * width * height, (i + 1) * width * height) });
  }
  return maps;
}

/** Binary mask (grey, 0 or 255) of `p > threshold`. */
export function thresholdMask(map: ProbabilityMap, threshold = 0.5): Image {
  const data = new Uint8Array(map.width * map.height);
  for (let i = 0; i < data.length; i++) data[i] = map.data[i]! > threshold ? 255 : 0;
  return { width: map.width, height: map.height, channels: 1, data };
}

/** Grey image of round(p * 255) (a soft mask). */
export function probabilityImage(map: ProbabilityMap): Image {
  const data = new Uint8Array(map.width * map.height);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(Math.min(Math.max(map.data[i]!, 0), 1) * 255);
  return { width: map.width, height: map.height, channels: 1, data };
}

/** 8-bit grey PNG of the binary mask `p > threshold` (0 / 255). */
export function maskPng(map: ProbabilityMap, threshold = 0.5): Uint8Array {
  return encodePng(thresholdMask(map, threshold));
}

/**
 * Label map for several prompts: 0 where no map exceeds `threshold`, else 1 + the index of the map
 * with the highest probability (first one on ties).
 */
export function labelMap(maps: ProbabilityMap[], threshold = 0.5): Image {
  if (maps.length === 0 || maps.length > 255) {
    throw new ImageError('postprocess', `labelMap needs 1..255 maps, got ${maps.length}`);
  }
  const { width, height } = maps[0]!;
  for (const m of maps) {
    if (m.width !== width || m.height !== height) throw new ImageError('postprocess', 'labelMap: maps differ in size');
  }
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) {
    let best = threshold;
    let label = 0;
    for (let k = 0; k < maps.length; k++) {
      const p = maps[k]!.data[i]!;
      if (p > best) {
        best = p;
        label = k + 1;
      }
    }
    data[i] = label;
  }
  return { width, height, channels: 1, data };
}

/** One overlay layer: a mask (grey Image, 0..255) or probability map, and its colour. */
export interface OverlayLayer {
  mask: Image | ProbabilityMap;
  color: Rgb;
}

function weightAt(mask: Image | ProbabilityMap, i: number): number {
  if ('channels' in mask) {
    if (mask.channels !== 1) throw new ImageError('postprocess', 'overlay masks must have one channel');
    return mask.data[i]! / 255;
  }
  return Math.min(Math.max(mask.data[i]!, 0), 1);
}

/**
 * RGBA overlay: each layer blends its colour over the image with weight opacity * mask (mask in 0..1),
 * layers in order. The image's alpha (if any) is kept; images without alpha get 255.
 */
export function overlay(image: Image, layers: OverlayLayer[], opacity = 0.5): Image {
  const { width, height, channels: C, data } = image;
  for (const layer of layers) {
    if (layer.mask.width !== width || layer.mask.height !== height) {
      throw new ImageError(
        'postprocess',
        `overlay mask is ${layer.mask.width}x${layer.mask.height}, the image ${width}x${height}`,
      );
    }
  }
  const n = width * height;
  const out = new Uint8Array(n * 4);
  const px = new Float64Array(3);
  for (let i = 0; i < n; i++) {
    const s = i * C;
    if (C <= 2) px[0] = px[1] = px[2] = data[s]!;
    else {
      px[0] = data[s]!;
      px[1] = data[s + 1]!;
      px[2] = data[s + 2]!;
    }
    for (const layer of layers) {
      const a = opacity * weightAt(layer.mask, i);
      if (a === 0) continue;
      for (let c = 0; c < 3; c++) px[c] = (1 - a) * px[c]! + a * layer.color[c]!;
    }
    for (let c = 0; c < 3; c++) out[4 * i + c] = Math.round(px[c]!);
    out[4 * i + 3] = C === 2 || C === 4 ? data[s + C - 1]! : 255;
  }
  return { width, height, channels: 4, data: out };
}

/** Overlay of a label map (0 = background) with PALETTE colours (label k uses palette[(k - 1) % length]). */
export function overlayLabels(image: Image, labels: Image, opacity = 0.5, palette: readonly Rgb[] = PALETTE): Image {
  const layers: OverlayLayer[] = [];
  const max = labels.data.reduce((m, v) => Math.max(m, v), 0);
  for (let k = 1; k <= max; k++) {
    const data = new Uint8Array(labels.data.length);
    for (let i = 0; i < data.length; i++) data[i] = labels.data[i] === k ? 255 : 0;
    const mask: Image = { width: labels.width, height: labels.height, channels: 1, data };
    layers.push({ mask, color: palette[(k - 1) % palette.length]! });
  }
  return overlay(image, layers, opacity);
}

/** RGBA PNG of overlay(image, layers, opacity). */
export function overlayPng(image: Image, layers: OverlayLayer[], opacity = 0.5): Uint8Array {
  return encodePng(overlay(image, layers, opacity));
}
