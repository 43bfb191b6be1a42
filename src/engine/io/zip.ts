/**
 * A read-only ZIP container reader for checkpoint archives (PyTorch zip / TorchScript).
 *
 * Reads the central directory (ZIP64 included), then each entry's local header to find where its
 * data starts (PyTorch pads records to 64 bytes with a local-only extra field). Entries are read
 * on demand: stored entries (PyTorch's data records) are returned as views of the input, deflated
 * ones (TorchScript code files) are inflated with fflate in chunks.
 *
 * Zip-bomb protection: an inflated entry may not exceed its declared size, which itself must be
 * within `maxEntryBytes` and plausible for its compressed size (deflate expands at most ~1032x);
 * inflation stops as soon as the output passes the declared size, and the whole archive may not
 * inflate more than `maxTotalInflatedBytes`. CRCs are not checked (PyTorch does not either).
 *
 * Browser-safe: no Node imports.
 */
import { Inflate } from 'fflate';
import { CheckpointError } from './tensor-data.js';

export interface ZipEntry {
  readonly name: string;
  /** 0 stored, 8 deflated. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

export interface ZipLimits {
  maxEntries: number;
  /** Largest declared size of a deflated entry. */
  maxEntryBytes: number;
  /** Most bytes inflated from one archive in total. */
  maxTotalInflatedBytes: number;
}

export const DEFAULT_ZIP_LIMITS: Readonly<ZipLimits> = {
  maxEntries: 1_000_000,
  maxEntryBytes: 1 << 30,
  maxTotalInflatedBytes: 2 ** 32,
};

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const MAX_DEFLATE_RATIO = 1100;
const INFLATE_CHUNK = 1 << 16;

