/**
 * Loading a CRIS checkpoint for the API (api.ts): the config with the user's word_len / input size,
 * the checkpoint's bytes from a file, a folder, a file map or bytes, the tokenizer, and a
 * shape check of the checkpoint against the config before any parameter is allocated.
 */
import { CheckpointError, type TensorData } from '../../engine/index.js';
import { ClipTokenizer } from '../clip/tokenizer.js';
import { type ModelFiles, type PretrainedFileMap, SHIPPED_VOCAB_FILE, openModelFiles, shippedVocabulary } from '../clipseg/pretrained-files.js';
import { type CrisConfig, parseCrisConfig } from './config.js';
import { CRIS_CONFIGS, type CrisConfigName } from './configs.js';

/** What fromPretrained accepts as the architecture. */
export type CrisConfigInput = CrisConfigName | CrisConfig | Record<string, unknown>;

const CHECKPOINT_RE = /\.(pth|pt|bin|ckpt|safetensors)$/i;

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** The config with wordLen / inputSize applied, checked. */
export function resolveCrisConfig(config: CrisConfigInput, wordLen?: number, inputSize?: number): CrisConfig {
  let raw: Record<string, unknown>;
  let where: string;
  if (typeof config === 'string') {
    if (!Object.hasOwn(CRIS_CONFIGS, config)) throw new Error(`CRIS: unknown config '${config}' (known: ${Object.keys(CRIS_CONFIGS).join(', ')}, or a config object)`);
    raw = { ...CRIS_CONFIGS[config as CrisConfigName] };
    where = config;
  } else if (config !== null && typeof config === 'object' && typeof (config as CrisConfig).wordLen === 'number' && typeof (config as CrisConfig).clip === 'object') {
    // A parsed config goes back through its JSON form: the same checks as any other.
    raw = toJson(config as CrisConfig);
    where = 'CRIS config';
  } else if (config !== null && typeof config === 'object') {
    raw = { ...(config as Record<string, unknown>) };
    where = 'CRIS config';
  } else {
    throw new Error(`CRIS: options.config must be 'cris-r50', 'cris-r101' or a config object, got ${String(config)}`);
  }
  if (wordLen !== undefined) raw.word_len = wordLen;
  if (inputSize !== undefined) raw.input_size = inputSize;
  const c = parseCrisConfig(raw, where);
  if (c.inputSize % 32 !== 0) throw new Error(`${where}: input size ${c.inputSize} must be a multiple of 32 (the backbone downsamples by 32)`);
  return c;
}

function toJson(c: CrisConfig): Record<string, unknown> {
  return {
    clip: {
      embed_dim: c.clip.embedDim,
      image_resolution: c.clip.vision.inputResolution,
      vision_layers: c.clip.vision.layers,
      vision_width: c.clip.vision.width,
      vision_heads: c.clip.vision.heads,
      vocab_size: c.clip.vocabSize,
      context_length: c.clip.contextLength,
      transformer_width: c.clip.transformerWidth,
      transformer_heads: c.clip.transformerHeads,
      transformer_layers: c.clip.transformerLayers,
    },
    word_len: c.wordLen,
    word_dim: c.wordDim,
    vis_dim: c.visDim,
    fpn_in: c.fpnIn,
    fpn_out: c.fpnOut,
    num_layers: c.numLayers,
    num_head: c.numHead,
    dim_ffn: c.dimFfn,
    dropout: c.dropout,
    input_size: c.inputSize,
  };
}

/** The checkpoint bytes and name, and the files to look for a vocabulary in. */
export async function openCheckpoint(input: string | PretrainedFileMap | Uint8Array | ArrayBuffer): Promise<{ bytes: Uint8Array; name: string; files: ModelFiles | null }> {
  if (input instanceof Uint8Array) return { bytes: input, name: 'checkpoint', files: null };
  if (input instanceof ArrayBuffer) return { bytes: new Uint8Array(input), name: 'checkpoint', files: null };
  if (typeof input === 'string' && isNode()) {
    const { stat, readFile } = await import('node:fs/promises');
    let isDir: boolean;
    try {
      isDir = (await stat(input)).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CheckpointError(`${input}: cannot open the CRIS checkpoint (${code === 'ENOENT' ? 'no such file or folder' : (err as Error).message})`);
    }
    if (!isDir) {
      try {
        return { bytes: new Uint8Array(await readFile(input)), name: input, files: null };
      } catch (err) {
        throw new CheckpointError(`${input}: cannot read the CRIS checkpoint (${(err as Error).message})`);
      }
    }
  }
  const files = await openModelFiles(input as string | PretrainedFileMap);
  const found = files.names().filter((n) => CHECKPOINT_RE.test(n));
  if (found.length !== 1) {
    throw new CheckpointError(
      `${files.label}: expected exactly one CRIS checkpoint (.pth, .pt, .bin, .ckpt or .safetensors), found ${found.length === 0 ? 'none' : found.join(', ')}` +
        (found.length > 1 ? ': pass the file itself' : ''),
    );
  }
  return { bytes: await files.bytes(found[0]!), name: files.pathOf(found[0]!), files };
}

