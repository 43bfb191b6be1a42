/**
 * CLIPSeg settings from an HF `config.json` (CLIPSegConfig, transformers
 * configuration_clipseg.py). Absent keys take HF's defaults, except that `text_config` and
 * `vision_config` must be present: a config without them describes no particular checkpoint, and
 * HF's fallbacks (patch 32, ...) would silently build the wrong model. Legacy hub files may carry
 * `text_config_dict` / `vision_config_dict` as well; as in HF, their values take precedence.
 *
 * `decoder_hidden_act` is parsed but ignored by the model (HF hard-codes ReLU in the decoder), and
 * the decoder's LayerNorm eps comes from the vision config, as in HF.
 */
import { ConfigReader, isPlainObject } from '../clip/config-reader.js';
import { type ClipTextConfig, type ClipVisionConfig, parseClipTextConfig, parseClipVisionConfig } from '../clip/config.js';

export interface ClipSegConfig {
  text: ClipTextConfig;
  vision: ClipVisionConfig;
  projectionDim: number;
  logitScaleInitValue: number;
  /** 0-based vision encoder layers whose outputs feed the decoder (hidden_states[i + 1]). */
  extractLayers: number[];
  reduceDim: number;
  decoderNumAttentionHeads: number;
  decoderIntermediateSize: number;
  /** Decoder step (0 = the deepest activation) at which FiLM applies the condition. */
  conditionalLayer: number;
  useComplexTransposedConvolution: boolean;
}

/** text_config merged with text_config_dict (the latter wins, as in HF). */
function subConfig(r: ConfigReader, key: 'text_config' | 'vision_config'): ConfigReader {
  const dictKey = `${key}_dict`;
  const hasDict = r.has(dictKey);
  if (!r.has(key) && !hasDict) r.fail(key, 'is missing (an object with the tower settings: hidden_size, num_hidden_layers, ...)');
  const base = r.child(key, false);
  if (!hasDict) return base;
  const dict = r.child(dictKey, true);
  return new ConfigReader({ ...base.raw, ...dict.raw }, `${r.where}: ${key}`);
}

/**
 * Parses and validates a CLIPSeg config object (the parsed JSON). `source` names it in errors.
 * Throws an Error naming the key for any missing required or invalid value.
 */
export function parseClipSegConfig(raw: unknown, source = 'config.json'): ClipSegConfig {
  if (!isPlainObject(raw)) throw new Error(`${source}: a CLIPSeg config must be a JSON object, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  const r = new ConfigReader(raw, source);
  if (r.has('model_type') && raw.model_type !== 'clipseg') {
    r.fail('model_type', `is '${String(raw.model_type)}', expected 'clipseg'`);
  }
  const text = parseClipTextConfig(subConfig(r, 'text_config'));
  const vision = parseClipVisionConfig(subConfig(r, 'vision_config'));
  const config: ClipSegConfig = {
    text,
    vision,
    projectionDim: r.int('projection_dim', 512),
    logitScaleInitValue: r.num('logit_scale_init_value', 2.6592),
    extractLayers: r.intList('extract_layers', [3, 6, 9]),
    reduceDim: r.int('reduce_dim', 64),
    decoderNumAttentionHeads: r.int('decoder_num_attention_heads', 4),
    decoderIntermediateSize: r.int('decoder_intermediate_size', 2048),
    conditionalLayer: r.int('conditional_layer', 0, 0),
    useComplexTransposedConvolution: r.bool('use_complex_transposed_convolution', false),
  };
  r.str('decoder_hidden_act', 'quick_gelu');
  const bad = config.extractLayers.find((i) => i >= vision.numHiddenLayers);
  if (bad !== undefined) {
    r.fail('extract_layers', `[${config.extractLayers.join(', ')}] names layer ${bad}, but the vision tower has ${vision.numHiddenLayers} layers (0..${vision.numHiddenLayers - 1})`);
  }
  if (config.reduceDim % config.decoderNumAttentionHeads !== 0) {
    r.fail('decoder_num_attention_heads', `(${config.decoderNumAttentionHeads}) must divide reduce_dim (${config.reduceDim})`);
  }
  if (config.conditionalLayer >= config.extractLayers.length) {
    r.fail('conditional_layer', `(${config.conditionalLayer}) must be below the number of decoder layers (${config.extractLayers.length})`);
  }
  if (config.useComplexTransposedConvolution && (vision.patchSize < 4 || config.reduceDim < 2)) {
    r.fail('use_complex_transposed_convolution', `needs patch_size >= 4 and reduce_dim >= 2 (kernels patch_size // 4, channels reduce_dim // 2)`);
  }
  return config;
}

/** Spatial upsampling of the decoder head: logits are (grid * factor) per side. */
export function headUpsampling(config: ClipSegConfig): number {
  const p = config.vision.patchSize;
  return config.useComplexTransposedConvolution ? Math.floor(p / 4) ** 2 : p;
}
