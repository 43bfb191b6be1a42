// JPEG sample reconstruction, written to give libjpeg-turbo's default output bit for bit:
//   - IDCT: libjpeg's "islow" integer IDCT (jidctint.c, JDCT_ISLOW, the library default and what Pillow
//     uses): CONST_BITS = 13, PASS1_BITS = 2, columns then rows, the same DESCALE rounding and the same
//     post-IDCT range-limit table (values are masked to 10 bits, then clamped). Arithmetic is done in
//     doubles with Math.floor so that no intermediate overflows 32 bits (libjpeg uses a 64-bit JLONG).
//   - Chroma upsampling: libjpeg's "fancy" triangle filters (jdsample.c, do_fancy_upsampling = TRUE):
//     h2v1 and h2v2 with their alternating +1/+2 and +8/+7 rounding biases, h1v2 with +1/+2, edges
//     replicated; box replication for 2:1 ratios when the subsampled width is <= 2 and for any other
//     integral ratio (int_upsample). Fractional ratios are rejected, as libjpeg rejects them.
//   - Colour: libjpeg's YCbCr->RGB tables (jdcolor.c, 16-bit fixed point), YCCK->CMYK, and Pillow's
//     CMYK->RGB (it reads every 4-component JPEG as inverted "CMYK;I", then cmyk2rgb).

// Zig-zag order: ZIGZAG[k] is the natural (row-major) index of the k-th coefficient. 16 extra entries
// map overruns from corrupt data to 63, as libjpeg's jpeg_natural_order does.
export const ZIGZAG = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
]);

const FIX_0_298631336 = 2446;
const FIX_0_390180644 = 3196;
const FIX_0_541196100 = 4433;
const FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373;
const FIX_1_175875602 = 9633;
const FIX_1_501321110 = 12299;
const FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069;
const FIX_2_053119869 = 16819;
const FIX_2_562915447 = 20995;
const FIX_3_072711026 = 25172;

const CONST_BITS = 13;
const PASS1_BITS = 2;
const PASS1_SHIFT = 2 ** (CONST_BITS - PASS1_BITS);
const PASS1_HALF = PASS1_SHIFT / 2;
const PASS2_SHIFT = 2 ** (CONST_BITS + PASS1_BITS + 3);
const PASS2_HALF = PASS2_SHIFT / 2;

/** libjpeg's IDCT range limit: index masked to 10 bits, then the table of jdmaster.c. */
function rangeLimit(x: number): number {
  const i = x & 1023;
  return i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;
}

const workspace = new Float64Array(64);

/**
 * Dequantizes and inverse-transforms one 8x8 block (natural order coefficients at coefs[c0..c0+63],
 * quantization table in natural order) into out[o0 + y * stride + x].
 */
export function idctIslow(
  coefs: Int16Array,
  c0: number,
  quant: Uint16Array,
  out: Uint8Array,
  o0: number,
  stride: number,
): void {
  const ws = workspace;
  // Pass 1: columns.
  for (let col = 0; col < 8; col++) {
    const c = c0 + col;
    if (
      coefs[c + 8] === 0 &&
      coefs[c + 16] === 0 &&
      coefs[c + 24] === 0 &&
      coefs[c + 32] === 0 &&
      coefs[c + 40] === 0 &&
      coefs[c + 48] === 0 &&
      coefs[c + 56] === 0
    ) {
      const dc = coefs[c]! * quant[col]! * 2 ** PASS1_BITS;
      for (let k = 0; k < 8; k++) ws[k * 8 + col] = dc;
      continue;
    }
    butterfly(
      coefs[c]! * quant[col]!,
      coefs[c + 8]! * quant[col + 8]!,
      coefs[c + 16]! * quant[col + 16]!,
      coefs[c + 24]! * quant[col + 24]!,
      coefs[c + 32]! * quant[col + 32]!,
      coefs[c + 40]! * quant[col + 40]!,
      coefs[c + 48]! * quant[col + 48]!,
      coefs[c + 56]! * quant[col + 56]!,
      ws,
      col,
      8,
      PASS1_SHIFT,
      PASS1_HALF,
    );
  }
  // Pass 2: rows.
  for (let row = 0; row < 8; row++) {
    const w = row * 8;
    const o = o0 + row * stride;
    if (
      ws[w + 1] === 0 &&
      ws[w + 2] === 0 &&
      ws[w + 3] === 0 &&
      ws[w + 4] === 0 &&
      ws[w + 5] === 0 &&
      ws[w + 6] === 0 &&
      ws[w + 7] === 0
    ) {
      const v = rangeLimit(Math.floor((ws[w]! + 16) / 32));
      for (let k = 0; k < 8; k++) out[o + k] = v;
      continue;
    }
    butterfly(
      ws[w]!,
      ws[w + 1]!,
      ws[w + 2]!,
      ws[w + 3]!,
      ws[w + 4]!,
      ws[w + 5]!,
      ws[w + 6]!,
      ws[w + 7]!,
      rowOut,
      0,
      1,
      PASS2_SHIFT,
      PASS2_HALF,
    );
    for (let k = 0; k < 8; k++) out[o + k] = rangeLimit(rowOut[k]!);
  }
}

