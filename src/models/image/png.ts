// PNG decoding (ISO/IEC 15948, PNG 1.2), pure TypeScript + fflate's zlib.
//
// Decoding: every colour type and bit depth (grey 1/2/4/8/16, grey+alpha 8/16, RGB 8/16, RGBA 8/16,
// palette 1/2/4/8), all five filter types, Adam7 interlacing, tRNS (turned into an alpha channel, like
// libpng's png_set_tRNS_to_alpha), CRC-32 checked on every chunk. Output channels: grey 1, grey+tRNS 2,
// grey+alpha 2, RGB 3, RGB+tRNS 4, RGBA 4, palette 3 (4 with tRNS). Low-bit grey is scaled to 0..255
// (v * 255 / (2^d - 1), as Pillow's "L;2"/"L;4" unpackers and libpng's expand do); 16-bit samples keep
// full precision in `data16`, and `data` holds their high byte. Palette indices past the PLTE entries
// decode as opaque black. Ancillary chunks are skipped (eXIf gives the orientation); an unknown critical
// chunk, a bad CRC, a truncated file or corrupt zlib data are errors naming the file and the cause.
// Encoding is in png-encode.ts.
// NOTE: Pillow opens 16-bit greyscale PNGs as mode "I;16" and its convert('RGB') CLIPS them (any value
// above 255 becomes 255, Convert.c I16_RGB), so HF preprocessing of such files mostly sees white. We take
// the high byte instead (as Pillow does for 16-bit RGB, RGBA and grey+alpha); use `data16` for more.

import { unzlibSync } from 'fflate';
import {
  type Channels,
  type DecodeLimits,
  type DecodedImage,
  ImageError,
  checkDimensions,
  parseExifOrientation,
} from './types.js';

export const PNG_SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309, as PNG uses it) of bytes[start, end). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ALLOWED_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
// Adam7 passes: x0, y0, dx, dy.
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Header {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: boolean;
}

const u32be = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/** Decodes a PNG file; `name` is used in error messages. */
export function decodePng(bytes: Uint8Array, name = 'image.png', limits?: DecodeLimits): DecodedImage {
  const fail = (reason: string): never => {
    throw new ImageError(name, reason);
  };
  if (bytes.length < 8 || !PNG_SIGNATURE.every((v, i) => bytes[i] === v)) {
    fail('not a PNG file (bad signature)');
  }
  let header: Header | null = null;
  let palette: Uint8Array | null = null;
  let trns: Uint8Array | null = null;
  let orientation = 1;
  const idat: Uint8Array[] = [];
  let pos = 8;
  let sawEnd = false;
  while (pos < bytes.length) {
    if (pos + 12 > bytes.length) fail(`truncated PNG: chunk header at byte ${pos} is cut off`);
    const length = u32be(bytes, pos);
    const type = String.fromCharCode(bytes[pos + 4]!, bytes[pos + 5]!, bytes[pos + 6]!, bytes[pos + 7]!);
    if (length > 0x7fffffff) fail(`corrupt PNG: chunk ${type} at byte ${pos} declares length ${length}`);
    const dataStart = pos + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > bytes.length) {
      fail(
        `truncated PNG: chunk ${type} at byte ${pos} needs ${length + 12} bytes, ` +
          `the file has ${bytes.length - pos} left`,
      );
    }
    const stored = u32be(bytes, dataEnd);
    const computed = crc32(bytes, pos + 4, dataEnd);
    if (stored !== computed) {
      fail(
        `corrupt PNG: chunk ${type} at byte ${pos} has a bad CRC ` +
          `(stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')})`,
      );
    }
    const data = bytes.subarray(dataStart, dataEnd);
    if (header === null && type !== 'IHDR') fail(`corrupt PNG: first chunk is ${type}, not IHDR`);
    if (type === 'IHDR') {
      if (header !== null) fail('corrupt PNG: second IHDR chunk');
      header = parseHeader(data, name, limits);
    } else if (type === 'PLTE') {
      if (length % 3 !== 0 || length === 0 || length > 768) fail(`corrupt PNG: PLTE has length ${length}`);
      palette = data;
    } else if (type === 'tRNS') {
      trns = data;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'eXIf') {
      orientation = parseExifOrientation(data);
    } else if (type === 'IEND') {
      sawEnd = true;
      break;
    } else if ((type.charCodeAt(0) & 0x20) === 0) {
      fail(`unsupported PNG: unknown critical chunk ${type}`);
    }
    pos = dataEnd + 4;
  }
  if (header === null) fail('truncated PNG: no IHDR chunk');
  const h = header!;
  if (!sawEnd) fail(`truncated PNG: the file ends at byte ${bytes.length} before the IEND chunk`);
  if (idat.length === 0) fail('corrupt PNG: no IDAT chunk');
  if (h.colorType === 3 && palette === null) fail('corrupt PNG: palette image without PLTE chunk');

  const raw = inflate(idat, expectedRawSize(h), name);
  return unfilterAndExpand(raw, h, palette, trns, orientation, name);
}

