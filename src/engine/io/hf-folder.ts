/**
 * Hugging Face model folders (what `huggingface-cli download CIDAS/clipseg-rd64-refined` leaves on
 * disk), the browser-safe part: which files play which role, and the sharded-weights index.
 *
 *   config       config.json (open_clip folders such as BiomedCLIP: open_clip_config.json)
 *   weights      first that exists: model.safetensors, model.safetensors.index.json (shards),
 *                pytorch_model.bin, pytorch_model.bin.index.json (shards),
 *                open_clip_model.safetensors, open_clip_pytorch_model.bin
 *   tokenizer    vocab.json, merges.txt (CLIP BPE), tokenizer.json, tokenizer_config.json,
 *                special_tokens_map.json, vocab.txt (BERT WordPiece)
 *   preprocessor preprocessor_config.json
 *
 * A shard index is `{"metadata": {"total_size": N}, "weight_map": {"<tensor>": "<shard file>"}}`;
 * shard names must be plain file names in the same folder (no '/', '\', '..': a hostile index
 * cannot point outside the folder). hf-folder-node.ts reads folders from disk.
 */
import { CheckpointError } from './tensor-data.js';

export const HF_CONFIG_FILES = ['config.json', 'open_clip_config.json'] as const;

export type HfWeightsFormat = 'safetensors' | 'torch';

/** Weight files in order of preference; `index` files list shards. */
export const HF_WEIGHT_FILES: readonly { file: string; format: HfWeightsFormat; index: boolean }[] = [
  { file: 'model.safetensors', format: 'safetensors', index: false },
  { file: 'model.safetensors.index.json', format: 'safetensors', index: true },
  { file: 'pytorch_model.bin', format: 'torch', index: false },
  { file: 'pytorch_model.bin.index.json', format: 'torch', index: true },
  { file: 'open_clip_model.safetensors', format: 'safetensors', index: false },
  { file: 'open_clip_pytorch_model.bin', format: 'torch', index: false },
];

export const HF_TOKENIZER_FILES = {
  vocabJson: 'vocab.json',
  mergesTxt: 'merges.txt',
  tokenizerJson: 'tokenizer.json',
  tokenizerConfigJson: 'tokenizer_config.json',
  specialTokensMapJson: 'special_tokens_map.json',
  vocabTxt: 'vocab.txt',
} as const;

export type HfTokenizerFiles = { -readonly [K in keyof typeof HF_TOKENIZER_FILES]?: string };

export const HF_PREPROCESSOR_FILE = 'preprocessor_config.json';

/** What a listing of a folder's file names says about its roles (names, not paths). */
export interface HfFolderPlan {
  config: string | null;
  weights: { file: string; format: HfWeightsFormat; index: boolean } | null;
  /** Other weight files present but not used (the preferred one wins). */
  otherWeights: string[];
  tokenizer: HfTokenizerFiles;
  preprocessor: string | null;
}

export function planHfFolder(names: Iterable<string>): HfFolderPlan {
  const present = new Set(names);
  const weights = HF_WEIGHT_FILES.filter((w) => present.has(w.file));
  const tokenizer: HfTokenizerFiles = {};
  for (const [role, file] of Object.entries(HF_TOKENIZER_FILES) as [keyof HfTokenizerFiles, string][]) {
    if (present.has(file)) tokenizer[role] = file;
  }
  return {
    config: HF_CONFIG_FILES.find((f) => present.has(f)) ?? null,
    weights: weights[0] ?? null,
    otherWeights: weights.slice(1).map((w) => w.file),
    tokenizer,
    preprocessor: present.has(HF_PREPROCESSOR_FILE) ? HF_PREPROCESSOR_FILE : null,
  };
}

export interface ShardIndex {
  /** Tensor name -> shard file name. */
  weightMap: Map<string, string>;
  /** Shard file names in order of first appearance. */
  shards: string[];
  totalSize: number | undefined;
}

/** A plain file name: no directory parts, not '.' or '..', no NUL. */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

/** Parses and validates a `*.index.json` shard index; `path` names it in errors. */
export function parseShardIndex(text: string, path: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CheckpointError(`${path}: not a JSON object`);
  const { weight_map: map, metadata } = json as Record<string, unknown>;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new CheckpointError(`${path}: no "weight_map" object (not a sharded-checkpoint index)`);
  }
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !isPlainFileName(shard)) {
      throw new CheckpointError(`${path}: tensor '${tensor}' maps to ${JSON.stringify(shard)}, not a file name in the same folder`);
    }
    weightMap.set(tensor, shard);
    if (!shards.includes(shard)) shards.push(shard);
  }
  if (shards.length === 0) throw new CheckpointError(`${path}: "weight_map" lists no tensors`);
  const total = (metadata as Record<string, unknown> | undefined)?.total_size;
  return { weightMap, shards, totalSize: typeof total === 'number' ? total : undefined };
}