const rowOut = new Float64Array(8);

/** The jidctint.c butterfly on one column/row; writes DESCALE(result, shift) to dst[d0 + k * step]. */
function butterfly(
  x0: number,
  x1: number,
  x2: number,
  x3: number,
  x4: number,
  x5: number,
  x6: number,
  x7: number,
  dst: Float64Array,
  d0: number,
  step: number,
  shift: number,
  half: number,
): void {
  // Even part.
  let z1 = (x2 + x6) * FIX_0_541196100;
  const tmp2e = z1 - x6 * FIX_1_847759065;
  const tmp3e = z1 + x2 * FIX_0_765366865;
  const tmp0e = (x0 + x4) * 2 ** CONST_BITS;
  const tmp1e = (x0 - x4) * 2 ** CONST_BITS;
  const tmp10 = tmp0e + tmp3e;
  const tmp13 = tmp0e - tmp3e;
  const tmp11 = tmp1e + tmp2e;
  const tmp12 = tmp1e - tmp2e;
  // Odd part: inputs y7, y5, y3, y1.
  let tmp0 = x7;
  let tmp1 = x5;
  let tmp2 = x3;
  let tmp3 = x1;
  z1 = tmp0 + tmp3;
  let z2 = tmp1 + tmp2;
  let z3 = tmp0 + tmp2;
  let z4 = tmp1 + tmp3;
  const z5 = (z3 + z4) * FIX_1_175875602;
  tmp0 *= FIX_0_298631336;
  tmp1 *= FIX_2_053119869;
  tmp2 *= FIX_3_072711026;
  tmp3 *= FIX_1_501321110;
  z1 *= -FIX_0_899976223;
  z2 *= -FIX_2_562915447;
  z3 = z3 * -FIX_1_961570560 + z5;
  z4 = z4 * -FIX_0_390180644 + z5;
  tmp0 += z1 + z3;
  tmp1 += z2 + z4;
  tmp2 += z2 + z3;
  tmp3 += z1 + z4;
  // DESCALE: exact in doubles (values stay far below 2^53), floor = arithmetic right shift.
  dst[d0] = Math.floor((tmp10 + tmp3 + half) / shift);
  dst[d0 + 7 * step] = Math.floor((tmp10 - tmp3 + half) / shift);
  dst[d0 + step] = Math.floor((tmp11 + tmp2 + half) / shift);
  dst[d0 + 6 * step] = Math.floor((tmp11 - tmp2 + half) / shift);
  dst[d0 + 2 * step] = Math.floor((tmp12 + tmp1 + half) / shift);
  dst[d0 + 5 * step] = Math.floor((tmp12 - tmp1 + half) / shift);
  dst[d0 + 3 * step] = Math.floor((tmp13 + tmp0 + half) / shift);
  dst[d0 + 4 * step] = Math.floor((tmp13 - tmp0 + half) / shift);
}

/** A decoded component plane: `width` x `height` real samples stored with row stride `stride`. */
export interface Plane {
  data: Uint8Array;
  stride: number;
  width: number;
  height: number;
}

/**
 * Upsamples a component plane to the full image size (outW x outH) by the integral factors hr, vr,
 * as libjpeg-turbo does with its default settings (see the file header).
 */
