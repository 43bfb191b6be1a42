/**
 * Matmul, workgroup-memory variant: the same product as matmul.ts (out = epilogue(alpha *
 * op(A)·op(B)), batched with broadcast batch dims, same MatmulParams, uniforms and CPU reference),
 * computed the classic GPU way: a workgroup of 16x16 threads owns a 64x64 output tile and walks K
 * in steps of KT = 16; each step the 256 threads copy the 64x16 slice of A and the 16x64 slice of B
 * into workgroup memory (4 elements each, consecutive threads reading consecutive addresses of the
 * operand's contiguous dimension), a barrier, then every thread takes KT rank-1 updates of its 4x4
 * outputs from workgroup memory (one vec4 of A and one of B per k), and a second barrier.
 *
 * Why a second family: on real GPUs (and possibly SwiftShader) staging tiles in workgroup memory
 * cuts global loads per FMA 16-fold; on lavapipe barriers cost more than they save (the issue's
 * facts: about 2x slower), where matmul-sg.ts is used. The op picks this variant only through
 * per-adapter tuning ('matmul-tiled' candidate 'shared', ops/tunables.ts).
 *
 * Layout in workgroup memory: As[kk][r] (k-major, so that thread row ty reads rows 4ty..4ty+3 as
 * one vec4) and Bs[kk][c]; stored as arrays of vec4 (16 per k). Elements past M, N or K load 0.
 * Thread (tx, ty) owns rows m0 + 4ty .. +3 and columns n0 + 4tx .. +3.
 * Bindings, uniforms (tilesM / tilesN count 64x64 tiles), epilogue and scatter: as matmul.ts.
 * Dispatch: batchCount * tilesM * tilesN workgroups of 256, 1-D (folded past 65535 by the device).
 * Key: `matmul:f32[:bf16]:<nn|nt|tn|tt>:<epilogue>:t4x4:wg16x16:shared-k16`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import {
  MATMUL_BATCH_OFFSETS, MATMUL_TILE_INDEX, type MatmulParams, matmulBatchCount, matmulBindings, matmulDtypeTag, matmulEpilogueTag,
  matmulPlainHeader, matmulTransTag, matmulUniformWords,
} from './matmul.js';
import { matmulReference } from './matmul.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Threads per side of the workgroup, outputs per thread per side, the output tile and K step. */
const THREADS = 16;
const PER_THREAD = 4;
const TILE = THREADS * PER_THREAD;
const KT = 16;
/** Elements of one operand slice each thread copies per K step (TILE * KT / 256). */
const LOADS = (TILE * KT) / (THREADS * THREADS);

function tiles(p: MatmulParams): { tilesM: number; tilesN: number; total: number } {
  const tilesM = ceilDiv(p.M, TILE);
  const tilesN = ceilDiv(p.N, TILE);
  return { tilesM, tilesN, total: matmulBatchCount(p) * tilesM * tilesN };
}

/** One operand's slice copy: where it goes, which of its dims is contiguous, how to read it. */
interface SliceCopy {
  /** The workgroup array ('As' or 'Bs'). */
  shared: string;
  /** The operand stores k contiguously (false) or the tile dimension contiguously (true). */
  kMajor: boolean;
  /** First row / column of the tile ('m0' / 'n0') and its extent ('u.M' / 'u.N'). */
  origin: string;
  extent: string;
  /** Element address of (tile position g, k) and the load expression (widened to f32). */
  addr: (g: string, k: string) => string;
  load: (index: string) => string;
}

/**
 * WGSL copying one K step's slice of an operand into workgroup memory: element e = lid + 256 i
 * of the slice is (tile position, kk), enumerated along the operand's contiguous dimension so
 * that consecutive threads read consecutive addresses. Outside the operand: 0 (clamped address).
 */
