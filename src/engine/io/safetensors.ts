/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors, the public format):
 *
 *   [8 bytes: little-endian u64 N] [N bytes: UTF-8 JSON header] [byte buffer]
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, offsets
 * relative to the start of the byte buffer; an optional "__metadata__" maps strings to strings.
 * Tensor bytes are little-endian, row-major, and tile the byte buffer without gaps or overlap.
 *
 * Reading is strict, like the reference implementation: every problem throws an Error naming the
 * source (file name) and the key. Checked: header length within the file and at most 100 MB, a
 * UTF-8 JSON object starting with '{', known dtype, shape of non-negative integers, offsets inside
 * the buffer, end - begin == numel * dtype size, no overlap, no gap, no trailing bytes.
 *
 * Supported dtypes and their conversion to engine dtypes (`get`); any other dtype code (I8, U16,
 * F8_E4M3, C64, ...) is refused when the file is parsed:
 *   F32, F16, BF16, F64  -> f32 (F64 rounds to the nearest f32)
 *   I32, U8              -> i32
 *   I64                  -> i32, throwing when a value falls outside the i32 range
 *   BOOL                 -> f32 0/1 (engine masks are float; pass {as: 'i32'} for 0/1 ints)
 * Integer dtypes may also be read `as: 'f32'` (exact up to 2^24); float dtypes never as i32.
 *
 * Browser-safe: no Node imports here. File access lives in safetensors-node.ts.
 */
import { floatToHalfBits, halfBitsToFloat } from '../../kernels/cast/half.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64' | 'U8' | 'BOOL';

/** Bytes per element of each supported dtype. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  I64: 8,
  U8: 1,
  BOOL: 1,
};

/** Largest header this reader accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const FLOAT_DTYPES: ReadonlySet<SafetensorsDType> = new Set(['F32', 'F16', 'BF16', 'F64']);

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Byte offsets relative to the start of the byte buffer (after the header). */
  readonly begin: number;
  readonly end: number;
}

/** A tensor on the host, in an engine dtype. */
export interface HostTensor {
  readonly dtype: 'f32' | 'i32';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

export interface GetOptions {
  /** Engine dtype to convert to; defaults by source dtype (see the file header). */
  as?: 'f32' | 'i32';
}

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(source: string, message: string): never {
  throw new Error(`safetensors ${source}: ${message}`);
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A parsed safetensors buffer. Tensor bytes are converted on demand by `get`. */
export class SafetensorsFile {
  private readonly entries = new Map<string, SafetensorsEntry>();

  constructor(
    /** The name used in error messages (a file path, or '<buffer>'). */
    readonly source: string,
    private readonly data: Uint8Array,
    entries: SafetensorsEntry[],
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    for (const e of entries) this.entries.set(e.name, e);
  }

  /** Tensor names in header order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The header entry of a tensor. */
  info(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) fail(this.source, `no tensor named '${name}' (has ${this.describeKeys()})`);
    return e;
  }

  /** The raw little-endian bytes of a tensor (a view into the file buffer, not a copy). */
  bytes(name: string): Uint8Array {
    const e = this.info(name);
    return this.data.subarray(e.begin, e.end);
  }

  /** A tensor converted to an engine dtype (a fresh, aligned array). */
  get(name: string, options: GetOptions = {}): HostTensor {
    const e = this.info(name);
    const target = options.as ?? defaultTarget(e.dtype);
    const bytes = this.data.subarray(e.begin, e.end);
    const n = numelOf(e.shape);
    const data = target === 'f32' ? toF32(e.dtype, bytes, n) : toI32(e.dtype, bytes, n, this.source, name);
    return { dtype: target, shape: [...e.shape], data };
  }

  private describeKeys(): string {
    const keys = this.keys();
    const shown = keys.slice(0, 8).map((k) => `'${k}'`).join(', ');
    return keys.length === 0 ? 'no tensors' : keys.length > 8 ? `${shown}, ... (${keys.length} in all)` : shown;
  }
}

function defaultTarget(dtype: SafetensorsDType): 'f32' | 'i32' {
  return FLOAT_DTYPES.has(dtype) || dtype === 'BOOL' ? 'f32' : 'i32';
}

/** Copies bytes into a fresh ArrayBuffer (tensor data may sit at any offset, e.g. after BOOLs). */
function aligned(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

/** Element i of a tensor's bytes as a JS number (I64: exact below 2^53, enough for range checks). */
function elementReader(dtype: SafetensorsDType, bytes: Uint8Array): (i: number) => number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      return (i) => view.getFloat32(i * 4, true);
    case 'F64':
      return (i) => view.getFloat64(i * 8, true);
    case 'F16':
      return (i) => halfBitsToFloat(view.getUint16(i * 2, true));
    case 'BF16': {
      // bf16 is the top half of an f32: widen the bits and reinterpret.
      const scratch = new DataView(new ArrayBuffer(4));
      return (i) => {
        scratch.setUint32(0, view.getUint16(i * 2, true) * 0x10000, true);
        return scratch.getFloat32(0, true);
      };
    }
    case 'I32':
      return (i) => view.getInt32(i * 4, true);
    case 'I64':
      return (i) => view.getInt32(i * 8 + 4, true) * 2 ** 32 + view.getUint32(i * 8, true);
    case 'U8':
      return (i) => view.getUint8(i);
    case 'BOOL':
      return (i) => (view.getUint8(i) !== 0 ? 1 : 0);
  }
}

