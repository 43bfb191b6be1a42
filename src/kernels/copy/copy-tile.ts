/**
 * Strided copy family, 4x4 tile variant: the same copy as copy.ts's `plain` kernel (same
 * CopyParams, bindings and CPU reference) for transposes, i.e. copies whose destination's
 * innermost dim I is not contiguous in the source but some other dim J is: [B, C, HW] <->
 * [B, HW, C] (CLIPSeg's token / feature-map reshapes), weight and matrix transposes.
 *
 * Why: the plain kernel decodes every element through the rank loop (integer divisions, slow on
 * CPUs) and on lavapipe every storage access costs a per-lane loop. Here a thread moves a 4 x 4
 * tile: 4 vec4 reads along J (one per I row), a register transpose, 4 vec4 writes along I, and
 * decodes its coordinates once per 16 elements. No workgroup memory.
 *
 * The iteration dims are simplified as in copy-rows.ts (simplifyCopy); copyTilePlan(p) returns null
 * (the op then runs copy.ts) unless I (the last dim: destination stride 1) and J (source stride 1)
 * both have extents divisible by 4, I's source stride, J's destination stride, every other stride
 * and both offsets are multiples of 4 (so every access is an aligned vec4), and the copy is not
 * padded.
 *
 * Bindings: src read vec4<u32>, dst read_write vec4<u32>. Uniform `Params` (u32, strides and
 * offsets in vec4 units): threads, rank (other dims), srcOffset, dstOffset, tilesI, tilesJ,
 * srcStrideI, dstStrideJ, then shape, srcStrides, dstStrides: array<vec4<u32>, 2> (other dims).
 * Dispatch: ceil(threads / 64) workgroups of 64, threads = tilesI * tilesJ * (other dims), 1-D.
 * Key: `copy:tile4`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { MAX_RANK, linearIndexFn, rankWords, u32, uniformDecl } from '../wgsl.js';
import type { CopyParams } from './copy.js';
import { simplifyCopy } from './copy-rows.js';
import { copyReference } from './copy.ref.js';

const WORKGROUP = 64;

export interface CopyTilePlan {
  /** Other dims (outermost first), strides in vec4 units. */
  shape: number[];
  srcStrides: number[];
  dstStrides: number[];
  srcOffset: number;
  dstOffset: number;
  tilesI: number;
  tilesJ: number;
  srcStrideI: number;
  dstStrideJ: number;
  threads: number;
}

/** Tile geometry of a plain copy, or null when this variant does not apply (see the file head). */
export function copyTilePlan(p: CopyParams): CopyTilePlan | null {
  if (p.padBefore !== undefined || p.srcOffset % 4 !== 0 || p.dstOffset % 4 !== 0) return null;
  const dims = simplifyCopy(p);
  const inner = dims[dims.length - 1];
  if (!inner || inner.dst !== 1 || inner.src === 1 || inner.n % 4 !== 0 || inner.src % 4 !== 0) return null;
  const j = dims.findIndex((d) => d.src === 1);
  if (j < 0 || dims[j]!.n % 4 !== 0 || dims[j]!.dst % 4 !== 0) return null;
  const others = dims.filter((_, k) => k !== j && k !== dims.length - 1);
  if (others.some((d) => d.src % 4 !== 0 || d.dst % 4 !== 0) || others.length > MAX_RANK) return null;
  const tilesI = inner.n / 4;
  const tilesJ = dims[j]!.n / 4;
  return {
    shape: others.map((d) => d.n),
    srcStrides: others.map((d) => d.src / 4),
    dstStrides: others.map((d) => d.dst / 4),
    srcOffset: p.srcOffset / 4,
    dstOffset: p.dstOffset / 4,
    tilesI,
    tilesJ,
    srcStrideI: inner.src / 4,
    dstStrideJ: dims[j]!.dst / 4,
    threads: tilesI * tilesJ * others.reduce((n, d) => n * d.n, 1),
  };
}

function planOf(p: CopyParams): CopyTilePlan {
  const plan = copyTilePlan(p);
  if (!plan) throw new Error(`copy tile4: shape [${p.shape.join(', ')}] is not a 4-aligned transpose (use copy.ts)`);
  return plan;
}

export const copyTileKernel: KernelSpec<CopyParams> = {
  name: 'copy',
  key: () => 'copy:tile4',
  bindings: () => [
    { name: 'src', access: 'read', type: 'u32' },
    { name: 'dst', access: 'read_write', type: 'u32' },
  ],
  uniforms: (p) => {
    const q = planOf(p);
    return [
      u32(q.threads), u32(q.shape.length), u32(q.srcOffset), u32(q.dstOffset),
      u32(q.tilesI), u32(q.tilesJ), u32(q.srcStrideI), u32(q.dstStrideJ),
      ...rankWords(q.shape), ...rankWords(q.srcStrides), ...rankWords(q.dstStrides),
    ];
  },
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(planOf(p).threads, WORKGROUP),
  source: () => /* wgsl */ `
struct Params {
  threads: u32, rank: u32, srcOffset: u32, dstOffset: u32,
  tilesI: u32, tilesJ: u32, srcStrideI: u32, dstStrideJ: u32,
  shape: array<vec4<u32>, ${MAX_RANK / 4}>,
  srcStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  dstStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
}
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
${uniformDecl(2)}
${linearIndexFn}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (t >= u.threads) { return; }
  // Tile (ti, tj): I = 4ti .. 4ti + 3, J = 4tj .. 4tj + 3 (in vec4 units: I offsets are ti, J tj).
  let ti = t % u.tilesI;
  var rem = t / u.tilesI;
  let tj = rem % u.tilesJ;
  rem = rem / u.tilesJ;
  var s = u.srcOffset + ti * 4u * u.srcStrideI + tj;
  var d = u.dstOffset + tj * 4u * u.dstStrideJ + ti;
  for (var k = i32(u.rank) - 1; k >= 0; k--) {
    let ku = u32(k);
    let extent = u.shape[ku / 4u][ku % 4u];
    let c = rem % extent;
    rem = rem / extent;
    s += c * u.srcStrides[ku / 4u][ku % 4u];
    d += c * u.dstStrides[ku / 4u][ku % 4u];
  }
  // r_i = 4 consecutive J at I = 4ti + i; the destination row at J = 4tj + j takes component j of each.
  let r0 = src[s];
  let r1 = src[s + u.srcStrideI];
  let r2 = src[s + 2u * u.srcStrideI];
  let r3 = src[s + 3u * u.srcStrideI];
  dst[d] = vec4<u32>(r0.x, r1.x, r2.x, r3.x);
  dst[d + u.dstStrideJ] = vec4<u32>(r0.y, r1.y, r2.y, r3.y);
  dst[d + 2u * u.dstStrideJ] = vec4<u32>(r0.z, r1.z, r2.z, r3.z);
  dst[d + 3u * u.dstStrideJ] = vec4<u32>(r0.w, r1.w, r2.w, r3.w);
}
`,
  reference: copyReference,
};
