/**
 * Segmenter checkpoints: ONE safetensors file that rebuilds a model anywhere (Node, a browser tab).
 *   tensors: the module's state dict by its checkpoint names (HF names for CLIPSeg), F32 or F16;
 *   __metadata__: { "webvlsm.format": "segmenter-v1", "webvlsm.kind": "clipseg" | "cris" | "unet",
 *                   "webvlsm.config": <the model's config JSON>, plus any caller metadata }.
 * A CLIPSeg checkpoint needs the CLIP BPE vocabulary to rebuild its tokenizer (shipped in
 * weights/vocab; the caller passes the tokenizer, so this file stays platform-free).
 *
 * Training state (optimizer moments, counters) lives in a separate file (train/state.ts): the model
 * file alone is what users share.
 */
import { type Device, getDefaultDevice } from '../engine/index.js';
import { type TensorToWrite, parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.js';
import type { ClipTokenizer } from '../models/clip/tokenizer.js';
import type { Segmenter, SegmenterKind } from './segmenter.js';
import { createSegmenter } from './segmenters/index.js';

export const SEGMENTER_FORMAT = 'segmenter-v1';
const KINDS: readonly SegmenterKind[] = ['clipseg', 'cris', 'unet'];

export interface EncodeOptions {
  /** Storage dtype of float tensors (default F32; F16 halves the file, values rounded). */
  dtype?: 'F32' | 'F16';
  metadata?: Record<string, string>;
}

/** Reads the segmenter's weights back from the device and serialises them with its config. */
export async function encodeSegmenterCheckpoint(segmenter: Segmenter, options: EncodeOptions = {}): Promise<Uint8Array> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of segmenter.module.stateDict()) {
    const data = await t.read();
    tensors[name] = { dtype: t.dtype === 'i32' ? 'I32' : options.dtype ?? 'F32', shape: t.shape, data };
  }
  const { kind, config } = segmenter.describe();
  return serializeSafetensors(tensors, {
    ...options.metadata,
    'webvlsm.format': SEGMENTER_FORMAT,
    'webvlsm.kind': kind,
    'webvlsm.config': JSON.stringify(config),
  });
}

export interface DecodeOptions {
  device?: Device;
  /** Required for CLIPSeg checkpoints. */
  tokenizer?: ClipTokenizer;
}

/** What a checkpoint file says about itself, without building the model. */
export function readCheckpointHeader(bytes: Uint8Array, name: string): { kind: SegmenterKind; config: Record<string, unknown>; metadata: Readonly<Record<string, string>> } {
  const file = parseSafetensors(bytes, name);
  const meta = file.metadata;
  if (meta['webvlsm.format'] !== SEGMENTER_FORMAT) {
    const found = meta['webvlsm.format'] === undefined ? 'no webvlsm.format metadata' : `format '${meta['webvlsm.format']}'`;
    throw new Error(`${name}: not a webvlsm segmenter checkpoint (${found}; expected '${SEGMENTER_FORMAT}'). ` +
      'HF CLIPSeg folders and CRIS .pth files load with loadSegmenterFile (src/train/checkpoint-node.ts), or CLIPSeg.fromPretrained / CRIS.fromPretrained');
  }
  const kind = meta['webvlsm.kind'] as SegmenterKind;
  if (!KINDS.includes(kind)) throw new Error(`${name}: unknown model kind '${String(kind)}' in webvlsm.kind (${KINDS.join(', ')})`);
  let config: unknown;
  try {
    config = JSON.parse(meta['webvlsm.config'] ?? '');
  } catch (error) {
    throw new Error(`${name}: webvlsm.config is not valid JSON (${(error as Error).message})`);
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error(`${name}: webvlsm.config must be a JSON object`);
  return { kind, config: config as Record<string, unknown>, metadata: meta };
}

/** Rebuilds the segmenter of a checkpoint and loads its weights (strict: every key must match). */
export function decodeSegmenterCheckpoint(bytes: Uint8Array, name: string, options: DecodeOptions = {}): Segmenter {
  const { kind, config } = readCheckpointHeader(bytes, name);
  const file = parseSafetensors(bytes, name);
  const device = options.device ?? getDefaultDevice();
  const segmenter = createSegmenter(kind, config, { device, empty: true, tokenizer: options.tokenizer }, name);
  const state = new Map(file.keys().map((key) => {
    const t = file.get(key);
    return [key, { shape: t.shape, data: t.data }] as const;
  }));
  try {
    segmenter.module.loadStateDict(state);
  } catch (error) {
    segmenter.module.dispose();
    throw new Error(`${name}: ${(error as Error).message}`);
  }
  return segmenter;
}
