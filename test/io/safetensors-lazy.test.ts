import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { parseSafetensors, serializeSafetensors } from '../../src/engine/io/safetensors.js';
import {
  type ByteSource,
  type LazySafetensors,
  blobSource,
  bufferSource,
  openSafetensors,
  openSafetensorsSource,
  serializeTensorData,
  urlSource,
} from '../../src/engine/io/safetensors-lazy.js';
import { fileSource, openSafetensorsFile, writeSafetensorsAtomic } from '../../src/engine/io/safetensors-lazy-node.js';
import { CheckpointError, type TensorData, tensorsBitEqual } from '../../src/engine/io/tensor-data.js';
import { CRIS_TINY_DIR, crisTiny } from './helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-lazy-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const FIXTURES = ['weights.safetensors', 'proj_legacy_format.reference.safetensors'];

/** A fetch over `bytes` that honours (or, with `ignoreRange`, ignores) Range headers. */
function rangeFetch(bytes: Uint8Array, opts: { ignoreRange?: boolean; log?: string[] } = {}): typeof fetch {
  return (async (_url: string | URL | Request, init?: RequestInit) => {
    const range = new Headers(init?.headers).get('range');
    opts.log?.push(range ?? '<none>');
    if (!range || opts.ignoreRange) return new Response(bytes.slice(), { status: 200 });
    const m = /^bytes=(\d+)-(\d+)$/.exec(range)!;
    const a = Number(m[1]);
    const b = Number(m[2]);
    if (a >= bytes.length) return new Response(null, { status: 416, headers: { 'content-range': `bytes */${bytes.length}` } });
    const end = Math.min(b, bytes.length - 1);
    return new Response(bytes.slice(a, end + 1), {
      status: 206,
      headers: { 'content-range': `bytes ${a}-${end}/${bytes.length}` },
    });
  }) as typeof fetch;
}

async function expectSameAsEager(lazy: LazySafetensors, bytes: Uint8Array): Promise<void> {
  const eager = readCheckpoint(bytes, 'eager');
  const file = parseSafetensors(bytes, 'eager');
  expect(lazy.keys()).toEqual([...eager.tensors.keys()]);
  expect({ ...lazy.metadata }).toEqual(eager.metadata);
  for (const key of lazy.keys()) {
    expect(tensorsBitEqual(await lazy.tensorData(key), eager.tensors.get(key)!)).toBe(true);
    const host = await lazy.get(key);
    const ref = file.get(key);
    expect(host.dtype).toBe(ref.dtype);
    expect(host.shape).toEqual(ref.shape);
    expect(Array.from(host.data)).toEqual(Array.from(ref.data));
  }
}

