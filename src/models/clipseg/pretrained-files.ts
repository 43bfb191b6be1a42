/**
 * The files of a pretrained model, wherever they are: a Hugging Face folder on disk (Node:
 * pretrained-files-node.ts, imported only when a path is given) or, in browsers and tests, a map of
 * file names to their contents (ArrayBuffer, Uint8Array, Blob/File) or to URLs (fetched, with HTTP
 * range requests for safetensors weights). Browser-safe: no Node API is used here.
 *
 *   const files = mapFiles({ 'config.json': configBlob, 'model.safetensors': 'https://host/m.safetensors' });
 *   files.names();  await files.text('config.json');  await files.byteSource('model.safetensors');
 *
 * Names are plain file names (the folder's entries); a name with '/' is refused.
 */
import { type ByteSource, CheckpointError, blobSource, bufferSource, isPlainFileName, urlSource } from '../../engine/index.js';

/** One file's contents, or where to fetch it. A string is a URL (absolute, or relative to the page). */
export type PretrainedFileSource = ArrayBuffer | Uint8Array | Blob | URL | string;

/** A model's files by name (what `fromPretrained` accepts besides a folder path). */
export type PretrainedFileMap = ReadonlyMap<string, PretrainedFileSource> | Readonly<Record<string, PretrainedFileSource>>;

/** Read access to the files of one model folder. */
export interface ModelFiles {
  /** The folder path, or '<files>' for a map; used in messages. */
  readonly label: string;
  names(): string[];
  has(name: string): boolean;
  /** `label/name` for messages. */
  pathOf(name: string): string;
  bytes(name: string): Promise<Uint8Array>;
  text(name: string): Promise<string>;
  /** Random access (lazy safetensors reading); close it when done. */
  byteSource(name: string): Promise<ByteSource>;
}

/** The CLIP BPE merges file shipped with the package (weights/vocab/, MIT, see its LICENSE). */
export const SHIPPED_VOCAB_URL = new URL('../../../weights/vocab/bpe_simple_vocab_16e6.txt.gz', import.meta.url);
export const SHIPPED_VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz';

/** JSON and text files above this size are refused (configs and vocabularies are a few MB). */
export const MAX_TEXT_BYTES = 64 * 1024 * 1024;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(bytes: Uint8Array, path: string): string {
  if (bytes.byteLength > MAX_TEXT_BYTES) throw new CheckpointError(`${path}: ${bytes.byteLength} bytes is too large for a text file`);
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new CheckpointError(`${path}: not UTF-8 text`);
  }
}

/** Parses a JSON object file; errors name the file. */
export async function readJsonObject(files: ModelFiles, name: string): Promise<Record<string, unknown>> {
  const text = await files.text(name);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${files.pathOf(name)}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CheckpointError(`${files.pathOf(name)}: must be a JSON object`);
  }
  return value as Record<string, unknown>;
}

async function fetchBytes(url: string | URL, path: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new CheckpointError(`${path}: cannot fetch ${String(url)} (${(err as Error).message})`);
  }
  if (!response.ok) throw new CheckpointError(`${path}: HTTP ${response.status} ${response.statusText} for ${String(url)}`.trimEnd());
  return new Uint8Array(await response.arrayBuffer());
}

/** ModelFiles over a map of names to contents or URLs. */
export function mapFiles(map: PretrainedFileMap, label = '<files>'): ModelFiles {
  const entries = new Map<string, PretrainedFileSource>(map instanceof Map ? map : Object.entries(map));
  for (const [name, value] of entries) {
    if (!isPlainFileName(name)) throw new CheckpointError(`${label}: '${name}' is not a plain file name (no folders in the file map)`);
    const ok =
      value instanceof ArrayBuffer ||
      value instanceof Uint8Array ||
      value instanceof URL ||
      typeof value === 'string' ||
      (typeof Blob !== 'undefined' && value instanceof Blob);
    if (!ok) throw new CheckpointError(`${label}: '${name}' must be an ArrayBuffer, Uint8Array, Blob or URL, got ${Object.prototype.toString.call(value)}`);
  }
  const pathOf = (name: string) => `${label}/${name}`;
  const get = (name: string): PretrainedFileSource => {
    const value = entries.get(name);
    if (value === undefined) throw new CheckpointError(`${label}: no file named '${name}'`);
    return value;
  };
  const bytes = async (name: string): Promise<Uint8Array> => {
    const value = get(name);
    if (value instanceof Uint8Array) return value;
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    if (typeof value === 'string' || value instanceof URL) return fetchBytes(value, pathOf(name));
    return new Uint8Array(await value.arrayBuffer());
  };
  return {
    label,
    names: () => [...entries.keys()].sort(),
    has: (name) => entries.has(name),
    pathOf,
    bytes,
    text: async (name) => decodeUtf8(await bytes(name), pathOf(name)),
    byteSource: async (name) => {
      const value = get(name);
      if (value instanceof Uint8Array || value instanceof ArrayBuffer) return bufferSource(value, pathOf(name));
      if (typeof value === 'string' || value instanceof URL) return urlSource(value, { name: pathOf(name) });
      return blobSource(value, pathOf(name));
    },
  };
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/** A folder path (Node) or a file map (anywhere) as ModelFiles. */
export async function openModelFiles(input: string | PretrainedFileMap): Promise<ModelFiles> {
  if (typeof input === 'string') {
    if (!isNode()) {
      throw new CheckpointError(`'${input}': a folder path works in Node only; in browsers pass a map of file names to ArrayBuffers, Blobs or URLs`);
    }
    const { folderFiles } = await import('./pretrained-files-node.js');
    return folderFiles(input);
  }
  if (input === null || typeof input !== 'object') {
    throw new CheckpointError(`fromPretrained: expected a folder path or a map of file names, got ${String(input)}`);
  }
  return mapFiles(input);
}

/** The bytes of the shipped bpe_simple_vocab_16e6.txt.gz (file read in Node, fetched in browsers). */
export async function shippedVocabulary(): Promise<Uint8Array> {
  if (isNode()) {
    const { readShippedVocabulary } = await import('./pretrained-files-node.js');
    return readShippedVocabulary(SHIPPED_VOCAB_URL);
  }
  return fetchBytes(SHIPPED_VOCAB_URL, SHIPPED_VOCAB_FILE);
}
