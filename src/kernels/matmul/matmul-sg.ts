/**
 * Matmul, subgroup variant: the same product as matmul.ts (out = alpha * op(A)·op(B) (+ bias),
 * batched with broadcast batch dims, same MatmulParams and CPU reference) for adapters whose
 * subgroups have exactly 8 invocations (lavapipe with AVX2 / 256-bit vectors).
 *
 * Why: on lavapipe every storage load runs a per-invocation loop (lane mask test, descriptor and
 * bounds check, scalar load, insert) of about 15 instructions per lane; an 8x8 register tile
 * spends ~75% of its time there. Here one workgroup is one subgroup of 8 lanes and A is loaded
 * cooperatively: each load gives 8 *different* A values (one per lane) that subgroupBroadcast with
 * a constant lane then hands to every lane (an extract + splat). Each A element costs about 1/7
 * of a per-lane load. Each lane owns 4 consecutive output columns and loads B for them as vec4
 * where the layout allows it. No workgroup memory, no barriers.
 *
 * Geometry: a workgroup (= one subgroup of 8) computes a ROWS x 32*GROUPS output tile; lane l owns
 * rows m0 .. m0+ROWS-1 and, for each group g, columns n0 + 32g + 4l .. + 3 (ROWS x GROUPS vec4
 * accumulators). Workgroups run column-tile-major (all row tiles of one column tile in turn).
 * Bigger tiles reuse each load for more FMAs but compile slowly (ops/matmul.ts, subgroupMatmulRows).
 * K advances in chunks of 4. A chunk's ROWS x 4 block of A takes ROWS/2 cooperative loads:
 *   A not transposed (k contiguous): load q: lane l reads row 2q + l/4, k = k0 + l%4;
 *                                     A(2q + t, kk) = subgroupBroadcast(v_q, 4t + kk).
 *   A transposed (m contiguous):     load (g, kk): lane l reads row 8g + l, k = k0 + kk;
 *                                     A(8g + t, kk) = subgroupBroadcast(v_g_kk, t).
 * B per lane, per chunk: `vecB` (B not transposed and N % 4 == 0, or B transposed and K % 4 == 0)
 * loads 4 vec4 (4 rows of 4 columns, or 4 columns of 4 k); otherwise 16 scalar loads.
 * Rows/columns past the edge read clamped (valid) addresses and are not stored; A values for
 * k >= K are zeroed, so K needs no multiple of 4.
 *
 * Bindings: a read f32, b read f32 (vec4<f32> when vecB; f16 / vec4<f16> with `bF16`, widened to
 * f32 as loaded, behind `enable f16;`), (bias read f32), (residual read f32), out read_write f32.
 * The epilogue (bias, activation, residual) is matmul.ts's matmulEpilogueFn.
 * Uniform `Params`: as matmul.ts (tilesM / tilesN count ROWS x 32 tiles).
 * Dispatch: batchCount * tilesM * tilesN workgroups of 8, 1-D (folded past 65535 by the device).
 * Requires the `subgroups` feature and subgroupMinSize == subgroupMaxSize == 8 (the op checks):
 * correctness relies on one workgroup being exactly one subgroup.
 * Key: `matmul:f32[:bf16]:<nn|nt|tn|tt>:<bias|plain>[:<activation>][:res][:scatter]:sg8:r<ROWS>x<COLS>:a<v4|s>:b<v4|s>`.
 * The `scatter` output reindexing is matmul.ts's.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, uniformDecl } from '../wgsl.js';
import {
  MATMUL_BATCH_OFFSETS, MATMUL_TILE_INDEX, type MatmulParams, matmulBatchCount, matmulDtypeTag, matmulEpilogueFn, matmulEpilogueTag,
  matmulBindings, matmulParamsStruct, matmulTransTag, matmulUniformWords,
} from './matmul.js';
import { matmulReference } from './matmul.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Lanes per workgroup (= the subgroup size this variant needs). */
export const SUBGROUP = 8;
const COLS = 4 * SUBGROUP;
const XYZW = 'xyzw';

export interface MatmulSgParams extends MatmulParams {
  /** Output rows per workgroup (multiple of 8). Default 16. */
  rows?: number;
  /** Groups of 4 columns per lane (1..4): a workgroup covers 32 * groups columns. Default 1. */
  groups?: number;
}

const rowsOf = (p: MatmulSgParams): number => p.rows ?? 16;
const groupsOf = (p: MatmulSgParams): number => p.groups ?? 1;

/** Whether B can be read as vec4 (a bounded layout fact, part of the key). */
export function matmulSgVecB(p: MatmulParams): boolean {
  return p.transB ? p.K % 4 === 0 : p.N % 4 === 0;
}

/** Whether A's cooperative loads can be vec4 (4 k of 8 rows, or 4 rows of 32 for one k). */
export function matmulSgVecA(p: MatmulSgParams): boolean {
  return p.transA ? p.M % 4 === 0 && rowsOf(p) % 32 === 0 : p.K % 4 === 0;
}

