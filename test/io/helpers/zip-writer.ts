/**
 * A small ZIP writer for test archives: stored or deflated entries, PyTorch-style 64-byte data
 * alignment, optional ZIP64 records, and the ability to lie about sizes (zip-bomb tests).
 */
import { deflateSync } from 'fflate';
import { PickleWriter, type TensorSpec, stateDictPickle } from './pickle-writer.js';

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflate. */
  method?: 0 | 8;
  /** Size to declare instead of the real one. */
  declaredSize?: number;
  /** Raw compressed bytes to store instead of compressing `data` (method 8 only). */
  compressed?: Uint8Array;
}

export interface ZipOptions {
  /** Pad each entry's data start to this many bytes with a local extra field (PyTorch: 64). */
  align?: number;
  /** Write ZIP64 sizes, offsets and end records. */
  zip64?: boolean;
}

class Bytes {
  readonly parts: number[] = [];
  u16(n: number): this {
    this.parts.push(n & 0xff, (n >>> 8) & 0xff);
    return this;
  }
  u32(n: number): this {
    this.parts.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
    return this;
  }
  u64(n: number): this {
    return this.u32(n % 2 ** 32).u32(Math.floor(n / 2 ** 32));
  }
  bytes(b: Uint8Array | number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
}

export function writeZip(inputs: ZipInput[], options: ZipOptions = {}): Uint8Array {
  const enc = new TextEncoder();
  const out = new Bytes();
  const central = new Bytes();
  const align = options.align ?? 64;
  const big = options.zip64 ?? false;
  for (const input of inputs) {
    const method = input.method ?? 0;
    const payload = method === 8 ? (input.compressed ?? deflateSync(input.data)) : input.data;
    const size = input.declaredSize ?? input.data.length;
    const name = enc.encode(input.name);
    const offset = out.length;
    let pad = 0;
    if (align > 1) {
      const start = offset + 30 + name.length + 4;
      pad = (align - (start % align)) % align;
    }
    out.u32(0x04034b50).u16(45).u16(0).u16(method).u16(0).u16(0).u32(0);
    out.u32(big ? 0xffffffff : payload.length).u32(big ? 0xffffffff : size).u16(name.length).u16(align > 1 ? 4 + pad : 0);
    out.bytes(name);
    if (align > 1) out.u16(0x4246).u16(pad).bytes(new Array<number>(pad).fill(0x5a));
    out.bytes(payload);
    const extra = new Bytes();
    if (big) extra.u16(0x0001).u16(24).u64(size).u64(payload.length).u64(offset);
    central.u32(0x02014b50).u16(45).u16(45).u16(0).u16(method).u16(0).u16(0).u32(0);
    central.u32(big ? 0xffffffff : payload.length).u32(big ? 0xffffffff : size);
    central.u16(name.length).u16(extra.length).u16(0).u16(0).u16(0).u32(0).u32(big ? 0xffffffff : offset);
    central.bytes(name).bytes(extra.parts);
  }
  const cdOffset = out.length;
  out.bytes(central.parts);
  const count = inputs.length;
  if (big) {
    const record = out.length;
    out.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0).u64(count).u64(count).u64(central.length).u64(cdOffset);
    out.u32(0x07064b50).u32(0).u64(record).u32(1);
    out.u32(0x06054b50).u16(0).u16(0).u16(0xffff).u16(0xffff).u32(0xffffffff).u32(0xffffffff).u16(0);
  } else {
    out.u32(0x06054b50).u16(0).u16(0).u16(count).u16(count).u32(central.length).u32(cdOffset).u16(0);
  }
  return Uint8Array.from(out.parts);
}

/** A PyTorch zip checkpoint: `<prefix>/data.pkl`, `<prefix>/data/<key>`, version, optional byteorder. */
export function torchZip(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { prefix?: string; byteorder?: 'little' | 'big'; extra?: ZipInput[]; zip64?: boolean } = {},
): Uint8Array {
  const prefix = options.prefix ?? 'archive';
  const entries: ZipInput[] = [{ name: `${prefix}/data.pkl`, data: pickle }];
  if (options.byteorder) entries.push({ name: `${prefix}/byteorder`, data: new TextEncoder().encode(options.byteorder) });
  for (const [key, data] of Object.entries(storages)) entries.push({ name: `${prefix}/data/${key}`, data });
  entries.push({ name: `${prefix}/version`, data: new TextEncoder().encode('3\n') });
  entries.push(...(options.extra ?? []));
  return writeZip(entries, { zip64: options.zip64 });
}

/** Little-endian bytes of f32 values. */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** A torch zip of a state dict whose tensors all live in the given storages. */
export function stateDictZip(entries: [string, TensorSpec][], storages: Record<string, Uint8Array>, protocol = 2): Uint8Array {
  return torchZip(stateDictPickle(entries, protocol), storages);
}

export { PickleWriter };
