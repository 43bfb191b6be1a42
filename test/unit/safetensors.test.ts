import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsFile, writeSafetensorsFile } from '../../src/engine/io/safetensors-node.js';
import { MAX_HEADER_BYTES, parseSafetensors, serializeSafetensors } from '../../src/engine/io/safetensors.js';

/** Builds a file by hand: 8-byte length, the header text exactly as given, then the data bytes. */
function rawFile(header: string | object, data: ArrayLike<number> = [], headerLen?: number): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.byteLength + data.length);
  const view = new DataView(out.buffer);
  const n = headerLen ?? json.byteLength;
  view.setUint32(0, n % 2 ** 32, true);
  view.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.set(Array.from(data), 8 + json.byteLength);
  return out;
}

function f32Bytes(values: number[]): number[] {
  return Array.from(new Uint8Array(new Float32Array(values).buffer));
}

describe('safetensors reader', () => {
  it('reads a hand-made F32 + I64 + BOOL file with metadata, in any data order', () => {
    const header = {
      __metadata__: { format: 'pt' },
      mask: { dtype: 'BOOL', shape: [3], data_offsets: [24, 27] },
      w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
      ids: { dtype: 'I64', shape: [1], data_offsets: [16, 24] },
    };
    const data = [...f32Bytes([1, -2.5, 3, Infinity]), 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2];
    const f = parseSafetensors(rawFile(header, data), 'hand.safetensors');
    expect(f.keys()).toEqual(['mask', 'w', 'ids']);
    expect(f.metadata).toEqual({ format: 'pt' });
    const w = f.get('w');
    expect(w.dtype).toBe('f32');
    expect(w.shape).toEqual([2, 2]);
    expect(Array.from(w.data)).toEqual([1, -2.5, 3, Infinity]);
    const ids = f.get('ids');
    expect(ids.dtype).toBe('i32');
    expect(Array.from(ids.data)).toEqual([7]);
    // BOOL -> f32 0/1 by default (engine masks are float); any nonzero byte is true.
    expect(f.get('mask').dtype).toBe('f32');
    expect(Array.from(f.get('mask').data)).toEqual([1, 0, 1]);
    expect(Array.from(f.get('mask', { as: 'i32' }).data)).toEqual([1, 0, 1]);
    expect(f.info('w')).toMatchObject({ dtype: 'F32', begin: 0, end: 16 });
    expect(Array.from(f.bytes('mask'))).toEqual([1, 0, 2]);
  });

  it('reads F32 stored at an unaligned offset', () => {
    const header = { b: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, x: { dtype: 'F32', shape: [2], data_offsets: [1, 9] } };
    const f = parseSafetensors(rawFile(header, [200, ...f32Bytes([0.5, -8])]));
    expect(Array.from(f.get('x').data)).toEqual([0.5, -8]);
    expect(f.get('b').dtype).toBe('i32');
    expect(Array.from(f.get('b').data)).toEqual([200]);
  });

  it('converts F16, BF16 and F64 to f32, and I32 stays i32', () => {
    const bytes = serializeSafetensors({
      h: { dtype: 'F16', shape: [6], data: [1, -2, 0.5, 65504, 2 ** -24, -Infinity] },
      b: { dtype: 'BF16', shape: [3], data: [1, -3.5, 256] },
      d: { dtype: 'F64', shape: [2], data: [0.1, 1e300] },
      i: { dtype: 'I32', shape: [2], data: [-5, 2147483647] },
    });
    const f = parseSafetensors(bytes);
    expect(Array.from(f.get('h').data)).toEqual([1, -2, 0.5, 65504, 2 ** -24, -Infinity]);
    expect(Array.from(f.get('b').data)).toEqual([1, -3.5, 256]);
    expect(Array.from(f.get('d').data)).toEqual([Math.fround(0.1), Infinity]);
    expect(f.get('i').dtype).toBe('i32');
    expect(Array.from(f.get('i').data)).toEqual([-5, 2147483647]);
    expect(Array.from(f.get('i', { as: 'f32' }).data)).toEqual([-5, 2147483648]);
  });

  it('decodes the raw f16 bit patterns exactly (incl. subnormals, -0 and NaN)', () => {
    const header = { h: { dtype: 'F16', shape: [5], data_offsets: [0, 10] } };
    // 0x3c00 = 1, 0x0001 = 2^-24, 0x8000 = -0, 0x7e00 = NaN, 0x3555 = 0.333251953125
    const data = [0x00, 0x3c, 0x01, 0x00, 0x00, 0x80, 0x00, 0x7e, 0x55, 0x35];
    const v = parseSafetensors(rawFile(header, data)).get('h').data;
    expect(v[0]).toBe(1);
    expect(v[1]).toBe(2 ** -24);
    expect(Object.is(v[2], -0)).toBe(true);
    expect(Number.isNaN(v[3])).toBe(true);
    expect(v[4]).toBe(0.333251953125);
  });

  it('narrows I64 to i32 and refuses values out of range, naming the key and index', () => {
    const ok = serializeSafetensors({ v: { dtype: 'I64', shape: [3], data: [-2147483648, 2147483647, -1] } });
    expect(Array.from(parseSafetensors(ok).get('v').data)).toEqual([-2147483648, 2147483647, -1]);
    const big = serializeSafetensors({ v: { dtype: 'I64', shape: [2], data: [1, 2147483648] } });
    expect(() => parseSafetensors(big, 'ids.safetensors').get('v')).toThrow(
      /ids\.safetensors: tensor 'v' \(I64\) value 2147483648 at index 1 does not fit in i32/,
    );
    const neg = serializeSafetensors({ v: { dtype: 'I64', shape: [1], data: [-2147483649] } });
    expect(() => parseSafetensors(neg).get('v')).toThrow(/does not fit in i32/);
  });

  it('handles 0-d scalars and empty tensors', () => {
    const bytes = serializeSafetensors({
      loss: { dtype: 'F32', shape: [], data: [0.25] },
      empty: { dtype: 'F32', shape: [0, 3], data: [] },
      n: { dtype: 'I64', shape: [], data: [0] },
    });
    const f = parseSafetensors(bytes);
    expect(f.get('loss').shape).toEqual([]);
    expect(Array.from(f.get('loss').data)).toEqual([0.25]);
    expect(f.get('empty').data.length).toBe(0);
    expect(Array.from(f.get('n').data)).toEqual([0]);
  });

  it('round-trips through the writer, which pads the header to 8 bytes with spaces', () => {
    const bytes = serializeSafetensors(
      { a: { dtype: 'F32', shape: [3], data: [1, 2, 3] }, m: { dtype: 'BOOL', shape: [2], data: [0, 1] } },
      { note: 'x' },
    );
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    expect(bytes[8 + n - 1]).toBe(0x20);
    const f = parseSafetensors(bytes);
    expect(f.metadata).toEqual({ note: 'x' });
    expect(Array.from(f.get('a').data)).toEqual([1, 2, 3]);
    expect(Array.from(f.get('m').data)).toEqual([0, 1]);
  });

  it('reads and writes files through the Node helper', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'webvlsm-st-'));
    try {
      const path = join(dir, 't.safetensors');
      await writeSafetensorsFile(path, { x: { dtype: 'F32', shape: [2], data: [3, 4] } });
      const f = await readSafetensorsFile(path);
      expect(f.source).toBe(path);
      expect(Array.from(f.get('x').data)).toEqual([3, 4]);
      const bad = join(dir, 'bad.safetensors');
      writeFileSync(bad, rawFile('{"x": 1', []));
      await expect(readSafetensorsFile(bad)).rejects.toThrow(`safetensors ${bad}: header is not valid JSON`);
      await expect(readSafetensorsFile(join(dir, 'missing.safetensors'))).rejects.toThrow(/cannot read the file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('safetensors reader rejects corrupt files with clear errors', () => {
  const good = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data8 = f32Bytes([1, 2]);
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', () => new Uint8Array(5), /bad\.st: file is 5 bytes, too short/],
    ['a header length beyond the file', () => rawFile(good, data8, 4000), /header length 4000 goes beyond the end of the \d+-byte file/],
    ['a header length over 100 MB', () => rawFile(good, data8, MAX_HEADER_BYTES + 1), /exceeds the 100000000-byte limit/],
    ['a header length over 2^32', () => rawFile(good, data8, 2 ** 40), /header length 1099511627776 exceeds/],
    ['a non-JSON header', () => rawFile('{"x": {"dtype": ', data8), /header is not valid JSON/],
    ['a header that does not start with {', () => rawFile('[1, 2]', data8), /header does not start with '\{'/],
    ['a header with leading whitespace', () => rawFile(' {}', []), /header does not start with '\{'/],
    [
      'a header that is not UTF-8',
      () => {
        const f = rawFile('{"ab": 1}', data8);
        f[10] = 0xff; // the 'a' of the key
        return f;
      },
      /header is not valid UTF-8/,
    ],
    ['an unknown dtype', () => rawFile({ x: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, data8), /tensor 'x': unknown or unsupported dtype "C64"/],
    ['a missing dtype', () => rawFile({ x: { shape: [2], data_offsets: [0, 8] } }, data8), /tensor 'x': unknown or unsupported dtype undefined/],
    ['a negative dimension', () => rawFile({ x: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data8), /tensor 'x': shape \[-2\] is not a list/],
    ['a fractional dimension', () => rawFile({ x: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, data8), /shape \[1.5\]/],
    ['offsets that are not a pair', () => rawFile({ x: { dtype: 'F32', shape: [2], data_offsets: [0] } }, data8), /tensor 'x': data_offsets \[0\] is not a pair/],
    ['offsets ending before they begin', () => rawFile({ x: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, data8), /data_offsets \[8, 0\] end before they begin/],
    ['offsets out of range', () => rawFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, data8), /tensor 'x': data_offsets \[0, 16\] go beyond the 8-byte data buffer/],
    ['a size that does not match dtype*shape', () => rawFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data8), /tensor 'x': data_offsets \[0, 8\] hold 8 bytes, but F32 \[3\] needs 12/],
    ['an unsupported dtype (I16)', () => rawFile({ x: { dtype: 'I16', shape: [4], data_offsets: [0, 8] } }, data8), /tensor 'x': unknown or unsupported dtype "I16"/],
    [
      'a gap between tensors',
      () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'U8', shape: [2], data_offsets: [6, 8] } }, data8),
      /2 unused bytes before tensor 'b' \[6, 8\]/,
    ],
    ['bytes after the last tensor', () => rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, data8), /4 unused bytes after the last tensor/],
    [
      'overlapping tensors',
      () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data8),
      /tensor 'b' \[4, 8\] overlaps tensor 'a' \[0, 8\]/,
    ],
    ['a non-object entry', () => rawFile({ x: 5 }, data8), /tensor 'x': header entry is not an object/],
    ['non-string metadata', () => rawFile({ __metadata__: { n: 1 }, ...good }, data8), /__metadata__ 'n' is not a string/],
  ];
  it.each(cases)('%s', (_what, make, message) => {
    expect(() => parseSafetensors(make(), 'bad.st')).toThrow(message);
  });

  it('names the file and the missing key on lookup', () => {
    const f = parseSafetensors(rawFile(good, data8), 'w.safetensors');
    expect(() => f.get('y')).toThrow(/w\.safetensors: no tensor named 'y' \(has 'x'\)/);
  });

  it('refuses to read float tensors as i32', () => {
    const f = parseSafetensors(rawFile(good, data8), 'w.safetensors');
    expect(() => f.get('x', { as: 'i32' })).toThrow(/tensor 'x' has dtype F32; float tensors cannot be read as i32/);
  });

  it('writer refuses wrong value counts and non-integers for integer dtypes', () => {
    expect(() => serializeSafetensors({ a: { dtype: 'F32', shape: [2], data: [1] } })).toThrow(/'a' has 1 values for shape \[2\]/);
    expect(() => serializeSafetensors({ a: { dtype: 'I64', shape: [1], data: [0.5] } })).toThrow(/not an integer/);
  });
});
