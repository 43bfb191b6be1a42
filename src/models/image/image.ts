// Format sniffing, decodeImage() and channel conversions.
//
// decodeImage() looks at the magic bytes (never at the file name, which is only used in messages) and
// decodes PNG or JPEG. Other recognised formats (GIF, BMP, WebP, TIFF, DICOM, ...) and unknown data get an
// ImageError that says what the file looks like.
//
// Conversions follow Pillow's Image.convert(): grey -> RGB replicates, dropping alpha does not composite
// over a background (Pillow's RGBA -> RGB and LA -> RGB just discard alpha).

import { decodeJpeg } from './jpeg.js';
import { decodePng } from './png.js';
import { type Channels, type DecodeLimits, type DecodedImage, type Image, type ImageF32, ImageError } from './types.js';

export type SniffedFormat =
  | 'png'
  | 'jpeg'
  | 'gif'
  | 'bmp'
  | 'webp'
  | 'tiff'
  | 'avif/heif'
  | 'jpeg2000'
  | 'dicom'
  | 'nifti'
  | 'gzip'
  | 'pdf'
  | 'svg'
  | 'unknown';

const startsWith = (b: Uint8Array, sig: number[], at = 0): boolean => sig.every((v, i) => b[at + i] === v);
const ascii = (b: Uint8Array, from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));

/** Identifies an image file from its first bytes. */
export function sniffFormat(bytes: Uint8Array): SniffedFormat {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (ascii(bytes, 0, 4) === 'GIF8') return 'gif';
  if (ascii(bytes, 0, 2) === 'BM' && bytes.length >= 26) return 'bmp';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  const brand = ascii(bytes, 8, 12);
  if (ascii(bytes, 4, 8) === 'ftyp' && ['avif', 'avis', 'heic', 'heix', 'mif1', 'msf1'].includes(brand)) {
    return 'avif/heif';
  }
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50]) || startsWith(bytes, [0xff, 0x4f, 0xff, 0x51])) {
    return 'jpeg2000';
  }
  if (ascii(bytes, 128, 132) === 'DICM') return 'dicom';
  if (['n+1\0', 'ni1\0', 'n+2\0', 'ni2\0'].includes(ascii(bytes, 344, 348)) || ascii(bytes, 4, 8) === 'n+2\0') {
    return 'nifti';
  }
  if (startsWith(bytes, [0x1f, 0x8b])) return 'gzip';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'pdf';
  if (/^\s*(<\?xml[^>]*>\s*)?<svg[\s>]/i.test(ascii(bytes, 0, Math.min(bytes.length, 256)))) return 'svg';
  return 'unknown';
}

const OTHER_FORMATS: Partial<Record<SniffedFormat, string>> = {
  gif: 'a GIF image',
  bmp: 'a BMP image',
  webp: 'a WebP image',
  tiff: 'a TIFF image',
  'avif/heif': 'an AVIF/HEIF image',
  jpeg2000: 'a JPEG 2000 image',
  dicom: 'a DICOM file (export the frame to PNG first)',
  nifti: 'a NIfTI volume (export a slice to PNG first)',
  gzip: 'gzip-compressed data',
  pdf: 'a PDF document',
  svg: 'an SVG drawing',
};

/**
 * Decodes PNG or JPEG bytes. `name` (a file name or URL) only labels error messages. Throws ImageError
 * for empty, unrecognised, unsupported, corrupt, truncated or oversized input.
 */
export function decodeImage(
  bytes: Uint8Array | ArrayBuffer,
  name = 'image',
  limits?: DecodeLimits,
): DecodedImage {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (b.length === 0) throw new ImageError(name, 'empty file (0 bytes)');
  const format = sniffFormat(b);
  if (format === 'png') return decodePng(b, name, limits);
  if (format === 'jpeg') return decodeJpeg(b, name, limits);
  const what = OTHER_FORMATS[format];
  if (what !== undefined) {
    throw new ImageError(name, `unsupported image format: this is ${what}; PNG and JPEG are supported`);
  }
  const head = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
  throw new ImageError(name, `not a PNG or JPEG image (the file starts with bytes ${head})`);
}

/** Grey, grey+alpha, RGB or RGBA -> RGB (alpha dropped, grey replicated), as Pillow's convert('RGB'). */
export function toRgb(image: Image): Image {
  return convertChannels(image, 3);
}

/** Any layout -> RGBA (alpha 255 where the source has none). */
export function toRgba(image: Image): Image {
  return convertChannels(image, 4);
}

function convertChannels(image: Image, target: 3 | 4): Image {
  const { width, height, channels, data } = image;
  if (channels === target) return image;
  const n = width * height;
  const out = new Uint8Array(n * target);
  for (let i = 0; i < n; i++) {
    const s = i * channels;
    const o = i * target;
    if (channels <= 2) {
      out[o] = out[o + 1] = out[o + 2] = data[s]!;
    } else {
      out[o] = data[s]!;
      out[o + 1] = data[s + 1]!;
      out[o + 2] = data[s + 2]!;
    }
    if (target === 4) out[o + 3] = channels === 2 || channels === 4 ? data[s + channels - 1]! : 255;
  }
  return { width, height, channels: target, data: out };
}

/** uint8 -> float32 (value * scale, default 1/255), same layout. */
export function toFloat32(image: Image, scale = 1 / 255): ImageF32 {
  const data = new Float32Array(image.data.length);
  for (let i = 0; i < data.length; i++) data[i] = image.data[i]! * scale;
  return { width: image.width, height: image.height, channels: image.channels, data };
}

/**
 * Applies an EXIF orientation (1..8) the way Pillow's ImageOps.exif_transpose does (HF's load_image()
 * calls it; Image.open() alone does not). 5..8 swap width and height.
 */
export function applyOrientation(image: Image, orientation: number): Image {
  if (!Number.isInteger(orientation) || orientation <= 1 || orientation > 8) return image;
  const { width: W, height: H, channels: C, data } = image;
  const swap = orientation >= 5;
  const outW = swap ? H : W;
  const outH = swap ? W : H;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let sx = x;
      let sy = y;
      switch (orientation) {
        case 2: sx = W - 1 - x; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        case 8: sx = W - 1 - y; sy = x; break;
      }
      const s = (sy * W + sx) * C;
      const o = (y * outW + x) * C;
      for (let c = 0; c < C; c++) out[o + c] = data[s + c]!;
    }
  }
  return { width: outW, height: outH, channels: C as Channels, data: out };
}
