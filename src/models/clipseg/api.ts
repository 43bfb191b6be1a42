/**
 * Zero-shot segmentation with CLIPSeg, in the style of transformers.js:
 *
 *   const model = await CLIPSeg.fromPretrained('models/clipseg-rd64-refined', { device });
 *   const result = await model.segment(pngBytes, ['a polyp', 'a surgical instrument']);
 *   result.probabilities[0].data;  // Float32Array, width * height, at the image's own size
 *   result.masks[0];               // grey Image, 255 where p > threshold
 *   result.labels;                 // 0 = background, k = 1 + index of the most likely prompt
 *   model.dispose();
 *
 * `fromPretrained` takes a Hugging Face folder path (Node) or a map of file names to contents or URLs
 * (browsers; pretrained-files.ts), reading config.json, the weights, the tokenizer and
 * preprocessor_config.json as pretrained-load.ts describes. `device` is any engine Device (obtain a
 * WebGPU one with engine/platform's requestNodeDevice() / requestBrowserDevice()); without it the
 * default device (setDefaultDevice) is used, or a CPU device when none is set. `precision: 'f16'`
 * keeps every Linear weight as f16 (half their memory; computed in f32; inference only).
 *
 * `segment(image, prompts)` runs ONE forward for all prompts: the vision tower sees the image once
 * (batch 1), the text tower and decoder see the P prompts as a batch, and the decoder broadcasts
 * the image's activations against the P conditions, as HF's CLIPSeg does with a repeated image.
 * Then (postprocess.ts) the [P, 352, 352] logits are resized bilinearly to the original size and
 * passed through the sigmoid; masks are `p > threshold` (default 0.5).
 *
 * Prompts, as `clip.tokenize` treats them:
 * - an empty (or whitespace-only) prompt tokenizes to BOS + EOS and is allowed: the condition is
 *   the text tower's embedding of an empty text (a valid, if uninformative, prompt);
 * - a prompt longer than the context (77 tokens with BOS/EOS) keeps BOS, its first 75 text tokens
 *   and EOS, and the result carries a warning; with `{ truncate: false }` it is an error instead.
 * Rows are padded to the longest prompt of the call, with an attention mask: the text tower is
 * causal and pools at EOS, so padding never changes a prompt's embedding.
 *
 * Images: encoded PNG/JPEG bytes (ArrayBuffer, Uint8Array, Blob), a decoded Image (models/image
 * types) or an ImageData-like RGBA object. EXIF orientation is applied like HF's load_image.
 * Any size from 1x1 up to the decoder limits (16384 per side, 2^27 pixels) works: the forward
 * always runs at the preprocessor's size; only the resize back scales with the image.
 */
import { CpuDevice, type Device, type Precision, Tensor, getDefaultDevice, keep, noGrad, exclusiveScopeAsync, requireShaderF16 } from '../../engine/index.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import {
  type ClipSegPreprocessOptions,
  type Image,
  ImageError,
  type ProbabilityMap,
  applyOrientation,
  clipsegPreprocess,
  decodeImage,
  labelMap,
  logitsToProbabilities,
  thresholdMask,
} from '../image/index.js';
import { type ClipSegConfig, headUpsampling } from './config.js';
import { ClipSegForImageSegmentation } from './model.js';
import { type ModelFiles, type PretrainedFileMap, openModelFiles } from './pretrained-files.js';
import { loadClipSegWeights, readClipSegConfig, readClipSegTokenizer, readPreprocessOptions } from './pretrained-load.js';

export interface FromPretrainedOptions {
  /** Where the model runs (default: the engine's default device, else a new CPU device). */
  device?: Device;
  /** Use this tokenizer instead of the folder's files. */
  tokenizer?: ClipTokenizer;
  /** Overrides of preprocessor_config.json (size, mean, std, ...). */
  preprocess?: ClipSegPreprocessOptions;
  /**
   * 'f16' stores every Linear weight as f16 (half their bytes; Module.toPrecision), computing in
   * f32: inference only. Needs the WebGPU `shader-f16` feature (the CPU device always has it).
   * Default 'f32'.
   */
  precision?: Precision;
}

/** What segment() accepts as an image. */
export type SegmentImage =
  | ArrayBuffer
  | Uint8Array
  | Blob
  | Image
  /** ImageData (canvas) or any RGBA buffer of width * height * 4 bytes. */
  | { width: number; height: number; data: Uint8Array | Uint8ClampedArray };

export interface SegmentOptions {
  /** Mask threshold on the probability, in [0, 1] (default 0.5); masks are p > threshold. */
  threshold?: number;
  /** Truncate over-long prompts like clip.tokenize (default true, with a warning) or throw (false). */
  truncate?: boolean;
  /** Apply the EXIF orientation of encoded images (default true, as HF's load_image). */
  applyExifOrientation?: boolean;
}

