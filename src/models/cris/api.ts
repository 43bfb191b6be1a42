/**
 * Referring segmentation with CRIS, with the same shape of API and result as CLIPSeg's (api.ts):
 *
 *   const model = await CRIS.fromPretrained('cris_r50_refcoco.pth', { config: 'cris-r50', wordLen: 17, device });
 *   const result = await model.segment(pngBytes, ['the polyp', 'the instrument']);
 *   result.probabilities[0].data;  // Float32Array, width * height, at the image's own size
 *   result.masks[0];               // grey Image, 255 where p > 0.35
 *   result.labels;                 // 0 = background, k = 1 + index of the most likely prompt
 *   model.dispose();
 *
 * Loading. `fileOrFiles` is one of
 * - a path (Node) to a checkpoint file: `.pth`/`.pt`/`.bin` (torch zip or legacy, a bare state dict
 *   or a train.py dict {epoch, ..., state_dict} with `module.` keys) or `.safetensors`;
 * - a path (Node) to a folder holding exactly one such checkpoint, and optionally vocab.json +
 *   merges.txt or bpe_simple_vocab_16e6.txt.gz;
 * - a map of file names to contents or URLs (browsers; clipseg/pretrained-files.ts), same rule;
 * - the checkpoint's bytes (Uint8Array / ArrayBuffer).
 * Checkpoints store neither the variant nor `word_len`: `config` is a published name
 * ('cris-r50' | 'cris-r101'), a parsed CrisConfig or its JSON form (config.ts), and `wordLen`
 * overrides its word_len (17 RefCOCO/RefCOCO+, 22 RefCOCOg). The tokenizer is `options.tokenizer`,
 * else the folder's vocabulary, else the shipped CLIP vocabulary (weights/vocab/).
 *
 * segment(image, prompts): CRIS preprocessing (preprocess.ts: letterbox to S x S keeping the
 * aspect ratio, CLIP mean/std; S = config.inputSize, 416 by default; the OpenCV cubic warp is
 * approximated as documented there), prompts tokenized as CRIS does (BOS, ids, EOS, zero padding to
 * word_len; too long: the first word_len ids with the last replaced by EOS, with a warning), ONE
 * forward for all P prompts (the image tower runs once, its features are broadcast to the P
 * prompts), then (postprocess.ts, test.py) sigmoid -> bicubic align_corners resize to S x S ->
 * inverse letterbox (cubic, border 0) to the original size, clamped to [0, 1]; masks are
 * p > threshold (default 0.35, CRIS's test threshold).
 */
import { CheckpointError, type Device, Tensor, exclusiveScopeAsync, expand, keep, noGrad, readCheckpoint, reshape } from '../../engine/index.js';
import type { ClipTokenizer } from '../clip/tokenizer.js';
import { type SegmentImage, type SegmentationResult, defaultDevice, toImage } from '../clipseg/api.js';
import type { PretrainedFileMap } from '../clipseg/pretrained-files.js';
import { labelMap, thresholdMask } from '../image/index.js';
import type { CrisConfig } from './config.js';
import { Cris, paddingMask } from './model.js';
import { CRIS_THRESHOLD, crisProbabilities } from './postprocess.js';
import { type LetterboxTransform, crisPreprocess, unletterbox } from './preprocess.js';
import { type CrisConfigInput, checkCheckpointAgainstConfig, openCheckpoint, readTokenizer, resolveCrisConfig, shortMessage } from './pretrained-load.js';

export { checkCheckpointAgainstConfig, resolveCrisConfig } from './pretrained-load.js';

export interface CrisFromPretrainedOptions {
  /** The architecture: 'cris-r50', 'cris-r101', a CrisConfig or its JSON form. */
  config: CrisConfigInput;
  /** The word_len the checkpoint was trained with (default: the config's, 17 for the published ones). */
  wordLen?: number;
  /** Network side S (multiple of 32; default: the config's input_size, 416). */
  inputSize?: number;
  /** Where the model runs (default: the engine's default device, else a new CPU device). */
  device?: Device;
  /** Use this tokenizer instead of the files' or the shipped vocabulary. */
  tokenizer?: ClipTokenizer;
}