describe('lazy safetensors: every source gives the eager reader\'s tensors, bit for bit', () => {
  it.each(FIXTURES)('%s from a Node file handle, reading only the header and the asked tensors', async (name) => {
    const bytes = crisTiny(name);
    const lazy = await openSafetensorsFile(CRIS_TINY_DIR + name);
    try {
      const stats = lazy.source.stats!;
      expect(stats.bytesRead).toBe(lazy.dataOffset); // the 8-byte length + the header, nothing else
      const key = lazy.keys()[1]!;
      const info = lazy.info(key);
      await lazy.tensorData(key);
      expect(stats.bytesRead).toBe(lazy.dataOffset + info.end - info.begin);
      expect(lazy.byteLength).toBe(bytes.length);
      await expectSameAsEager(lazy, bytes);
    } finally {
      await lazy.close();
    }
  });

  it.each(FIXTURES)('%s from an ArrayBuffer, a Uint8Array and a Blob', async (name) => {
    const bytes = crisTiny(name);
    const ab = bytes.slice().buffer;
    await expectSameAsEager(await openSafetensors(ab), bytes);
    await expectSameAsEager(await openSafetensors(bytes), bytes);
    const blob = new Blob([bytes.slice()]);
    const lazy = await openSafetensors(blob, { name });
    expect(lazy.source.stats!.bytesRead).toBe(lazy.dataOffset);
    await expectSameAsEager(lazy, bytes);
  });

  it('from a URL with HTTP range requests, and from a Response', async () => {
    const bytes = crisTiny('proj_legacy_format.reference.safetensors');
    const log: string[] = [];
    const lazy = await openSafetensors('https://example.invalid/model.safetensors', { fetch: rangeFetch(bytes, { log }) });
    expect(log).toHaveLength(2); // length prefix, header
    expect(log[0]).toBe('bytes=0-7');
    const key = lazy.keys()[0]!;
    const info = lazy.info(key);
    await lazy.tensorData(key);
    expect(log[2]).toBe(`bytes=${lazy.dataOffset + info.begin}-${lazy.dataOffset + info.end - 1}`);
    await expectSameAsEager(lazy, bytes);
    await expectSameAsEager(await openSafetensors(new Response(bytes.slice())), bytes);
  });

  it('a server that ignores Range is downloaded once, with a note', async () => {
    const bytes = crisTiny('proj_legacy_format.reference.safetensors');
    const log: string[] = [];
    const source = urlSource('https://example.invalid/x.safetensors', { fetch: rangeFetch(bytes, { ignoreRange: true, log }) });
    const lazy = await openSafetensorsSource(source);
    await expectSameAsEager(lazy, bytes);
    expect(log).toHaveLength(1);
    expect(source.notes[0]).toMatch(/ignored the Range header; the whole file \(303420 bytes\) was downloaded once/);
  });

  it('HTTP errors and short files name the URL', async () => {
    const notFound = (async () => new Response('no', { status: 404, statusText: 'Not Found' })) as typeof fetch;
    await expect(openSafetensors('https://h.invalid/m.safetensors', { fetch: notFound })).rejects.toThrow(
      /^https:\/\/h\.invalid\/m\.safetensors: HTTP 404 Not Found$/,
    );
    const bytes = crisTiny('proj_legacy_format.reference.safetensors');
    const cut = bytes.subarray(0, 1000);
    await expect(openSafetensors('https://h.invalid/cut.safetensors', { fetch: rangeFetch(cut) })).rejects.toThrow(
      /https:\/\/h\.invalid\/cut\.safetensors: .*header length \d+ goes beyond the end of the 1000-byte file/,
    );
  });
});

describe('F16 / BF16 / F64 to f32 on request', () => {
  const bytes = serializeSafetensors({
    h: { dtype: 'F16', shape: [4], data: [1, -2.5, 65504, 2 ** -24] },
    b: { dtype: 'BF16', shape: [2, 1], data: [3.140625, -0.5] },
    d: { dtype: 'F64', shape: [1], data: [0.1] },
    i: { dtype: 'I64', shape: [2], data: [-7, 2 ** 40] },
  });

  it('keeps stored dtypes by default and converts with float32', async () => {
    const lazy = await openSafetensors(new Blob([bytes.slice()]));
    const raw = await lazy.tensorData('h');
    expect(raw.dtype).toBe('f16');
    expect(Array.from(raw.data as Uint16Array)).toEqual([0x3c00, 0xc100, 0x7bff, 0x0001]);
    const h = await lazy.tensorData('h', { float32: true });
    expect(h.dtype).toBe('f32');
    expect(Array.from(h.data as Float32Array)).toEqual([1, -2.5, 65504, 2 ** -24]);
    expect(Array.from((await lazy.tensorData('b', { float32: true })).data as Float32Array)).toEqual([3.140625, -0.5]);
    expect((await lazy.tensorData('d', { float32: true })).data[0]).toBe(Math.fround(0.1));
    const i = await lazy.tensorData('i', { float32: true });
    expect(i.dtype).toBe('i64'); // integers are left alone
    expect(Array.from(i.data as BigInt64Array)).toEqual([-7n, 2n ** 40n]);
  });

  it('get() converts to engine dtypes, range-checking I64', async () => {
    const lazy = await openSafetensors(bytes);
    expect(Array.from((await lazy.get('h')).data)).toEqual([1, -2.5, 65504, 2 ** -24]);
    expect((await lazy.get('b')).shape).toEqual([2, 1]);
    await expect(lazy.get('i')).rejects.toThrow(/value 1099511627776 at index 1 does not fit in i32/);
    expect(Array.from((await lazy.get('i', { as: 'f32' })).data)).toEqual([-7, 2 ** 40]);
  });
});