export interface SegmentationResult {
  /** Size of the input image (after EXIF orientation): every map and mask has this size. */
  width: number;
  height: number;
  prompts: string[];
  /** Per prompt: sigmoid of the bilinearly resized logits, row-major width * height. */
  probabilities: ProbabilityMap[];
  /** Per prompt: grey 0/255 mask of p > threshold. */
  masks: Image[];
  /** Grey label image: 0 where no prompt exceeds the threshold, else 1 + the most likely prompt. */
  labels: Image;
  threshold: number;
  /** The decoder's logits at the model resolution, [P, h, w] row-major. */
  logits: { data: Float32Array; shape: [number, number, number] };
  /** Per prompt: tokens used (with BOS/EOS, after truncation) and whether it was truncated. */
  tokens: { lengths: number[]; truncated: boolean[] };
  /** Over-long prompts that were truncated, empty prompts. */
  warnings: string[];
  timings: { preprocessMs: number; forwardMs: number; postprocessMs: number };
}

/** The default device when one is set, else a CPU device (CRIS's API shares it). */
export function defaultDevice(): Device {
  try {
    return getDefaultDevice();
  } catch {
    return new CpuDevice();
  }
}

export class CLIPSeg {
  private disposed = false;

  private constructor(
    readonly model: ClipSegForImageSegmentation,
    readonly tokenizer: ClipTokenizer,
    readonly preprocessOptions: ClipSegPreprocessOptions,
    readonly device: Device,
    /** Where each part came from and what loading did (for logs). */
    readonly notes: string[],
  ) {}

  get config(): ClipSegConfig {
    return this.model.config;
  }

