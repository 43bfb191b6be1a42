/**
 * Fused attention backward (FlashAttention-2 style, no atomics, no [B, Lq, Lk] tensor in memory)
 * for the forward of attention.ts, which saved per query row the softmax stats (m, log l):
 *
 *   P[i, j]  = exp(scale * q_i·k_j + mask[i, j] - m_i - log l_i)   (0 where masked / causal)
 *   Dlt[i]   = rowsum(dO_i * O_i)                                  (= rowsum(P ∘ dP))
 *   dP[i, j] = dO_i·v_j,   dS = P * (dP - Dlt[i])
 *   dV_j = Σ_i P[i, j] dO_i,   dK_j = scale Σ_i dS[i, j] q_i,   dQ_i = scale Σ_j dS[i, j] k_j
 *
 * Three kernels:
 *   attentionDeltaKernel   [B, Lq] rows: stats vec4(m, log l, Dlt, 0) from out, dOut and the
 *                          forward's vec2 stats (one thread per row; a few ms at ViT shapes).
 *   attentionBackwardKernel pass 'dq':  one workgroup per 8*R queries, loops over all keys -> dQ.
 *                          pass 'dkv': one workgroup per 8*R keys, loops over all queries -> dK, dV.
 * Packing (m, log l, Dlt) into one vec4 keeps the 'dkv' pass at 8 storage bindings with a mask
 * (WebGPU's default maxStorageBuffersPerShaderStage).
 *
 * Scheme (lavapipe; see matmul-sg.ts): every storage load inside a loop is a per-lane loop with a
 * bounds check per component (~10 instructions per element), while subgroupBroadcast with a
 * constant lane is an extract + splat, so every load should bring each lane different data.
 * A workgroup is one subgroup of 8 lanes; lane l owns R rows t0 + 8r + l of its side (queries for
 * 'dq', keys for 'dkv'), loads its rows of both operands once (q and dO, or k and v) and keeps
 * them and its accumulators in registers. The other side is walked 8 rows per step: lane l loads
 * row ob + l of both operands (vec4 along D), and subgroupBroadcast(·, c) hands row ob + c to
 * every lane. Per (own row r, other row c):
 *   s = own1·other1, dp = own2·other2 (fma chains of vec4 along D, then a horizontal add),
 *   p and ds as above (the query's stats: the lane's own for 'dq', broadcast for 'dkv'),
 * and each accumulator takes one update per step, an fma chain over the 8 other rows (every
 * update of a loop-carried value costs a blend in lavapipe's masked loops):
 *   'dq':  dQ_r += Σ_c ds[r, c] k_c
 *   'dkv': dK_r += Σ_c ds[c, r] q_c,  dV_r += Σ_c p[c, r] dO_c
 * Other rows past the end load a clamped row and get p = 0. Causal: 'dq' stops at key t0 + 8R,
 * 'dkv' starts at query t0 (the keys beyond / queries before are all masked).
 * Cost model: the other side is streamed once per 8R own rows, so loads per FMA fall as 1/R;
 * R is bounded by registers (spills past L1) and by LLVM's compile time, which grows faster than R
 * (see rowsPerLane).
 * Masks: additive f32 read per lane as in attention.ts (maskOff + i*maskRowStride + j*maskColStride).
 *
 * Bindings ('dq'):  q, k, v, dOut read vec4, stats read vec4, (mask read f32), dQ read_write vec4.
 *          ('dkv'): q, k, v, dOut read vec4, stats read vec4, (mask read f32), dK, dV read_write vec4.
 *          (delta): out, dOut read vec4, fwdStats read vec2, stats read_write vec4.
 * Uniform `Params` (dq/dkv): as attention.ts (tiles counts 8R-row tiles of the own side).
 * Uniform `DeltaParams`: rows, D4, nWorkgroups.
 * Dispatch: B * ceil(own length / 8R) workgroups of 8; delta: ceil(B*Lq / 64) of 64 (1-D, folded).
 * Requires subgroups of exactly 8 (the op checks, as for the forward). Limits: tensors under 2^32
 * elements.
 * Keys: `attention:bwd-<dq|dkv>:sg8:d<D>:r<R>[:mask][:causal]`, `attention:bwd-delta`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, u32, uniformDecl } from '../wgsl.js';
import { ATTENTION_HEAD_DIMS, ATTENTION_MASK_OFFSET, type AttentionParams, attentionBatchCount, attentionParamsStruct, attentionUniformWords } from './attention.js';
import { attentionBackwardReference, attentionDeltaReference } from './attention-backward.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const LANES = 8;
const DELTA_WG = 64;

export interface AttentionBackwardParams extends Omit<AttentionParams, 'rows' | 'stats'> {
  /** 'dq' writes dQ; 'dkv' writes dK and dV. */
  pass: 'dq' | 'dkv';
  /**
   * Own rows per lane (the workgroup covers 8R rows). Default: 'dq' 2 (1 at D = 128), 'dkv' 2 at
   * D = 32, else 1. On lavapipe the loads of the other side dominate and fall as 1/R, but LLVM's
   * compile time grows faster than R, and CI starts with an empty shader cache. Measured at
   * 12x485x64 (GPU ms, medians of 7): 'dq' R = 1/2/4: 209/94/82; 'dkv' R = 1/2: 180/171. First
   * compile on this 2-core machine (empty Mesa cache, scratch/compile-bwd.ts): 'dq' d64 R = 1/2/4:
   * 9/18/~60 s, 'dkv' d64 R = 1/2: 15/25 s; d32 R = 2: 7 s each; d128 R = 1: 32 s ('dq') and 54 s
   * ('dkv'). The former defaults (256/D, 128/D) compiled 'dq' d32 at R = 8 for several minutes.
   */
  rowsPerLane?: number;
}