export interface CrisSegmentOptions {
  /** Mask threshold on the probability, in [0, 1] (default 0.35); masks are p > threshold. */
  threshold?: number;
  /** Truncate over-long prompts like CRIS's tokenize (default true, with a warning) or throw (false). */
  truncate?: boolean;
  /** Apply the EXIF orientation of encoded images (default true). */
  applyExifOrientation?: boolean;
}

export interface CrisSegmentationResult extends SegmentationResult {
  /** The letterbox used (original -> network: x' = scale·x + offsetX). */
  letterbox: LetterboxTransform;
}

export class CRIS {
  private disposed = false;

  private constructor(
    readonly model: Cris,
    readonly tokenizer: ClipTokenizer,
    readonly device: Device,
    /** Where each part came from and what loading did (for logs). */
    readonly notes: string[],
  ) {}

  get config(): CrisConfig {
    return this.model.config;
  }

  /** Loads a CRIS checkpoint (see the file header). Errors name the file and what is wrong. */
  static async fromPretrained(fileOrFiles: string | PretrainedFileMap | Uint8Array | ArrayBuffer, options: CrisFromPretrainedOptions): Promise<CRIS> {
    if (options === undefined || options === null || options.config === undefined) {
      throw new Error("CRIS.fromPretrained: options.config is required ('cris-r50', 'cris-r101' or a config object): checkpoints do not store the variant");
    }
    if (options.wordLen !== undefined && (!Number.isInteger(options.wordLen) || options.wordLen < 2)) {
      throw new Error(`CRIS.fromPretrained: wordLen must be an integer >= 2 (BOS + EOS), got ${String(options.wordLen)}`);
    }
    const config = resolveCrisConfig(options.config, options.wordLen, options.inputSize);
    const { bytes, name, files } = await openCheckpoint(fileOrFiles);
    const checkpoint = readCheckpoint(bytes, name);
    const pos = checkpoint.tensors.get('backbone.positional_embedding');
    if (pos && pos.shape.length === 2 && config.wordLen > pos.shape[0]!) {
      throw new CheckpointError(
        `${name}: word_len ${config.wordLen} is longer than the checkpoint's ${pos.shape[0]} text positions ` +
          `(backbone.positional_embedding [${pos.shape.join(', ')}]); use the word_len the model was trained with (17 RefCOCO/RefCOCO+, 22 RefCOCOg)`,
      );
    }
    const which = typeof options.config === 'string' ? `'${options.config}'` : 'the given config';
    checkCheckpointAgainstConfig(checkpoint.tensors, config, name, which);
    const { tokenizer, source } = await readTokenizer(files, options.tokenizer);
    if (tokenizer.vocabSize > config.clip.vocabSize) {
      throw new CheckpointError(
        `${name}: the tokenizer (${source}) has ${tokenizer.vocabSize} tokens, but the model's vocab_size is ${config.clip.vocabSize}: ` +
          'its ids would not fit (give the model\'s own vocab.json and merges.txt, or options.tokenizer)',
      );
    }
    const device = options.device ?? defaultDevice();
    const model = new Cris(config, { device, empty: true });
    try {
      for (const t of model.parameters()) keep(t);
      for (const [, t] of model.namedBuffers()) keep(t);
      let loaded: number;
      try {
        loaded = model.loadWeights(checkpoint.tensors).loaded.length;
      } catch (err) {
        throw new CheckpointError(`${name}: the checkpoint does not match ${which} (wrong variant or config?): ${shortMessage((err as Error).message)}`, { cause: err });
      }
      model.eval();
      const notes = [
        `weights: ${name} (${checkpoint.format}, ${loaded} tensors${checkpoint.report.length ? `; ${checkpoint.report.join('; ')}` : ''})`,
        `config: ${typeof options.config === 'string' ? options.config : 'custom'}, word_len ${config.wordLen}, input ${config.inputSize}x${config.inputSize}`,
        `tokenizer: ${source}`,
        `device: ${device.description}`,
      ];
      return new CRIS(model, tokenizer, device, notes);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** Segments `image` with one or several prompts in one batch; see the file header. */
  async segment(image: SegmentImage, prompts: string | readonly string[], options: CrisSegmentOptions = {}): Promise<CrisSegmentationResult> {
    if (this.disposed) throw new Error('CRIS.segment: the model was disposed');
    const list = typeof prompts === 'string' ? [prompts] : [...prompts];
    if (list.length === 0) throw new Error('CRIS.segment: give at least one prompt');
    if (list.length > 255) throw new Error(`CRIS.segment: at most 255 prompts per call (the label map is 8-bit), got ${list.length}`);
    list.forEach((p, i) => {
      if (typeof p !== 'string') throw new Error(`CRIS.segment: prompt ${i} must be a string, got ${typeof p}`);
    });
    const threshold = options.threshold ?? CRIS_THRESHOLD;
    if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) {
      throw new Error(`CRIS.segment: threshold must be a number in [0, 1], got ${String(threshold)}`);
    }
    const t0 = performance.now();
    const decoded = await toImage(image, options.applyExifOrientation ?? true);
    const wordLen = this.config.wordLen;
    const batch = this.tokenizer.tokenize(list, { contextLength: wordLen, truncate: options.truncate ?? true, padTokenId: 0 });
    const warnings: string[] = [];
    list.forEach((p, i) => {
      if (batch.truncated[i]) {
        const full = this.tokenizer.encode(p).length + 2;
        warnings.push(
          `prompts[${i}] ${JSON.stringify(p.length > 60 ? `${p.slice(0, 57)}...` : p)} has ${full} tokens with BOS/EOS, more than word_len ${wordLen}: ` +
            `truncated to its first ${wordLen - 1} tokens and EOS (as CRIS's tokenize does)`,
        );
      } else if (batch.lengths[i] === 2) {
        warnings.push(`prompts[${i}] ${JSON.stringify(p)} is empty after text cleaning: it conditions on an empty text (BOS + EOS)`);
      }
    });
    const pre = crisPreprocess(decoded, { inputSize: this.config.inputSize });
    const t1 = performance.now();
    const p = list.length;
    const s = this.config.inputSize;
    const { logits, probs } = await exclusiveScopeAsync(async () => {
      if (this.disposed) throw new Error('CRIS.segment: the model was disposed');
      const out = noGrad(() => this.forwardShared(Tensor.fromArray(pre.pixelValues, pre.shape, { device: this.device }), batch));
      const probsT = noGrad(() => crisProbabilities(out, [s, s]));
      return { logits: (await out.read()) as Float32Array, probs: (await probsT.read()) as Float32Array };
    });
    const t2 = performance.now();
    const probabilities = unletterbox(probs, p, pre.transform);
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
      logits: { data: logits, shape: [p, s / 4, s / 4] },
      tokens: { lengths: batch.lengths, truncated: batch.truncated },
      warnings,
      timings: { preprocessMs: t1 - t0, forwardMs: t2 - t1, postprocessMs: t3 - t2 },
      letterbox: pre.transform,
    };
  }

  /**
   * Cris.forward for one image and P prompts: the image tower runs once (batch 1) and its
   * features are expanded to the P prompts; the rest is model.ts's forward. Returns the mask
   * logits [P, 1, S/4, S/4].
   */
  private forwardShared(pixels: Tensor, tokens: ReturnType<ClipTokenizer['tokenize']>): Tensor {
    const m = this.model;
    const [b, l] = tokens.shape;
    if (b === 1) return m.forward({ pixels, tokens }).pred;
    const vis = m.backbone.encodeImage(pixels);
    const rep = (t: Tensor) => expand(t, [b, ...t.shape.slice(1)]);
    const text = m.backbone.encodeText(tokens);
    const padMask = Tensor.fromArray(paddingMask(tokens), [b, l], { device: pixels.device });
    const fqNeck = m.neck.forward(rep(vis.c3), rep(vis.c4), rep(vis.c5), text.state);
    const [, ch, h, w] = fqNeck.shape as [number, number, number, number];
    const fqDecoder = m.decoder.forward(fqNeck, text.words, padMask);
    return m.proj.forward(reshape(fqDecoder, [b, ch, h, w]), text.state);
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
