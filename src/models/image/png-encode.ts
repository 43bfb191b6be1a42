// PNG encoding: 8- or 16-bit grey, grey+alpha, RGB, RGBA; a per-row adaptive filter (the least sum of
// absolute residuals, libpng's default heuristic) or a fixed one; one IDAT compressed by fflate.

import { zlibSync } from 'fflate';
import { PNG_SIGNATURE, crc32 } from './png.js';
import { type Channels, ImageError } from './types.js';

export type PngFilter = 'adaptive' | 'none' | 'sub' | 'up' | 'average' | 'paeth';

export interface PngEncodeOptions {
  /** zlib level 0..9 (default 6). */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
  /** Row filter (default 'adaptive'). */
  filter?: PngFilter;
}

/** A raster to encode: `Uint8Array` data gives an 8-bit PNG, `Uint16Array` a 16-bit one. */
export interface PngInput {
  width: number;
  height: number;
  channels: Channels;
  data: Uint8Array | Uint16Array;
}

const COLOR_TYPE_OF: Record<Channels, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };
const FILTER_CODE: Record<Exclude<PngFilter, 'adaptive'>, number> = { none: 0, sub: 1, up: 2, average: 3, paeth: 4 };

function filterRow(kind: number, row: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): void {
  out[0] = kind;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp]! : 0;
    const b = prev[i]!;
    const c = i >= bpp ? prev[i - bpp]! : 0;
    let pred = 0;
    if (kind === 1) pred = a;
    else if (kind === 2) pred = b;
    else if (kind === 3) pred = (a + b) >> 1;
    else if (kind === 4) {
      const p = a + b - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - b);
      const pc = Math.abs(p - c);
      pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
    out[i + 1] = (row[i]! - pred) & 0xff;
  }
}

function residualCost(filtered: Uint8Array): number {
  let sum = 0;
  for (let i = 1; i < filtered.length; i++) {
    const v = filtered[i]!;
    sum += v < 128 ? v : 256 - v;
  }
  return sum;
}

/** Encodes an 8- or 16-bit grey, grey+alpha, RGB or RGBA raster as a PNG file. */
export function encodePng(image: PngInput, options: PngEncodeOptions = {}): Uint8Array {
  const { width, height, channels, data } = image;
  const sixteen = data instanceof Uint16Array;
  const depth = sixteen ? 16 : 8;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('encodePng', `cannot encode a ${width}x${height} image`);
  }
  if (data.length !== width * height * channels) {
    throw new ImageError('encodePng', `data has ${data.length} samples, ${width}x${height}x${channels} expected`);
  }
  const bpp = (channels * depth) >> 3;
  const stride = width * bpp;
  const rawRows = new Uint8Array((stride + 1) * height);
  let prev = new Uint8Array(stride);
  let row = new Uint8Array(stride);
  const candidate = new Uint8Array(stride + 1);
  const best = new Uint8Array(stride + 1);
  const filter = options.filter ?? 'adaptive';
  for (let y = 0; y < height; y++) {
    const base = y * width * channels;
    if (sixteen) {
      for (let i = 0; i < width * channels; i++) {
        const v = data[base + i]!;
        row[2 * i] = v >> 8;
        row[2 * i + 1] = v & 0xff;
      }
    } else {
      row.set((data as Uint8Array).subarray(base, base + stride));
    }
    if (filter === 'adaptive') {
      let bestCost = Infinity;
      for (let kind = 0; kind < 5; kind++) {
        filterRow(kind, row, prev, bpp, candidate);
        const cost = residualCost(candidate);
        if (cost < bestCost) {
          bestCost = cost;
          best.set(candidate);
        }
      }
    } else {
      filterRow(FILTER_CODE[filter], row, prev, bpp, best);
    }
    rawRows.set(best, y * (stride + 1));
    [prev, row] = [row, prev];
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = depth;
  ihdr[9] = COLOR_TYPE_OF[channels];
  const compressed = zlibSync(rawRows, { level: options.level ?? 6 });
  const chunks = [makeChunk('IHDR', ihdr), makeChunk('IDAT', compressed), makeChunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(8 + chunks.reduce((s, c) => s + c.length, 0));
  out.set(PNG_SIGNATURE, 0);
  let o = 8;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** One PNG chunk: length, type, data, CRC. */
export function makeChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 12);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}
