/**
 * One entry point for every checkpoint format webvlsm reads:
 *
 *   readCheckpoint(bytes, name) -> { format, tensors: Map<name, TensorData>, report, metadata }
 *
 * Format by magic bytes: `PK\x03\x04` -> zip (TorchScript when `<prefix>/constants.pkl` exists,
 * else a torch.save archive); `80 02 8A 0A 6C FC 9C` (or a first pickle holding the magic number)
 * -> legacy torch format; `{` at byte 8, after the little-endian header length -> safetensors.
 * Other inputs get an error that says what they look like (gzip, HTML, a Git LFS pointer, a bare
 * pickle, ...).
 *
 * Pickle-based files go through the restricted pickle machine (pickle.ts): nothing in a file is
 * ever executed, and globals off the whitelist are refused (torch-globals.ts). Checkpoints that
 * pickle other classes (a whole nn.Module, Lightning hyper-parameters) can be read with
 * `unknownGlobals: 'placeholder'`, which keeps them as inert objects (never os/subprocess/eval...).
 *
 * State dict extraction (pickle formats; `unwrap: false` turns it off):
 * - a training checkpoint dict is unwrapped through its `state_dict` / `model_state_dict` /
 *   `model` / `module` entry (up to 3 levels), and its scalar entries (epoch, best_iou, ...) are
 *   returned as `metadata`;
 * - tensors are collected from nested dicts / module objects under dotted names;
 * - a prefix shared by every key (default `module.`, from DistributedDataParallel) is stripped.
 * Every step taken is listed in `report`.
 *
 * Tensors keep their stored dtype (see tensor-data.ts; i64 stays BigInt64Array) unless `float32`
 * asks for f16/bf16/f64 -> f32. Data may be views into `bytes`.
 *
 * Browser-safe: no Node imports (checkpoint-node.ts reads files).
 */
import { PyObject } from './pickle.js';
import { parseSafetensors, type SafetensorsDType } from './safetensors.js';
import { PickledTensor } from './torch-globals.js';
import { type TorchLegacyOptions, isTorchLegacy, readTorchLegacy } from './torch-legacy.js';
import { collectTensors, materializeTensor } from './torch-tensors.js';
import { type TorchZipOptions, readTorchZip, requireArchivePrefix } from './torch-zip.js';
import { isTorchScriptArchive, readTorchScript } from './torchscript.js';
import { CheckpointError, FLOAT_DTYPES, type TensorData, type TensorDType, arrayFromBytes, toFloat32 } from './tensor-data.js';
import { ZipArchive, isZip } from './zip.js';

export type CheckpointFormat = 'safetensors' | 'torch-zip' | 'torch-legacy' | 'torchscript';

export interface ReadCheckpointOptions extends TorchZipOptions, TorchLegacyOptions {
  /** Convert f16 / bf16 / f64 tensors to f32 (default false: keep the stored dtype). */
  float32?: boolean;
  /** Unwrap training-checkpoint dicts (default true). */
  unwrap?: boolean;
  /** Prefixes removed when every key has them (default ['module.']). */
  stripPrefixes?: readonly string[];
}

export interface Checkpoint {
  format: CheckpointFormat;
  tensors: Map<string, TensorData>;
  /** What was done to reach the state dict (unwrapping, prefix stripping, conversions, skips). */
  report: string[];
  /** Scalar entries of a training checkpoint (epoch, best_iou, ...) or safetensors __metadata__. */
  metadata: Record<string, string | number | boolean>;
}

const WRAPPER_KEYS = ['state_dict', 'model_state_dict', 'model', 'module'];

const SAFETENSORS_DTYPES: Readonly<Record<SafetensorsDType, TensorDType>> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64', I32: 'i32', I64: 'i64', U8: 'u8', BOOL: 'bool',
};

/** A JSON header opening at byte 8 (the header length itself is validated by the reader). */
function looksLikeSafetensors(bytes: Uint8Array): boolean {
  return bytes.length >= 9 && bytes[8] === 0x7b && bytes[7]! < 0x80;
}

/** The format `bytes` are in, by magic number (zip archives report 'torch-zip' before their directory is read). */
export function detectFormat(bytes: Uint8Array): CheckpointFormat | null {
  if (isZip(bytes)) return 'torch-zip';
  if (isTorchLegacy(bytes)) return 'torch-legacy';
  if (looksLikeSafetensors(bytes)) return 'safetensors';
  return null;
}

function describeUnknown(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'the file is empty';
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'it is gzip-compressed: decompress it first';
  if (bytes[0] === 0x50 && bytes[1] === 0x4b) return 'it is a zip file without a local file header at the start (corrupt or an empty archive)';
  if (head.startsWith('version https://git-lfs')) return 'it is a Git LFS pointer, not the weights (fetch the LFS object)';
  if (/^\s*</.test(head)) return 'it looks like an HTML/XML page (a failed download?)';
  if (bytes.length > 262 && new TextDecoder('latin1').decode(bytes.subarray(257, 262)) === 'ustar') {
    return 'it is a tar archive (the PyTorch <= 0.1 tar format is not supported)';
  }
  if (bytes[0] === 0x80) return 'it is a bare pickle, not a torch.save archive (no tensor storages)';
  const hex = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `unrecognised first bytes ${hex} (expected a zip, legacy torch or safetensors file)`;
}

