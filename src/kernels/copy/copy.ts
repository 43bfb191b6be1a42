/**
 * Strided copy family: the one kernel behind permute, slice, pad, concat and expand. Values are
 * copied as raw 32-bit words, so f32 and i32 tensors share it.
 *
 * For every element of the iteration shape (the output region written), with coordinates c:
 *   src coordinate s_d = c_d * srcStep_d - padBefore_d; if any s_d is outside [0, srcShape_d) the
 *   element is `fill`, else src[srcOffset + sum s_d * srcStrides_d];
 *   written to dst[dstOffset + sum c_d * dstStrides_d].
 * Permute = srcStrides permuted; slice = srcOffset + step; pad = padBefore + fill; concat = one copy
 * per input into a dst region (dstOffset); expand = srcStrides 0.
 *
 * Bindings: src read u32; dst read_write u32. Uniform `Params`:
 *   n, rank, srcOffset, dstOffset, fill (bits): u32, then shape, srcShape, srcStrides, srcStep,
 *   padBefore, dstStrides: array<vec4<u32>, 2>. (Strides and offsets are element counts.)
 * Dispatch: ceil(n / 256), 1-D. Key: `copy:<padded|plain>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { MAX_RANK, linearIndexFn, rankWords, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { copyReference } from './copy.ref.js';

export interface CopyParams {
  /** Iteration (= written region) shape. */
  shape: readonly number[];
  srcShape: readonly number[];
  srcStrides: readonly number[];
  srcStep: readonly number[];
  srcOffset: number;
  dstStrides: readonly number[];
  dstOffset: number;
  /** Per-dim padding before the source (only the `padded` variant checks bounds). */
  padBefore?: readonly number[];
  /** Fill value's bit pattern for padded elements. */
  fillBits?: number;
}

const WORKGROUP = 256;

export function copyCount(p: CopyParams): number {
  let n = 1;
  for (const d of p.shape) n *= d;
  return n;
}

const isPadded = (p: CopyParams): boolean => p.padBefore !== undefined;

export const copyKernel: KernelSpec<CopyParams> = {
  name: 'copy',
  key: (p) => `copy:${isPadded(p) ? 'padded' : 'plain'}`,
  bindings: () => [
    { name: 'src', access: 'read', type: 'u32' },
    { name: 'dst', access: 'read_write', type: 'u32' },
  ],
  uniforms: (p) => [
    u32(copyCount(p)), u32(p.shape.length), u32(p.srcOffset), u32(p.dstOffset), u32(p.fillBits ?? 0),
    u32(0), u32(0), u32(0), // pad the scalar header to 32 bytes so the arrays start 16-byte aligned
    ...rankWords(p.shape), ...rankWords(p.srcShape), ...rankWords(p.srcStrides), ...rankWords(p.srcStep),
    ...rankWords(p.padBefore ?? []), ...rankWords(p.dstStrides),
  ],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(copyCount(p), WORKGROUP),
  source: (p) => /* wgsl */ `
struct Params {
  n: u32, rank: u32, srcOffset: u32, dstOffset: u32, fill: u32, _p0: u32, _p1: u32, _p2: u32,
  shape: array<vec4<u32>, ${MAX_RANK / 4}>,
  srcShape: array<vec4<u32>, ${MAX_RANK / 4}>,
  srcStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  srcStep: array<vec4<u32>, ${MAX_RANK / 4}>,
  padBefore: array<vec4<u32>, ${MAX_RANK / 4}>,
  dstStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
}
${storageDecls(copyKernel.bindings(p))}
${uniformDecl(2)}
${linearIndexFn}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }
  var rem = i;
  var src_off = u.srcOffset;
  var dst_off = u.dstOffset;
  var inside = true;
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let extent = u.shape[du / 4u][du % 4u];
    let c = rem % extent;
    rem = rem / extent;
    dst_off += c * u.dstStrides[du / 4u][du % 4u];
${
  isPadded(p)
    ? `    // i32 arithmetic: a padded coordinate is negative before the bounds check.
    let s = i32(c * u.srcStep[du / 4u][du % 4u]) - i32(u.padBefore[du / 4u][du % 4u]);
    if (s < 0 || s >= i32(u.srcShape[du / 4u][du % 4u])) { inside = false; }
    src_off += u32(max(s, 0)) * u.srcStrides[du / 4u][du % 4u];`
    : `    src_off += c * u.srcStep[du / 4u][du % 4u] * u.srcStrides[du / 4u][du % 4u];`
}
  }
  dst[dst_off] = select(u.fill, src[src_off], inside);
}
`,
  reference: copyReference,
};
