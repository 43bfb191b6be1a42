/**
 * The architecture fields of the published CLIPSeg checkpoints' `config.json` (HF naming), so the
 * full models can be built without the hub file (docs/architectures.md §1.2). The hub files hold
 * many more generic PretrainedConfig keys (dropouts, generation settings, ...); none of them
 * changes the architecture. Token ids are the hub's legacy values (eos 2: argmax pooling).
 */
import { type ClipSegConfig, parseClipSegConfig } from './config.js';

const TEXT_CONFIG = {
  model_type: 'clipseg_text_model',
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  initializer_range: 0.02,
  initializer_factor: 1.0,
  bos_token_id: 0,
  eos_token_id: 2,
  pad_token_id: 1,
};

const VISION_CONFIG = {
  model_type: 'clipseg_vision_model',
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_channels: 3,
  image_size: 224,
  patch_size: 16,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  attention_dropout: 0.0,
  initializer_range: 0.02,
  initializer_factor: 1.0,
};

function clipsegConfigJson(reduceDim: number, complex: boolean): Record<string, unknown> {
  return {
    architectures: ['CLIPSegForImageSegmentation'],
    model_type: 'clipseg',
    text_config: { ...TEXT_CONFIG },
    vision_config: { ...VISION_CONFIG },
    projection_dim: 512,
    logit_scale_init_value: 2.6592,
    extract_layers: [3, 6, 9],
    reduce_dim: reduceDim,
    decoder_num_attention_heads: 4,
    decoder_attention_dropout: 0.0,
    decoder_hidden_act: 'quick_gelu',
    decoder_intermediate_size: 2048,
    conditional_layer: 0,
    use_complex_transposed_convolution: complex,
    initializer_factor: 1.0,
    torch_dtype: 'float32',
  };
}

/** `CIDAS/clipseg-rd64-refined` (150,747,746 parameters). */
export const CLIPSEG_RD64_REFINED_CONFIG_JSON: Readonly<Record<string, unknown>> = clipsegConfigJson(64, true);
/** `CIDAS/clipseg-rd64`. */
export const CLIPSEG_RD64_CONFIG_JSON: Readonly<Record<string, unknown>> = clipsegConfigJson(64, false);
/** `CIDAS/clipseg-rd16`. */
export const CLIPSEG_RD16_CONFIG_JSON: Readonly<Record<string, unknown>> = clipsegConfigJson(16, false);

export const CLIPSEG_CONFIGS = {
  'CIDAS/clipseg-rd64-refined': CLIPSEG_RD64_REFINED_CONFIG_JSON,
  'CIDAS/clipseg-rd64': CLIPSEG_RD64_CONFIG_JSON,
  'CIDAS/clipseg-rd16': CLIPSEG_RD16_CONFIG_JSON,
} as const;

export type ClipSegCheckpointName = keyof typeof CLIPSEG_CONFIGS;

/** The parsed config of a published checkpoint. */
export function clipSegConfigFor(name: ClipSegCheckpointName): ClipSegConfig {
  const raw = CLIPSEG_CONFIGS[name];
  if (!raw) throw new Error(`unknown CLIPSeg checkpoint '${name}' (known: ${Object.keys(CLIPSEG_CONFIGS).join(', ')})`);
  return parseClipSegConfig(raw, name);
}
