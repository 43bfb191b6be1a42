/**
 * CRIS as a Segmenter. Output: the Projector's mask logits [B, 1, S/4, S/4], bilinearly resized to
 * the input size S (config `input_size`, 416 for the published configs) with logitsToSize.
 *
 * Preprocessing for training and evaluation: a plain Pillow bilinear resize to S x S with CLIP's
 * mean/std (imagesToPixels), NOT CRIS's aspect-preserving letterbox (models/cris/preprocess.ts,
 * which `webvlsm segment` and CRIS.segment use). The training loop resizes the masks to the input
 * size (step.ts masksToTarget) and predictProbabilities maps the logits back to each image's
 * original size, both by plain resizes: the letterbox would need its inverse warp in both places,
 * and the padded border would count as background in the loss. A plain resize keeps images, masks
 * and predictions aligned through one shared path, as for CLIPSeg and the UNet. The logits are
 * upsampled bilinearly rather than as CRIS's test.py (sigmoid, then bicubic align_corners) for the
 * same reason: one resize convention for every model.
 *
 * Prompts are tokenized as CRIS does: BOS, ids, EOS, zero padding to word_len (over-long prompts
 * keep their first word_len - 1 ids and EOS).
 *
 * Freeze policies: 'decoder-only' trains CRIS's own parts (neck, decoder, proj) and records
 * neither CLIP tower; 'frozen-image' also trains the text tower; 'frozen-text' the image tower
 * (backbone.visual); 'full' everything. CLIP's logit_scale never trains (it only serves CLIP's
 * contrastive loss and gets no segmentation gradient). logits() sets the module's training mode
 * from `train` (the decoder's dropout is active only while training); BatchNorms always use their
 * running statistics, as in CRIS.
 */
import { CheckpointError, type Device, type Tensor, type TensorData, readCheckpoint, reshape } from '../../engine/index.js';
import type { ClipTokenizer } from '../../models/clip/tokenizer.js';
import { type CrisConfig, parseCrisConfig } from '../../models/cris/config.js';
import { CRIS_CONFIGS, type CrisConfigName } from '../../models/cris/configs.js';
import { Cris } from '../../models/cris/model.js';
import { CRIS_THRESHOLD } from '../../models/cris/postprocess.js';
import { checkCheckpointAgainstConfig, shortMessage } from '../../models/cris/pretrained-load.js';
import type { Image } from '../../models/image/index.js';
import { CLIP_MEAN, CLIP_STD } from '../../models/image/preprocess.js';
import type { InitOptions } from '../../models/nn/init.js';
import { FREEZE_POLICIES, type FreezePolicy, type Segmenter, imagesToPixels, logitsToSize } from '../segmenter.js';

const VISION_KEYS = ['backbone.visual.'];
const TEXT_KEYS = ['backbone.token_embedding.', 'backbone.positional_embedding', 'backbone.transformer.', 'backbone.ln_final.', 'backbone.text_projection'];
const ALWAYS_FROZEN = ['backbone.logit_scale'];

export interface CrisSegmenterOptions extends InitOptions {
  /** The CLIP BPE tokenizer; its ids must fit the model's vocab_size. */
  tokenizer: ClipTokenizer;
  /** Probability threshold of the masks (default 0.35, CRIS's test threshold). */
  threshold?: number;
  /** Input side S, a multiple of 32 (default: the config's input_size, else 416); stored in the config. */
  inputSize?: number;
}

export class CrisSegmenter implements Segmenter {
  readonly kind = 'cris' as const;
  readonly usesText = true;
  readonly module: Cris;
  readonly config: CrisConfig;
  readonly inputSize: readonly [number, number];
  readonly threshold: number;
  readonly tokenizer: ClipTokenizer;
  private readonly rawConfig: Record<string, unknown>;

  constructor(config: Record<string, unknown>, options: CrisSegmenterOptions) {
    this.rawConfig = structuredClone(config);
    const { tokenizer, threshold, inputSize, ...init } = options;
    if (inputSize !== undefined) this.rawConfig['input_size'] = inputSize;
    this.config = parseCrisConfig(this.rawConfig, 'the CRIS segmenter config');
    const side = this.config.inputSize;
    if (side % 32 !== 0) throw new Error(`CrisSegmenter: input size ${side} must be a multiple of 32 (the backbone downsamples by 32)`);
    if (tokenizer.vocabSize > this.config.clip.vocabSize) {
      throw new Error(`CrisSegmenter: the tokenizer has ${tokenizer.vocabSize} tokens, but the model's clip.vocab_size is ${this.config.clip.vocabSize}: its ids would not fit`);
    }
    this.module = new Cris(this.config, init);
    this.tokenizer = tokenizer;
    this.inputSize = [side, side];
    this.threshold = threshold ?? CRIS_THRESHOLD;
  }

  get device(): Device {
    return this.module.parameters()[0]!.device;
  }

  /** RGB, plain bilinear resize to S x S, CLIP mean/std (see the file header on the letterbox). */
  pixels(images: readonly Image[]): Tensor {
    return imagesToPixels(images, this.inputSize, CLIP_MEAN, CLIP_STD, this.device);
  }

