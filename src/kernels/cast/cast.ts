/**
 * Cast family: f32 <-> f16 (IEEE half) conversion of n contiguous elements.
 *
 *   to 'f16': out[i] = half(src[i]), round to nearest, ties to even; |x| >= 65520 -> ±inf;
 *             gradual underflow (subnormals down to 2^-24, below 2^-25 -> ±0); NaN -> 0x7e00.
 *   to 'f32': out[i] = src[i] widened (exact; NaNs keep sign and payload, quiet bit set).
 * Exactly kernels/cast/half.ts's host encoding, bit for bit.
 *
 * Why integer arithmetic on bit patterns instead of WGSL's f16 type: WGSL leaves the rounding of an
 * inexact f32 -> f16 conversion and the result of an overflowing one to the implementation, and
 * software drivers may flush subnormals; bit arithmetic gives the same bits everywhere. It also
 * means this kernel needs no `shader-f16` (f16 storage is declared `array<u32>`, two halves per
 * word, element 2w in the low 16 bits: WGSL's and the host's little-endian layout of array<f16>).
 *
 * Bindings: src read (f32, or f16 as u32 words), out read_write (f16 as u32 words, or f32).
 * Uniform `Params`: n: u32 (elements), then 3 padding words.
 * Dispatch: to 'f16': one invocation per output word (ceil(n / 2)), writing halves 2w and 2w + 1
 * (0 for the padding half when n is odd: f16 buffers are rounded up to 4 bytes); to 'f32': one
 * invocation per element. 1-D, 256 per workgroup (folded into 2-D past 65535 by the device).
 * Key: `cast:f32>f16` or `cast:f16>f32`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, u32, uniformDecl } from '../wgsl.js';
import { castReference } from './cast.ref.js';

export interface CastParams {
  /** Target dtype; the source is the other one. */
  to: 'f16' | 'f32';
  /** Number of elements. */
  n: number;
}

const WORKGROUP = 256;

/** Invocations: output words (to f16) or output elements (to f32). */
const invocations = (p: CastParams): number => (p.to === 'f16' ? ceilDiv(p.n, 2) : p.n);

/** f32 bits -> f16 bits in the low 16 bits; see the file head for the rounding rules. */
const F32_TO_F16 = /* wgsl */ `
fn f32ToF16Bits(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let e = (x >> 23u) & 0xffu;
  let m = x & 0x7fffffu;
  if (e == 255u) { return select(sign | 0x7c00u, 0x7e00u, m != 0u); } // inf, or canonical NaN
  if (e > 142u) { return sign | 0x7c00u; }                            // >= 2^16: overflow
  if (e >= 113u) {
    // Normal half (>= 2^-14): keep 10 mantissa bits, round the 13 dropped ones to nearest even.
    // A carry out of the mantissa bumps the exponent, up to 0x7c00 (inf) from 65520 on: correct.
    var h = ((e - 112u) << 10u) | (m >> 13u);
    let rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) { h += 1u; }
    return sign | h;
  }
  if (e < 102u) { return sign; } // < 2^-25: rounds to zero
  // Subnormal half: the value in units of 2^-24 is (1.m * 2^23) >> (126 - e), rounded to nearest
  // even (a carry to 0x400 gives the smallest normal, which is correct). shift is 14..24.
  let mant = m | 0x800000u;
  let shift = 126u - e;
  var h = mant >> shift;
  let rest = mant & ((1u << shift) - 1u);
  let halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (h & 1u) == 1u)) { h += 1u; }
  return sign | h;
}
`;

/** f16 bits (low 16 bits) -> f32 bits, exact. */
const F16_TO_F32 = /* wgsl */ `
fn f16ToF32Bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 31u) { return sign | 0x7f800000u | (m << 13u) | select(0u, 0x400000u, m != 0u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  // Subnormal half m * 2^-24 = 1.f * 2^(p - 24) with p the top set bit of m: a normal f32.
  let p = firstLeadingBit(m);
  return sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
}
`;

export const castKernel: KernelSpec<CastParams> = {
  name: 'cast',
  key: (p) => `cast:${p.to === 'f16' ? 'f32>f16' : 'f16>f32'}`,
  bindings: (p) => [
    { name: 'src', access: 'read', type: p.to === 'f16' ? 'f32' : 'f16' },
    { name: 'out', access: 'read_write', type: p.to },
  ],
  uniforms: (p) => [u32(p.n), u32(0), u32(0), u32(0)],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(invocations(p), WORKGROUP),
  source: (p) => {
    const toF16 = p.to === 'f16';
    // f16 sides are u32 words (two halves each); see the file head.
    const body = toF16
      ? `  let w = i;
  if (2u * w >= u.n) { return; }
  let lo = f32ToF16Bits(bitcast<u32>(src[2u * w]));
  let hi = select(0u, f32ToF16Bits(bitcast<u32>(src[min(2u * w + 1u, u.n - 1u)])), 2u * w + 1u < u.n);
  out[w] = lo | (hi << 16u);`
      : `  if (i >= u.n) { return; }
  let h = (src[i / 2u] >> ((i % 2u) * 16u)) & 0xffffu;
  out[i] = bitcast<f32>(f16ToF32Bits(h));`;
    return /* wgsl */ `
struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<storage, read> src: array<${toF16 ? 'f32' : 'u32'}>;
@group(0) @binding(1) var<storage, read_write> out: array<${toF16 ? 'u32' : 'f32'}>;
${uniformDecl(2)}
${linearIndexFn}
${toF16 ? F32_TO_F16 : F16_TO_F32}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
${body}
}
`;
  },
  reference: castReference,
};
