/**
 * CLIP text and vision tower settings, parsed from the `text_config` / `vision_config` objects of
 * an HF config.json (CLIPTextConfig / CLIPVisionConfig, CLIPSeg's copies). Absent keys take HF's
 * defaults (CLIPSeg's: ViT-B/16-like text tower, vision defaults of CLIPSegVisionConfig, whose
 * patch_size default is 32 as in HF); present keys are validated.
 */
import { ACTIVATION_NAMES, type ActivationName } from '../nn/index.js';
import type { ConfigReader } from './config-reader.js';

export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: ActivationName;
  layerNormEps: number;
  /** As stored in the config (HF pools at argmax(input_ids) when this is 2, the legacy value). */
  eosTokenId: number;
  bosTokenId: number;
  padTokenId: number;
}

export interface ClipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numChannels: number;
  /** Pre-training resolution: the position table has (imageSize / patchSize)² + 1 rows. */
  imageSize: number;
  patchSize: number;
  hiddenAct: ActivationName;
  layerNormEps: number;
}

function checkHeads(r: ConfigReader, hidden: number, heads: number): void {
  if (hidden % heads !== 0) {
    r.fail('num_attention_heads', `(${heads}) must divide hidden_size (${hidden})`);
  }
}

export function parseClipTextConfig(r: ConfigReader): ClipTextConfig {
  const c: ClipTextConfig = {
    vocabSize: r.int('vocab_size', 49408),
    hiddenSize: r.int('hidden_size', 512),
    intermediateSize: r.int('intermediate_size', 2048),
    numHiddenLayers: r.int('num_hidden_layers', 12, 0),
    numAttentionHeads: r.int('num_attention_heads', 8),
    maxPositionEmbeddings: r.int('max_position_embeddings', 77),
    hiddenAct: r.str('hidden_act', 'quick_gelu', ACTIVATION_NAMES),
    layerNormEps: r.positive('layer_norm_eps', 1e-5),
    eosTokenId: r.int('eos_token_id', 49407, 0),
    bosTokenId: r.int('bos_token_id', 49406, 0),
    padTokenId: r.int('pad_token_id', 1, 0),
  };
  checkHeads(r, c.hiddenSize, c.numAttentionHeads);
  return c;
}

export function parseClipVisionConfig(r: ConfigReader): ClipVisionConfig {
  const c: ClipVisionConfig = {
    hiddenSize: r.int('hidden_size', 768),
    intermediateSize: r.int('intermediate_size', 3072),
    numHiddenLayers: r.int('num_hidden_layers', 12, 0),
    numAttentionHeads: r.int('num_attention_heads', 12),
    numChannels: r.int('num_channels', 3),
    imageSize: r.int('image_size', 224),
    patchSize: r.int('patch_size', 32),
    hiddenAct: r.str('hidden_act', 'quick_gelu', ACTIVATION_NAMES),
    layerNormEps: r.positive('layer_norm_eps', 1e-5),
  };
  checkHeads(r, c.hiddenSize, c.numAttentionHeads);
  // HF: num_patches = (image_size // patch_size) ** 2 (a remainder is cut off).
  if (c.imageSize < c.patchSize) r.fail('image_size', `(${c.imageSize}) must be at least patch_size (${c.patchSize})`);
  return c;
}
