/**
 * Node file access for segmenter checkpoints (checkpoint.ts holds the format): atomic writes
 * (temporary file, fsync, rename: a crash leaves the old file or the new one, never half of one),
 * the shipped CLIP tokenizer, and loading a segmenter from a webvlsm checkpoint, an HF CLIPSeg
 * folder or a CRIS.pytorch checkpoint.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Device } from '../engine/index.js';
import { parseSafetensors } from '../engine/io/safetensors.js';
import { writeFileAtomic } from '../engine/io/safetensors-lazy-node.js';
import { readSafetensorsFile } from '../engine/io/safetensors-node.js';
import { ClipTokenizer } from '../models/clip/tokenizer.js';
import { SHIPPED_VOCAB_URL } from '../models/clipseg/pretrained-files.js';
import type { CrisConfigName } from '../models/cris/configs.js';
import { type EncodeOptions, SEGMENTER_FORMAT, decodeSegmenterCheckpoint, encodeSegmenterCheckpoint } from './checkpoint.js';
import type { Segmenter } from './segmenter.js';
import { ClipSegSegmenter } from './segmenters/clipseg.js';
import { crisSegmenterFromCheckpoint } from './segmenters/cris.js';

/** Torch checkpoint extensions: loaded as CRIS.pytorch checkpoints (the only torch format here). */
const TORCH_RE = /\.(pth|pt|ckpt|bin)$/i;

let shippedTokenizer: ClipTokenizer | null = null;

/** The CLIP BPE tokenizer from weights/vocab (read once per process). */
export async function loadShippedTokenizer(): Promise<ClipTokenizer> {
  shippedTokenizer ??= ClipTokenizer.fromBpeGz(await readFile(fileURLToPath(SHIPPED_VOCAB_URL)));
  return shippedTokenizer;
}

/** Writes `bytes` to `path` atomically. */
export async function writeBytesAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await writeFileAtomic(path, async (handle) => {
    await handle.writeFile(bytes);
  });
}

export async function saveSegmenterFile(path: string, segmenter: Segmenter, options: EncodeOptions = {}): Promise<void> {
  await writeBytesAtomic(path, await encodeSegmenterCheckpoint(segmenter, options));
}

export interface LoadSegmenterOptions {
  device?: Device;
  /** Default: the shipped CLIP tokenizer. */
  tokenizer?: ClipTokenizer;
  /**
   * CRIS.pytorch checkpoints store no config: the architecture (default: 'cris-r50' / 'cris-r101'
   * inferred from the weights' shapes) and the word_len it was trained with (default 17).
   */
  cris?: { config?: CrisConfigName | Record<string, unknown>; wordLen?: number; inputSize?: number };
}

/**
 * A segmenter from `path`: a webvlsm checkpoint (.safetensors with webvlsm metadata), an HF
 * CLIPSeg folder (config.json + model.safetensors, e.g. CIDAS/clipseg-rd64-refined), or a
 * CRIS.pytorch checkpoint (.pth/.pt/.ckpt/.bin, or a .safetensors state dict with CRIS's
 * `backbone.visual.*` keys and no webvlsm metadata).
 */
export async function loadSegmenterFile(path: string, options: LoadSegmenterOptions = {}): Promise<Segmenter> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (error) {
    throw new Error(`${path}: cannot read the checkpoint (${(error as Error).message})`);
  }
  const tokenizer = options.tokenizer ?? (await loadShippedTokenizer());
  // CRIS options name what a CRIS.pytorch file lacks; other formats store their whole config.
  const crisGiven = Object.entries(options.cris ?? {}).filter(([, v]) => v !== undefined).map(([k]) => k);
  const refuseCris = (what: string): void => {
    if (crisGiven.length > 0) {
      throw new Error(`${path}: the CRIS options ${crisGiven.join(', ')} apply only to CRIS.pytorch checkpoints (.pth, or a safetensors state dict with backbone.visual.* keys); this is ${what}, which stores its own config`);
    }
  };
  if (isDir) {
    refuseCris('an HF CLIPSeg folder');
    return loadHfClipSegFolder(path, tokenizer, options.device);
  }
  const bytes = await readFile(path);
  if (TORCH_RE.test(path) || isPlainCrisSafetensors(bytes, path)) {
    return crisSegmenterFromCheckpoint(bytes, path, { ...options.cris, tokenizer, ...(options.device ? { device: options.device } : {}) });
  }
  refuseCris('a webvlsm checkpoint');
  return decodeSegmenterCheckpoint(bytes, path, { tokenizer, ...(options.device ? { device: options.device } : {}) });
}

/** A safetensors file without webvlsm metadata holding a CRIS state dict (e.g. `webvlsm convert` output). */
function isPlainCrisSafetensors(bytes: Uint8Array, path: string): boolean {
  let file: ReturnType<typeof parseSafetensors>;
  try {
    file = parseSafetensors(bytes, path);
  } catch {
    return false; // not safetensors: decodeSegmenterCheckpoint reports it
  }
  if (file.metadata['webvlsm.format'] === SEGMENTER_FORMAT) return false;
  return file.keys().some((k) => k === 'backbone.visual.conv1.weight' || k === 'module.backbone.visual.conv1.weight');
}

async function loadHfClipSegFolder(dir: string, tokenizer: ClipTokenizer, device?: Device): Promise<Segmenter> {
  const configPath = join(dir, 'config.json');
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${configPath}: cannot read the model config (${(error as Error).message}); ` +
      'a model folder needs config.json and model.safetensors (HF CLIPSeg layout)');
  }
  if (config['model_type'] !== 'clipseg') throw new Error(`${configPath}: model_type is ${JSON.stringify(config['model_type'])}; only CLIPSeg folders load here`);
  let inputSize = 352; // the CIDAS preprocessor's size
  try {
    const pre = JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8')) as { size?: unknown };
    const size = typeof pre.size === 'number' ? pre.size : (pre.size as { height?: number } | undefined)?.height;
    if (typeof size === 'number') inputSize = size;
  } catch {
    // no preprocessor_config.json: the CIDAS default
  }
  const segmenter = new ClipSegSegmenter(config, { tokenizer, empty: true, inputSize, ...(device ? { device } : {}) });
  try {
    segmenter.module.loadWeights(await readSafetensorsFile(join(dir, 'model.safetensors')));
  } catch (error) {
    segmenter.module.dispose();
    throw error;
  }
  return segmenter;
}