function readSafetensorsTensors(bytes: Uint8Array, name: string): { tensors: Map<string, TensorData>; metadata: Record<string, string> } {
  let file;
  try {
    file = parseSafetensors(bytes, name);
  } catch (err) {
    // safetensors.ts reports bad input with plain Errors naming the file; anything else is a bug.
    if (err instanceof Error && err.constructor === Error) throw new CheckpointError(err.message, { cause: err });
    throw err;
  }
  const tensors = new Map<string, TensorData>();
  for (const key of file.keys()) {
    const info = file.info(key);
    const dtype = SAFETENSORS_DTYPES[info.dtype];
    tensors.set(key, { dtype, shape: [...info.shape], data: arrayFromBytes(dtype, file.bytes(key)) });
  }
  return { tensors, metadata: { ...file.metadata } };
}

function isScalar(v: unknown): v is string | number | boolean | bigint {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint';
}

/** Follows training-checkpoint wrapper entries down to the state dict. */
function unwrapCheckpoint(root: unknown, report: string[], metadata: Checkpoint['metadata']): unknown {
  let node = root;
  for (let depth = 0; depth < 3; depth++) {
    if (!(node instanceof Map)) break;
    const map = node;
    if ([...map.values()].some((v) => v instanceof PickledTensor)) break;
    const key = WRAPPER_KEYS.find((k) => map.get(k) instanceof Map || map.get(k) instanceof PyObject);
    if (key === undefined) break;
    const others: string[] = [];
    for (const [k, v] of map) {
      if (k === key) continue;
      others.push(String(k));
      if (depth === 0 && typeof k === 'string' && isScalar(v)) metadata[k] = typeof v === 'bigint' ? v.toString() : v;
    }
    report.push(`took entry '${key}' of the checkpoint dict${others.length ? ` (skipped ${others.join(', ')})` : ''}`);
    node = map.get(key);
  }
  return node;
}

function stripPrefix(tensors: Map<string, TensorData>, prefixes: readonly string[], report: string[]): Map<string, TensorData> {
  let out = tensors;
  for (const prefix of prefixes) {
    if (out.size === 0 || prefix === '' || ![...out.keys()].every((k) => k.startsWith(prefix))) continue;
    const next = new Map<string, TensorData>();
    for (const [k, v] of out) next.set(k.slice(prefix.length), v);
    report.push(`stripped prefix '${prefix}' from ${out.size} keys`);
    out = next;
  }
  return out;
}

function readPickleRoot(bytes: Uint8Array, name: string, options: ReadCheckpointOptions): { format: CheckpointFormat; root: unknown } {
  if (isTorchLegacy(bytes)) return { format: 'torch-legacy', root: readTorchLegacy(bytes, name, options).root };
  const zip = new ZipArchive(bytes, name, options.zipLimits);
  const prefix = requireArchivePrefix(zip);
  if (isTorchScriptArchive(zip, prefix)) return { format: 'torchscript', root: readTorchScript(zip, name, options).root };
  return { format: 'torch-zip', root: readTorchZip(zip, name, options).root };
}

/** Reads any supported checkpoint; `name` (a file name or URL) is used in every error message. */
export function readCheckpoint(bytes: Uint8Array, name: string, options: ReadCheckpointOptions = {}): Checkpoint {
  const report: string[] = [];
  const metadata: Checkpoint['metadata'] = {};
  const format = detectFormat(bytes);
  if (format === null) throw new CheckpointError(`${name}: not a checkpoint this reader knows: ${describeUnknown(bytes)}`);
  let tensors: Map<string, TensorData>;
  let actual: CheckpointFormat = format;
  if (format === 'safetensors') {
    const st = readSafetensorsTensors(bytes, name);
    tensors = st.tensors;
    Object.assign(metadata, st.metadata);
  } else {
    const parsed = readPickleRoot(bytes, name, options);
    actual = parsed.format;
    const node = options.unwrap === false || actual === 'torchscript' ? parsed.root : unwrapCheckpoint(parsed.root, report, metadata);
    const { tensors: views, duplicates } = collectTensors(node, name);
    if (duplicates.length > 0) report.push(`kept the first of ${duplicates.length} duplicate names (${duplicates.slice(0, 3).join(', ')})`);
    tensors = new Map();
    const done = new Map<PickledTensor, TensorData>();
    for (const [key, view] of views) {
      let t = done.get(view);
      if (!t) {
        t = materializeTensor(view, `${name}: ${key}`);
        done.set(view, t);
      }
      tensors.set(key === '' ? 'tensor' : key, t);
    }
  }
  if (tensors.size === 0) report.push('no tensors found');
  if (options.float32) {
    let converted = 0;
    for (const [key, t] of tensors) {
      if (FLOAT_DTYPES.has(t.dtype) && t.dtype !== 'f32') {
        tensors.set(key, toFloat32(t, `${name}: ${key}`));
        converted++;
      }
    }
    if (converted > 0) report.push(`converted ${converted} f16/bf16/f64 tensors to f32`);
  }
  tensors = stripPrefix(tensors, options.stripPrefixes ?? ['module.'], report);
  return { format: actual, tensors, report, metadata };
}
