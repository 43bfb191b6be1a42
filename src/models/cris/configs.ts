/**
 * The published CRIS configurations (CRIS.pytorch config/<dataset>/cris_r{50,101}.yaml) with the
 * dimensions of the OpenAI CLIP RN50 / RN101 backbones they load (docs/architectures.md §3.1).
 * `word_len` differs per dataset (17 RefCOCO/RefCOCO+, 22 RefCOCOg) and is not stored in
 * checkpoints: pass the value the checkpoint was trained with.
 */
import { type CrisConfig, parseCrisConfig } from './config.js';

const CLIP_TEXT = { context_length: 77, vocab_size: 49408, transformer_width: 512, transformer_layers: 12 };

/** cris_r50.yaml (RefCOCO) with CLIP RN50: 146,849,122 parameters. */
export const CRIS_R50_CONFIG_JSON: Readonly<Record<string, unknown>> = {
  clip: { embed_dim: 1024, image_resolution: 224, vision_layers: [3, 4, 6, 3], vision_width: 64, ...CLIP_TEXT },
  input_size: 416,
  word_len: 17,
  word_dim: 1024,
  vis_dim: 512,
  fpn_in: [512, 1024, 1024],
  fpn_out: [256, 512, 1024],
  num_layers: 3,
  num_head: 8,
  dim_ffn: 2048,
  dropout: 0.1,
};

/** cris_r101.yaml (RefCOCO) with CLIP RN101: 161,251,682 parameters. */
export const CRIS_R101_CONFIG_JSON: Readonly<Record<string, unknown>> = {
  clip: { embed_dim: 512, image_resolution: 224, vision_layers: [3, 4, 23, 3], vision_width: 64, ...CLIP_TEXT },
  input_size: 416,
  word_len: 17,
  word_dim: 512,
  vis_dim: 512,
  fpn_in: [512, 1024, 512],
  fpn_out: [256, 512, 1024],
  num_layers: 3,
  num_head: 8,
  dim_ffn: 2048,
  dropout: 0.1,
};

export const CRIS_CONFIGS = { 'cris-r50': CRIS_R50_CONFIG_JSON, 'cris-r101': CRIS_R101_CONFIG_JSON } as const;

export type CrisConfigName = keyof typeof CRIS_CONFIGS;

/** The parsed config of a published architecture, with the checkpoint's `word_len` (default 17). */
export function crisConfigFor(name: CrisConfigName, options: { wordLen?: number } = {}): CrisConfig {
  const raw = CRIS_CONFIGS[name];
  if (!raw) throw new Error(`unknown CRIS config '${name}' (known: ${Object.keys(CRIS_CONFIGS).join(', ')})`);
  return parseCrisConfig({ ...raw, word_len: options.wordLen ?? raw.word_len }, name);
}