function sliceLoad(c: SliceCopy): string {
  return range(LOADS).map((i) => {
    const e = `lid + ${i * THREADS * THREADS}u`;
    const [pos, kk] = c.kMajor ? [`(${e}) % ${TILE}u`, `(${e}) / ${TILE}u`] : [`(${e}) / ${KT}u`, `(${e}) % ${KT}u`];
    return `    {
      let pos = ${pos};
      let kk = ${kk};
      let g = ${c.origin} + pos;
      let k = k0 + kk;
      let v = ${c.load(c.addr(`min(g, ${c.extent} - 1u)`, 'min(k, u.K - 1u)'))};
      ${c.shared}[kk * ${TILE / 4}u + pos / 4u][pos % 4u] = select(0.0, v, g < ${c.extent} && k < u.K);
    }`;
  }).join('\n');
}

export const matmulSharedKernel: KernelSpec<MatmulParams> = {
  name: 'matmul',
  key: (p) => `matmul:${matmulDtypeTag(p)}:${matmulTransTag(p)}:${matmulEpilogueTag(p)}:t${PER_THREAD}x${PER_THREAD}:wg${THREADS}x${THREADS}:shared-k${KT}`,
  bindings: matmulBindings,
  uniforms: (p) => matmulUniformWords(p, tiles(p)),
  workgroupSize: () => THREADS * THREADS,
  dispatch: (p) => tiles(p).total,
  source: (p) => {
    // A(m, k) = a[aOff + m*K + k] (k contiguous) or a[aOff + k*M + m] (m contiguous, transA).
    const aLoads = sliceLoad({
      shared: 'As', kMajor: p.transA, origin: 'm0', extent: 'u.M',
      addr: (m, k) => (p.transA ? `aOff + ${k} * u.M + ${m}` : `aOff + ${m} * u.K + ${k}`), load: (i) => `a[${i}]`,
    });
    // B(k, n) = b[bOff + k*N + n] (n contiguous) or b[bOff + n*K + k] (k contiguous, transB).
    const bLoads = sliceLoad({
      shared: 'Bs', kMajor: !p.transB, origin: 'n0', extent: 'u.N',
      addr: (n, k) => (p.transB ? `bOff + ${n} * u.K + ${k}` : `bOff + ${k} * u.N + ${n}`), load: (i) => (p.bF16 ? `f32(b[${i}])` : `b[${i}]`),
    });
    return /* wgsl */ `${matmulPlainHeader(p)}

var<workgroup> As: array<vec4<f32>, ${(KT * TILE) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(KT * TILE) / 4}>;

@compute @workgroup_size(${THREADS * THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
${MATMUL_TILE_INDEX}  let m0 = (t / u.tilesN) * ${TILE}u;
  let n0 = (t % u.tilesN) * ${TILE}u;
  let tx = lid % ${THREADS}u;
  let ty = lid / ${THREADS}u;

${MATMUL_BATCH_OFFSETS}
${range(PER_THREAD).map((r) => `  var acc${r} = vec4<f32>(0.0);`).join('\n')}
  for (var k0 = 0u; k0 < u.K; k0 += ${KT}u) {
${aLoads}
${bLoads}
    workgroupBarrier();
    for (var kk = 0u; kk < ${KT}u; kk++) {
      let av = As[kk * ${TILE / 4}u + ty];
      let bv = Bs[kk * ${TILE / 4}u + tx];
${range(PER_THREAD).map((r) => `      acc${r} += av.${'xyzw'[r]} * bv;`).join('\n')}
    }
    workgroupBarrier();
  }

  let base = batch * u.M * u.N;
${range(PER_THREAD).map((r) => `  if (m0 + 4u * ty + ${r}u < u.M) {
    for (var j = 0u; j < 4u; j++) {
      let col = n0 + 4u * tx + j;
      if (col < u.N) {
        let i = base + outOffset(m0 + 4u * ty + ${r}u, col);
        out[i] = epilogue(acc${r}[j], col, i);
      }
    }
  }`).join('\n')}
}
`;
  },
  reference: matmulReference,
};
