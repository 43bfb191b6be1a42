/**
 * Binary masks: the one mask type of datasets, prompt attributes and metrics.
 *
 * Binarisation (what MedVLSM does, and our choice). MedVLSM opens a mask with Pillow, converts it
 * with torchvision's ToTensor (uint8 / 255) and keeps the first channel; it never thresholds the
 * truth. Its MONAI 1.1.0 Dice then uses that float map directly (sum(y * pred), sum(y)), so 0/255
 * masks count as 0/1 and any in-between value (JPEG masks such as Kvasir-SEG's) counts
 * fractionally; newer MONAI (>= 1.2) tests `y == 1`, i.e. only 255 is foreground. We binarise the
 * first channel with `value > 127` (= ToTensor value > 0.5): identical to both on true 0/255 masks,
 * and the nearest binary reading of JPEG masks, whose compression noise would flood a `> 0` test.
 * Masks whose largest value is 1..127 (label maps stored as 0/1) would come out empty; the dataset
 * check reports them instead (use maskThreshold: 0 for such datasets).
 *
 * Layout: data[y * width + x], 1 = foreground, 0 = background.
 */
import type { Image } from '../../models/image/index.js';

export interface BinaryMask {
  width: number;
  height: number;
  /** 0 or 1 per pixel, row-major, top row first. */
  data: Uint8Array;
}

/** Default binarisation threshold on 8-bit mask values: foreground when value > 127. */
export const MASK_THRESHOLD = 127;

export function emptyMask(width: number, height: number): BinaryMask {
  return { width, height, data: new Uint8Array(width * height) };
}

/** Foreground where the FIRST channel is > threshold (MedVLSM keeps channel 0 of the mask). */
export function binarizeMask(image: Image, threshold = MASK_THRESHOLD): BinaryMask {
  const { width, height, channels, data } = image;
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * channels]! > threshold ? 1 : 0;
  return { width, height, data: out };
}

/** The largest first-channel value of an 8-bit image (0 for an all-black mask). */
export function maxFirstChannel(image: Image): number {
  let max = 0;
  for (let i = 0; i < image.data.length; i += image.channels) if (image.data[i]! > max) max = image.data[i]!;
  return max;
}

/**
 * Foreground where value > threshold: probabilities with threshold 0.5 (MedVLSM's `sigmoid > 0.5`),
 * or logits with threshold 0 (the same pixels).
 */
export function maskFromValues(
  values: ArrayLike<number>,
  width: number,
  height: number,
  threshold = 0.5,
): BinaryMask {
  if (values.length !== width * height) {
    throw new Error(`maskFromValues: ${values.length} values for a ${width}x${height} mask`);
  }
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = values[i]! > threshold ? 1 : 0;
  return { width, height, data: out };
}

/**
 * Nearest-neighbour resize with pixel-centre sampling: src = floor((dst + 0.5) * in / out), as
 * torchvision's NEAREST_EXACT (and Pillow's NEAREST), which MedVLSM uses for masks.
 */
export function resizeMaskNearest(mask: BinaryMask, width: number, height: number): BinaryMask {
  if (width === mask.width && height === mask.height) return { width, height, data: mask.data.slice() };
  const out = new Uint8Array(width * height);
  const sx = mask.width / width;
  const sy = mask.height / height;
  for (let y = 0; y < height; y++) {
    const yy = Math.min(mask.height - 1, Math.floor((y + 0.5) * sy));
    for (let x = 0; x < width; x++) {
      const xx = Math.min(mask.width - 1, Math.floor((x + 0.5) * sx));
      out[y * width + x] = mask.data[yy * mask.width + xx]!;
    }
  }
  return { width, height, data: out };
}

/** A one-channel 8-bit image, 0 / 255 (for PNG encoding). */
export function maskToImage(mask: BinaryMask): Image {
  const data = new Uint8Array(mask.data.length);
  for (let i = 0; i < data.length; i++) data[i] = mask.data[i] ? 255 : 0;
  return { width: mask.width, height: mask.height, channels: 1, data };
}

/** Number of foreground pixels. */
export function maskArea(mask: BinaryMask): number {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) n += mask.data[i] ? 1 : 0;
  return n;
}
