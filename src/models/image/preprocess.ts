// CLIPSeg image preprocessing, as HF's CLIPSegProcessor (= ViTImageProcessor, the "slow" PIL path):
//   RGB uint8 image -> Pillow resize to size x size (BILINEAR, aspect ratio NOT kept, no crop)
//   -> x * rescale_factor (1/255, float64 then stored as float32) -> (x - mean) / std in float32
//   -> CHW, batch of 1: Float32Array [1, 3, S, S].
// Defaults are those of the CIDAS hub preprocessor_config.json (docs/architectures.md §1.8):
// size 352, resample 2 (bilinear), ImageNet mean [0.485, 0.456, 0.406] / std [0.229, 0.224, 0.225].
// (The hub configs used mean = std = 0.5 before early 2023, and CLIP's own statistics are
// CLIP_MEAN/CLIP_STD; pass them through the options or preprocessOptionsFromConfig().)
// Grey or alpha images are first converted to RGB as Pillow's convert('RGB') does (alpha dropped).

import { toRgb } from './image.js';
import { type PilFilter, resizePil } from './resize.js';
import { type Image, ImageError } from './types.js';

export type Rgb3 = readonly [number, number, number];

export const IMAGENET_MEAN: Rgb3 = [0.485, 0.456, 0.406];
export const IMAGENET_STD: Rgb3 = [0.229, 0.224, 0.225];
export const CLIP_MEAN: Rgb3 = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: Rgb3 = [0.26862954, 0.26130258, 0.27577711];

export interface ClipSegPreprocessOptions {
  /** Output side (square) or explicit height/width; default 352. */
  size?: number | { height: number; width: number };
  /** Default ImageNet statistics (the CIDAS hub configs). */
  mean?: Rgb3;
  std?: Rgb3;
  /** Pillow filter used to resize (default 'bilinear' = HF resample 2). */
  resample?: PilFilter;
  /** Default 1 / 255. */
  rescaleFactor?: number;
  doResize?: boolean;
  doRescale?: boolean;
  doNormalize?: boolean;
}

export interface PreprocessedImage {
  /** NCHW float32, shape [1, 3, height, width]. */
  pixelValues: Float32Array;
  shape: [1, 3, number, number];
  /** Size of the image before resizing (what postprocessing maps back to). */
  originalWidth: number;
  originalHeight: number;
}

const PIL_RESAMPLE: Record<number, PilFilter> = { 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

/**
 * Reads HF's preprocessor_config.json (already parsed) into options. Unknown keys are ignored; a
 * resample value Pillow calls NEAREST (0) is rejected (not implemented).
 */
export function preprocessOptionsFromConfig(config: Record<string, unknown>): ClipSegPreprocessOptions {
  const options: ClipSegPreprocessOptions = {};
  const size = config['size'];
  if (typeof size === 'number') options.size = size;
  else if (size !== null && typeof size === 'object') {
    const s = size as Record<string, unknown>;
    if (typeof s['height'] === 'number' && typeof s['width'] === 'number') {
      options.size = { height: s['height'], width: s['width'] };
    } else if (typeof s['shortest_edge'] === 'number') {
      throw new ImageError(
        'preprocessor_config.json',
        'size.shortest_edge (resize keeping aspect ratio) is not supported',
      );
    }
  }
  const triple = (key: string): Rgb3 | undefined => {
    const v = config[key];
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number')) {
      return [v[0] as number, v[1] as number, v[2] as number];
    }
    if (typeof v === 'number') return [v, v, v];
    return undefined;
  };
  const mean = triple('image_mean');
  const std = triple('image_std');
  if (mean) options.mean = mean;
  if (std) options.std = std;
  const resample = config['resample'];
  if (typeof resample === 'number') {
    const f = PIL_RESAMPLE[resample];
    if (f === undefined) throw new ImageError('preprocessor_config.json', `resample=${resample} is not supported`);
    options.resample = f;
  }
  if (typeof config['rescale_factor'] === 'number') options.rescaleFactor = config['rescale_factor'];
  for (const [key, field] of [
    ['do_resize', 'doResize'],
    ['do_rescale', 'doRescale'],
    ['do_normalize', 'doNormalize'],
  ] as const) {
    if (typeof config[key] === 'boolean') options[field] = config[key] as boolean;
  }
  return options;
}

/** HF CLIPSegProcessor image preprocessing; `options` may be just the output size. */
export function clipsegPreprocess(image: Image, options: number | ClipSegPreprocessOptions = {}): PreprocessedImage {
  const o: ClipSegPreprocessOptions = typeof options === 'number' ? { size: options } : options;
  const size = o.size ?? 352;
  const outH = typeof size === 'number' ? size : size.height;
  const outW = typeof size === 'number' ? size : size.width;
  const mean = o.mean ?? IMAGENET_MEAN;
  const std = o.std ?? IMAGENET_STD;
  const rescale = o.doRescale === false ? 1 : (o.rescaleFactor ?? 1 / 255);
  const normalize = o.doNormalize !== false;
  if (std.some((s) => s === 0)) throw new ImageError('preprocess', 'std contains 0');
  // Grey (and grey + alpha) images are resized as one channel and replicated afterwards: the resampler
  // treats channels independently, so this equals resizing convert('RGB') and is 3x cheaper.
  let src: Image = image.channels <= 2 ? greyChannel(image) : toRgb(image);
  if (o.doResize !== false) src = resizePil(src, outW, outH, o.resample ?? 'bilinear');
  const { width: W, height: H, channels: C } = src;
  const plane = W * H;
  const pixelValues = new Float32Array(3 * plane);
  const m32 = mean.map(Math.fround);
  const s32 = std.map(Math.fround);
  for (let c = 0; c < 3; c++) {
    // Per channel value table: numpy's float32 arithmetic, one rounding per operation.
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      const x = Math.fround(v * rescale);
      table[v] = normalize ? Math.fround(Math.fround(x - m32[c]!) / s32[c]!) : x;
    }
    const out = pixelValues.subarray(c * plane, (c + 1) * plane);
    const k = C === 1 ? 0 : c;
    for (let i = 0; i < plane; i++) out[i] = table[src.data[C * i + k]!]!;
  }
  return { pixelValues, shape: [1, 3, H, W], originalWidth: image.width, originalHeight: image.height };
}

function greyChannel(image: Image): Image {
  if (image.channels === 1) return image;
  const data = new Uint8Array(image.width * image.height);
  for (let i = 0; i < data.length; i++) data[i] = image.data[i * image.channels]!;
  return { width: image.width, height: image.height, channels: 1, data };
}