function toF32(dtype: SafetensorsDType, bytes: Uint8Array, n: number): Float32Array {
  if (dtype === 'F32' && HOST_LITTLE_ENDIAN) return new Float32Array(aligned(bytes));
  const read = elementReader(dtype, bytes);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = read(i);
  return out;
}

function toI32(dtype: SafetensorsDType, bytes: Uint8Array, n: number, source: string, name: string): Int32Array {
  if (FLOAT_DTYPES.has(dtype)) fail(source, `tensor '${name}' has dtype ${dtype}; float tensors cannot be read as i32`);
  if (dtype === 'I32' && HOST_LITTLE_ENDIAN) return new Int32Array(aligned(bytes));
  const read = elementReader(dtype, bytes);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = read(i);
    if (v < -0x80000000 || v > 0x7fffffff) {
      fail(source, `tensor '${name}' (${dtype}) value ${v} at index ${i} does not fit in i32`);
    }
    out[i] = v;
  }
  return out;
}

function isDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_BYTES, value);
}

function parseEntry(source: string, name: string, raw: unknown, dataBytes: number): SafetensorsEntry {
  const where = `tensor '${name}'`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(source, `${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (!isDType(dtype)) {
    fail(source, `${where}: unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(source, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(source, `${where}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(source, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) {
    fail(source, `${where}: data_offsets [${begin}, ${end}] go beyond the ${dataBytes}-byte data buffer`);
  }
  const expected = numelOf(shape) * SAFETENSORS_DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    fail(
      source,
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${shape.join(', ')}] needs ${expected}`,
    );
  }
  return { name, dtype, shape: Object.freeze([...shape]), begin, end };
}

/**
 * Parses a safetensors buffer. `source` names it in error messages (pass the file path). The
 * returned object keeps a reference to `input`'s bytes.
 */
export function parseSafetensors(input: Uint8Array | ArrayBuffer, source = '<buffer>'): SafetensorsFile {
  const file = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (file.byteLength < 8) fail(source, `file is ${file.byteLength} bytes, too short for the 8-byte header length`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerLen = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (headerLen > MAX_HEADER_BYTES) {
    fail(source, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`);
  }
  if (8 + headerLen > file.byteLength) {
    fail(source, `header length ${headerLen} goes beyond the end of the ${file.byteLength}-byte file`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + headerLen));
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
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail(source, 'header is not a JSON object');
  }
  const data = file.subarray(8 + headerLen);
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
    entries.push(parseEntry(source, name, raw, data.byteLength));
  }
  // The tensors must tile the buffer: sorted by begin, each non-empty tensor starts exactly where
  // the previous one ended (earlier: overlap; later: a gap), and the last one ends the buffer.
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
  if (offset !== data.byteLength) {
    fail(source, `${data.byteLength - offset} unused bytes after the last tensor (data buffer ${data.byteLength} bytes, tensors cover ${offset})`);
  }
  return new SafetensorsFile(source, data, entries, Object.freeze(metadata));
}

/** A tensor to write: values are converted to `dtype` (I64/I32/U8/BOOL values must be integers). */
export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: ArrayLike<number>;
}

function encode(name: string, t: TensorToWrite): Uint8Array {
  const n = numelOf(t.shape);
  if (t.data.length !== n) {
    throw new Error(`safetensors write: tensor '${name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
  }
  const out = new Uint8Array(n * SAFETENSORS_DTYPE_BYTES[t.dtype]);
  const view = new DataView(out.buffer);
  const int = (v: number, i: number): number => {
    if (!Number.isInteger(v)) throw new Error(`safetensors write: tensor '${name}' (${t.dtype}) value ${v} at ${i} is not an integer`);
    return v;
  };
  for (let i = 0; i < n; i++) {
    const v = t.data[i]!;
    switch (t.dtype) {
      case 'F32': view.setFloat32(i * 4, v, true); break;
      case 'F64': view.setFloat64(i * 8, v, true); break;
      case 'F16': view.setUint16(i * 2, floatToHalfBits(v), true); break;
      case 'BF16': view.setUint16(i * 2, floatToBf16(v), true); break;
      case 'I32': view.setInt32(i * 4, int(v, i), true); break;
      case 'I64': view.setBigInt64(i * 8, BigInt(int(v, i)), true); break;
      case 'U8': view.setUint8(i, int(v, i)); break;
      case 'BOOL': view.setUint8(i, v !== 0 ? 1 : 0); break;
    }
  }
  return out;
}

/** Round-to-nearest-even f32 -> bf16 bits. */
function floatToBf16(v: number): number {
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  if (Number.isNaN(v)) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * Writes tensors (in the given order, packed back to back) and optional string metadata into a
 * safetensors buffer; the header is padded with spaces to a multiple of 8 bytes.
 */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error(`safetensors write: '__metadata__' is reserved`);
    if (!isDType(t.dtype)) throw new Error(`safetensors write: tensor '${name}' has unknown dtype ${String(t.dtype)}`);
    const bytes = encode(name, t);
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.byteLength, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