function tiles(p: MatmulSgParams): { tilesM: number; tilesN: number; total: number } {
  const tilesM = ceilDiv(p.M, rowsOf(p));
  const tilesN = ceilDiv(p.N, COLS * groupsOf(p));
  return { tilesM, tilesN, total: matmulBatchCount(p) * tilesM * tilesN };
}

/** Cooperative A loads of one chunk and the expression for A(r, kk). */
function aSource(p: MatmulSgParams, vecA: boolean): { loads: string[]; at: (r: number, kk: number) => string } {
  const R = rowsOf(p);
  const loads: string[] = [];
  if (!p.transA && vecA) {
    // Lane l reads row 8g + l, k0 .. k0 + 3 (K % 4 == 0: no k tail).
    for (const g of range(R / 8)) loads.push(`    let av${g} = a[(aRow${g} + k0) / 4u];`);
    return { loads, at: (r, kk) => `subgroupBroadcast(av${r >> 3}.${XYZW[kk]}, ${r & 7}u)` };
  }
  if (!p.transA) {
    // Lane l reads row 2q + l/4 at k = k0 + l%4.
    for (const q of range(R / 2)) loads.push(`    let av${q} = select(0.0, a[aRow${q} + min(kA, u.K - 1u)], kA < u.K);`);
    return { loads, at: (r, kk) => `subgroupBroadcast(av${r >> 1}, ${(r & 1) * 4 + kk}u)` };
  }
  if (vecA) {
    // Lane l reads rows 32g + 4l .. 32g + 4l + 3 at k = k0 + kk (M % 4 == 0).
    for (const g of range(R / 32)) {
      for (const kk of range(4)) {
        loads.push(`    let av${g}_${kk} = select(vec4<f32>(0.0), a[(aOff + min(k0 + ${kk}u, u.K - 1u) * u.M + aCol${g}) / 4u], k0 + ${kk}u < u.K);`);
      }
    }
    return { loads, at: (r, kk) => `subgroupBroadcast(av${r >> 5}_${kk}.${XYZW[r & 3]}, ${(r >> 2) & 7}u)` };
  }
  // Lane l reads row 8g + l at k = k0 + kk.
  for (const g of range(R / 8)) {
    for (const kk of range(4)) {
      loads.push(`    let av${g}_${kk} = select(0.0, a[aOff + min(k0 + ${kk}u, u.K - 1u) * u.M + aCol${g}], k0 + ${kk}u < u.K);`);
    }
  }
  return { loads, at: (r, kk) => `subgroupBroadcast(av${r >> 3}_${kk}, ${r & 7}u)` };
}

/** Per-lane B loads of one chunk and the vec4 of the lane's column group q at k = k0 + kk. */
function bSource(p: MatmulSgParams, vecB: boolean): { loads: string[]; row: (kk: number, q: number) => string } {
  const loads: string[] = [];
  const Q = groupsOf(p);
  // An f16 B is widened as it is loaded (all arithmetic stays f32).
  const vec = (load: string) => (p.bF16 ? `vec4<f32>(${load})` : load);
  const scalars = (list: string[]) => (p.bF16 ? `vec4<f32>(vec4<f16>(${list.join(', ')}))` : `vec4<f32>(${list.join(', ')})`);
  if (!p.transB) {
    for (const kk of range(4)) {
      const row = `bOff + min(k0 + ${kk}u, u.K - 1u) * u.N`;
      for (const q of range(Q)) {
        loads.push(vecB
          ? `    let bv${kk}_${q} = ${vec(`b[(${row} + bCol${q}) / 4u]`)};`
          : `    let bv${kk}_${q} = ${scalars(range(4).map((c) => `b[${row} + bCol${q}_${c}]`))};`);
      }
    }
    return { loads, row: (kk, q) => `bv${kk}_${q}` };
  }
  for (const q of range(Q)) {
    for (const c of range(4)) {
      loads.push(vecB
        ? `    let bc${q}_${c} = ${vec(`b[(bCol${q}_${c} + k0) / 4u]`)};`
        : `    let bc${q}_${c} = ${scalars(range(4).map((kk) => `b[bCol${q}_${c} + min(k0 + ${kk}u, u.K - 1u)]`))};`);
    }
  }
  return { loads, row: (kk, q) => `vec4<f32>(${range(4).map((c) => `bc${q}_${c}.${XYZW[kk]}`).join(', ')})` };
}

