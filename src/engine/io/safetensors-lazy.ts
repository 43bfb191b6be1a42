/**
 * Lazy safetensors reading: parse the header first, then read each tensor's bytes only when asked,
 * from any random-access byte source. A 600 MB checkpoint is never held twice: each `get` reads just
 * that tensor's bytes (and converts them), so a loader can stream tensors into the model one by one.
 *
 *   const st = await openSafetensors(blobOrUrlOrBuffer, { name: 'model.safetensors' });
 *   st.keys();  st.info(k);                  // header only, no tensor bytes read
 *   await st.get(k);                         // HostTensor: f32 / i32 (F16/BF16/F64 -> f32)
 *   await st.tensorData(k, { float32 });     // TensorData in the stored dtype (f16 stays raw bits)
 *
 * Byte sources (safetensors-lazy-sources.ts, re-exported here; Node files: safetensors-lazy-node.ts):
 *   ArrayBuffer / Uint8Array   reads are subarray copies;
 *   Blob (File)                `blob.slice(a, b).arrayBuffer()`;
 *   URL / string               HTTP range requests through the standard `fetch` (`Range: bytes=a-b`,
 *                              206 expected; a server that answers 200 with the whole body is read
 *                              once and kept, with a note in `notes`);
 *   Response                   its body is taken as a Blob (browsers keep large blobs on disk).
 *
 * The header is validated exactly as parseSafetensors does (safetensors.ts): length bound, UTF-8
 * JSON object, known dtypes, shapes, offsets inside the data, tiling without gaps or overlaps, and
 * the file size (when the source knows it). Errors name the source and the key.
 *
 * Also here (browser-safe, used by the Node writer and by `convert`): `encodeSafetensorsHeader`
 * and `serializeTensorData`, which write TensorData bit-exactly (raw bytes, no float round trip;
 * NaN payloads, f16 bits and i64 values are kept).
 */
import {
  type GetOptions,
  type HostTensor,
  MAX_HEADER_BYTES,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDType,
  type SafetensorsEntry,
  SafetensorsFile,
} from './safetensors.js';
import { type ByteSource, blobSource, bufferSource, type UrlSourceOptions, urlSource } from './safetensors-lazy-sources.js';
import {
  CheckpointError,
  FLOAT_DTYPES,
  HOST_LITTLE_ENDIAN,
  type TensorData,
  type TensorDType,
  arrayFromBytes,
  numelOf,
  swapBytes,
  tensorBytes,
  toFloat32,
} from './tensor-data.js';

export * from './safetensors-lazy-sources.js';

export const SAFETENSORS_TO_TENSOR_DTYPE: Readonly<Record<SafetensorsDType, TensorDType>> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64', I32: 'i32', I64: 'i64', U8: 'u8', BOOL: 'bool',
};

const TENSOR_TO_SAFETENSORS_DTYPE: Partial<Record<TensorDType, SafetensorsDType>> = {
  f32: 'F32', f16: 'F16', bf16: 'BF16', f64: 'F64', i32: 'I32', i64: 'I64', u8: 'U8', bool: 'BOOL',
};

function fail(source: string, message: string): never {
  throw new CheckpointError(`safetensors ${source}: ${message}`);
}

/** Parses the JSON header text into validated entries (same rules as parseSafetensors). */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataBytes: number,
  source: string,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail(source, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(source, `header does not start with '{' (corrupt or not a safetensors file)`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(source, `header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(source, 'header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(source, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(source, `__metadata__ '${k}' is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(source, name, raw, dataBytes));
  }
  checkTiling(source, entries, dataBytes);
  return { entries, metadata };
}

