/**
 * Host-side tensor records shared by the checkpoint readers (safetensors, PyTorch zip / legacy /
 * TorchScript), plus dtype conversions and the error type every reader throws.
 *
 * A TensorData keeps the dtype it had in the file; `data` is a typed array holding exactly
 * numel(shape) elements, row-major and contiguous, in host byte order:
 *
 *   f64 Float64Array   f32 Float32Array   f16, bf16 Uint16Array (the raw 16-bit patterns)
 *   i64 BigInt64Array  i32 Int32Array     i16 Int16Array   i8 Int8Array   u8, bool Uint8Array
 *
 * int64 stays int64 (BigInt64Array): it is lossless and bit-comparable with the file; convert with
 * `int64ToInt32` (range-checked) or `toEngineTensor` when an engine tensor is needed. Half floats
 * become f32 only on request (`toFloat32`, or the readers' `float32` option), so a round trip keeps
 * every bit.
 *
 * Readers may return arrays that are views into the input bytes (no copy) when a tensor is
 * contiguous and aligned: copy `data` before mutating it if the input buffer must stay intact.
 *
 * Browser-safe: no Node imports.
 */
import { halfBitsToFloat32 } from '../../kernels/cast/half.js';

export type TensorDType = 'f64' | 'f32' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

export type TensorArray =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

export interface TensorData {
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  readonly data: TensorArray;
}

/** A tensor in one of the engine's dtypes (the shape of safetensors.ts's HostTensor). */
export interface EngineTensorData {
  readonly dtype: 'f32' | 'i32';
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

/** Every checkpoint reader throws this; the message names the file (and entry) and the cause. */
export class CheckpointError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointError';
  }
}

export const DTYPE_ITEMSIZE: Readonly<Record<TensorDType, number>> = {
  f64: 8,
  f32: 4,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

export const FLOAT_DTYPES: ReadonlySet<TensorDType> = new Set(['f64', 'f32', 'f16', 'bf16']);

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A typed array of `dtype` over `length` elements of `buffer` starting at `byteOffset` (no copy). */
export function typedView(dtype: TensorDType, buffer: ArrayBufferLike, byteOffset: number, length: number): TensorArray {
  switch (dtype) {
    case 'f64': return new Float64Array(buffer, byteOffset, length);
    case 'f32': return new Float32Array(buffer, byteOffset, length);
    case 'f16':
    case 'bf16': return new Uint16Array(buffer, byteOffset, length);
    case 'i64': return new BigInt64Array(buffer, byteOffset, length);
    case 'i32': return new Int32Array(buffer, byteOffset, length);
    case 'i16': return new Int16Array(buffer, byteOffset, length);
    case 'i8': return new Int8Array(buffer, byteOffset, length);
    case 'u8':
    case 'bool': return new Uint8Array(buffer, byteOffset, length);
  }
}

/** Reverses the bytes of each `itemsize`-byte element, in place. */
export function swapBytes(bytes: Uint8Array, itemsize: number): void {
  if (itemsize === 1) return;
  for (let i = 0; i + itemsize <= bytes.length; i += itemsize) {
    for (let a = i, b = i + itemsize - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * The elements stored in `bytes` (packed, little-endian unless `littleEndian` is false) as a typed
 * array. Returns a view when the bytes are aligned and already in host order, else a copy.
 */
export function arrayFromBytes(dtype: TensorDType, bytes: Uint8Array, littleEndian = true): TensorArray {
  const itemsize = DTYPE_ITEMSIZE[dtype];
  const length = Math.floor(bytes.byteLength / itemsize);
  const hostOrder = littleEndian === HOST_LITTLE_ENDIAN;
  if (hostOrder && bytes.byteOffset % itemsize === 0) return typedView(dtype, bytes.buffer, bytes.byteOffset, length);
  const copy = new Uint8Array(length * itemsize);
  copy.set(bytes.subarray(0, length * itemsize));
  if (!hostOrder) swapBytes(copy, itemsize);
  return typedView(dtype, copy.buffer, 0, length);
}

/** The tensor's elements as bytes in host order (a view, no copy). */
export function tensorBytes(t: TensorData): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** IEEE half bit patterns to float32 (exact); kernels/cast/half.ts holds the f16 helpers. */
export { halfBitsToFloat32 };

/** bfloat16 bit patterns to float32: the 16 bits become the top half of the f32 (exact). */
export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i]! << 16;
  return out;
}

/** A float tensor as f32 (f16/bf16 exact, f64 rounded to nearest); f32 is returned as is. */
export function toFloat32(t: TensorData, name = 'tensor'): TensorData & { dtype: 'f32'; data: Float32Array } {
  switch (t.dtype) {
    case 'f32': return t as TensorData & { dtype: 'f32'; data: Float32Array };
    case 'f16': return { dtype: 'f32', shape: t.shape, data: halfBitsToFloat32(t.data as Uint16Array) };
    case 'bf16': return { dtype: 'f32', shape: t.shape, data: bfloat16BitsToFloat32(t.data as Uint16Array) };
    case 'f64': return { dtype: 'f32', shape: t.shape, data: Float32Array.from(t.data as Float64Array) };
    default: throw new CheckpointError(`${name}: dtype ${t.dtype} is not a float dtype; cannot convert to f32`);
  }
}

/** An i64 tensor as i32; throws naming the first value outside the i32 range. */
export function int64ToInt32(t: TensorData, name = 'tensor'): TensorData & { dtype: 'i32'; data: Int32Array } {
  if (t.dtype !== 'i64') throw new CheckpointError(`${name}: expected dtype i64, got ${t.dtype}`);
  const src = t.data as BigInt64Array;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (v < -2147483648n || v > 2147483647n) {
      throw new CheckpointError(`${name}: i64 value ${v} at index ${i} does not fit in i32`);
    }
    out[i] = Number(v);
  }
  return { dtype: 'i32', shape: t.shape, data: out };
}

/**
 * The tensor in an engine dtype: float dtypes -> f32; integer dtypes -> i32 (i64 range-checked);
 * bool -> i32 0/1.
 */
export function toEngineTensor(t: TensorData, name = 'tensor'): EngineTensorData {
  if (FLOAT_DTYPES.has(t.dtype)) return toFloat32(t, name);
  switch (t.dtype) {
    case 'i32': return t as EngineTensorData;
    case 'i64': return int64ToInt32(t, name);
    case 'bool': return { dtype: 'i32', shape: t.shape, data: Int32Array.from(t.data as Uint8Array, (v) => (v !== 0 ? 1 : 0)) };
    default: return { dtype: 'i32', shape: t.shape, data: Int32Array.from(t.data as Int16Array) };
  }
}

/** Bit-exact equality of two tensors (dtype, shape and bytes). */
export function tensorsBitEqual(a: TensorData, b: TensorData): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  if (a.shape.some((d, i) => d !== b.shape[i])) return false;
  const x = tensorBytes(a);
  const y = tensorBytes(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
