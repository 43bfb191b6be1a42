// decodeImage(): format sniffing, clear errors for non-images, conversions, EXIF orientation, and the
// rule that src/models/image uses no Node API (it must run in browsers).
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type Image,
  ImageError,
  applyOrientation,
  decodeImage,
  sniffFormat,
  toFloat32,
  toRgb,
  toRgba,
} from '../../src/models/image/index.js';

const DIR = new URL('../fixtures/images/', import.meta.url);
const read = (f: string): Uint8Array => new Uint8Array(readFileSync(new URL(f, DIR)));

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ImageError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('decodeImage', () => {
  it('sniffs by magic bytes, not by file name', () => {
    const png = decodeImage(read('rgb8.png'), 'misnamed.jpg');
    expect(png.format).toBe('png');
    const jpeg = decodeImage(read('gray-q90.jpg').buffer.slice(0) as ArrayBuffer, 'misnamed.png');
    expect([jpeg.format, jpeg.channels]).toEqual(['jpeg', 1]);
  });

  it('names the file and the cause for non-images', () => {
    expect(messageOf(() => decodeImage(read('not-an-image.txt'), 'notes.txt'))).toBe(
      'notes.txt: not a PNG or JPEG image (the file starts with bytes 54 68 69 73 20 69 73 20)',
    );
    expect(messageOf(() => decodeImage(new Uint8Array(0), 'empty.png'))).toBe('empty.png: empty file (0 bytes)');
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00');
    expect(messageOf(() => decodeImage(gif, 'a.gif'))).toMatch(/^a\.gif: unsupported image format: this is a GIF image/);
    const dicom = new Uint8Array(200);
    dicom.set(new TextEncoder().encode('DICM'), 128);
    expect(messageOf(() => decodeImage(dicom, 'scan.dcm'))).toMatch(/DICOM file \(export the frame to PNG first\)/);
    expect(sniffFormat(new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg">'))).toBe('svg');
    expect(sniffFormat(new Uint8Array([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(sniffFormat(new Uint8Array([0x49, 0x49, 0x2a, 0]))).toBe('tiff');
  });

  it('decodes 1x1 PNG and JPEG images', () => {
    expect(decodeImage(read('rgb8-1x1.png'), '1.png').data.length).toBe(3);
    const j = decodeImage(read('rgb-420-1x1.jpg'), '1.jpg');
    expect([j.width, j.height, j.channels]).toEqual([1, 1, 3]);
  });

  it('applies configurable size limits to both formats', () => {
    expect(messageOf(() => decodeImage(read('rgb-444-q90.jpg'), 'x.jpg', { maxDimension: 32 }))).toMatch(
      /^x\.jpg: JPEG image is 37x29; the largest accepted side is 32 pixels/,
    );
    expect(messageOf(() => decodeImage(read('rgb8.png'), 'x.png', { maxDimension: 12 }))).toMatch(/13x11/);
  });
});

describe('conversions', () => {
  const ga: Image = { width: 2, height: 1, channels: 2, data: new Uint8Array([10, 20, 30, 40]) };
  const rgba: Image = { width: 1, height: 1, channels: 4, data: new Uint8Array([1, 2, 3, 4]) };
  it('toRgb drops alpha and replicates grey (Pillow convert("RGB"))', () => {
    expect(Array.from(toRgb(ga).data)).toEqual([10, 10, 10, 30, 30, 30]);
    expect(Array.from(toRgb(rgba).data)).toEqual([1, 2, 3]);
  });
  it('toRgba keeps or adds alpha', () => {
    expect(Array.from(toRgba(ga).data)).toEqual([10, 10, 10, 20, 30, 30, 30, 40]);
    expect(Array.from(toRgba({ width: 1, height: 1, channels: 1, data: new Uint8Array([9]) }).data)).toEqual([9, 9, 9, 255]);
  });
  it('toFloat32 scales', () => {
    expect(Array.from(toFloat32(rgba, 0.5).data)).toEqual([0.5, 1, 1.5, 2]);
  });
  it('applyOrientation matches the eight EXIF orientations', () => {
    // 3x2 image with pixel values 1..6:  1 2 3 / 4 5 6
    const img: Image = { width: 3, height: 2, channels: 1, data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
    const cases: Record<number, [number, number, number[]]> = {
      1: [3, 2, [1, 2, 3, 4, 5, 6]],
      2: [3, 2, [3, 2, 1, 6, 5, 4]], // mirror
      3: [3, 2, [6, 5, 4, 3, 2, 1]], // rotate 180
      4: [3, 2, [4, 5, 6, 1, 2, 3]], // flip vertical
      5: [2, 3, [1, 4, 2, 5, 3, 6]], // transpose
      6: [2, 3, [4, 1, 5, 2, 6, 3]], // rotate 90 clockwise
      7: [2, 3, [6, 3, 5, 2, 4, 1]], // transverse
      8: [2, 3, [3, 6, 2, 5, 1, 4]], // rotate 90 counter-clockwise
    };
    for (const [o, [w, h, px]] of Object.entries(cases)) {
      const out = applyOrientation(img, Number(o));
      expect([out.width, out.height, Array.from(out.data)], `orientation ${o}`).toEqual([w, h, px]);
    }
  });
});

describe('browser compatibility', () => {
  it('src/models/image imports no Node module and uses no Node global', () => {
    const dir = new URL('../../src/models/image/', import.meta.url);
    for (const f of readdirSync(dir)) {
      const text = readFileSync(new URL(f, dir), 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) expect(spec === 'fflate' || spec.startsWith('./'), `${f}: ${spec}`).toBe(true);
      expect(/\b(Buffer|process|require|__dirname)\b/.test(text.replace(/\/\/.*$/gm, '')), f).toBe(false);
    }
  });
});
