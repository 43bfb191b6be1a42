/**
 * CRIS (CRIS.pytorch model/segmenter.py; docs/architectures.md §3): CLIP-Driven Referring Image
 * Segmentation. Members and state-dict names as upstream: `backbone` (OpenAI CLIP with the
 * ModifiedResNet image tower and CRIS's attention pool), `neck` (FPN), `decoder`
 * (TransformerDecoder), `proj` (Projector).
 *
 *   image [B, 3, H, W] -> backbone.visual -> v3 [B, 8w, H/8], v4 [B, 16w, H/16], v5 [B, E, H/32]
 *   ids [B, word_len] -> backbone text -> words [B, L, D], state [B, E]
 *   fq = neck(v3, v4, v5, state)                    [B, vis_dim, H/16, W/16]
 *   fq = decoder(fq, words, pad = (ids == 0))       [B, vis_dim, H/16 * W/16] -> [B, vis_dim, H/16, W/16]
 *   pred = proj(fq, state)                          [B, 1, H/4, W/4] mask logits
 *
 * H and W should be multiples of 32 (416 in CRIS). BatchNorms always use running statistics;
 * dropout follows `training` (see decoder.ts). Token ids are host data: the padding mask and the
 * EOS positions are computed on the host.
 */
import { type LoadStateOptions, type LoadStateReport, Module, type StateSource, Tensor, noGrad, readCheckpoint, reshape, scope } from '../../engine/index.js';
import { OpenAiClipResNet, checkTokenBatch } from '../clip/openai-clip.js';
import type { TokenBatch } from '../clip/text.js';
import type { InitOptions } from '../nn/index.js';
import { type CrisConfig, checkCrisConfig, parseCrisConfig } from './config.js';
import { TransformerDecoder } from './decoder.js';
import { Fpn } from './neck.js';
import { Projector } from './projector.js';
import { type ClipBackboneReport, loadClipBackbone, loadCrisWeights } from './weights.js';

export interface CrisInputs {
  /** [B, 3, H, W] normalised pixels (CLIP mean/std). */
  pixels: Tensor;
  /** [B, word_len] token ids (zero-padded, as CRIS's tokenize). */
  tokens: TokenBatch;
}

export interface CrisForwardOptions {
  /** Also return every intermediate (what the golden data records). */
  outputIntermediates?: boolean;
  /**
   * Record the CLIP image / text tower for autograd (default true: plain model semantics). A
   * finetune that freezes a tower passes false, so the tower runs under noGrad and neither its
   * activations nor its parameter gradients are kept (train/segmenters/cris.ts).
   */
  trainVision?: boolean;
  trainText?: boolean;
}

export interface CrisIntermediates {
  /** Stem + layer1 [B, 4w, H/4, W/4]. */
  visualLayer1: Tensor;
  /** v3 [B, 8w, H/8, W/8]. */
  visC3: Tensor;
  /** v4 [B, 16w, H/16, W/16]. */
  visC4: Tensor;
  /** layer4 [B, 32w, H/32, W/32]. */
  visualLayer4: Tensor;
  /** v5 (attention pool) [B, E, H/32, W/32]. */
  visC5: Tensor;
  /** ln_final output [B, L, D]. */
  wordFeatures: Tensor;
  /** Sentence state [B, E]. */
  textState: Tensor;
  /** Neck output [B, vis_dim, H/16, W/16]. */
  fqNeck: Tensor;
  /** Decoder output after its final norm [B, vis_dim, H/16 * W/16]. */
  fqDecoder: Tensor;
}

export interface CrisOutput {
  /** Mask logits [B, 1, H/4, W/4]. */
  pred: Tensor;
  intermediates: CrisIntermediates | null;
}

/** f32 [B, L]: 1 where the id is 0 (CRIS's key padding mask), else 0. */
export function paddingMask(tokens: TokenBatch): Float32Array {
  return Float32Array.from(tokens.inputIds, (id) => (id === 0 ? 1 : 0));
}

export class Cris extends Module {
  readonly config: CrisConfig;
  readonly backbone: OpenAiClipResNet;
  readonly neck: Fpn;
  readonly decoder: TransformerDecoder;
  readonly proj: Projector;