const rowsPerLaneOf = (p: AttentionBackwardParams): number =>
  p.rowsPerLane ?? (p.pass === 'dq' ? (p.D <= 64 ? 2 : 1) : p.D <= 32 ? 2 : 1);

function tiles(p: AttentionBackwardParams): { tiles: number; total: number } {
  const own = p.pass === 'dq' ? p.Lq : p.Lk;
  const t = ceilDiv(own, LANES * rowsPerLaneOf(p));
  return { tiles: t, total: attentionBatchCount(p) * t };
}

export const attentionBackwardKernel: KernelSpec<AttentionBackwardParams> = {
  name: 'attention',
  key: (p) =>
    `attention:bwd-${p.pass}:sg${LANES}:d${p.D}:r${rowsPerLaneOf(p)}${p.mask ? ':mask' : ''}${p.causal ? ':causal' : ''}`,
  bindings: (p) => [
    { name: 'q', access: 'read', type: 'f32' },
    { name: 'k', access: 'read', type: 'f32' },
    { name: 'v', access: 'read', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'stats', access: 'read', type: 'f32' },
    ...(p.mask ? [{ name: 'mask', access: 'read' as const, type: 'f32' as const }] : []),
    ...(p.pass === 'dq'
      ? [{ name: 'dQ', access: 'read_write' as const, type: 'f32' as const }]
      : [{ name: 'dK', access: 'read_write' as const, type: 'f32' as const }, { name: 'dV', access: 'read_write' as const, type: 'f32' as const }]),
  ],
  uniforms: (p) => {
    const t = tiles(p);
    return attentionUniformWords(p, t.tiles, t.total);
  },
  workgroupSize: () => LANES,
  dispatch: (p) => tiles(p).total,
  source: backwardSource,
  reference: attentionBackwardReference,
};