  logits(pixels: Tensor, prompts: readonly string[], options: { train?: boolean; freeze?: FreezePolicy } = {}): Tensor {
    const s = pixels.shape;
    const [h, w] = this.inputSize;
    if (s.length !== 4 || s[1] !== 3 || s[2] !== h || s[3] !== w) {
      throw new Error(`CrisSegmenter.logits: pixels must be [B, 3, ${h}, ${w}] (inputSize), got [${s.join(', ')}]`);
    }
    if (prompts.length !== s[0]) throw new Error(`CrisSegmenter.logits: ${s[0]} images but ${prompts.length} prompts`);
    const train = options.train ?? false;
    const freeze = options.freeze ?? 'decoder-only';
    checkPolicy(freeze);
    if (this.module.training !== train) this.module.train(train);
    const tokens = this.tokenizer.tokenize(prompts, { contextLength: this.config.wordLen, truncate: true, padTokenId: 0 });
    const out = this.module.forward(
      { pixels, tokens },
      { trainVision: train && (freeze === 'full' || freeze === 'frozen-text'), trainText: train && (freeze === 'full' || freeze === 'frozen-image') },
    );
    const [b, , ph, pw] = out.pred.shape as [number, number, number, number];
    return logitsToSize(reshape(out.pred, [b, ph, pw]), this.inputSize);
  }

  trainable(freeze: FreezePolicy): [string, Tensor][] {
    checkPolicy(freeze);
    const frozen = freeze === 'decoder-only' ? [...VISION_KEYS, ...TEXT_KEYS, ...ALWAYS_FROZEN]
      : freeze === 'frozen-image' ? [...VISION_KEYS, ...ALWAYS_FROZEN]
      : freeze === 'frozen-text' ? [...TEXT_KEYS, ...ALWAYS_FROZEN]
      : ALWAYS_FROZEN;
    return this.module.namedParameters().filter(([name]) => !frozen.some((f) => name === f || name.startsWith(f)));
  }

  describe(): { kind: 'cris'; config: Record<string, unknown> } {
    return { kind: 'cris', config: structuredClone(this.rawConfig) };
  }
}

function checkPolicy(freeze: FreezePolicy): void {
  if (!FREEZE_POLICIES.includes(freeze)) {
    throw new Error(`CrisSegmenter: unknown freeze policy '${String(freeze)}'; known: ${FREEZE_POLICIES.join(', ')}`);
  }
}

/**
 * The published variant a CRIS state dict belongs to, from its shapes (checkpoints store no
 * config): CLIP RN50 has 6 layer3 blocks and embed dim 1024, RN101 23 blocks and 512. Null when
 * neither matches (a custom model: pass its config).
 */
export function inferCrisVariant(tensors: ReadonlyMap<string, Pick<TensorData, 'shape'>>): CrisConfigName | null {
  const blocks = new Set<string>();
  for (const key of tensors.keys()) {
    const m = /^backbone\.visual\.layer3\.(\d+)\./.exec(key);
    if (m) blocks.add(m[1]!);
  }
  const embed = tensors.get('backbone.text_projection')?.shape[1];
  if (blocks.size === 6 && embed === 1024) return 'cris-r50';
  if (blocks.size === 23 && embed === 512) return 'cris-r101';
  return null;
}

export interface CrisCheckpointOptions extends Omit<CrisSegmenterOptions, 'empty' | 'rng'> {
  /** The architecture: a published name or a config JSON (default: inferred from the shapes). */
  config?: CrisConfigName | Record<string, unknown>;
  /** The word_len the checkpoint was trained with (default: the config's; 17 for the published ones). */
  wordLen?: number;
}

/**
 * A CrisSegmenter from a CRIS.pytorch checkpoint (.pth zip/legacy, a train.py dict with `module.`
 * keys, or a plain safetensors state dict), loaded strictly. `name` labels errors.
 */
export function crisSegmenterFromCheckpoint(bytes: Uint8Array, name: string, options: CrisCheckpointOptions): CrisSegmenter {
  const { config: given, wordLen, ...rest } = options;
  const checkpoint = readCheckpoint(bytes, name);
  let raw: Record<string, unknown>;
  let which: string;
  if (given === undefined) {
    const variant = inferCrisVariant(checkpoint.tensors);
    if (variant === null) {
      throw new CheckpointError(`${name}: cannot tell the CRIS variant from the weights (neither CLIP RN50 nor RN101 shapes); give the model config`);
    }
    raw = { ...CRIS_CONFIGS[variant] };
    which = `'${variant}' (inferred from the weights)`;
  } else if (typeof given === 'string') {
    if (!Object.hasOwn(CRIS_CONFIGS, given)) throw new Error(`${name}: unknown CRIS config '${given}' (known: ${Object.keys(CRIS_CONFIGS).join(', ')})`);
    raw = { ...CRIS_CONFIGS[given] };
    which = `'${given}'`;
  } else {
    raw = structuredClone(given);
    which = 'the given config';
  }
  if (wordLen !== undefined) raw['word_len'] = wordLen;
  if (rest.inputSize !== undefined) raw['input_size'] = rest.inputSize;
  // Shapes first: a wrong variant is reported before hundreds of MB are allocated.
  checkCheckpointAgainstConfig(checkpoint.tensors, parseCrisConfig(raw, `${name} (${which})`), name, which);
  const segmenter = new CrisSegmenter(raw, { ...rest, empty: true });
  try {
    segmenter.module.loadWeights(checkpoint.tensors);
  } catch (error) {
    segmenter.module.dispose();
    throw new CheckpointError(`${name}: the checkpoint does not match ${which}: ${shortMessage((error as Error).message)}`, { cause: error });
  }
  return segmenter;
}