  /**
   * Loads a CLIPSeg checkpoint: a Hugging Face folder path (Node) or a map of file names to
   * ArrayBuffers, Uint8Arrays, Blobs or URLs. Errors name the file and what is wrong.
   */
  static async fromPretrained(folderOrFiles: string | PretrainedFileMap, options: FromPretrainedOptions = {}): Promise<CLIPSeg> {
    const files: ModelFiles = await openModelFiles(folderOrFiles);
    const { config } = await readClipSegConfig(files);
    const { tokenizer, source: tokenizerSource } = await readClipSegTokenizer(files, config, options.tokenizer);
    const pre = await readPreprocessOptions(files);
    const device = options.device ?? defaultDevice();
    const precision = checkPrecision(options.precision, device);
    const model = new ClipSegForImageSegmentation(config, { device, empty: true });
    try {
      // Parameters live until dispose(), even when fromPretrained is called inside a scope.
      for (const t of model.parameters()) keep(t);
      for (const [, t] of model.namedBuffers()) keep(t);
      const weights = await loadClipSegWeights(model, files);
      model.eval();
      if (precision === 'f16') model.toPrecision('f16');
      const notes = [
        `config: ${files.pathOf('config.json')}`,
        `weights: ${weights.files.join(', ')} (${weights.loaded} tensors)`,
        ...weights.notes.map((n) => `weights: ${n}`),
        `tokenizer: ${tokenizerSource}`,
        `preprocessing: ${pre.source}`,
        `device: ${device.description}`,
        `precision: ${precision === 'f16' ? 'f16 Linear weights (computed in f32)' : 'f32'}`,
      ];
      return new CLIPSeg(model, tokenizer, { ...pre.options, ...options.preprocess }, device, notes);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /**
   * Segments `image` with one or several prompts in one batch; see the file header. Resolves to
   * per-prompt probability maps and masks at the image's original size, and a label map.
   */
  async segment(image: SegmentImage, prompts: string | readonly string[], options: SegmentOptions = {}): Promise<SegmentationResult> {
    if (this.disposed) throw new Error('CLIPSeg.segment: the model was disposed');
    const list = typeof prompts === 'string' ? [prompts] : [...prompts];
    if (list.length === 0) throw new Error('CLIPSeg.segment: give at least one prompt');
    if (list.length > 255) throw new Error(`CLIPSeg.segment: at most 255 prompts per call (the label map is 8-bit), got ${list.length}`);
    list.forEach((p, i) => {
      if (typeof p !== 'string') throw new Error(`CLIPSeg.segment: prompt ${i} must be a string, got ${typeof p}`);
    });
    const threshold = options.threshold ?? 0.5;
    if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) {
      throw new Error(`CLIPSeg.segment: threshold must be a number in [0, 1], got ${String(threshold)}`);
    }
    const t0 = performance.now();
    const decoded = await toImage(image, options.applyExifOrientation ?? true);
    const contextLength = this.config.text.maxPositionEmbeddings;
    const truncate = options.truncate ?? true;
    const batch = this.tokenizer.tokenize(list, { contextLength, truncate, padding: 'longest' });
    const warnings: string[] = [];
    list.forEach((p, i) => {
      if (batch.truncated[i]) {
        const full = this.tokenizer.encode(p).length + 2;
        warnings.push(
          `prompts[${i}] ${JSON.stringify(short(p))} has ${full} tokens with BOS/EOS, more than the context of ${contextLength}: ` +
            `truncated to BOS, its first ${contextLength - 2} text tokens and EOS (as clip.tokenize does)`,
        );
      } else if (batch.lengths[i] === 2) {
        warnings.push(`prompts[${i}] ${JSON.stringify(p)} is empty after text cleaning: it conditions on an empty text (BOS + EOS)`);
      }
    });
    const pre = clipsegPreprocess(decoded, this.preprocessOptions);
    const t1 = performance.now();
    const [, , h, w] = pre.shape;
    const logits = await exclusiveScopeAsync(async () => {
      if (this.disposed) throw new Error('CLIPSeg.segment: the model was disposed');
      const pixelValues = Tensor.fromArray(pre.pixelValues, pre.shape, { device: this.device });
      const out = noGrad(() => this.model.forward({ pixelValues, tokens: batch }));
      return (await out.logits.read()) as Float32Array;
    });
    const t2 = performance.now();
    const p = list.length;
    const up = headUpsampling(this.config);
    const patch = this.config.vision.patchSize;
    const [lh, lw] = [(h / patch) * up, (w / patch) * up];
    const probabilities = logitsToProbabilities(logits, lh, lw, decoded.width, decoded.height, p);
    const masks = probabilities.map((m) => thresholdMask(m, threshold));
    const labels = labelMap(probabilities, threshold);
    const t3 = performance.now();
    return {
      width: decoded.width,
      height: decoded.height,
      prompts: list,
      probabilities,
      masks,
      labels,
      threshold,
      logits: { data: logits, shape: [p, lh, lw] },
      tokens: { lengths: batch.lengths, truncated: batch.truncated },
      warnings,
      timings: { preprocessMs: t1 - t0, forwardMs: t2 - t1, postprocessMs: t3 - t2 },
    };
  }

  /** Frees the model's device memory; the object cannot segment afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.model.dispose();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }
}

/** The precision option, checked before anything loads (f16 needs shader-f16 on WebGPU). */
function checkPrecision(precision: unknown, device: Device): Precision {
  if (precision === undefined || precision === 'f32') return 'f32';
  if (precision !== 'f16') throw new Error(`CLIPSeg.fromPretrained: precision must be 'f32' or 'f16', got ${JSON.stringify(precision)}`);
  requireShaderF16('CLIPSeg.fromPretrained', device);
  return 'f16';
}

function short(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isImage(x: unknown): x is Image {
  const o = x as Partial<Image>;
  return typeof o === 'object' && o !== null && typeof o.channels === 'number' && typeof o.width === 'number' && o.data instanceof Uint8Array;
}

/** Any accepted image input -> an 8-bit Image, checked. */
/** Any accepted image input -> a checked 8-bit Image (CRIS's API shares it). */
export async function toImage(input: SegmentImage, orient: boolean): Promise<Image> {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array || (typeof Blob !== 'undefined' && input instanceof Blob)) {
    const bytes = input instanceof Uint8Array ? input : input instanceof ArrayBuffer ? new Uint8Array(input) : new Uint8Array(await input.arrayBuffer());
    const name = typeof Blob !== 'undefined' && input instanceof Blob ? ((input as { name?: string }).name || 'image') : 'image';
    const decoded = decodeImage(bytes, name);
    return orient ? applyOrientation(decoded, decoded.orientation) : decoded;
  }
  if (typeof input !== 'object' || input === null || !('width' in input)) {
    throw new ImageError('image', `expected image bytes, a Blob or a decoded image, got ${String(input)}`);
  }
  const { width, height } = input;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('image', `a decoded image needs integer width and height >= 1, got ${width}x${height}`);
  }
  if (isImage(input)) {
    if (![1, 2, 3, 4].includes(input.channels) || input.data.length !== width * height * input.channels) {
      throw new ImageError('image', `${width}x${height}x${input.channels} image has ${input.data.length} bytes, expected ${width * height * input.channels}`);
    }
    return input;
  }
  const data = input.data;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray) || data.length !== width * height * 4) {
    throw new ImageError('image', `an RGBA image (ImageData) of ${width}x${height} needs ${width * height * 4} bytes, got ${data?.length}`);
  }
  return { width, height, channels: 4, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}