function parseHeader(data: Uint8Array, name: string, limits?: DecodeLimits): Header {
  if (data.length !== 13) throw new ImageError(name, `corrupt PNG: IHDR has length ${data.length}, not 13`);
  const width = u32be(data, 0);
  const height = u32be(data, 4);
  const bitDepth = data[8]!;
  const colorType = data[9]!;
  const allowed = ALLOWED_DEPTHS[colorType];
  if (allowed === undefined) throw new ImageError(name, `corrupt PNG: colour type ${colorType} does not exist`);
  if (!allowed.includes(bitDepth)) {
    throw new ImageError(name, `corrupt PNG: bit depth ${bitDepth} is not allowed with colour type ${colorType}`);
  }
  if (data[10] !== 0 || data[11] !== 0) throw new ImageError(name, 'unsupported PNG compression or filter method');
  if (data[12]! > 1) throw new ImageError(name, `corrupt PNG: interlace method ${data[12]}`);
  checkDimensions(name, 'PNG', width, height, limits);
  return { width, height, bitDepth, colorType, interlace: data[12] === 1 };
}

function passSizes(h: Header): Array<[number, number, number, number, number, number]> {
  const passes = h.interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  const out: Array<[number, number, number, number, number, number]> = [];
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((h.width - x0) / dx);
    const ph = Math.ceil((h.height - y0) / dy);
    if (pw > 0 && ph > 0) out.push([x0, y0, dx, dy, pw, ph]);
  }
  return out;
}

function rowBytes(h: Header, pixels: number): number {
  return Math.ceil((pixels * SAMPLES_PER_PIXEL[h.colorType]! * h.bitDepth) / 8);
}

function expectedRawSize(h: Header): number {
  let total = 0;
  for (const [, , , , pw, ph] of passSizes(h)) total += (rowBytes(h, pw) + 1) * ph;
  return total;
}

function inflate(chunks: Uint8Array[], expected: number, name: string): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const joined = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    joined.set(c, o);
    o += c.length;
  }
  let out: Uint8Array;
  try {
    out = unzlibSync(joined, { out: new Uint8Array(expected) });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ImageError(name, `corrupt PNG: the zlib stream in IDAT cannot be inflated (${why})`);
  }
  if (out.length < expected) {
    throw new ImageError(name, `truncated PNG: image data inflates to ${out.length} bytes, ${expected} expected`);
  }
  return out;
}

function unfilterRow(kind: number, row: Uint8Array, prev: Uint8Array | null, bpp: number): boolean {
  const n = row.length;
  switch (kind) {
    case 0:
      return true;
    case 1:
      for (let i = bpp; i < n; i++) row[i] = (row[i]! + row[i - bpp]!) & 0xff;
      return true;
    case 2:
      if (prev) for (let i = 0; i < n; i++) row[i] = (row[i]! + prev[i]!) & 0xff;
      return true;
    case 3:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? row[i - bpp]! : 0;
        const b = prev ? prev[i]! : 0;
        row[i] = (row[i]! + ((a + b) >> 1)) & 0xff;
      }
      return true;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? row[i - bpp]! : 0;
        const b = prev ? prev[i]! : 0;
        const c = prev && i >= bpp ? prev[i - bpp]! : 0;
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        row[i] = (row[i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      }
      return true;
    default:
      return false;
  }
}