  /**
   * Builds CRIS from a parsed config or its JSON form (config.ts). `init.empty` allocates the
   * parameters without values, for weights loaded right after.
   */
  constructor(config: CrisConfig | Record<string, unknown>, init: InitOptions = {}) {
    super();
    const c = isParsed(config) ? config : parseCrisConfig(config);
    checkCrisConfig(c);
    this.config = c;
    this.backbone = this.registerModule('backbone', new OpenAiClipResNet(c.clip, init));
    this.neck = this.registerModule('neck', new Fpn(c.fpnIn, c.fpnOut, init));
    this.decoder = this.registerModule('decoder', new TransformerDecoder(c.numLayers, c.visDim, c.numHead, c.dimFfn, c.dropout, init));
    this.proj = this.registerModule('proj', new Projector(c.wordDim, c.visDim / 2, init));
  }

  /**
   * Reads a CRIS checkpoint (zip / legacy .pth, train.py dict with `module.` keys, or
   * safetensors), builds the model for `config` on `init.device` and loads it strictly. The model
   * is returned in eval mode (inference; call train() to finetune).
   */
  static fromCheckpoint(bytes: Uint8Array, name: string, config: CrisConfig | Record<string, unknown>, init: InitOptions = {}): { model: Cris; report: LoadStateReport } {
    const checkpoint = readCheckpoint(bytes, name);
    const model = new Cris(config, { ...init, empty: true });
    try {
      const report = model.loadWeights(checkpoint.tensors);
      return { model: model.eval(), report };
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** Loads a CRIS state dict (weights.ts; strict by default, `module.` accepted). */
  loadWeights(tensors: StateSource, options: LoadStateOptions = {}): LoadStateReport {
    return loadCrisWeights(this, tensors, options);
  }

  /** Loads OpenAI CLIP RN50/RN101 weights into the backbone (weights.ts). */
  loadClipBackbone(tensors: StateSource): ClipBackboneReport {
    return loadClipBackbone(this.backbone, tensors);
  }

  forward(inputs: CrisInputs, options: CrisForwardOptions = {}): CrisOutput {
    const { pixels, tokens } = inputs;
    const c = this.config;
    if (pixels.rank !== 4 || pixels.shape[1] !== 3) throw new Error(`Cris: pixels [${pixels.shape.join(', ')}] must be [B, 3, H, W]`);
    const [b, l] = checkTokenBatch(tokens, c.clip.vocabSize, c.clip.contextLength, 'Cris');
    if (l !== c.wordLen) {
      throw new Error(`Cris: prompts have ${l} tokens, the model's word_len is ${c.wordLen} (tokenize with contextLength ${c.wordLen})`);
    }
    if (b !== pixels.shape[0]) throw new Error(`Cris: ${b} prompts for ${pixels.shape[0]} images (one prompt per image)`);
    const all = options.outputIntermediates ?? false;
    return scope(() => {
      const encodeImage = () => this.backbone.encodeImage(pixels);
      const encodeText = () => this.backbone.encodeText(tokens);
      const vis = (options.trainVision ?? true) ? encodeImage() : noGrad(encodeImage);
      const text = (options.trainText ?? true) ? encodeText() : noGrad(encodeText);
      const padMask = Tensor.fromArray(paddingMask(tokens), [b, l], { device: pixels.device });
      const fqNeck = this.neck.forward(vis.c3, vis.c4, vis.c5, text.state);
      const [, ch, h, w] = fqNeck.shape as [number, number, number, number];
      const fqDecoder = this.decoder.forward(fqNeck, text.words, padMask);
      const pred = this.proj.forward(reshape(fqDecoder, [b, ch, h, w]), text.state);
      const intermediates: CrisIntermediates | null = all
        ? {
            visualLayer1: vis.layer1,
            visC3: vis.c3,
            visC4: vis.c4,
            visualLayer4: vis.layer4,
            visC5: vis.c5,
            wordFeatures: text.words,
            textState: text.state,
            fqNeck,
            fqDecoder,
          }
        : null;
      return { pred, intermediates };
    });
  }
}

function isParsed(c: CrisConfig | Record<string, unknown>): c is CrisConfig {
  return typeof (c as CrisConfig).clip === 'object' && typeof (c as CrisConfig).wordLen === 'number';
}
