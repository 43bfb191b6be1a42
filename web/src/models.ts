/**
 * Loading models in the page, whatever the user picked, into one shape (LoadedModel):
 *
 * - a Hugging Face CLIPSeg folder (config.json + weights + optional tokenizer files):
 *   CLIPSeg.fromPretrained with a map of the folder's top-level files;
 * - a CRIS checkpoint (.pth/.pt/.bin/.ckpt, or a .safetensors with CRIS's `backbone.` keys):
 *   CRIS.fromPretrained, with the variant and word_len from the page (checkpoints store neither),
 *   or with a CRIS config.json picked with it (custom sizes);
 * - a webvlsm segmenter checkpoint (.safetensors: the demo, or one the Finetune tab saved):
 *   decodeSegmenterCheckpoint. Only these can be finetuned in the page (`segmenter`).
 *
 * Anything else gets a message saying what was expected. Before weights are uploaded, safetensors
 * headers are checked against the adapter's buffer limits (gpu.ts).
 */
import type { Device } from '../../src/engine/index.js';
import { openSafetensors } from '../../src/engine/index.js';
import { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { CLIPSeg } from '../../src/models/clipseg/api.js';
import { SHIPPED_VOCAB_FILE } from '../../src/models/clipseg/pretrained-files.js';
import { CRIS } from '../../src/models/cris/api.js';
import { CRIS_CONFIGS, type CrisConfigName } from '../../src/models/cris/configs.js';
import type { Image, ProbabilityMap } from '../../src/models/image/index.js';
import { decodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { type Segmenter, predictProbabilities } from '../../src/train/segmenter.js';
import { type PickedFile, extensionOf, fetchAsset } from './files.js';
import { checkSafetensorsFit, explainLoadError } from './gpu.js';

export type ModelKind = 'clipseg' | 'cris' | 'segmenter';

export interface LoadedModel {
  readonly kind: ModelKind;
  /** Shown in the page ('clipseg_tiny_refined', 'demo checkpoint', ...). */
  name: string;
  readonly notes: string[];
  /** The model's own mask threshold (CLIPSeg 0.5, CRIS 0.35, a segmenter's stored one). */
  readonly defaultThreshold: number;
  /** The trainable form: segmenter checkpoints only. */
  readonly segmenter: Segmenter | null;
  /** Probability maps at the image's size, one per prompt (CLIPSeg/CRIS: one forward for all prompts). */
  predict(image: Image, prompts: string[]): Promise<ProbabilityMap[]>;
  dispose(): void;
}

export interface LoadOptions {
  device: Device;
  crisConfig: string;
  crisWordLen: number;
}

const CHECKPOINT_EXTENSIONS = new Set(['pth', 'pt', 'bin', 'ckpt', 'safetensors']);

export const ACCEPTED_MODELS =
  'a Hugging Face CLIPSeg folder (config.json with model.safetensors or pytorch_model.bin), ' +
  'a CRIS checkpoint (.pth), or a webvlsm segmenter checkpoint (.safetensors, like the demo)';

/** A model from picked or dropped files; errors say what is wrong and what was expected. */
export async function loadModelFiles(files: PickedFile[], options: LoadOptions): Promise<LoadedModel> {
  const top = files.filter((f) => !f.path.includes('/'));
  const checkpoints = top.filter((f) => CHECKPOINT_EXTENSIONS.has(extensionOf(f.path)));
  const configFile = top.find((f) => f.path === 'config.json');
  if (configFile) {
    const config = await readConfig(configFile.file);
    if (isClipSegConfig(config)) return withContext('the model folder', () => loadClipSeg(top, options));
    if (checkpoints.length === 1) return withContext(checkpoints[0]!.path, () => loadCris(top, options, config));
    throw new Error('config.json is neither a CLIPSeg config (with vision_config and text_config) nor next to one CRIS checkpoint (.pth).');
  }
  if (checkpoints.length === 1) {
    const picked = checkpoints[0]!;
    return withContext(picked.path, () =>
      extensionOf(picked.path) === 'safetensors' ? loadSafetensors(picked, top, options) : loadCris(top, options),
    );
  }
  const names = files.map((f) => f.path);
  const shown = names.slice(0, 6).join(', ') + (names.length > 6 ? `, ... (${names.length} files)` : '');
  if (checkpoints.length > 1) {
    throw new Error(`Several checkpoints were picked (${checkpoints.map((f) => f.path).join(', ')}): pick one, or a CLIPSeg folder with its config.json.`);
  }
  const images = names.filter((n) => ['png', 'jpg', 'jpeg'].includes(extensionOf(n)));
  if (images.length === names.length) throw new Error(`${shown} is an image, not a model: load it under "2. Image".`);
  if (names.some((n) => extensionOf(n) === 'zip')) throw new Error(`${shown} looks like a dataset: load it in the Finetune tab.`);
  throw new Error(`${shown} is not a model. Expected ${ACCEPTED_MODELS}.`);
}

/** Where the build puts the CLIP vocabulary, relative to the page (scripts/build-web.mjs). */
const VOCAB_ASSET = `weights/vocab/${SHIPPED_VOCAB_FILE}`;

let vocabulary: Promise<Uint8Array> | null = null;
let clipTokenizer: Promise<ClipTokenizer> | null = null;

/**
 * The shipped CLIP vocabulary, fetched relative to the page once (not through the models' own
 * fallback, which resolves it against the bundle's URL and so assumes the app sits at the site root).
 */
function shippedVocabulary(): Promise<Uint8Array> {
  vocabulary ??= fetchAsset(VOCAB_ASSET);
  vocabulary.catch(() => (vocabulary = null));
  return vocabulary;
}

/** The CLIP tokenizer of segmenter checkpoints (they store no vocabulary). */
function shippedTokenizer(): Promise<ClipTokenizer> {
  clipTokenizer ??= shippedVocabulary().then((bytes) => ClipTokenizer.fromBpeGz(bytes));
  clipTokenizer.catch(() => (clipTokenizer = null));
  return clipTokenizer;
}

/** A model folder's files by name, with the shipped vocabulary added when it has no tokenizer files. */
async function fileMap(top: PickedFile[]): Promise<Map<string, Blob | Uint8Array>> {
  const map = new Map<string, Blob | Uint8Array>(top.map((f) => [f.path, f.file]));
  const hasTokenizer = (map.has('vocab.json') && map.has('merges.txt')) || map.has('tokenizer.json') || map.has(SHIPPED_VOCAB_FILE);
  if (!hasTokenizer) map.set(SHIPPED_VOCAB_FILE, await shippedVocabulary());
  return map;
}

/** The bundled demo checkpoint (or any segmenter checkpoint's bytes). */
export async function loadSegmenterBytes(bytes: Uint8Array, name: string, device: Device): Promise<LoadedModel> {
  return withContext(name, async () => {
    await checkSafetensorsFit(bytes, name, device);
    const tokenizer = await shippedTokenizer();
    return segmenterModel(decodeSegmenterCheckpoint(bytes, name, { device, tokenizer }), name);
  });
}

async function withContext<T>(what: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const message = explainLoadError(err);
    throw new Error(message.startsWith('This model') ? message : `Cannot load ${what}: ${message}`, { cause: err });
  }
}

async function loadClipSeg(top: PickedFile[], options: LoadOptions): Promise<LoadedModel> {
  const map = await fileMap(top);
  const weights = top.find((f) => f.path === 'model.safetensors');
  if (weights) await checkSafetensorsFit(weights.file, 'model.safetensors', options.device);
  const model = await CLIPSeg.fromPretrained(map, { device: options.device });
  return {
    kind: 'clipseg',
    name: folderName(top) ?? 'CLIPSeg folder',
    notes: model.notes,
    defaultThreshold: 0.5,
    segmenter: null,
    predict: async (image, prompts) => (await model.segment(image, prompts)).probabilities,
    dispose: () => model.dispose(),
  };
}

async function readConfig(file: Blob): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await file.text());
  } catch (err) {
    throw new Error(`config.json is not valid JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('config.json must hold a JSON object');
  return value as Record<string, unknown>;
}

function isClipSegConfig(raw: Record<string, unknown>): boolean {
  return 'vision_config' in raw || 'text_config' in raw || raw.model_type === 'clipseg';
}

/**
 * CRIS with a published variant and word_len from the page, or with the folder's own config.json
 * (CRIS's config in JSON form, word_len included; models/cris/config.ts).
 */
async function loadCris(top: PickedFile[], options: LoadOptions, folderConfig?: Record<string, unknown>): Promise<LoadedModel> {
  if (!folderConfig && !(options.crisConfig in CRIS_CONFIGS)) {
    throw new Error(`unknown CRIS variant '${options.crisConfig}' (${Object.keys(CRIS_CONFIGS).join(', ')})`);
  }
  const map = await fileMap(top.filter((f) => f.path !== 'config.json'));
  const model = folderConfig
    ? await CRIS.fromPretrained(map, { config: folderConfig, device: options.device })
    : await CRIS.fromPretrained(map, { config: options.crisConfig as CrisConfigName, wordLen: options.crisWordLen, device: options.device });
  const file = top.find((f) => CHECKPOINT_EXTENSIONS.has(extensionOf(f.path)))!;
  return {
    kind: 'cris',
    name: file.path,
    notes: model.notes,
    defaultThreshold: 0.35,
    segmenter: null,
    predict: async (image, prompts) => (await model.segment(image, prompts)).probabilities,
    dispose: () => model.dispose(),
  };
}

async function loadSafetensors(picked: PickedFile, top: PickedFile[], options: LoadOptions): Promise<LoadedModel> {
  const st = await openSafetensors(picked.file, { name: picked.path });
  const keys = st.keys();
  await st.close();
  if (keys.some((k) => k.startsWith('backbone.'))) return loadCris(top, options);
  if (st.metadata['webvlsm.format'] === undefined && keys.some((k) => k.startsWith('clipseg.') || k.startsWith('clip.text_model.'))) {
    throw new Error(`${picked.path} holds CLIPSeg weights in Hugging Face layout without a config: pick the whole model folder (with its config.json).`);
  }
  return loadSegmenterBytes(new Uint8Array(await picked.file.arrayBuffer()), picked.path, options.device);
}

function segmenterModel(seg: Segmenter, name: string): LoadedModel {
  const described = seg.describe();
  return {
    kind: 'segmenter',
    name,
    notes: [`${described.kind} segmenter, input ${seg.inputSize[1]}x${seg.inputSize[0]}${seg.usesText ? '' : ', ignores prompts'}`],
    defaultThreshold: seg.threshold,
    segmenter: seg,
    predict: (image, prompts) => predictProbabilities(seg, prompts.map(() => image), prompts),
    dispose: () => seg.module.dispose(),
  };
}

function folderName(files: PickedFile[]): string | null {
  const rel = files[0]?.file.webkitRelativePath;
  return rel && rel.includes('/') ? rel.split('/')[0]! : null;
}

/**
 * A first forward on a small grey image: it compiles every pipeline the model needs, so that the
 * first real segmentation is timed as inference alone.
 */
export async function warmUp(model: LoadedModel, device: Device): Promise<{ ms: number; pipelines: number }> {
  const before = device.stats().pipelines;
  const image: Image = { width: 32, height: 32, channels: 3, data: new Uint8Array(32 * 32 * 3).fill(128) };
  const t0 = performance.now();
  await model.predict(image, ['warm-up']);
  return { ms: performance.now() - t0, pipelines: device.stats().pipelines - before };
}
