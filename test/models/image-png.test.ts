// PNG decoding against the fixture patterns (test/fixtures/images/gen/make_fixtures.py writes the
// files from the same formulas and checks them with libpng), encoding round trips and broken files.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ImageError, crc32, decodeImage, decodePng, encodePng, makeChunk } from '../../src/models/image/index.js';

const DIR = new URL('../fixtures/images/', import.meta.url);
const read = (f: string): Uint8Array => new Uint8Array(readFileSync(new URL(f, DIR)));

interface PngCase {
  file: string;
  width: number;
  height: number;
  colorType: number;
  bitDepth: number;
  interlace?: boolean;
  paletteSize?: number;
  trns?: number[];
}
const cases: PngCase[] = JSON.parse(readFileSync(new URL('png-cases.json', DIR), 'utf8')).cases;

const pat8 = (x: number, y: number, c: number): number => (x * 37 + y * 91 + c * 53 + x * y * 7 + 11) & 255;
const pat16 = (x: number, y: number, c: number): number =>
  (x * 4099 + y * 9337 + c * 1543 + x * y * 331 + 7) & 0xffff;
const patLow = (x: number, y: number, bits: number): number => (x * 3 + y * 5 + x * y) & ((1 << bits) - 1);
const paletteEntry = (i: number): number[] => [(i * 40 + 3) & 255, 255 - ((i * 15) & 255), (i * i * 7) & 255];
const SPP: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function rawSample(k: PngCase, x: number, y: number, c: number): number {
  if (k.colorType === 3) {
    const n = k.paletteSize!;
    return k.bitDepth === 8 ? (x * 7 + y * 13 + x * y) % n : patLow(x, y, k.bitDepth) % n;
  }
  if (k.colorType === 0 && k.bitDepth < 8) return patLow(x, y, k.bitDepth);
  return k.bitDepth === 16 ? pat16(x, y, c) : pat8(x, y, c);
}

/** Expected 8-bit pixel (and 16-bit pixel for 16-bit files) of a case. */
function expectedPixel(k: PngCase, x: number, y: number): { p8: number[]; p16?: number[] } {
  if (k.colorType === 3) {
    const i = rawSample(k, x, y, 0);
    const p8 = paletteEntry(i);
    if (k.trns) p8.push(i < k.trns.length ? k.trns[i]! : 255);
    return { p8 };
  }
  const raw = Array.from({ length: SPP[k.colorType]! }, (_, c) => rawSample(k, x, y, c));
  const transparent = k.trns !== undefined && raw.every((v, c) => v === k.trns![c]);
  if (k.bitDepth === 16) {
    const p16 = [...raw];
    if (k.trns) p16.push(transparent ? 0 : 65535);
    return { p8: p16.map((v) => v >> 8), p16 };
  }
  const p8 = k.bitDepth < 8 ? raw.map((v) => (v * 255) / ((1 << k.bitDepth) - 1)) : raw;
  if (k.trns) p8.push(transparent ? 0 : 255);
  return { p8 };
}

