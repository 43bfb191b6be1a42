/**
 * A tiny pickle *writer* for building test fixtures by hand: synthetic torch checkpoints,
 * TorchScript data.pkl files, and malicious pickles. Each method appends one construct; `done()`
 * appends STOP and returns the bytes.
 */

const enc = new TextEncoder();

export class PickleWriter {
  private readonly out: number[] = [];

  constructor(protocol: number | null = 2) {
    if (protocol !== null) this.raw(0x80, protocol);
  }

  raw(...bytes: number[]): this {
    for (const b of bytes) this.out.push(b & 0xff);
    return this;
  }

  rawBytes(bytes: Uint8Array): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }

  private u32(n: number): this {
    return this.raw(n, n >>> 8, n >>> 16, n >>> 24);
  }

  private u64(n: number): this {
    return this.u32(n % 2 ** 32).u32(Math.floor(n / 2 ** 32));
  }

  mark(): this {
    return this.raw(0x28);
  }

  none(): this {
    return this.raw(0x4e);
  }

  bool(v: boolean): this {
    return this.raw(v ? 0x88 : 0x89);
  }

  /** An int, with the opcode PyTorch's pickler would pick (BININT1/BININT2/BININT/LONG1). */
  int(n: number | bigint): this {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 256) return this.raw(0x4b, n);
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 65536) return this.raw(0x4d, n, n >> 8);
    if (typeof n === 'number' && Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) return this.raw(0x4a).u32(n >>> 0);
    return this.long(BigInt(n), 0x8a);
  }

  /** LONG1 (0x8a) or LONG4 (0x8b) of a bigint, minimal two's complement little-endian. */
  long(v: bigint, op: 0x8a | 0x8b = 0x8a): this {
    const bytes: number[] = [];
    let x = v;
    while (true) {
      const b = Number(x & 0xffn);
      bytes.push(b);
      x >>= 8n;
      if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
    }
    if (v === 0n) bytes.length = 0;
    if (op === 0x8a) this.raw(0x8a, bytes.length);
    else this.raw(0x8b).u32(bytes.length);
    return this.raw(...bytes);
  }

  float(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, false);
    return this.raw(0x47).rawBytes(b);
  }

  /** BINUNICODE (X), or SHORT_BINUNICODE / BINUNICODE8 when asked. */
  str(s: string, op: 0x58 | 0x8c | 0x8d = 0x58): this {
    const b = enc.encode(s);
    if (op === 0x8c) this.raw(0x8c, b.length);
    else if (op === 0x8d) this.raw(0x8d).u64(b.length);
    else this.raw(0x58).u32(b.length);
    return this.rawBytes(b);
  }

  /** SHORT_BINSTRING (U), a Python 2 byte string. */
  shortBinString(s: string): this {
    return this.raw(0x55, s.length).rawBytes(enc.encode(s));
  }

  bytes(b: Uint8Array, op: 0x42 | 0x43 | 0x8e | 0x96 = 0x42): this {
    if (op === 0x43) this.raw(0x43, b.length);
    else if (op === 0x42) this.raw(0x42).u32(b.length);
    else this.raw(op).u64(b.length);
    return this.rawBytes(b);
  }

  global(module: string, name: string): this {
    return this.raw(0x63).rawBytes(enc.encode(`${module}\n${name}\n`));
  }

  /** STACK_GLOBAL with SHORT_BINUNICODE module and name. */
  stackGlobal(module: string, name: string): this {
    return this.str(module, 0x8c).str(name, 0x8c).raw(0x93);
  }

  emptyTuple(): this {
    return this.raw(0x29);
  }

  /** TUPLE1/2/3 for n <= 3 (the items must already be on the stack), else needs a MARK before. */
  tuple(n?: number): this {
    if (n === 1) return this.raw(0x85);
    if (n === 2) return this.raw(0x86);
    if (n === 3) return this.raw(0x87);
    return this.raw(0x74);
  }

  emptyList(): this {
    return this.raw(0x5d);
  }

  append(): this {
    return this.raw(0x61);
  }

  appends(): this {
    return this.raw(0x65);
  }

  emptyDict(): this {
    return this.raw(0x7d);
  }

  setitem(): this {
    return this.raw(0x73);
  }

  setitems(): this {
    return this.raw(0x75);
  }

  reduce(): this {
    return this.raw(0x52);
  }

  newobj(): this {
    return this.raw(0x81);
  }

  build(): this {
    return this.raw(0x62);
  }

  binput(i: number): this {
    return i < 256 ? this.raw(0x71, i) : this.raw(0x72).u32(i);
  }

  binget(i: number): this {
    return i < 256 ? this.raw(0x68, i) : this.raw(0x6a).u32(i);
  }

  memoize(): this {
    return this.raw(0x94);
  }

  frame(length: number): this {
    return this.raw(0x95).u64(length);
  }

  persid(): this {
    return this.raw(0x51);
  }

  /** `collections.OrderedDict()` */
  orderedDict(): this {
    return this.global('collections', 'OrderedDict').emptyTuple().reduce();
  }

  /**
   * `torch._utils._rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size,
   * stride, False, OrderedDict())`, as torch.save writes it.
   */
  tensor(spec: TensorSpec): this {
    this.global('torch._utils', spec.rebuild ?? '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', spec.storageType).str(spec.key).str(spec.location ?? 'cpu').int(spec.numel).tuple();
    this.persid().int(spec.offset ?? 0);
    this.mark();
    for (const d of spec.shape) this.int(d);
    this.tuple().mark();
    for (const s of spec.stride ?? contiguousStride(spec.shape)) this.int(s);
    this.tuple().bool(false).orderedDict().tuple().reduce();
    return this;
  }

  done(): Uint8Array {
    this.raw(0x2e);
    return Uint8Array.from(this.out);
  }

  /** The bytes so far, without STOP. */
  partial(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

export interface TensorSpec {
  storageType: string;
  key: string;
  numel: number;
  shape: number[];
  stride?: number[];
  offset?: number;
  location?: string;
  rebuild?: string;
}

export function contiguousStride(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) stride[d] = stride[d + 1]! * shape[d + 1]!;
  return stride;
}

/** A pickled `OrderedDict` state dict {name: tensor} (protocol 2, as torch.save writes it). */
export function stateDictPickle(entries: [string, TensorSpec][], protocol = 2): Uint8Array {
  const w = new PickleWriter(protocol);
  w.orderedDict().mark();
  for (const [name, spec] of entries) w.str(name).tensor(spec);
  return w.setitems().done();
}