export async function readTokenizer(files: ModelFiles | null, given: ClipTokenizer | undefined): Promise<{ tokenizer: ClipTokenizer; source: string }> {
  if (given) return { tokenizer: given, source: 'options.tokenizer' };
  if (files?.has('vocab.json') && files.has('merges.txt')) {
    return { tokenizer: ClipTokenizer.fromHf(await files.text('vocab.json'), await files.text('merges.txt')), source: `${files.pathOf('vocab.json')} + merges.txt` };
  }
  if (files?.has(SHIPPED_VOCAB_FILE)) {
    return { tokenizer: ClipTokenizer.fromBpeGz(await files.bytes(SHIPPED_VOCAB_FILE)), source: files.pathOf(SHIPPED_VOCAB_FILE) };
  }
  return { tokenizer: ClipTokenizer.fromBpeGz(await shippedVocabulary()), source: `the shipped CLIP vocabulary (weights/vocab/${SHIPPED_VOCAB_FILE})` };
}

/** Distinct block indices under `prefix` (e.g. 'backbone.visual.layer3.') among the keys. */
function blockCount(keys: string[], prefix: string): number {
  const seen = new Set<string>();
  for (const k of keys) if (k.startsWith(prefix)) seen.add(k.slice(prefix.length).split('.')[0]!);
  return seen.size;
}

/**
 * Checks the checkpoint's telltale shapes and block counts against the config before anything is
 * allocated (a cris-r50 model is 590 MB), naming the likely variant; loadState then checks every key.
 */
export function checkCheckpointAgainstConfig(tensors: ReadonlyMap<string, TensorData>, c: CrisConfig, name: string, which: string): void {
  const keys = [...tensors.keys()].map((k) => (k.startsWith('module.') ? k.slice('module.'.length) : k));
  const shapeOf = (key: string) => (tensors.get(key) ?? tensors.get(`module.${key}`))?.shape;
  const problems: string[] = [];
  const w = c.clip.vision.width;
  const d = c.clip.transformerWidth;
  const shapes: [string, number[]][] = [
    ['backbone.visual.conv1.weight', [w / 2, 3, 3, 3]],
    ['backbone.token_embedding.weight', [c.clip.vocabSize, d]],
    ['backbone.positional_embedding', [c.clip.contextLength, d]],
    ['backbone.text_projection', [d, c.clip.embedDim]],
  ];
  for (const [key, want] of shapes) {
    const got = shapeOf(key);
    if (got && got.join(',') !== want.join(',')) problems.push(`'${key}' is [${got.join(', ')}], the config needs [${want.join(', ')}]`);
  }
  const counts: [string, number, string][] = [
    ...c.clip.vision.layers.map((n, i): [string, number, string] => [`backbone.visual.layer${i + 1}.`, n, `clip.vision_layers[${i}]`]),
    ['backbone.transformer.resblocks.', c.clip.transformerLayers, 'clip.transformer_layers'],
    ['decoder.layers.', c.numLayers, 'num_layers'],
  ];
  for (const [prefix, want, field] of counts) {
    const got = blockCount(keys, prefix);
    if (got > 0 && got !== want) problems.push(`${got} blocks '${prefix}*', the config's ${field} is ${want}`);
  }
  if (problems.length === 0) return;
  const layer3 = blockCount(keys, 'backbone.visual.layer3.');
  const looks = layer3 === 6 && shapeOf('backbone.visual.conv1.weight')?.[0] === 32 ? " (it looks like 'cris-r50')" : layer3 === 23 ? " (it looks like 'cris-r101')" : '';
  throw new CheckpointError(`${name}: the checkpoint does not match ${which}${looks}: ${problems.slice(0, 6).join('; ')}${problems.length > 6 ? `; and ${problems.length - 6} more` : ''}`);
}

/** loadState's message cut to its first lines (a wrong config lists hundreds of keys). */
export function shortMessage(message: string, lines = 12): string {
  const all = message.split('\n');
  return all.length <= lines ? message : `${all.slice(0, lines).join('\n')}\n  ... (${all.length - lines} more lines)`;
}