export const matmulSgKernel: KernelSpec<MatmulSgParams> = {
  name: 'matmul',
  key: (p) =>
    `matmul:${matmulDtypeTag(p)}:${matmulTransTag(p)}:${matmulEpilogueTag(p)}:sg${SUBGROUP}:r${rowsOf(p)}x${COLS * groupsOf(p)}:` +
    `a${matmulSgVecA(p) ? 'v4' : 's'}:b${matmulSgVecB(p) ? 'v4' : 's'}`,
  bindings: matmulBindings,
  uniforms: (p) => matmulUniformWords(p, tiles(p)),
  workgroupSize: () => SUBGROUP,
  dispatch: (p) => tiles(p).total,
  source: (p) => {
    const R = rowsOf(p);
    const Q = groupsOf(p);
    if (R % 8 !== 0 || R < 8) throw new Error(`matmul sg: rows ${R} must be a positive multiple of 8`);
    if (!Number.isInteger(Q) || Q < 1 || Q > 4) throw new Error(`matmul sg: groups ${Q} must be 1..4`);
    const vecA = matmulSgVecA(p);
    const vecB = matmulSgVecB(p);
    const A = aSource(p, vecA);
    const B = bSource(p, vecB);
    const setup: string[] = [];
    if (!p.transA && vecA) {
      for (const g of range(R / 8)) setup.push(`  let aRow${g} = aOff + min(m0 + ${8 * g}u + lane, u.M - 1u) * u.K;`);
    } else if (!p.transA) {
      for (const q of range(R / 2)) setup.push(`  let aRow${q} = aOff + min(m0 + ${2 * q}u + lane / 4u, u.M - 1u) * u.K;`);
    } else if (vecA) {
      // M % 4 == 0: a group of 4 rows is all in range or all out of range.
      for (const g of range(R / 32)) setup.push(`  let aCol${g} = min(m0 + ${32 * g}u + lane * 4u, u.M - 4u);`);
    } else {
      for (const g of range(R / 8)) setup.push(`  let aCol${g} = min(m0 + ${8 * g}u + lane, u.M - 1u);`);
    }
    for (const q of range(Q)) {
      const n = `n0 + ${COLS * q}u`;
      if (!p.transB && vecB) setup.push(`  let bCol${q} = min(${n}, u.N - 4u);`);
      else if (!p.transB) for (const c of range(4)) setup.push(`  let bCol${q}_${c} = min(${n} + ${c}u, u.N - 1u);`);
      else for (const c of range(4)) setup.push(`  let bCol${q}_${c} = bOff + min(${n} + ${c}u, u.N - 1u) * u.K;`);
    }
    // One chunk's 4 products per row summed into a fresh temporary first: inside lavapipe's
    // masked loops every update of a loop-carried accumulator costs a blend (and a spill reload
    // and store when it lives in memory), so each accumulator is touched once per chunk.
    const fmas: string[] = [];
    for (const kk of range(4)) for (const q of range(Q)) fmas.push(`    let brow${kk}_${q} = ${B.row(kk, q)};`);
    for (const r of range(R)) {
      for (const kk of range(4)) fmas.push(`    let a${r}_${kk} = ${A.at(r, kk)};`);
      for (const q of range(Q)) {
        const terms = range(4).map((kk) => `a${r}_${kk} * brow${kk}_${q}`);
        fmas.push(`    acc${r}_${q} += ${terms.join(' + ')};`);
      }
    }
    const bindings = matmulBindings(p);
    const decl = (i: number, name: string, type: string, access: string) =>
      `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`;
    const bElem = p.bF16 ? 'f16' : 'f32';
    return /* wgsl */ `
enable subgroups;${p.bF16 ? '\nenable f16;' : ''}
${matmulParamsStruct(p)}
${decl(0, 'a', vecA ? 'vec4<f32>' : 'f32', 'read')}
${decl(1, 'b', vecB ? `vec4<${bElem}>` : bElem, 'read')}
${p.bias ? decl(2, 'bias', 'f32', 'read') : ''}
${p.residual ? decl(bindings.length - 2, 'residual', 'f32', 'read') : ''}
${decl(bindings.length - 1, 'out', 'f32', 'read_write')}
${uniformDecl(bindings.length)}
${linearIndexFn}
${matmulEpilogueFn(p)}

@compute @workgroup_size(${SUBGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
${MATMUL_TILE_INDEX}  // Column-tile-major: consecutive workgroups (which lavapipe's threads take in order) share one
  // K x COLS panel of B, which then stays in cache while A's rows stream past. B's panel is read
  // down its rows (one row of N apart per k); A's rows are read along k. Row-tile-major re-streamed
  // all of B per row tile and ran 1.3-1.5x slower at 1024^3 and 485x768x2304 (nn).
  let m0 = (t % u.tilesM) * ${R}u;
  let n0 = (t / u.tilesM) * ${COLS * Q}u + lane * 4u;

${MATMUL_BATCH_OFFSETS}${setup.join('\n')}
${range(R).flatMap((r) => range(Q).map((q) => `  var acc${r}_${q} = vec4<f32>(0.0);`)).join('\n')}
  for (var k0 = 0u; k0 < u.K; k0 += 4u) {
    let kA = k0 + lane % 4u;
${A.loads.join('\n')}
${B.loads.join('\n')}
${fmas.join('\n')}
  }

  let base = batch * u.M * u.N;
${range(R).map((r) => `  if (m0 + ${r}u < u.M) {
${range(Q).map((q) => `    for (var j = 0u; j < 4u; j++) {
      let col = n0 + ${COLS * q}u + j;
      if (col < u.N) {
        let i = base + outOffset(m0 + ${r}u, col);
        out[i] = epilogue(acc${r}_${q}[j], col, i);
      }
    }`).join('\n')}
  }`).join('\n')}
}
`;
  },
  reference: matmulReference,
};