export function upsample(p: Plane, hr: number, vr: number, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH);
  const { data, stride, width: n, height: m } = p;
  if (hr === 1 && vr === 1) {
    for (let y = 0; y < outH; y++) out.set(data.subarray(y * stride, y * stride + outW), y * outW);
    return out;
  }
  const fancyH = hr === 2 && n > 2;
  if (hr === 2 && vr === 1 && fancyH) {
    for (let y = 0; y < outH; y++) {
      const r = y * stride;
      const o = y * outW;
      for (let x = 0; x < outW; x++) {
        const i = x >> 1;
        const near = 3 * data[r + i]!;
        out[o + x] =
          x & 1 ? (near + data[r + Math.min(i + 1, n - 1)]! + 2) >> 2 : (near + data[r + Math.max(i - 1, 0)]! + 1) >> 2;
      }
    }
    return out;
  }
  if (hr === 1 && vr === 2) {
    for (let y = 0; y < outH; y++) {
      const j = y >> 1;
      const near = j * stride;
      const far = (y & 1 ? Math.min(j + 1, m - 1) : Math.max(j - 1, 0)) * stride;
      const bias = y & 1 ? 2 : 1;
      const o = y * outW;
      for (let x = 0; x < outW; x++) out[o + x] = (3 * data[near + x]! + data[far + x]! + bias) >> 2;
    }
    return out;
  }
  if (hr === 2 && vr === 2 && fancyH) {
    const colsum = new Int32Array(n);
    for (let y = 0; y < outH; y++) {
      const j = y >> 1;
      const near = j * stride;
      const far = (y & 1 ? Math.min(j + 1, m - 1) : Math.max(j - 1, 0)) * stride;
      for (let i = 0; i < n; i++) colsum[i] = 3 * data[near + i]! + data[far + i]!;
      const o = y * outW;
      for (let x = 0; x < outW; x++) {
        const i = x >> 1;
        const c = 3 * colsum[i]!;
        out[o + x] = x & 1 ? (c + colsum[Math.min(i + 1, n - 1)]! + 7) >> 4 : (c + colsum[Math.max(i - 1, 0)]! + 8) >> 4;
      }
    }
    return out;
  }
  // Box replication (int_upsample, and h2v1/h2v2 without fancy upsampling).
  for (let y = 0; y < outH; y++) {
    const r = Math.floor(y / vr) * stride;
    const o = y * outW;
    for (let x = 0; x < outW; x++) out[o + x] = data[r + Math.floor(x / hr)]!;
  }
  return out;
}

// jdcolor.c tables: SCALEBITS = 16, FIX(x) = round(x * 65536).
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
// |CB_G + CR_G| < 2^23, so the sums below fit int32 and `>> 16` is libjpeg's RIGHT_SHIFT.
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = Math.floor((91881 * x + 32768) / 65536);
  CB_B[i] = Math.floor((116130 * x + 32768) / 65536);
  CR_G[i] = -46802 * x;
  CB_G[i] = -22554 * x + 32768;
}

const clamp8 = (v: number): number => (v < 0 ? 0 : v > 255 ? 255 : v);

/** YCbCr planes -> interleaved RGB (libjpeg ycc_rgb_convert). */
export function yccToRgb(y: Uint8Array, cb: Uint8Array, cr: Uint8Array, out: Uint8Array): void {
  for (let i = 0; i < y.length; i++) {
    const Y = y[i]!;
    const b = cb[i]!;
    const r = cr[i]!;
    out[3 * i] = clamp8(Y + CR_R[r]!);
    out[3 * i + 1] = clamp8(Y + ((CB_G[b]! + CR_G[r]!) >> 16));
    out[3 * i + 2] = clamp8(Y + CB_B[b]!);
  }
}

/** CMYK planes (as libjpeg outputs them; YCCK first converted with yccToRgb + inversion) -> RGB as Pillow. */
export function cmykToRgb(planes: Uint8Array[], ycck: boolean, out: Uint8Array): void {
  const [p0, p1, p2, k] = planes as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const rgb = new Uint8Array(3);
  for (let i = 0; i < p0.length; i++) {
    if (ycck) {
      const Y = p0[i]!;
      const b = p1[i]!;
      const r = p2[i]!;
      rgb[0] = 255 - clamp8(Y + CR_R[r]!);
      rgb[1] = 255 - clamp8(Y + ((CB_G[b]! + CR_G[r]!) >> 16));
      rgb[2] = 255 - clamp8(Y + CB_B[b]!);
    } else {
      rgb[0] = p0[i]!;
      rgb[1] = p1[i]!;
      rgb[2] = p2[i]!;
    }
    // Pillow: "CMYK;I" inverts all four values, then cmyk2rgb: nk = 255 - K; v = nk - MULDIV255(C, nk).
    const nk = k[i]!;
    for (let c = 0; c < 3; c++) {
      const t = (255 - rgb[c]!) * nk + 128;
      out[3 * i + c] = clamp8(nk - (((t >> 8) + t) >> 8));
    }
  }
}