function unfilterAndExpand(
  raw: Uint8Array,
  h: Header,
  palette: Uint8Array | null,
  trns: Uint8Array | null,
  orientation: number,
  name: string,
): DecodedImage {
  const { width, height, bitDepth: depth, colorType } = h;
  const spp = SAMPLES_PER_PIXEL[colorType]!;
  const hasTrns = trns !== null && colorType !== 4 && colorType !== 6;
  const channels = (colorType === 3 ? (hasTrns ? 4 : 3) : spp + (hasTrns ? 1 : 0)) as Channels;
  const count = width * height * channels;
  const data = new Uint8Array(count);
  const data16 = depth === 16 ? new Uint16Array(count) : undefined;
  const bpp = Math.max(1, (spp * depth) >> 3);
  const maxLow = (1 << depth) - 1;
  // tRNS key for grey / RGB in raw sample units; palette alpha table.
  const key =
    hasTrns && colorType !== 3 ? Array.from({ length: spp }, (_, c) => (trns![2 * c]! << 8) | trns![2 * c + 1]!) : null;
  const alphaTable = new Uint8Array(256).fill(255);
  if (hasTrns && colorType === 3) alphaTable.set(trns!.subarray(0, 256));
  const paletteEntries = palette ? palette.length / 3 : 0;
  const samples = new Uint32Array(spp);

  let offset = 0;
  for (const [x0, y0, dx, dy, pw, ph] of passSizes(h)) {
    const stride = rowBytes(h, pw);
    let prev: Uint8Array | null = null;
    for (let r = 0; r < ph; r++) {
      const kind = raw[offset]!;
      const row = raw.subarray(offset + 1, offset + 1 + stride);
      if (!unfilterRow(kind, row, prev, bpp)) {
        throw new ImageError(name, `corrupt PNG: unknown filter type ${kind} on row ${r} of pass (${x0},${y0})`);
      }
      offset += stride + 1;
      prev = row;
      const y = y0 + r * dy;
      if (depth === 8 && colorType !== 3 && !hasTrns && dx === 1) {
        data.set(row, y * width * channels); // fast path: the row is already the output layout
        continue;
      }
      for (let i = 0; i < pw; i++) {
        const x = x0 + i * dx;
        const out = (y * width + x) * channels;
        // Raw samples of pixel i.
        if (depth === 8) {
          for (let c = 0; c < spp; c++) samples[c] = row[i * spp + c]!;
        } else if (depth === 16) {
          for (let c = 0; c < spp; c++) samples[c] = (row[2 * (i * spp + c)]! << 8) | row[2 * (i * spp + c) + 1]!;
        } else {
          const bit = i * depth;
          samples[0] = (row[bit >> 3]! >> (8 - depth - (bit & 7))) & maxLow;
        }
        if (colorType === 3) {
          const index = samples[0]!;
          if (index < paletteEntries) {
            data[out] = palette![3 * index]!;
            data[out + 1] = palette![3 * index + 1]!;
            data[out + 2] = palette![3 * index + 2]!;
          }
          if (hasTrns) data[out + 3] = alphaTable[index]!;
          continue;
        }
        let transparent = key !== null;
        for (let c = 0; c < spp; c++) {
          const v = samples[c]!;
          if (key !== null && v !== key[c]) transparent = false;
          if (depth === 16) {
            data16![out + c] = v;
            data[out + c] = v >> 8;
          } else {
            data[out + c] = depth === 8 ? v : Math.round((v * 255) / maxLow);
          }
        }
        if (key !== null) {
          data[out + spp] = transparent ? 0 : 255;
          if (data16) data16[out + spp] = transparent ? 0 : 65535;
        }
      }
    }
  }
  const result: DecodedImage = { width, height, channels, data, format: 'png', bitDepth: depth, orientation };
  if (data16) result.data16 = data16;
  return result;
}
