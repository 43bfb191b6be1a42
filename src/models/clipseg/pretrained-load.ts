/**
 * Reading a pretrained CLIPSeg model's parts from its files (ModelFiles: a Hugging Face folder or a
 * file map): the config, the tokenizer, the preprocessing settings and the weights.
 *
 *   config        config.json (required; parseClipSegConfig names any missing or invalid key)
 *   weights       model.safetensors (streamed tensor by tensor), model.safetensors.index.json
 *                 (shards), pytorch_model.bin, pytorch_model.bin.index.json; HF key rules as
 *                 ClipSegForImageSegmentation.loadWeights: `clipseg.` read as `clip.`, the int64
 *                 `position_ids` buffers ignored, strict key and shape checks (f16/bf16 converted)
 *   tokenizer     first found: vocab.json + merges.txt, tokenizer.json (BPE model), a
 *                 bpe_simple_vocab_16e6.txt.gz in the folder, else the vocabulary shipped in
 *                 weights/vocab/ (the real CLIP merges: right for every CIDAS checkpoint)
 *   preprocessing preprocessor_config.json when present, else the CIDAS hub values (352 x 352,
 *                 bilinear, ImageNet mean/std)
 */
import {
  CheckpointError,
  HF_WEIGHT_FILES,
  LoadStateError,
  type LoadStateReport,
  type Module,
  loadState,
  loadStateFromSafetensors,
  openSafetensorsSource,
  parseShardIndex,
  planHfFolder,
  readCheckpoint,
} from '../../engine/index.js';
import { ClipTokenizer } from '../clip/tokenizer.js';
import { type ClipSegPreprocessOptions, preprocessOptionsFromConfig } from '../image/index.js';
import { type ClipSegConfig, parseClipSegConfig } from './config.js';
import { type ModelFiles, SHIPPED_VOCAB_FILE, readJsonObject, shippedVocabulary } from './pretrained-files.js';
import { canonicalKey } from './weights.js';

/** config.json, parsed and validated. */
export async function readClipSegConfig(files: ModelFiles): Promise<{ raw: Record<string, unknown>; config: ClipSegConfig }> {
  const plan = planHfFolder(files.names());
  if (!plan.config || plan.config !== 'config.json') {
    throw new CheckpointError(`${files.label}: no config.json in the model folder (${listing(files)})`);
  }
  const raw = await readJsonObject(files, 'config.json');
  return { raw, config: parseClipSegConfig(raw, files.pathOf('config.json')) };
}

function listing(files: ModelFiles): string {
  const names = files.names();
  if (names.length === 0) return 'the folder is empty';
  const shown = names.slice(0, 12).join(', ');
  return `it holds ${names.length > 12 ? `${shown}, ... (${names.length} entries)` : shown}`;
}

/** HF tokenizer.json (a BPE model) -> vocab.json text and merges.txt text. */
function fromTokenizerJson(raw: Record<string, unknown>, path: string): ClipTokenizer {
  const model = raw.model as Record<string, unknown> | undefined;
  if (!model || model.type !== 'BPE' || typeof model.vocab !== 'object' || !Array.isArray(model.merges)) {
    throw new CheckpointError(`${path}: not a BPE tokenizer (expected model.type 'BPE' with vocab and merges)`);
  }
  const vocab: Record<string, unknown> = { ...(model.vocab as Record<string, unknown>) };
  for (const t of Array.isArray(raw.added_tokens) ? raw.added_tokens : []) {
    const { content, id } = t as { content?: unknown; id?: unknown };
    if (typeof content === 'string' && typeof id === 'number' && !(content in vocab)) vocab[content] = id;
  }
  const merges = (model.merges as unknown[]).map((m) => (Array.isArray(m) ? m.join(' ') : String(m)));
  return ClipTokenizer.fromHf(JSON.stringify(vocab), `#version: 0.2\n${merges.join('\n')}\n`);
}

/**
 * The model's tokenizer (see the file header for the order), checked against the text config: its
 * ids must fit the embedding table, and the pooled EOS must be found the way the config says (the
 * largest id when eos_token_id is HF's legacy 2, else that id).
 */
export async function readClipSegTokenizer(
  files: ModelFiles,
  config: ClipSegConfig,
  given?: ClipTokenizer,
): Promise<{ tokenizer: ClipTokenizer; source: string }> {
  let tokenizer: ClipTokenizer;
  let source: string;
  const { tokenizer: found } = planHfFolder(files.names());
  if (given) {
    tokenizer = given;
    source = 'the tokenizer passed in the options';
  } else if (found.vocabJson && found.mergesTxt) {
    tokenizer = ClipTokenizer.fromHf(await files.text('vocab.json'), await files.text('merges.txt'));
    source = `${files.pathOf('vocab.json')} + merges.txt`;
  } else if (found.tokenizerJson) {
    tokenizer = fromTokenizerJson(await readJsonObject(files, 'tokenizer.json'), files.pathOf('tokenizer.json'));
    source = files.pathOf('tokenizer.json');
  } else if (files.has(SHIPPED_VOCAB_FILE)) {
    tokenizer = ClipTokenizer.fromBpeGz(await files.bytes(SHIPPED_VOCAB_FILE));
    source = files.pathOf(SHIPPED_VOCAB_FILE);
  } else {
    tokenizer = ClipTokenizer.fromBpeGz(await shippedVocabulary());
    source = `the shipped CLIP vocabulary (weights/vocab/${SHIPPED_VOCAB_FILE}; the folder has no vocab.json/merges.txt)`;
  }
  const text = config.text;
  if (tokenizer.vocabSize > text.vocabSize) {
    throw new CheckpointError(
      `${files.label}: the tokenizer (${source}) has ${tokenizer.vocabSize} tokens, but text_config.vocab_size is ${text.vocabSize}: ` +
        'its ids would not fit the model (add the model\'s own vocab.json and merges.txt to the folder)',
    );
  }
  if (text.eosTokenId === 2 && tokenizer.eosTokenId !== tokenizer.vocabSize - 1) {
    throw new CheckpointError(`${files.label}: the text tower pools at the largest id (eos_token_id 2), but the tokenizer's EOS ${tokenizer.eosTokenId} is not its largest id`);
  }
  if (text.eosTokenId !== 2 && text.eosTokenId !== tokenizer.eosTokenId) {
    throw new CheckpointError(`${files.label}: text_config.eos_token_id is ${text.eosTokenId}, the tokenizer's EOS is ${tokenizer.eosTokenId}`);
  }
  return { tokenizer, source };
}