function parseEntry(source: string, name: string, raw: unknown, dataBytes: number): SafetensorsEntry {
  const where = `tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(source, `${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(SAFETENSORS_DTYPE_BYTES, dtype)) {
    fail(source, `${where}: unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')})`);
  }
  const dt = dtype as SafetensorsDType;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(source, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(source, `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(source, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) fail(source, `${where}: data_offsets [${begin}, ${end}] go beyond the ${dataBytes}-byte data buffer`);
  const expected = numelOf(shape as number[]) * SAFETENSORS_DTYPE_BYTES[dt];
  if (end - begin !== expected) {
    fail(source, `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dt} [${shape.join(', ')}] needs ${expected}`);
  }
  return { name, dtype: dt, shape: Object.freeze([...(shape as number[])]), begin, end };
}

/** Non-empty tensors must tile the data buffer exactly: no overlap, no gap, nothing left over. */
function checkTiling(source: string, entries: SafetensorsEntry[], dataBytes: number): void {
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  let offset = 0;
  let prev: SafetensorsEntry | null = null;
  for (const cur of sorted) {
    if (prev && cur.begin < offset) {
      fail(source, `tensor '${cur.name}' [${cur.begin}, ${cur.end}] overlaps tensor '${prev.name}' [${prev.begin}, ${prev.end}]`);
    }
    if (cur.begin > offset) {
      fail(source, `${cur.begin - offset} unused bytes before tensor '${cur.name}' [${cur.begin}, ${cur.end}] (tensors must tile the data)`);
    }
    offset = cur.end;
    prev = cur;
  }
  if (offset !== dataBytes) {
    fail(source, `${dataBytes - offset} unused bytes after the last tensor (data buffer ${dataBytes} bytes, tensors cover ${offset})`);
  }
}

export interface TensorDataOptions {
  /** Convert F16 / BF16 / F64 to f32 (default false: keep the stored dtype, bit-exact). */
  float32?: boolean;
}

/** A safetensors file whose header has been read and validated; tensor bytes are read on demand. */
export class LazySafetensors {
  private readonly entries = new Map<string, SafetensorsEntry>();

  constructor(
    readonly source: ByteSource,
    entries: readonly SafetensorsEntry[],
    readonly metadata: Readonly<Record<string, string>>,
    /** File offset of the data buffer (8 + header length). */
    readonly dataOffset: number,
    /** Total file size in bytes. */
    readonly byteLength: number,
  ) {
    for (const e of entries) this.entries.set(e.name, e);
  }

  get name(): string {
    return this.source.name;
  }

  /** Tensor names in header order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The header entry of a tensor (dtype, shape, offsets). */
  info(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) {
      const keys = this.keys();
      const shown = keys.slice(0, 8).map((k) => `'${k}'`).join(', ');
      fail(this.name, `no tensor named '${name}' (has ${keys.length === 0 ? 'no tensors' : keys.length > 8 ? `${shown}, ... (${keys.length} in all)` : shown})`);
    }
    return e;
  }

  /** The tensor's raw little-endian bytes (a fresh array of exactly its size). */
  async bytes(name: string): Promise<Uint8Array> {
    const e = this.info(name);
    return this.source.read(this.dataOffset + e.begin, e.end - e.begin);
  }

  /** A tensor in an engine dtype, as SafetensorsFile.get does (F16/BF16/F64 -> f32, I64 -> i32 range-checked). */
  async get(name: string, options: GetOptions = {}): Promise<HostTensor> {
    const e = this.info(name);
    const bytes = await this.bytes(name);
    const one = new SafetensorsFile(this.name, bytes, [{ ...e, begin: 0, end: bytes.byteLength }], {});
    return one.get(name, options);
  }

  /** A tensor in its stored dtype (TensorData, as readCheckpoint returns), or f32 with `float32`. */
  async tensorData(name: string, options: TensorDataOptions = {}): Promise<TensorData> {
    const e = this.info(name);
    const dtype = SAFETENSORS_TO_TENSOR_DTYPE[e.dtype];
    const t: TensorData = { dtype, shape: [...e.shape], data: arrayFromBytes(dtype, await this.bytes(name)) };
    return options.float32 && FLOAT_DTYPES.has(dtype) ? toFloat32(t, `${this.name}: ${name}`) : t;
  }

  /** Every tensor, in header order, read one at a time. */
  async *tensors(options: TensorDataOptions = {}): AsyncGenerator<[string, TensorData]> {
    for (const key of this.keys()) yield [key, await this.tensorData(key, options)];
  }

  /** Reads every tensor into a Map (one copy of the data; prefer `tensors()` to stream). */
  async readAll(options: TensorDataOptions = {}): Promise<Map<string, TensorData>> {
    const out = new Map<string, TensorData>();
    for await (const [k, t] of this.tensors(options)) out.set(k, t);
    return out;
  }

  async close(): Promise<void> {
    await this.source.close?.();
  }
}

/** Reads and validates the header from a byte source; tensors are read later, on demand. */
export async function openSafetensorsSource(source: ByteSource): Promise<LazySafetensors> {
  const name = source.name;
  if (source.size !== undefined && source.size < 8) {
    fail(name, `file is ${source.size} bytes, too short for the 8-byte header length`);
  }
  const head = await source.read(0, 8);
  const view = new DataView(head.buffer, head.byteOffset, 8);
  const headerLen = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (headerLen > MAX_HEADER_BYTES) {
    fail(name, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  // A URL source learns the size from its first response.
  const size = source.size;
  if (size === undefined) fail(name, 'the file size is unknown (the server sent no Content-Range total)');
  if (8 + headerLen > size) fail(name, `header length ${headerLen} goes beyond the end of the ${size}-byte file`);
  const headerBytes = await source.read(8, headerLen);
  const dataOffset = 8 + headerLen;
  const { entries, metadata } = parseSafetensorsHeader(headerBytes, size - dataOffset, name);
  return new LazySafetensors(source, entries, Object.freeze(metadata), dataOffset, size);
}

export type SafetensorsInput = ArrayBuffer | Uint8Array | Blob | Response | URL | string;

export interface OpenSafetensorsOptions extends UrlSourceOptions {}

/**
 * Opens safetensors lazily from bytes, a Blob/File, a fetch Response (taken as a Blob) or a URL
 * (HTTP range requests). Only the header is read here.
 */
export async function openSafetensors(input: SafetensorsInput, options: OpenSafetensorsOptions = {}): Promise<LazySafetensors> {
  if (input instanceof ArrayBuffer || input instanceof Uint8Array) return openSafetensorsSource(bufferSource(input, options.name));
  if (typeof Response !== 'undefined' && input instanceof Response) {
    const name = options.name ?? (input.url || '<response>');
    if (!input.ok) throw new CheckpointError(`${name}: HTTP ${input.status} ${input.statusText}`.trimEnd());
    return openSafetensorsSource(blobSource(await input.blob(), name));
  }
  if (typeof Blob !== 'undefined' && input instanceof Blob) return openSafetensorsSource(blobSource(input, options.name));
  if (typeof input === 'string' || input instanceof URL) return openSafetensorsSource(urlSource(input, options));
  throw new CheckpointError(`openSafetensors: unsupported input ${Object.prototype.toString.call(input)}`);
}

// ---------------------------------------------------------------------------------------------
// Bit-exact writing of TensorData.

/** The safetensors dtype a TensorData is written as (i16/i8 have none in this writer: refused). */
export function safetensorsDTypeOf(t: TensorData, name: string): SafetensorsDType {
  const dt = TENSOR_TO_SAFETENSORS_DTYPE[t.dtype];
  if (!dt) throw new CheckpointError(`safetensors write: tensor '${name}' has dtype ${t.dtype}, which this writer does not support (convert it to i32 first)`);
  return dt;
}

export interface SafetensorsLayout {
  /** The 8-byte length prefix and the space-padded JSON header (a multiple of 8 bytes). */
  header: Uint8Array;
  /** Size of the data buffer that follows (sum of the tensors' byte sizes). */
  dataBytes: number;
}

/** Header for `tensors` written back to back in iteration order. */
export function encodeSafetensorsHeader(
  tensors: Iterable<[string, TensorData]>,
  metadata?: Record<string, string>,
): SafetensorsLayout {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new CheckpointError(`safetensors write: '__metadata__' is reserved`);
    if (Object.hasOwn(header, name)) throw new CheckpointError(`safetensors write: duplicate tensor name '${name}'`);
    const dtype = safetensorsDTypeOf(t, name);
    const n = numelOf(t.shape);
    if (t.data.length !== n) {
      throw new CheckpointError(`safetensors write: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    }
    const bytes = n * SAFETENSORS_DTYPE_BYTES[dtype];
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return { header: out, dataBytes: offset };
}

/** A tensor's bytes in little-endian order, as the file stores them (a view on little-endian hosts). */
export function littleEndianBytes(t: TensorData): Uint8Array {
  const bytes = tensorBytes(t);
  if (HOST_LITTLE_ENDIAN) return bytes;
  const copy = bytes.slice();
  swapBytes(copy, t.data.BYTES_PER_ELEMENT);
  return copy;
}

/** Serializes tensors bit-exactly (their stored dtypes and raw bytes) into one safetensors buffer. */
export function serializeTensorData(tensors: Map<string, TensorData>, metadata?: Record<string, string>): Uint8Array {
  const { header, dataBytes } = encodeSafetensorsHeader(tensors, metadata);
  const out = new Uint8Array(header.byteLength + dataBytes);
  out.set(header);
  let at = header.byteLength;
  for (const t of tensors.values()) {
    const b = littleEndianBytes(t);
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}