function backwardSource(p: AttentionBackwardParams): string {
  const R = rowsPerLaneOf(p);
  const D4 = p.D / 4;
  if (!(ATTENTION_HEAD_DIMS as readonly number[]).includes(p.D)) throw new Error(`attention backward: head dim ${p.D} must be 32, 64 or 128`);
  if (!Number.isInteger(R) || R < 1 || R > 8) throw new Error(`attention backward: rowsPerLane ${R} must be 1..8`);
  const dq = p.pass === 'dq';
  // Own side: rows this lane keeps in registers; other side: rows walked 8 at a time.
  const own = dq
    ? { len: 'u.Lq', base: 'qBase', x1: 'q', x2: 'dOut' }
    : { len: 'u.Lk', base: 'kvBase', x1: 'k', x2: 'v' };
  const other = dq
    ? { len: 'u.Lk', base: 'kvBase', y1: 'k', y2: 'v' }
    : { len: 'u.Lq', base: 'qBase', y1: 'q', y2: 'dOut' };
  const rows = range(R);
  const chunk = range(LANES);
  const dims = range(D4);
  // Query and key index of the pair (own row r, other row ob + c) and that query's stats.
  const query = (r: number, c: number) => (dq ? `own${r}` : `(ob + ${c}u)`);
  const key = (r: number, c: number) => (dq ? `(ob + ${c}u)` : `own${r}`);
  const stat = (r: number, c: number) => (dq ? `st${r}` : `stb${c}`);
  const maskTerm = (r: number, c: number) => {
    if (!p.mask) return '';
    const [qi, kj] = dq ? [`ownC${r}`, `oC${c}`] : [`oC${c}`, `ownC${r}`];
    return ` + mask[maskOff + ${qi} * u.maskRowStride + ${kj} * u.maskColStride]`;
  };
  const valid = (r: number, c: number) => `ob + ${c}u < ${other.len}${p.causal ? ` && ${key(r, c)} <= ${query(r, c)}` : ''}`;
  // fma() chains (lavapipe lowers them to a multiply and an add; drivers with FMA fuse them).
  const dot = (a: string, b: string) => dims.slice(1).reduce((acc, d) => `fma(${a}_${d}, ${b}_${d}, ${acc})`, `${a}_0 * ${b}_0`);
  const axpy = (acc: string, terms: [string, string][]) =>
    terms.reduce((sum, [x, y]) => `fma(vec4<f32>(${x}), ${y}, ${sum})`, acc);
  const hsum = (v: string) => `${v}.x + ${v}.y + ${v}.z + ${v}.w`;
  const accs = dq ? ['dq'] : ['dk', 'dv'];
  const outputs = dq ? ['dQ'] : ['dK', 'dV'];
  const firstOut = p.mask ? 6 : 5;
  const decl = (i: number, name: string, type: string, access: string) =>
    `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`;
  // Loop bounds: causal 'dq' needs keys up to its last query, causal 'dkv' queries from its first key.
  const start = !dq && p.causal ? 't0' : '0u';
  const end = dq && p.causal ? `min(u.Lk, t0 + ${LANES * R}u)` : other.len;
  return /* wgsl */ `
enable subgroups;

${attentionParamsStruct('tiles')}
${decl(0, 'q', 'vec4<f32>', 'read')}
${decl(1, 'k', 'vec4<f32>', 'read')}
${decl(2, 'v', 'vec4<f32>', 'read')}
${decl(3, 'dOut', 'vec4<f32>', 'read')}
${decl(4, 'stats', 'vec4<f32>', 'read')}
${p.mask ? decl(5, 'mask', 'f32', 'read') : ''}
${outputs.map((name, i) => decl(firstOut + i, name, 'vec4<f32>', 'read_write')).join('\n')}
${uniformDecl(firstOut + outputs.length)}
${linearIndexFn}

@compute @workgroup_size(${LANES})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
  // The workgroup index is uniform, so this early return keeps the subgroup whole.
  let w = linearWorkgroupIndex(wid, nwg);
  if (w >= u.nWorkgroups) { return; }
  let b = w / u.tiles;
  let t0 = (w % u.tiles) * ${LANES * R}u;
${ATTENTION_MASK_OFFSET}  // In vec4 units: row i of q / dOut starts at qBase + i * ${D4}; of k / v at kvBase + i * ${D4}.
  let qBase = b * u.Lq * ${D4}u;
  let kvBase = b * u.Lk * ${D4}u;
  let sBase = b * u.Lq;
${rows.map((r) => `  let own${r} = t0 + ${LANES * r}u + lane;
  let ownC${r} = min(own${r}, ${own.len} - 1u);
${dims.map((d) => `  let a${r}_${d} = ${own.x1}[${own.base} + ownC${r} * ${D4}u + ${d}u];`).join('\n')}
${dims.map((d) => `  let g${r}_${d} = ${own.x2}[${own.base} + ownC${r} * ${D4}u + ${d}u];`).join('\n')}
${dq ? `  let st${r} = stats[sBase + ownC${r}];\n` : ''}${accs.map((acc) => dims.map((d) => `  var ${acc}${r}_${d} = vec4<f32>(0.0);`).join('\n')).join('\n')}`).join('\n')}
  for (var ob = ${start}; ob < ${end}; ob += ${LANES}u) {
    // Cooperative loads: lane l reads other row ob + l; subgroupBroadcast hands row ob + c out.
    let oRow = min(ob + lane, ${other.len} - 1u);
${dims.map((d) => `    let y_${d} = ${other.y1}[${other.base} + oRow * ${D4}u + ${d}u];`).join('\n')}
${dims.map((d) => `    let z_${d} = ${other.y2}[${other.base} + oRow * ${D4}u + ${d}u];`).join('\n')}
${dq ? '' : '    let sts = stats[sBase + oRow];'}
${chunk.map((c) => [
  ...(p.mask ? [`    let oC${c} = min(ob + ${c}u, ${other.len} - 1u);`] : []),
  ...(dq ? [] : [`    let stb${c} = subgroupBroadcast(sts, ${c}u);`]),
  ...dims.map((d) => `    let y${c}_${d} = subgroupBroadcast(y_${d}, ${c}u);`),
  ...dims.map((d) => `    let z${c}_${d} = subgroupBroadcast(z_${d}, ${c}u);`),
].join('\n')).join('\n')}
${rows.flatMap((r) => chunk.map((c) => `    let sv${r}_${c} = ${dot(`a${r}`, `y${c}`)};
    let dpv${r}_${c} = ${dot(`g${r}`, `z${c}`)};
    let t${r}_${c} = (${hsum(`sv${r}_${c}`)}) * u.scale${maskTerm(r, c)};
    let p${r}_${c} = select(0.0, exp(t${r}_${c} - ${stat(r, c)}.x - ${stat(r, c)}.y), ${valid(r, c)});
    let ds${r}_${c} = p${r}_${c} * (${hsum(`dpv${r}_${c}`)} - ${stat(r, c)}.z);`)).join('\n')}
    // One masked update per accumulator and chunk (each update of a loop-carried var is a blend).
${rows.flatMap((r) => dims.map((d) => `    ${accs[0]}${r}_${d} = ${axpy(`${accs[0]}${r}_${d}`, chunk.map((c) => [`ds${r}_${c}`, `y${c}_${d}`]))};`)).join('\n')}
${dq ? '' : rows.flatMap((r) => dims.map((d) => `    dv${r}_${d} = ${axpy(`dv${r}_${d}`, chunk.map((c) => [`p${r}_${c}`, `z${c}_${d}`]))};`)).join('\n')}
  }
${rows.map((r) => `  if (own${r} < ${own.len}) {
${dims.map((d) => `    ${outputs[0]}[${own.base} + own${r} * ${D4}u + ${d}u] = ${accs[0]}${r}_${d} * u.scale;`).join('\n')}
${dq ? '' : dims.map((d) => `    dV[${own.base} + own${r} * ${D4}u + ${d}u] = dv${r}_${d};`).join('\n')}
  }`).join('\n')}
}
`;
}

