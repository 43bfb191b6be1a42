/**
 * The two CLIP towers with their projections (HF CLIPModel / CLIPSegModel parameter layout):
 * text_model, vision_model, visual_projection [P, Dv] and text_projection [P, Dt] (no bias), and
 * the scalar logit_scale (only used by contrastive logits; kept so checkpoints load strictly).
 */
import { Module, Tensor, getDefaultDevice, linear, scope } from '../../engine/index.js';
import { type InitOptions, Linear } from '../nn/index.js';
import type { ClipTextConfig, ClipVisionConfig } from './config.js';
import { ClipTextTransformer, type TextOutput, type TokenBatch } from './text.js';
import { ClipVisionTransformer, type VisionForwardOptions, type VisionOutput } from './vision.js';

export interface ClipModelConfig {
  text: ClipTextConfig;
  vision: ClipVisionConfig;
  projectionDim: number;
  logitScaleInitValue: number;
}

export class ClipModel extends Module {
  readonly textModel: ClipTextTransformer;
  readonly visionModel: ClipVisionTransformer;
  readonly visualProjection: Linear;
  readonly textProjection: Linear;
  readonly logitScale: Tensor;

  constructor(readonly config: ClipModelConfig, init: InitOptions = {}) {
    super();
    const p = config.projectionDim;
    this.textModel = this.registerModule('text_model', new ClipTextTransformer(config.text, init));
    this.visionModel = this.registerModule('vision_model', new ClipVisionTransformer(config.vision, init));
    this.visualProjection = this.registerModule('visual_projection', new Linear(config.vision.hiddenSize, p, { ...init, bias: false }));
    this.textProjection = this.registerModule('text_projection', new Linear(config.text.hiddenSize, p, { ...init, bias: false }));
    const device = init.device ?? getDefaultDevice();
    this.logitScale = this.registerParameter('logit_scale', Tensor.scalar(config.logitScaleInitValue, { device }));
  }

  /** Text tower plus projection: `features` = text_projection(pooled) [B, P] (not normalised). */
  textFeatures(tokens: TokenBatch): TextOutput & { features: Tensor } {
    const out = this.textModel.forward(tokens);
    return { ...out, features: linear(out.pooledOutput, this.textProjection.weight) };
  }

  /** Vision tower plus projection of the pooled output (when every layer ran). */
  imageFeatures(pixels: Tensor, options: VisionForwardOptions = {}): VisionOutput & { features: Tensor | null } {
    const out = this.visionModel.forward(pixels, options);
    const features = out.pooledOutput ? scope(() => linear(out.pooledOutput!, this.visualProjection.weight)) : null;
    return { ...out, features };
  }
}
