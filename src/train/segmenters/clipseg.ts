/**
 * CLIPSeg as a Segmenter. Input: square images at the vision config's image_size, normalised with
 * ImageNet statistics (the CIDAS preprocessor). Output: the decoder's logits, bilinearly resized
 * to the input size when the head upsamples by less than the patch size (patch 8: (8/4)^2 = 4x,
 * as the original CLIPSeg code upsamples).
 *
 * Freeze policies: 'decoder-only' trains `decoder.*` and records neither tower (the HF model's own
 * behaviour); 'frozen-image' also trains the text tower and its projection; 'frozen-text' the
 * vision tower; 'full' everything.
 */
import type { Device, Tensor } from '../../engine/index.js';
import type { ClipTokenizer } from '../../models/clip/tokenizer.js';
import type { InitOptions } from '../../models/nn/init.js';
import { ClipSegForImageSegmentation, type ClipSegConfig, parseClipSegConfig } from '../../models/clipseg/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../models/image/preprocess.js';
import type { Image } from '../../models/image/index.js';
import { type FreezePolicy, type Segmenter, imagesToPixels, logitsToSize } from '../segmenter.js';

const VISION_KEYS = ['clip.vision_model.', 'clip.visual_projection.'];
const TEXT_KEYS = ['clip.text_model.', 'clip.text_projection.'];

export interface ClipSegSegmenterOptions extends InitOptions {
  tokenizer: ClipTokenizer;
  threshold?: number;
  /**
   * Input side (default: the config's `webvlsm_input_size`, else the vision image_size). The
   * published CLIPSeg checkpoints run at 352 (image_size 224; position embeddings interpolated).
   */
  inputSize?: number;
}

export class ClipSegSegmenter implements Segmenter {
  readonly kind = 'clipseg' as const;
  readonly usesText = true;
  readonly module: ClipSegForImageSegmentation;
  readonly config: ClipSegConfig;
  readonly inputSize: readonly [number, number];
  readonly threshold: number;
  readonly tokenizer: ClipTokenizer;
  private readonly rawConfig: Record<string, unknown>;

  constructor(config: Record<string, unknown>, options: ClipSegSegmenterOptions) {
    this.rawConfig = structuredClone(config);
    this.config = parseClipSegConfig(config, 'the CLIPSeg segmenter config');
    const { tokenizer, threshold, inputSize, ...init } = options;
    if (inputSize !== undefined) this.rawConfig['webvlsm_input_size'] = inputSize;
    this.module = new ClipSegForImageSegmentation(this.config, init);
    this.tokenizer = tokenizer;
    const stored = this.rawConfig['webvlsm_input_size'];
    const side = typeof stored === 'number' ? stored : this.config.vision.imageSize;
    if (!Number.isInteger(side) || side % this.config.vision.patchSize !== 0) {
      throw new Error(`ClipSegSegmenter: input size ${side} must be a multiple of the patch size ${this.config.vision.patchSize}`);
    }
    this.inputSize = [side, side];
    this.threshold = threshold ?? 0.5;
  }

  get device(): Device {
    return this.module.parameters()[0]!.device;
  }

  pixels(images: readonly Image[]): Tensor {
    return imagesToPixels(images, this.inputSize, IMAGENET_MEAN, IMAGENET_STD, this.device);
  }

  logits(pixels: Tensor, prompts: readonly string[], options: { train?: boolean; freeze?: FreezePolicy } = {}): Tensor {
    const b = pixels.shape[0]!;
    if (prompts.length !== b) throw new Error(`ClipSegSegmenter.logits: ${b} images but ${prompts.length} prompts`);
    const tokens = this.tokenizer.tokenize(prompts, { contextLength: this.config.text.maxPositionEmbeddings, truncate: true, padding: 'longest' });
    const train = options.train ?? false;
    const freeze = options.freeze ?? 'decoder-only';
    const out = this.module.forward(
      { pixelValues: pixels, tokens },
      { trainVision: train && (freeze === 'full' || freeze === 'frozen-text'), trainText: train && (freeze === 'full' || freeze === 'frozen-image') },
    );
    return logitsToSize(out.logits, this.inputSize);
  }

  trainable(freeze: FreezePolicy): [string, Tensor][] {
    const frozen = freeze === 'decoder-only' ? [...VISION_KEYS, ...TEXT_KEYS, 'clip.logit_scale']
      : freeze === 'frozen-image' ? [...VISION_KEYS, 'clip.logit_scale']
      : freeze === 'frozen-text' ? [...TEXT_KEYS, 'clip.logit_scale']
      : ['clip.logit_scale'];
    // logit_scale only serves CLIP's contrastive loss: it never receives a segmentation gradient.
    return this.module.namedParameters().filter(([name]) => !frozen.some((f) => name === f || name.startsWith(f)));
  }

  describe(): { kind: 'clipseg'; config: Record<string, unknown> } {
    return { kind: 'clipseg', config: structuredClone(this.rawConfig) };
  }
}