const names = new TextDecoder('utf-8');

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  private readonly view: DataView;
  private readonly limits: ZipLimits;
  private inflated = 0;

  constructor(
    private readonly bytes: Uint8Array,
    /** Names the archive in error messages. */
    readonly source: string,
    limits: Partial<ZipLimits> = {},
  ) {
    this.limits = { ...DEFAULT_ZIP_LIMITS, ...limits };
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.entries = this.readDirectory();
  }

  private fail(message: string): never {
    throw new CheckpointError(`${this.source}: ${message}`);
  }

  private u16(at: number): number {
    return this.view.getUint16(at, true);
  }

  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  private u64(at: number, what: string): number {
    const v = this.u32(at) + this.u32(at + 4) * 2 ** 32;
    if (!Number.isSafeInteger(v)) this.fail(`corrupt zip: ${what} ${v} is too large`);
    return v;
  }

  private inFile(at: number, length: number, what: string): void {
    if (at < 0 || length < 0 || at + length > this.bytes.length) {
      this.fail(`corrupt or truncated zip: ${what} (bytes ${at}..${at + length}) lies outside the ${this.bytes.length}-byte file`);
    }
  }

  private findEocd(): number {
    const min = Math.max(0, this.bytes.length - 22 - 0xffff);
    for (let at = this.bytes.length - 22; at >= min; at--) {
      if (this.u32(at) === SIG_EOCD) return at;
    }
    return this.fail('truncated or corrupt zip: no end-of-central-directory record (the file may be cut short)');
  }

  private readDirectory(): Map<string, ZipEntry> {
    if (this.bytes.length < 22) this.fail(`truncated zip: ${this.bytes.length} bytes`);
    const eocd = this.findEocd();
    let count = this.u16(eocd + 10);
    let cdSize = this.u32(eocd + 12);
    let cdOffset = this.u32(eocd + 16);
    if (this.u16(eocd + 4) !== 0 || this.u16(eocd + 6) !== 0) {
      if (count !== 0xffff) this.fail('multi-disk zip archives are not supported');
    }
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || this.u32(locator) !== SIG_EOCD64_LOCATOR) this.fail('corrupt zip: ZIP64 locator missing');
      const record = this.u64(locator + 8, 'ZIP64 record offset');
      this.inFile(record, 56, 'ZIP64 end-of-central-directory record');
      if (this.u32(record) !== SIG_EOCD64) this.fail('corrupt zip: bad ZIP64 end-of-central-directory signature');
      count = this.u64(record + 32, 'entry count');
      cdSize = this.u64(record + 40, 'central directory size');
      cdOffset = this.u64(record + 48, 'central directory offset');
    }
    this.inFile(cdOffset, cdSize, 'central directory');
    if (count > this.limits.maxEntries) this.fail(`zip has ${count} entries (limit ${this.limits.maxEntries})`);
    if (count * 46 > cdSize) this.fail(`corrupt zip: ${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const entries = new Map<string, ZipEntry>();
    let at = cdOffset;
    for (let i = 0; i < count; i++) {
      this.inFile(at, 46, `central directory entry ${i}`);
      if (this.u32(at) !== SIG_CENTRAL) this.fail(`corrupt zip: bad central directory signature at byte ${at}`);
      const entry = this.readCentralEntry(at);
      if (entries.has(entry.name)) this.fail(`corrupt zip: entry '${entry.name}' appears twice`);
      entries.set(entry.name, entry);
      at += 46 + this.u16(at + 28) + this.u16(at + 30) + this.u16(at + 32);
    }
    return entries;
  }

  private readCentralEntry(at: number): ZipEntry {
    const method = this.u16(at + 10);
    let compressedSize = this.u32(at + 20);
    let size = this.u32(at + 24);
    const nameLen = this.u16(at + 28);
    const extraLen = this.u16(at + 30);
    let localHeaderOffset = this.u32(at + 42);
    this.inFile(at + 46, nameLen + extraLen, 'central directory entry name');
    const name = names.decode(this.bytes.subarray(at + 46, at + 46 + nameLen));
    // ZIP64 extra field: the 64-bit values of the fields that are 0xffffffff, in this order.
    let extra = at + 46 + nameLen;
    const extraEnd = extra + extraLen;
    while (extra + 4 <= extraEnd) {
      const id = this.u16(extra);
      const len = this.u16(extra + 2);
      if (id === 0x0001) {
        let p = extra + 4;
        const fieldEnd = Math.min(extra + 4 + len, extraEnd);
        const take = (v: number, what: string): number => {
          if (v !== 0xffffffff) return v;
          if (p + 8 > fieldEnd) this.fail(`corrupt zip: ZIP64 field ${what} missing for '${name}'`);
          p += 8;
          return this.u64(p - 8, what);
        };
        size = take(size, 'size');
        compressedSize = take(compressedSize, 'compressed size');
        localHeaderOffset = take(localHeaderOffset, 'offset');
      }
      extra += 4 + len;
    }
    return { name, method, compressedSize, size, localHeaderOffset };
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) this.fail(`missing zip entry '${name}'`);
    return e;
  }

  /** Where an entry's data starts (from its local header). */
  private dataOffset(e: ZipEntry): number {
    this.inFile(e.localHeaderOffset, 30, `local header of '${e.name}'`);
    if (this.u32(e.localHeaderOffset) !== SIG_LOCAL) this.fail(`corrupt zip: bad local header signature for '${e.name}'`);
    const start = e.localHeaderOffset + 30 + this.u16(e.localHeaderOffset + 26) + this.u16(e.localHeaderOffset + 28);
    this.inFile(start, e.compressedSize, `data of '${e.name}'`);
    return start;
  }

  /** The bytes of an entry: a view for stored entries, a fresh array for deflated ones. */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    const start = this.dataOffset(e);
    const data = this.bytes.subarray(start, start + e.compressedSize);
    if (e.method === 0) {
      if (e.size !== e.compressedSize) this.fail(`corrupt zip: stored entry '${name}' declares ${e.size} bytes but holds ${e.compressedSize}`);
      return data;
    }
    if (e.method !== 8) this.fail(`entry '${name}' uses compression method ${e.method} (only stored and deflate are supported)`);
    return this.inflate(e, data);
  }

  private inflate(e: ZipEntry, data: Uint8Array): Uint8Array {
    if (e.size > this.limits.maxEntryBytes) {
      this.fail(`zip entry '${e.name}' declares ${e.size} inflated bytes (limit ${this.limits.maxEntryBytes}): refusing a possible zip bomb`);
    }
    if (e.size > e.compressedSize * MAX_DEFLATE_RATIO + 1024) {
      this.fail(`zip entry '${e.name}' declares ${e.size} bytes from ${e.compressedSize} compressed: impossible for deflate (zip bomb or corrupt)`);
    }
    if (this.inflated + e.size > this.limits.maxTotalInflatedBytes) {
      this.fail(`archive inflates more than ${this.limits.maxTotalInflatedBytes} bytes in total: refusing a possible zip bomb`);
    }
    const out = new Uint8Array(e.size);
    let filled = 0;
    let done = false;
    const overflow = (): never =>
      this.fail(`zip entry '${e.name}' inflates past its declared ${e.size} bytes: refusing a possible zip bomb`);
    const inflater = new Inflate((chunk, final) => {
      if (filled + chunk.length > out.length) overflow();
      out.set(chunk, filled);
      filled += chunk.length;
      if (final) done = true;
    });
    try {
      for (let at = 0; at < data.length && !done; at += INFLATE_CHUNK) {
        const end = Math.min(at + INFLATE_CHUNK, data.length);
        inflater.push(data.subarray(at, end), end === data.length);
      }
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      this.fail(`zip entry '${e.name}' is not valid deflate data (${(err as Error).message})`);
    }
    if (!done || filled !== e.size) this.fail(`zip entry '${e.name}' inflates to ${filled} bytes, ${e.size} declared (truncated or corrupt)`);
    this.inflated += e.size;
    return out;
  }
}
