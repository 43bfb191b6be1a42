/**
 * Segmenter: what the training loop, the evaluator and the reports need of a model, whatever its
 * kind (CLIPSeg, CRIS, the image-only UNet). A segmenter owns its module and its preprocessing;
 * it maps a batch of images (any sizes) and prompts to logits at its fixed input size, and says
 * which parameters each freeze policy trains.
 *
 * Masks are compared at each image's ORIGINAL resolution (the study's protocol): predictions are
 * resized back with `predictProbabilities`.
 */
import { type Module, type Tensor, Tensor as T, exclusiveScopeAsync, interpolate, noGrad, reshape } from '../engine/index.js';
import { type Image, type ProbabilityMap, logitsToProbabilities, resizePil, toRgb } from '../models/image/index.js';
import type { Rgb3 } from '../models/image/preprocess.js';

/**
 * Which parameters a run trains. 'full': all; 'decoder-only': the decoder (CLIPSeg's decoder,
 * CRIS's neck/decoder/projector, all of the UNet); 'frozen-image' / 'frozen-text': all but that
 * encoder.
 */
export type FreezePolicy = 'full' | 'decoder-only' | 'frozen-image' | 'frozen-text';
export const FREEZE_POLICIES: readonly FreezePolicy[] = ['full', 'decoder-only', 'frozen-image', 'frozen-text'];

export type SegmenterKind = 'clipseg' | 'cris' | 'unet';

export interface Segmenter {
  readonly kind: SegmenterKind;
  readonly module: Module;
  /** False for image-only models: prompts are ignored. */
  readonly usesText: boolean;
  /** Model input [height, width]; logits come out at this size. */
  readonly inputSize: readonly [number, number];
  /** Probability threshold for binary masks. */
  readonly threshold: number;
  /** Normalised pixels [B, 3, H, W] on the model's device (resized to inputSize on the host). */
  pixels(images: readonly Image[]): Tensor;
  /**
   * Mask logits [B, H, W] at inputSize. With `train`, the parts that `freeze` trains are recorded
   * for autograd; without it nothing is recorded.
   */
  logits(pixels: Tensor, prompts: readonly string[], options?: { train?: boolean; freeze?: FreezePolicy }): Tensor;
  /** The parameters trained under `freeze`, with their checkpoint names. */
  trainable(freeze: FreezePolicy): [string, Tensor][];
  /** What a checkpoint needs to rebuild this model: its kind and its config JSON. */
  describe(): { kind: SegmenterKind; config: Record<string, unknown> };
}

/**
 * Host preprocessing shared by the segmenters: RGB, Pillow bilinear resize to [h, w], x/255,
 * (x - mean) / std, CHW, stacked into one batch tensor on `device`.
 */
export function imagesToPixels(images: readonly Image[], size: readonly [number, number], mean: Rgb3, std: Rgb3, device: T['device']): Tensor {
  const [h, w] = size;
  const plane = h * w;
  const data = new Float32Array(images.length * 3 * plane);
  images.forEach((input, b) => {
    const rgb = toRgb(input);
    const img = rgb.width === w && rgb.height === h ? rgb : resizePil(rgb, w, h, 'bilinear');
    const px = img.data;
    const base = b * 3 * plane;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) data[base + c * plane + i] = (px[i * 3 + c]! / 255 - mean[c]!) / std[c]!;
    }
  });
  return T.fromArray(data, [images.length, 3, h, w], { device });
}

/** Logits [B, h, w] -> [B, H, W] by bilinear resize (align_corners false), as CLIPSeg's code upsamples. */
export function logitsToSize(logits: Tensor, size: readonly [number, number]): Tensor {
  const [b, h, w] = logits.shape as [number, number, number];
  if (h === size[0] && w === size[1]) return logits;
  const up = interpolate(reshape(logits, [b, 1, h, w]), { size: [size[0], size[1]], mode: 'bilinear' });
  return reshape(up, [b, size[0], size[1]]);
}

/**
 * Probability maps at each image's original size (one per image/prompt pair), without recording.
 * Runs in batches of `batchSize`.
 */
export async function predictProbabilities(
  segmenter: Segmenter,
  images: readonly Image[],
  prompts: readonly string[],
  batchSize = 16,
): Promise<ProbabilityMap[]> {
  if (images.length !== prompts.length) {
    throw new Error(`predictProbabilities: ${images.length} images but ${prompts.length} prompts`);
  }
  const [h, w] = segmenter.inputSize;
  const maps: ProbabilityMap[] = [];
  for (let start = 0; start < images.length; start += batchSize) {
    const imgs = images.slice(start, start + batchSize);
    const logits = await exclusiveScopeAsync(async () => {
      const out = noGrad(() => segmenter.logits(segmenter.pixels(imgs), prompts.slice(start, start + batchSize)));
      return (await out.read()) as Float32Array;
    });
    imgs.forEach((img, i) => {
      const plane = logits.subarray(i * h * w, (i + 1) * h * w);
      maps.push(logitsToProbabilities(plane, h, w, img.width, img.height, 1)[0]!);
    });
  }
  return maps;
}