describe('PNG decoding', () => {
  it.each(cases.map((k) => [k.file, k] as const))('%s', (_, k) => {
    const img = decodePng(read(k.file), k.file);
    expect([img.width, img.height, img.format, img.bitDepth]).toEqual([k.width, k.height, 'png', k.bitDepth]);
    const { p8, p16 } = expectedPixel(k, 0, 0);
    expect(img.channels).toBe(p8.length);
    expect(img.data16 !== undefined).toBe(p16 !== undefined);
    let mismatches = 0;
    for (let y = 0; y < k.height; y++) {
      for (let x = 0; x < k.width; x++) {
        const e = expectedPixel(k, x, y);
        const o = (y * k.width + x) * img.channels;
        for (let c = 0; c < img.channels; c++) {
          if (img.data[o + c] !== e.p8[c]) mismatches++;
          if (e.p16 && img.data16![o + c] !== e.p16[c]) mismatches++;
        }
      }
    }
    expect(mismatches).toBe(0);
  });

  it('covers every colour type, bit depth, filter type and interlacing', () => {
    const combos = new Set(cases.map((k) => `${k.colorType}/${k.bitDepth}`));
    for (const c of ['0/1', '0/2', '0/4', '0/8', '0/16', '2/8', '2/16', '3/1', '3/2', '3/4', '3/8', '4/8', '4/16', '6/8', '6/16']) {
      expect(combos.has(c), c).toBe(true);
    }
    expect(cases.some((k) => k.interlace)).toBe(true);
    expect(cases.filter((k) => k.trns).length).toBeGreaterThanOrEqual(6);
  });

  it('crc32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});

describe('PNG encoding', () => {
  const make = (w: number, h: number, channels: 1 | 2 | 3 | 4, sixteen: boolean) => {
    const n = w * h * channels;
    const data = sixteen ? new Uint16Array(n) : new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = sixteen ? (i * 7919 + 13) & 0xffff : (i * 31 + (i >> 3)) & 0xff;
    return { width: w, height: h, channels, data };
  };
  for (const channels of [1, 2, 3, 4] as const) {
    for (const sixteen of [false, true]) {
      it(`round-trips ${channels} channel(s), ${sixteen ? 16 : 8}-bit`, () => {
        const src = make(17, 9, channels, sixteen);
        const back = decodePng(encodePng(src));
        expect([back.width, back.height, back.channels]).toEqual([17, 9, channels]);
        expect(Array.from(sixteen ? back.data16! : back.data)).toEqual(Array.from(src.data));
      });
    }
  }
  it.each(['none', 'sub', 'up', 'average', 'paeth', 'adaptive'] as const)('round-trips with filter %s', (filter) => {
    const src = make(23, 7, 3, false);
    expect(Array.from(decodePng(encodePng(src, { filter, level: 1 })).data)).toEqual(Array.from(src.data));
  });
  it('encodes a 1x1 image and rejects inconsistent input', () => {
    const one = decodePng(encodePng({ width: 1, height: 1, channels: 4, data: new Uint8Array([1, 2, 3, 4]) }));
    expect(Array.from(one.data)).toEqual([1, 2, 3, 4]);
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) })).toThrow(/12 expected|2x2x3/);
    expect(() => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) })).toThrow(ImageError);
  });
});