/** preprocessor_config.json as preprocessing options (empty: the CIDAS defaults). */
export async function readPreprocessOptions(files: ModelFiles): Promise<{ options: ClipSegPreprocessOptions; source: string }> {
  const { preprocessor } = planHfFolder(files.names());
  if (!preprocessor) return { options: {}, source: 'defaults of the CIDAS hub models (352 x 352, bilinear, ImageNet mean/std)' };
  const raw = await readJsonObject(files, preprocessor);
  return { options: preprocessOptionsFromConfig(raw), source: files.pathOf(preprocessor) };
}

/** HF key rules: `clipseg.` -> `clip.`, position_ids buffers dropped. */
export function hfRename(key: string): string | null {
  return /(^|\.)position_ids$/.test(key) ? null : canonicalKey(key);
}

export interface WeightsSummary {
  files: string[];
  loaded: number;
  /** dtype conversions made ('f16 -> f32' counts), ignored buffers. */
  notes: string[];
}

function describeReport(reports: LoadStateReport[]): string[] {
  const notes: string[] = [];
  const converted = reports.flatMap((r) => r.converted);
  if (converted.length > 0) {
    const kinds = new Map<string, number>();
    for (const c of converted) kinds.set(`${c.from} -> ${c.to}`, (kinds.get(`${c.from} -> ${c.to}`) ?? 0) + 1);
    notes.push(`converted ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
  const ignored = reports.reduce((n, r) => n + r.ignored.length, 0);
  if (ignored > 0) notes.push(`ignored ${ignored} position_ids buffers`);
  return notes;
}

/** Loads one weights file (safetensors streamed, torch read whole) with the given strictness. */
async function loadOne(model: Module, files: ModelFiles, name: string, format: 'safetensors' | 'torch', strict: boolean): Promise<LoadStateReport> {
  if (format === 'safetensors') {
    const st = await openSafetensorsSource(await files.byteSource(name));
    try {
      return await loadStateFromSafetensors(model, st, { rename: hfRename, strict });
    } finally {
      await st.close();
    }
  }
  const checkpoint = readCheckpoint(await files.bytes(name), files.pathOf(name));
  return loadState(model, checkpoint.tensors, { rename: hfRename, strict });
}

/**
 * Loads the folder's weights into `model` (strict: every model key present, no other key, every
 * shape equal). Sharded checkpoints are loaded shard by shard, then checked as a whole.
 */
export async function loadClipSegWeights(model: Module, files: ModelFiles): Promise<WeightsSummary> {
  const { weights, otherWeights } = planHfFolder(files.names());
  if (!weights || weights.file.startsWith('open_clip')) {
    const expected = HF_WEIGHT_FILES.filter((w) => !w.file.startsWith('open_clip')).map((w) => w.file);
    throw new CheckpointError(`${files.label}: no CLIPSeg weights in the model folder: expected one of ${expected.join(', ')} (${listing(files)})`);
  }
  const notes = otherWeights.length > 0 ? [`using ${weights.file}; also present: ${otherWeights.join(', ')}`] : [];
  if (!weights.index) {
    const report = await loadOne(model, files, weights.file, weights.format, true);
    return { files: [files.pathOf(weights.file)], loaded: report.loaded.length, notes: [...notes, ...describeReport([report])] };
  }
  const index = parseShardIndex(await files.text(weights.file), files.pathOf(weights.file));
  const missingShards = index.shards.filter((s) => !files.has(s));
  if (missingShards.length > 0) throw new CheckpointError(`${files.pathOf(weights.file)}: shard files not found: ${missingShards.join(', ')}`);
  const reports: LoadStateReport[] = [];
  for (const shard of index.shards) reports.push(await loadOne(model, files, shard, weights.format, false));
  const loaded = new Set(reports.flatMap((r) => r.loaded));
  const missing = [...model.stateDict().keys()].filter((k) => !loaded.has(k));
  const unexpected = reports.flatMap((r) => r.unexpected.map((u) => u.key));
  const problems: string[] = [];
  if (missing.length > 0) problems.push(`missing keys: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` and ${missing.length - 8} more` : ''}`);
  if (unexpected.length > 0) problems.push(`unexpected keys: ${unexpected.slice(0, 8).join(', ')}${unexpected.length > 8 ? ` and ${unexpected.length - 8} more` : ''}`);
  if (problems.length > 0) {
    throw new LoadStateError(`${files.pathOf(weights.file)}: cannot load the sharded CLIPSeg checkpoint: ${problems.join('; ')}`, problems, reports[0]!);
  }
  return {
    files: index.shards.map((s) => files.pathOf(s)),
    loaded: loaded.size,
    notes: [...notes, `merged ${index.shards.length} shards listed in ${weights.file}`, ...describeReport(reports)],
  };
}
