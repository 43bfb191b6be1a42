/**
 * IEEE 754 binary16 ("half", f16) bit patterns on the host: the one place that encodes and
 * decodes them. Used by the cast kernel's CPU reference, the matmul reference (f16 B operands),
 * Tensor.fromArray / read() of f16 tensors and the checkpoint readers and writers (engine/io).
 *
 * Encoding rounds to nearest, ties to even (as numpy and torch do), overflows to infinity
 * (|v| >= 65520) and underflows gradually (subnormals down to 2^-24; below 2^-25 gives a signed
 * zero). NaN encodes as the canonical quiet NaN 0x7e00. Decoding is exact: every f16 value is an
 * f32 value; NaNs keep sign and payload with the quiet bit set, as a hardware cast does.
 */

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const r = x - f;
  return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** Round-to-nearest-even float -> f16 bits (overflow to infinity, gradual underflow). */
export function floatToHalfBits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // rounds to infinity
  // Subnormal: units of 2^-24 (rounding up to 0x400 gives the smallest normal, which is correct).
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24);
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--;
  else if (2 ** (exp + 1) <= a) exp++;
  let mant = roundHalfEven((a / 2 ** exp - 1) * 1024); // exact in float64 before rounding
  if (mant === 1024) {
    mant = 0;
    exp++;
  }
  return sign | ((exp + 15) << 10) | mant;
}

let halfTable: Uint32Array | null = null;

/** f32 bit pattern of every f16 bit pattern (256 KiB, built once). */
function halfToFloatBitsTable(): Uint32Array {
  if (halfTable) return halfTable;
  const table = new Uint32Array(65536);
  const f = new Float32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 31) {
      // Infinity, or NaN keeping sign and payload (quiet bit set), as a hardware cast does.
      table[h] = ((h & 0x8000) << 16) | 0x7f800000 | (frac << 13) | (frac === 0 ? 0 : 0x400000);
    } else if (exp === 0) {
      f[h] = sign * frac * 2 ** -24;
    } else {
      f[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
    }
  }
  halfTable = table;
  return table;
}

/** IEEE half bit patterns to float32 (exact). Reads `count` patterns (default all of `bits`). */
export function halfBitsToFloat32(bits: Uint16Array, count = bits.length): Float32Array {
  const table = halfToFloatBitsTable();
  const out = new Float32Array(count);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < count; i++) outBits[i] = table[bits[i]!]!;
  return out;
}

/** One f16 bit pattern as a number (exact). */
export function halfBitsToFloat(h: number): number {
  const f = new Float32Array(halfToFloatBitsTable().buffer, (h & 0xffff) * 4, 1);
  return f[0]!;
}
