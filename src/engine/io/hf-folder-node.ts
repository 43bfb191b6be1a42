/**
 * Hugging Face model folders on disk (Node). File roles and the shard index: hf-folder.ts.
 *
 *   const folder = await readHfFolder('models/clipseg-rd64-refined');
 *   folder.config.projection_dim;  folder.tokenizer.vocabJson;  folder.weights.files
 *   const { tensors, report } = await readHfWeights(folder, { float32: true });
 *
 * readHfFolder reads only config.json (and a shard index); weights are read by readHfWeights (every
 * shard, merged into one Map) or, for safetensors, lazily with openSafetensorsFile(folder.weights.files[i]).
 * Errors (CheckpointError) name the folder or file and say what is missing.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Checkpoint, ReadCheckpointOptions } from './checkpoint.js';
import { readCheckpointFile } from './checkpoint-node.js';
import {
  HF_CONFIG_FILES,
  HF_WEIGHT_FILES,
  type HfTokenizerFiles,
  type HfWeightsFormat,
  type ShardIndex,
  parseShardIndex,
  planHfFolder,
} from './hf-folder.js';
import { CheckpointError, type TensorData } from './tensor-data.js';

/** JSON files above this size are refused (configs and indexes are kilobytes). */
const MAX_JSON_BYTES = 64 * 1024 * 1024;

export interface HfWeights {
  format: HfWeightsFormat;
  /** Absolute paths: the single weights file, or every shard in index order. */
  files: string[];
  /** The shard index, when the weights are sharded. */
  index?: { path: string } & ShardIndex;
}

export interface HfFolder {
  /** Absolute path of the folder. */
  dir: string;
  configPath: string;
  /** config.json, parsed. */
  config: Record<string, unknown>;
  weights: HfWeights;
  /** Absolute paths of the tokenizer files present. */
  tokenizer: HfTokenizerFiles;
  /** preprocessor_config.json, when present. */
  preprocessorPath?: string;
  /** Choices made (which weight file won over another, ...). */
  notes: string[];
}

async function readText(path: string): Promise<string> {
  try {
    const st = await stat(path);
    if (st.size > MAX_JSON_BYTES) throw new CheckpointError(`${path}: ${st.size} bytes is too large for a JSON config or index`);
    return await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${path}: cannot read the file (${(err as Error).message})`, { cause: err });
  }
}

async function readJson(path: string): Promise<unknown> {
  const text = await readText(path);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

function describeListing(names: string[]): string {
  if (names.length === 0) return 'the folder is empty';
  const shown = names.slice(0, 12).join(', ');
  return `it holds ${names.length > 12 ? `${shown}, ... (${names.length} entries)` : shown}`;
}

/** Lists a model folder, parses its config (and shard index) and locates weights and tokenizer files. */
export async function readHfFolder(dir: string): Promise<HfFolder> {
  const abs = resolve(dir);
  let names: string[];
  try {
    const st = await stat(abs);
    if (!st.isDirectory()) throw new CheckpointError(`${abs}: not a folder (readHfFolder expects a Hugging Face model folder)`);
    names = (await readdir(abs)).sort();
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such folder' : (err as Error).message;
    throw new CheckpointError(`${abs}: cannot read the model folder (${why})`, { cause: err });
  }
  const plan = planHfFolder(names);
  const notes: string[] = [];
  if (!plan.config) {
    throw new CheckpointError(`${abs}: no ${HF_CONFIG_FILES.join(' or ')} in the model folder (${describeListing(names)})`);
  }
  if (!plan.weights) {
    throw new CheckpointError(
      `${abs}: no weights in the model folder: expected one of ${HF_WEIGHT_FILES.map((w) => w.file).join(', ')} (${describeListing(names)})`,
    );
  }
  const configPath = join(abs, plan.config);
  const config = await readJson(configPath);
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new CheckpointError(`${configPath}: not a JSON object`);
  }
  if (plan.otherWeights.length > 0) notes.push(`using ${plan.weights.file}; also present: ${plan.otherWeights.join(', ')}`);
  const weightsPath = join(abs, plan.weights.file);
  let weights: HfWeights;
  if (plan.weights.index) {
    const index = parseShardIndex(await readText(weightsPath), weightsPath);
    const missing = index.shards.filter((s) => !names.includes(s));
    if (missing.length > 0) {
      throw new CheckpointError(`${weightsPath}: shard file${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found in ${abs}`);
    }
    weights = { format: plan.weights.format, files: index.shards.map((s) => join(abs, s)), index: { path: weightsPath, ...index } };
  } else {
    weights = { format: plan.weights.format, files: [weightsPath] };
  }
  const tokenizer: HfTokenizerFiles = {};
  for (const [role, file] of Object.entries(plan.tokenizer) as [keyof HfTokenizerFiles, string][]) tokenizer[role] = join(abs, file);
  const folder: HfFolder = { dir: abs, configPath, config: config as Record<string, unknown>, weights, tokenizer, notes };
  if (plan.preprocessor) folder.preprocessorPath = join(abs, plan.preprocessor);
  return folder;
}

/**
 * Reads a folder's weights (every shard) into one Map, through readCheckpointFile (so `module.`
 * prefixes, training wrappers and `float32` work as for single files). The format reported is the
 * first file's. With an index, every listed tensor must be found in its shard and no name may
 * appear in two shards; tensors a shard holds beyond the index are kept and noted in `report`.
 */
export async function readHfWeights(folder: HfFolder, options: ReadCheckpointOptions = {}): Promise<Checkpoint> {
  const { weights } = folder;
  if (!weights.index) return readCheckpointFile(weights.files[0]!, options);
  const index = weights.index;
  const tensors = new Map<string, TensorData>();
  const origin = new Map<string, string>();
  const report: string[] = [];
  const metadata: Checkpoint['metadata'] = {};
  let format: Checkpoint['format'] | undefined;
  for (const file of weights.files) {
    // Shard keys are compared with the index as they are: no prefix stripping per shard.
    const shard = await readCheckpointFile(file, { ...options, stripPrefixes: [] });
    format ??= shard.format;
    report.push(...shard.report.map((r) => `${file}: ${r}`));
    for (const [k, v] of Object.entries(shard.metadata)) metadata[k] ??= v;
    const shardName = file.slice(folder.dir.length + 1);
    let extra = 0;
    for (const [key, t] of shard.tensors) {
      const first = origin.get(key);
      if (first !== undefined) throw new CheckpointError(`${file}: tensor '${key}' is also in ${first}`);
      origin.set(key, file);
      tensors.set(key, t);
      if (index.weightMap.get(key) !== shardName) extra++;
    }
    if (extra > 0) report.push(`${file}: ${extra} tensors not listed for this shard in ${index.path} (kept)`);
  }
  const absent = [...index.weightMap].filter(([key, shard]) => origin.get(key) !== join(folder.dir, shard));
  if (absent.length > 0) {
    const shown = absent.slice(0, 8).map(([k, s]) => `'${k}' (${s})`).join(', ');
    throw new CheckpointError(`${index.path}: ${absent.length} listed tensors are not in their shard: ${shown}${absent.length > 8 ? ', ...' : ''}`);
  }
  report.push(`merged ${weights.files.length} shards listed in ${index.path}`);
  return { format: format ?? 'safetensors', tensors, report, metadata };
}

/** readHfFolder + readHfWeights. */
export async function loadHfFolder(dir: string, options: ReadCheckpointOptions = {}): Promise<{ folder: HfFolder; checkpoint: Checkpoint }> {
  const folder = await readHfFolder(dir);
  return { folder, checkpoint: await readHfWeights(folder, options) };
}
