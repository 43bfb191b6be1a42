// JPEG decoding against libjpeg-turbo 2.1.5 (the `.jpg.raw` references were decoded with its defaults:
// islow IDCT, fancy upsampling; see test/fixtures/images/SOURCES.md), unsupported variants and broken files.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ImageError, decodeImage, decodeJpeg } from '../../src/models/image/index.js';

const DIR = new URL('../fixtures/images/', import.meta.url);
const read = (f: string): Uint8Array => new Uint8Array(readFileSync(new URL(f, DIR)));

interface JpegCase {
  file: string;
  reference: string;
  width: number;
  height: number;
  channels: number;
  encoder: Record<string, string>;
}
const cases: JpegCase[] = JSON.parse(readFileSync(new URL('jpeg-cases.json', DIR), 'utf8')).cases;

function readRaw(file: string): { width: number; height: number; channels: number; data: Uint8Array } {
  const bytes = read(file);
  const nl = bytes.indexOf(10);
  const [, w, h, c] = new TextDecoder().decode(bytes.subarray(0, nl)).split(' ');
  return { width: Number(w), height: Number(h), channels: Number(c), data: bytes.subarray(nl + 1) };
}

function errorOf(bytes: Uint8Array, name: string): string {
  try {
    decodeImage(bytes, name);
  } catch (e) {
    expect(e).toBeInstanceOf(ImageError);
    return (e as Error).message;
  }
  throw new Error('decoded without error');
}

describe('JPEG decoding matches libjpeg-turbo', () => {
  it.each(cases.map((k) => [k.file, k] as const))('%s', (_, k) => {
    const img = decodeJpeg(read(k.file), k.file);
    const ref = readRaw(k.reference);
    expect([img.width, img.height, img.channels]).toEqual([ref.width, ref.height, ref.channels]);
    expect(img.data.length).toBe(ref.data.length);
    let maxDiff = 0;
    let differing = 0;
    for (let i = 0; i < ref.data.length; i++) {
      const d = Math.abs(img.data[i]! - ref.data[i]!);
      if (d > 0) differing++;
      maxDiff = Math.max(maxDiff, d);
    }
    // The decoder reproduces libjpeg's integer arithmetic, so the output is identical (measured: 0 / 0
    // on every fixture); the brief's tolerance is +-2.
    expect({ maxDiff, differing }).toEqual({ maxDiff: 0, differing: 0 });
  });

  it('covers the required variants', () => {
    const enc = cases.map((k) => k.encoder);
    for (const samp of ['444', '422', '420', '440', '411']) expect(enc.some((e) => e['samp'] === samp)).toBe(true);
    expect(cases.some((k) => k.channels === 1 && k.encoder['prog'] === '1')).toBe(true);
    expect(enc.some((e) => e['prog'] === '1' && e['restart'])).toBe(true);
    expect(enc.some((e) => e['restart'] && !e['prog'])).toBe(true);
    expect(cases.some((k) => k.width === 1 && k.height === 1)).toBe(true);
  });
});

describe('JPEG metadata', () => {
  it('reads the EXIF orientation without applying it', () => {
    const base = read('rgb-444-q90.jpg');
    // APP1 "Exif\0\0" + big-endian TIFF with one IFD0 entry: Orientation (0x0112) SHORT = 6.
    const tiff = [0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0];
    const payload = [...Array.from(new TextEncoder().encode('Exif')), 0, 0, ...tiff];
    const app1 = [0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 255, ...payload];
    const withExif = new Uint8Array([0xff, 0xd8, ...app1, ...Array.from(base.subarray(2))]);
    const img = decodeImage(withExif, 'exif.jpg');
    expect(img.orientation).toBe(6);
    expect(Array.from(img.data)).toEqual(Array.from(decodeImage(base, 'plain.jpg').data));
    expect(decodeImage(base, 'plain.jpg').orientation).toBe(1);
  });
});

describe('unsupported and broken JPEG files', () => {
  const good = read('rgb-420-q75.jpg');
  const sof = good.findIndex((v, i) => v === 0xff && good[i + 1] === 0xc0);

  it('rejects arithmetic coding, lossless and 12-bit files by name', () => {
    expect(errorOf(read('arithmetic.jpg'), 'a.jpg')).toMatch(/^a\.jpg: unsupported JPEG: arithmetic-coded sequential \(SOF9\)/);
    expect(errorOf(read('lossless.jpg'), 'l.jpg')).toMatch(/lossless \(SOF3\)/);
    const twelve = good.slice();
    twelve[sof + 4] = 12;
    expect(errorOf(twelve, 't.jpg')).toMatch(/12-bit samples/);
  });

  it('rejects absurd dimensions from the header', () => {
    expect(errorOf(read('huge-dims.jpg'), 'huge.jpg')).toMatch(/^huge\.jpg: JPEG image is 20000x20000; the largest accepted side is 16384/);
    const zero = good.slice();
    zero[sof + 7] = 0;
    zero[sof + 8] = 0;
    expect(errorOf(zero, 'z.jpg')).toMatch(/empty image \(0x29\)/);
  });

  it('reports truncated files', () => {
    expect(errorOf(read('truncated.jpg'), 'truncated.jpg')).toMatch(/^truncated\.jpg: truncated JPEG: the file ends at byte \d+ inside a scan/);
    expect(errorOf(good.subarray(0, 600), 'x.jpg')).toMatch(/truncated JPEG: a marker segment at byte \d+ needs/);
    expect(errorOf(good.subarray(0, 3), 'x.jpg')).toMatch(/not a JPEG|no frame header/);
    expect(errorOf(good.subarray(0, sof + 6), 'x.jpg')).toMatch(/truncated JPEG/);
    // Every cut of a progressive file fails cleanly (and the complete file decodes).
    const prog = read('rgb-420-progressive.jpg');
    for (let cut = 2; cut < prog.length - 2; cut += 37) {
      expect(() => decodeJpeg(prog.subarray(0, cut), 'cut.jpg')).toThrow(ImageError);
    }
    expect(decodeJpeg(prog, 'full.jpg').width).toBe(37);
  });

  it('survives random corruption of baseline and progressive files (decodes or throws ImageError)', () => {
    let seed = 99;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (const f of ['rgb-420-q75.jpg', 'rgb-444-progressive.jpg', 'rgb-420-restart.jpg']) {
      const src = read(f);
      for (let t = 0; t < 120; t++) {
        const bad = src.slice();
        for (let k = 0; k < 2; k++) bad[2 + rand(bad.length - 4)] = rand(256);
        try {
          decodeJpeg(bad, 'fuzz.jpg');
        } catch (e) {
          expect(e).toBeInstanceOf(ImageError);
        }
      }
    }
  });
});
