// Image resizing.
//
// resizePil(): Pillow's Image.resize() on 8-bit images (libImaging/Resample.c), bit for bit. The filters
// are antialiased: for a downscale by `scale = in / out` the kernel is stretched by max(scale, 1).
// Per output pixel o (per axis): center = (o + 0.5) * scale, support = filterSupport * max(scale, 1),
// contributing inputs [trunc(center - support + 0.5), trunc(center + support + 0.5)) clipped to the
// image, weights filter((x - center + 0.5) / max(scale, 1)) normalised to sum 1, then converted to
// fixed point with 22 fractional bits (round half away from zero). Two passes: horizontal first (only
// over the rows the vertical pass reads), then vertical; each pass accumulates from 2^21 (rounding),
// shifts right by 22 and clamps to 0..255. A pass whose size does not change is skipped, as in Pillow.
// NOTE: Pillow premultiplies alpha for RGBA/LA images before resampling (Image.resize converts to
// RGBa/La); resizePil treats every channel alike, so convert to RGB first (as HF processors do) when
// exact agreement on images with alpha matters.
//
// resizeBilinearPlanes(): plain (not antialiased) bilinear on float planes with PyTorch's
// F.interpolate(mode='bilinear') index semantics (docs/architectures.md §0.2), computed in float64.

import { type Image, ImageError } from './types.js';

export type PilFilter = 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

interface FilterDef {
  support: number;
  fn: (x: number) => number;
}

const sinc = (x: number): number => {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
};

// Pillow computes hamming's 0.54f + 0.46f in float32 constants promoted to double.
const HAMMING_A = Math.fround(0.54);
const HAMMING_B = Math.fround(0.46);

const FILTERS: Record<PilFilter, FilterDef> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (HAMMING_A + HAMMING_B * Math.cos(px));
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

/** Per output index: first input index, tap count, and fixed-point weights (ksize per output). */
interface Coefficients {
  bounds: Int32Array;
  weights: Int32Array;
  ksize: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole input range [0, inSize). */
export function pilCoefficients(inSize: number, outSize: number, filter: PilFilter): Coefficients {
  const f = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

const clip8 = (ss: number): number => {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/** Pillow-exact resize of an 8-bit image to outW x outH (default filter: bilinear, as HF's resample=2). */
export function resizePil(image: Image, outW: number, outH: number, filter: PilFilter = 'bilinear'): Image {
  const { width: W, height: H, channels: C } = image;
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) {
    throw new ImageError('resize', `cannot resize to ${outW}x${outH}`);
  }
  const needH = outW !== W;
  const needV = outH !== H;
  if (!needH && !needV) return { ...image, data: image.data.slice() };
  const vert = pilCoefficients(H, outH, filter);
  let src = image.data;
  let srcW = W;
  let rowOffset = 0;
  if (needH) {
    // Rows the vertical pass reads: [first, last).
    const first = vert.bounds[0]!;
    const last = vert.bounds[2 * outH - 2]! + vert.bounds[2 * outH - 1]!;
    const rows = needV ? last - first : H;
    rowOffset = needV ? first : 0;
    const horiz = pilCoefficients(W, outW, filter);
    const tmp = new Uint8Array(outW * rows * C);
    const acc = new Float64Array(C);
    for (let y = 0; y < rows; y++) {
      const inRow = (y + rowOffset) * W * C;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = horiz.bounds[2 * xx]!;
        const xmax = horiz.bounds[2 * xx + 1]!;
        const kb = xx * horiz.ksize;
        acc.fill(ONE / 2);
        for (let x = 0; x < xmax; x++) {
          const w = horiz.weights[kb + x]!;
          const p = inRow + (x + xmin) * C;
          for (let c = 0; c < C; c++) acc[c] = acc[c]! + src[p + c]! * w;
        }
        const o = (y * outW + xx) * C;
        for (let c = 0; c < C; c++) tmp[o + c] = clip8(acc[c]!);
      }
    }
    src = tmp;
    srcW = outW;
  }
  if (!needV) return { width: outW, height: outH, channels: C, data: src };
  const out = new Uint8Array(srcW * outH * C);
  const rowLen = srcW * C;
  const acc = new Float64Array(rowLen);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = vert.bounds[2 * yy]! - rowOffset;
    const ymax = vert.bounds[2 * yy + 1]!;
    const kb = yy * vert.ksize;
    acc.fill(ONE / 2);
    for (let y = 0; y < ymax; y++) {
      const w = vert.weights[kb + y]!;
      const r = (y + ymin) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = acc[i]! + src[r + i]! * w;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]!);
  }
  return { width: srcW, height: outH, channels: C, data: out };
}

/** Source index and weights of PyTorch's linear interpolation along one axis. */
function linearTaps(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
): { i0: Int32Array; i1: Int32Array; l1: Float64Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l1 = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    let src: number;
    if (alignCorners) src = outSize > 1 ? (o * (inSize - 1)) / (outSize - 1) : 0;
    else src = Math.max((o + 0.5) * (inSize / outSize) - 0.5, 0);
    const lo = Math.min(Math.floor(src), inSize - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inSize - 1);
    l1[o] = src - lo;
  }
  return { i0, i1, l1 };
}

/**
 * Bilinear resize of `planes` float planes laid out [planes, inH, inW] to [planes, outH, outW], as
 * torch.nn.functional.interpolate(x, size=(outH, outW), mode='bilinear', align_corners=alignCorners)
 * (no antialiasing, also when shrinking).
 */
export function resizeBilinearPlanes(
  data: Float32Array,
  planes: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  alignCorners = false,
): Float32Array {
  if (data.length !== planes * inH * inW) {
    throw new ImageError('resize', `data has ${data.length} values, [${planes}, ${inH}, ${inW}] expected`);
  }
  if (!Number.isInteger(outW) || !Number.isInteger(outH) || outW < 1 || outH < 1) {
    throw new ImageError('resize', `cannot resize to ${outW}x${outH}`);
  }
  const ty = linearTaps(inH, outH, alignCorners);
  const tx = linearTaps(inW, outW, alignCorners);
  const out = new Float32Array(planes * outH * outW);
  for (let p = 0; p < planes; p++) {
    const base = p * inH * inW;
    for (let y = 0; y < outH; y++) {
      const r0 = base + ty.i0[y]! * inW;
      const r1 = base + ty.i1[y]! * inW;
      const ly = ty.l1[y]!;
      const o = (p * outH + y) * outW;
      for (let x = 0; x < outW; x++) {
        const x0 = tx.i0[x]!;
        const x1 = tx.i1[x]!;
        const lx = tx.l1[x]!;
        const top = (1 - lx) * data[r0 + x0]! + lx * data[r0 + x1]!;
        const bottom = (1 - lx) * data[r1 + x0]! + lx * data[r1 + x1]!;
        out[o + x] = (1 - ly) * top + ly * bottom;
      }
    }
  }
  return out;
}