describe('broken PNG files', () => {
  const err = (bytes: Uint8Array, name: string): string => {
    try {
      decodeImage(bytes, name);
    } catch (e) {
      expect(e).toBeInstanceOf(ImageError);
      return (e as Error).message;
    }
    throw new Error('decoded without error');
  };
  it('reports a bad CRC with the chunk and file name', () => {
    expect(err(read('bad-crc.png'), 'bad-crc.png')).toMatch(/^bad-crc\.png: corrupt PNG: chunk IDAT at byte \d+ has a bad CRC/);
  });
  it('reports truncation', () => {
    expect(err(read('truncated.png'), 'truncated.png')).toMatch(/^truncated\.png: truncated PNG: chunk IDAT/);
    const good = read('rgb8.png');
    expect(err(good.subarray(0, good.length - 12), 'x.png')).toMatch(/before the IEND chunk/);
    expect(err(good.subarray(0, 20), 'x.png')).toMatch(/truncated PNG/);
    expect(err(good.subarray(0, 8), 'x.png')).toMatch(/no IHDR/);
  });
  it('rejects absurd dimensions from the header, before allocating', () => {
    expect(err(read('huge-dims.png'), 'huge.png')).toMatch(/20000x20000; the largest accepted side is 16384/);
    const small = decodeImage(read('rgb8.png'), 'rgb8.png');
    expect(small.width).toBe(13);
    expect(() => decodeImage(read('rgb8.png'), 'rgb8.png', { maxPixels: 100 })).toThrow(/13x11 = 143 pixels; at most 100/);
  });
  it('reports corrupt zlib data, bad filter types, bad headers and unknown critical chunks', () => {
    expect(err(read('bad-zlib.png'), 'z.png')).toMatch(/zlib stream in IDAT cannot be inflated/);
    const sig = read('rgb8.png').subarray(0, 8);
    const ihdr = (w: number, h: number, depth: number, type: number) => {
      const d = new Uint8Array(13);
      new DataView(d.buffer).setUint32(0, w);
      new DataView(d.buffer).setUint32(4, h);
      d[8] = depth;
      d[9] = type;
      return makeChunk('IHDR', d);
    };
    const file = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => Array.from(p)));
    const end = makeChunk('IEND', new Uint8Array(0));
    // Filter byte 7 on a 1x1 grey image.
    const raw = new Uint8Array([7, 0]);
    const idat = makeChunk('IDAT', deflateStored(raw));
    expect(err(file(sig, ihdr(1, 1, 8, 0), idat, end), 'f.png')).toMatch(/unknown filter type 7/);
    expect(err(file(sig, ihdr(1, 1, 3, 2), idat, end), 'f.png')).toMatch(/bit depth 3 is not allowed with colour type 2/);
    expect(err(file(sig, ihdr(0, 5, 8, 0), idat, end), 'f.png')).toMatch(/empty image \(0x5\)/);
    expect(err(file(sig, ihdr(1, 1, 8, 0), makeChunk('ABCD', new Uint8Array(1)), idat, end), 'f.png')).toMatch(
      /unknown critical chunk ABCD/,
    );
    expect(err(file(sig, ihdr(1, 1, 8, 3), idat, end), 'f.png')).toMatch(/without PLTE/);
    // Ancillary unknown chunks are skipped.
    const ok = file(sig, ihdr(1, 1, 8, 0), makeChunk('abCD', new Uint8Array(3)), makeChunk('IDAT', deflateStored(new Uint8Array([0, 42]))), end);
    expect(Array.from(decodeImage(ok, 'ok.png').data)).toEqual([42]);
  });
  it('survives random corruption (decodes or throws ImageError)', () => {
    const good = read('rgb8-adam7.png');
    const idat = findChunk(good, 'IDAT');
    const idatLength = new DataView(good.buffer, good.byteOffset).getUint32(idat);
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let t = 0; t < 200; t++) {
      const bad = good.slice();
      if (t % 2 === 0) {
        for (let k = 0; k < 3; k++) bad[8 + rand(bad.length - 8)] = rand(256);
      } else {
        // Corrupt the IDAT payload and repair its CRC: reaches the inflater and the unfilter step.
        const at = idat + 8 + rand(idatLength);
        bad[at] = rand(256);
        new DataView(bad.buffer).setUint32(idat + 8 + idatLength, crc32(bad, idat + 4, idat + 8 + idatLength));
      }
      try {
        decodeImage(bad, 'fuzz.png');
      } catch (e) {
        expect(e).toBeInstanceOf(ImageError);
      }
    }
  });
});

/** A zlib stream with one stored (uncompressed) deflate block. */
function deflateStored(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 11);
  out[0] = 0x78;
  out[1] = 0x01;
  out[2] = 1;
  out[3] = data.length & 255;
  out[4] = data.length >> 8;
  out[5] = ~data.length & 255;
  out[6] = (~data.length >> 8) & 255;
  out.set(data, 7);
  let a = 1;
  let b = 0;
  for (const v of data) {
    a = (a + v) % 65521;
    b = (b + a) % 65521;
  }
  new DataView(out.buffer).setUint32(7 + data.length, ((b << 16) | a) >>> 0);
  return out;
}

/** Byte offset of the first chunk of a type (its length field). */
function findChunk(png: Uint8Array, type: string): number {
  let pos = 8;
  const view = new DataView(png.buffer, png.byteOffset);
  while (pos < png.length) {
    const t = String.fromCharCode(...png.subarray(pos + 4, pos + 8));
    if (t === type) return pos;
    pos += view.getUint32(pos) + 12;
  }
  throw new Error(`no ${type} chunk`);
}