describe('bad input: clear errors naming the file', () => {
  const good = crisTiny('proj_legacy_format.reference.safetensors');

  async function errorOf(bytes: Uint8Array, name = 'bad.safetensors'): Promise<string> {
    try {
      const lazy = await openSafetensors(new Blob([bytes.slice()]), { name });
      for (const k of lazy.keys()) await lazy.tensorData(k);
    } catch (err) {
      expect(err).toBeInstanceOf(CheckpointError);
      return (err as Error).message;
    }
    throw new Error('expected an error');
  }

  it('rejects truncation, huge header lengths, bad JSON, gaps and out-of-range offsets', async () => {
    expect(await errorOf(good.subarray(0, 5))).toMatch(/^safetensors bad\.safetensors: file is 5 bytes, too short/);
    expect(await errorOf(good.subarray(0, good.length - 1))).toMatch(/^safetensors bad\.safetensors: .*go beyond the \d+-byte data buffer/);
    const huge = good.slice(0, 64);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
    expect(await errorOf(huge)).toMatch(/^safetensors bad\.safetensors: header length \d+ exceeds the 100000000-byte limit/);
    const json = good.slice();
    json[9] = 0x00; // inside the JSON text
    expect(await errorOf(json)).toMatch(/header is not valid JSON|not valid UTF-8/);
    const padded = new Uint8Array(good.length + 4);
    padded.set(good);
    expect(await errorOf(padded)).toMatch(/4 unused bytes after the last tensor/);
    const header = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } });
    const gap = new Uint8Array(8 + header.length + 16);
    new DataView(gap.buffer).setBigUint64(0, BigInt(header.length), true);
    gap.set(new TextEncoder().encode(header), 8);
    expect(await errorOf(gap)).toMatch(/4 unused bytes before tensor 'b'/);
    const odd = JSON.stringify({ a: { dtype: 'I8', shape: [1], data_offsets: [0, 1] } });
    const i8 = new Uint8Array(8 + odd.length + 1);
    new DataView(i8.buffer).setBigUint64(0, BigInt(odd.length), true);
    i8.set(new TextEncoder().encode(odd), 8);
    expect(await errorOf(i8)).toMatch(/tensor 'a': unknown or unsupported dtype "I8"/);
  });

  it('a missing key lists the keys; a missing file and a folder name the path', async () => {
    const lazy = await openSafetensors(good, { name: 'p.safetensors' });
    await expect(lazy.tensorData('nope')).rejects.toThrow(/^safetensors p\.safetensors: no tensor named 'nope' \(has 'vis\.1\.0\.weight', .*16 in all\)/);
    const missing = join(tmp, 'missing.safetensors');
    await expect(openSafetensorsFile(missing)).rejects.toThrow(new RegExp(`^${missing}: cannot open the file \\(ENOENT`));
    await expect(openSafetensorsFile(tmp)).rejects.toThrow(/not a regular file|cannot open the file/);
  });

  it('a file truncated after opening fails on read, naming it', async () => {
    const path = join(tmp, 'shrinks.safetensors');
    writeFileSync(path, good);
    const source: ByteSource = await fileSource(path);
    const lazy = await openSafetensorsSource(source);
    writeFileSync(path, good.subarray(0, lazy.dataOffset + 10));
    await expect(lazy.tensorData(lazy.keys()[3]!)).rejects.toThrow(new RegExp(`^${path}: the file ended after \\d+ bytes`));
    await lazy.close();
    await expect(source.read(0, 1)).rejects.toThrow(/read after close/);
  });

  it('byte sources refuse reads past their end', async () => {
    await expect(bufferSource(new Uint8Array(4), 'buf').read(2, 4)).rejects.toThrow(/^buf: read of 4 bytes at 2 goes past the end of the 4-byte file/);
    await expect(blobSource(new Blob([new Uint8Array(4)]), 'blob').read(-1, 1)).rejects.toThrow(/invalid read/);
  });
});