export interface AttentionDeltaParams {
  /** B * Lq query rows. */
  rows: number;
  D: number;
}

function deltaGroups(p: AttentionDeltaParams): number {
  return ceilDiv(p.rows, DELTA_WG);
}

export const attentionDeltaKernel: KernelSpec<AttentionDeltaParams> = {
  name: 'attention',
  key: () => 'attention:bwd-delta',
  bindings: () => [
    { name: 'out', access: 'read', type: 'f32' },
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'fwdStats', access: 'read', type: 'f32' },
    { name: 'stats', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => [u32(p.rows), u32(p.D / 4), u32(deltaGroups(p))],
  workgroupSize: () => DELTA_WG,
  dispatch: deltaGroups,
  source: () => /* wgsl */ `
struct DeltaParams { rows: u32, D4: u32, nWorkgroups: u32, }
@group(0) @binding(0) var<storage, read> out: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dOut: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fwdStats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec4<f32>>;
${uniformDecl(4, 'DeltaParams')}
${linearIndexFn}

@compute @workgroup_size(${DELTA_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let w = linearWorkgroupIndex(wid, nwg);
  let row = w * ${DELTA_WG}u + lid;
  if (w >= u.nWorkgroups || row >= u.rows) { return; }
  var acc = vec4<f32>(0.0);
  for (var d = 0u; d < u.D4; d++) {
    acc += out[row * u.D4 + d] * dOut[row * u.D4 + d];
  }
  let f = fwdStats[row];
  stats[row] = vec4<f32>(f.x, f.y, acc.x + acc.y + acc.z + acc.w, 0.0);
}
`,
  reference: attentionDeltaReference,
};
