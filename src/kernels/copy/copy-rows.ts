/**
 * Strided copy family, row variant: the same copy as copy.ts's `plain` kernel (same CopyParams,
 * bindings and CPU reference; no padding) for copies whose innermost run is contiguous in both
 * source and destination, e.g. attention's head split / merge [B, L, H, D] <-> [B, H, L, D] (runs
 * of D), concat and narrow along an outer axis.
 *
 * Why: the plain kernel decodes every element's coordinates through the rank loop, two integer
 * divisions per dim (slow on CPUs: lavapipe has no vector integer division). Here the iteration
 * shape is first simplified (size-1 dims dropped; a dim merged into the next one when it is
 * contiguous over it in both source and destination), leaving outer dims and one inner run of
 * `len` elements. A thread copies up to SEG (8) consecutive units of one run, so the coordinates
 * are decoded once per SEG units, over the outer dims only.
 *   v4: len, every outer stride and both offsets are multiples of 4 (a bounded layout fact in the
 *       key): units are vec4 (8 x 4 elements per thread, one storage access per 4 elements).
 *   s:  units are single 32-bit words.
 * copyRowsPlan(p) returns null when the innermost run is not contiguous in both (a transpose) or
 * the copy is padded; the op then runs copy.ts.
 *
 * Bindings: src read, dst read_write (u32, or vec4<u32> under v4). Uniform `Params` (u32):
 *   threads, rank (outer dims), srcOffset, dstOffset, len, segs (per run), 2 pad words (all in
 *   units), then shape, srcStrides, dstStrides: array<vec4<u32>, 2> (outer dims, in units).
 * Dispatch: ceil(threads / 64) workgroups of 64, threads = rows * segs, 1-D (folded past 65535).
 * Key: `copy:rows:<v4|s>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { MAX_RANK, linearIndexFn, rankWords, u32, uniformDecl } from '../wgsl.js';
import type { CopyParams } from './copy.js';
import { copyReference } from './copy.ref.js';

const WORKGROUP = 64;
/** Units (vec4 or words) one thread copies. */
const SEG = 8;

/** The simplified geometry: outer dims plus one contiguous inner run, in units. */
export interface CopyRowsPlan {
  vec4: boolean;
  shape: number[];
  srcStrides: number[];
  dstStrides: number[];
  srcOffset: number;
  dstOffset: number;
  len: number;
  segs: number;
  threads: number;
}

/** One dim of a simplified copy: extent, source step (stride * step) and destination stride. */
export interface CopyDim {
  n: number;
  src: number;
  dst: number;
}

/**
 * The iteration dims of a copy with size-1 dims dropped and each dim merged into the next one
 * when it steps exactly over it in both source and destination (shared with copy-tile.ts).
 */
export function simplifyCopy(p: CopyParams): CopyDim[] {
  const dims: CopyDim[] = [];
  p.shape.forEach((n, d) => {
    if (n !== 1) dims.push({ n, src: p.srcStrides[d]! * p.srcStep[d]!, dst: p.dstStrides[d]! });
  });
  for (let d = dims.length - 2; d >= 0; d--) {
    const a = dims[d]!;
    const b = dims[d + 1]!;
    if (a.src === b.src * b.n && a.dst === b.dst * b.n) {
      dims.splice(d, 2, { n: a.n * b.n, src: b.src, dst: b.dst });
    }
  }
  return dims;
}

/** Simplified geometry of a plain copy, or null when this variant does not apply. */
export function copyRowsPlan(p: CopyParams): CopyRowsPlan | null {
  if (p.padBefore !== undefined) return null;
  const dims = simplifyCopy(p);
  const inner = dims.pop();
  if (!inner || inner.src !== 1 || inner.dst !== 1 || dims.length > MAX_RANK) return null;
  const vec4 =
    inner.n % 4 === 0 && p.srcOffset % 4 === 0 && p.dstOffset % 4 === 0 &&
    dims.every((d) => d.src % 4 === 0 && d.dst % 4 === 0);
  const unit = vec4 ? 4 : 1;
  const len = inner.n / unit;
  const segs = ceilDiv(len, SEG);
  const rows = dims.reduce((r, d) => r * d.n, 1);
  return {
    vec4,
    shape: dims.map((d) => d.n),
    srcStrides: dims.map((d) => d.src / unit),
    dstStrides: dims.map((d) => d.dst / unit),
    srcOffset: p.srcOffset / unit,
    dstOffset: p.dstOffset / unit,
    len,
    segs,
    threads: rows * segs,
  };
}

function planOf(p: CopyParams): CopyRowsPlan {
  const plan = copyRowsPlan(p);
  if (!plan) throw new Error(`copy rows: shape [${p.shape.join(', ')}] has no contiguous inner run (use copy.ts)`);
  return plan;
}

export const copyRowsKernel: KernelSpec<CopyParams> = {
  name: 'copy',
  key: (p) => `copy:rows:${planOf(p).vec4 ? 'v4' : 's'}`,
  bindings: () => [
    { name: 'src', access: 'read', type: 'u32' },
    { name: 'dst', access: 'read_write', type: 'u32' },
  ],
  uniforms: (p) => {
    const q = planOf(p);
    return [
      u32(q.threads), u32(q.shape.length), u32(q.srcOffset), u32(q.dstOffset), u32(q.len), u32(q.segs), u32(0), u32(0),
      ...rankWords(q.shape), ...rankWords(q.srcStrides), ...rankWords(q.dstStrides),
    ];
  },
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(planOf(p).threads, WORKGROUP),
  source: (p) => {
    const type = planOf(p).vec4 ? 'vec4<u32>' : 'u32';
    return /* wgsl */ `
struct Params {
  threads: u32, rank: u32, srcOffset: u32, dstOffset: u32, len: u32, segs: u32, _p0: u32, _p1: u32,
  shape: array<vec4<u32>, ${MAX_RANK / 4}>,
  srcStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  dstStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
}
@group(0) @binding(0) var<storage, read> src: array<${type}>;
@group(0) @binding(1) var<storage, read_write> dst: array<${type}>;
${uniformDecl(2)}
${linearIndexFn}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (t >= u.threads) { return; }
  let k0 = (t % u.segs) * ${SEG}u;
  var rem = t / u.segs;
  var s = u.srcOffset + k0;
  var d = u.dstOffset + k0;
  for (var i = i32(u.rank) - 1; i >= 0; i--) {
    let iu = u32(i);
    let extent = u.shape[iu / 4u][iu % 4u];
    let c = rem % extent;
    rem = rem / extent;
    s += c * u.srcStrides[iu / 4u][iu % 4u];
    d += c * u.dstStrides[iu / 4u][iu % 4u];
  }
  let count = min(${SEG}u, u.len - k0);
  for (var k = 0u; k < count; k++) { dst[d + k] = src[s + k]; }
}
`;
  },
  reference: copyReference,
};