describe('bit-exact writing of TensorData (the convert path)', () => {
  const nan = new Float32Array(new Uint32Array([0x7fc01234, 0xffbfffff, 0x00000001]).buffer); // NaN payloads, a subnormal
  const tensors = new Map<string, TensorData>([
    ['f32', { dtype: 'f32', shape: [3], data: nan }],
    ['f16', { dtype: 'f16', shape: [2], data: Uint16Array.from([0x7e01, 0x8001]) }],
    ['bf16', { dtype: 'bf16', shape: [1, 1], data: Uint16Array.from([0xffc1]) }],
    ['f64', { dtype: 'f64', shape: [1], data: Float64Array.from([Math.PI]) }],
    ['i64', { dtype: 'i64', shape: [2], data: BigInt64Array.from([-(2n ** 62n), 2n ** 40n + 3n]) }],
    ['i32', { dtype: 'i32', shape: [], data: Int32Array.from([-5]) }],
    ['u8', { dtype: 'u8', shape: [2], data: Uint8Array.from([0, 255]) }],
    ['bool', { dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0]) }],
    ['empty', { dtype: 'f32', shape: [0, 3], data: new Float32Array(0) }],
  ]);

  it('writes atomically and reads back every bit (eager and lazy readers)', async () => {
    const path = join(tmp, 'exact.safetensors');
    await writeSafetensorsAtomic(path, tensors, { format: 'pt' });
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const bytes = new Uint8Array(readFileSync(path));
    expect(bytes).toEqual(serializeTensorData(tensors, { format: 'pt' }));
    const eager = readCheckpoint(bytes, path);
    const lazy = await openSafetensorsFile(path);
    for (const [k, t] of tensors) {
      expect(tensorsBitEqual(eager.tensors.get(k)!, t)).toBe(true);
      expect(tensorsBitEqual(await lazy.tensorData(k), t)).toBe(true);
    }
    await lazy.close();
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8).toBe(0); // data starts 8-aligned
  });

  it('a failed write leaves no file and no temporary file', async () => {
    const dir = join(tmp, 'no-such-dir');
    await expect(writeSafetensorsAtomic(join(dir, 'x.safetensors'), tensors)).rejects.toThrow(/cannot create a temporary file in its folder/);
    const bad = new Map<string, TensorData>([['x', { dtype: 'i16', shape: [1], data: Int16Array.from([1]) }]]);
    const path = join(tmp, 'never.safetensors');
    await expect(writeSafetensorsAtomic(path, bad)).rejects.toThrow(/tensor 'x' has dtype i16, which this writer does not support/);
    expect(readdirSync(tmp).filter((f) => f.includes('never'))).toEqual([]);
  });
});

describe('the lazy and eager readers agree on mutated files', () => {
  it('500 seeded header mutations: same error message, or the same tensors', async () => {
    const good = crisTiny('proj_legacy_format.reference.safetensors');
    const headerEnd = 8 + Number(new DataView(good.buffer, good.byteOffset).getBigUint64(0, true));
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let errors = 0;
    for (let i = 0; i < 500; i++) {
      let bytes = good.slice();
      const kind = rand(4);
      if (kind === 0) bytes[rand(headerEnd)] = rand(256);
      else if (kind === 1) bytes[rand(8)] = rand(256);
      else if (kind === 2) bytes[8 + rand(headerEnd - 8)] = '0123456789[]{},:"'.charCodeAt(rand(17));
      else bytes = bytes.subarray(0, rand(bytes.length)); // truncation
      let eager: string | Map<string, TensorData>;
      try {
        eager = readCheckpoint(bytes, 'm.safetensors').tensors;
      } catch (err) {
        eager = (err as Error).message;
      }
      let lazy: string | Map<string, TensorData>;
      try {
        lazy = await (await openSafetensors(bytes, { name: 'm.safetensors' })).readAll();
      } catch (err) {
        lazy = (err as Error).message;
      }
      if (typeof eager === 'string') {
        errors++;
        // The eager path may first fail format detection (a mutated first byte); then the lazy
        // reader must fail too, with its own safetensors message.
        if (eager.includes('not a checkpoint this reader knows')) expect(typeof lazy, eager).toBe('string');
        else expect(lazy).toBe(eager);
      } else {
        expect(typeof lazy, String(lazy)).not.toBe('string');
        const l = lazy as Map<string, TensorData>;
        expect([...l.keys()]).toEqual([...eager.keys()]);
        for (const [k, t] of eager) expect(tensorsBitEqual(l.get(k)!, t)).toBe(true);
      }
    }
    expect(errors).toBeGreaterThan(50);
  });
});
