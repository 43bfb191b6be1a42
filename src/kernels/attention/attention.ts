/**
 * Fused attention forward, subgroup variant (flash-attention style online softmax):
 *
 *   out[b, i, :] = sum_j softmax_j(scale * q[b, i, :]·k[b, j, :] + mask[b, i, j]) * v[b, j, :]
 *
 * q [B, Lq, D], k and v [B, Lk, D] contiguous (B = the flattened batch dims), D in {32, 64, 128}.
 * mask (variant `mask`): additive f32, read at maskOff(b) + i*maskRowStride + j*maskColStride where
 * maskOff decodes b over batchShape with maskBatchStrides (0 = broadcast), so any mask that
 * broadcasts to [..batch, Lq, Lk] works in place. `causal`: keys j > i are masked (top-left aligned).
 * -inf entries mask a key; a query whose keys are all masked gets zeros (the engine's softmax
 * convention; PyTorch gives NaN).
 *
 * Scheme (see matmul-sg.ts for why on lavapipe): one workgroup = one subgroup of 8 lanes handles
 * ROWS (16) queries of one batch entry and walks the keys in blocks of 32; lane l owns keys
 * 4l .. 4l+3 of a block for the scores and dims 32g + 4l .. 32g + 4l + 3 (g < D/32) of the output.
 *   scores: q rows are loaded cooperatively (lane l: row 8h + l, 4 dims) and handed out with
 *           subgroupBroadcast; each lane reads its 4 keys as vec4 along D.
 *   softmax: per query, block max and sum by subgroupMax / subgroupAdd; running max m, sum l and
 *           the output rows are rescaled by exp(m_old - m_new) (online softmax).
 *   p·v:     for each key, p is broadcast from the lane that owns it; each lane reads v for its
 *           own dims (vec4) and accumulates.
 * The scores never reach memory, and there is no softmax pass.
 *
 * Stats (variant `stats`, when the output will need a gradient): per query row, vec2(m, log l) of
 * the online softmax (max and sum), so that the backward (attention-backward.ts) recomputes
 * P = exp(score - m - log l). The pair rather than LSE = m + log l: with HF's finite -3.4e38 mask
 * a fully masked row has m ~ -3.4e38 and m + log l rounds to m, which would turn every 1/Lk into 1.
 * A row whose keys are all -inf stores (0, FLT_MAX) so that every P underflows to 0.
 *
 * Bindings: q, k, v read vec4<f32>, (mask read f32), out read_write vec4<f32>, (stats read_write
 * vec2<f32>, [B, Lq]).
 * Uniform `Params`: Lq, Lk, batchRank, tilesQ, nWorkgroups, maskRowStride, maskColStride: u32,
 *   scale: f32, batchShape, maskBatchStrides: array<vec4<u32>, 2>.
 * Dispatch: B * ceil(Lq / ROWS) workgroups of 8, 1-D (folded past 65535 by the device).
 * Requires subgroups of exactly 8 (the op checks). Limits: tensors under 2^32 elements.
 * Key: `attention:fwd:sg8:d<D>:r<ROWS>[:mask][:causal][:stats]`.
 */
import { type KernelSpec, type UniformWord, ceilDiv } from '../kernel-spec.js';
import { MAX_RANK, f32, linearIndexFn, rankWords, u32, uniformDecl } from '../wgsl.js';
import { attentionReference } from './attention.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const SUBGROUP = 8;
const KEYS = 4 * SUBGROUP;
const XYZW = 'xyzw';
/** Largest finite f32, as a WGSL literal (stats of fully masked rows). */
export const FLT_MAX = '3.40282346638528859812e+38';

export interface AttentionParams {
  /** Flattened batch count B = product of batchShape. */
  batchShape: readonly number[];
  Lq: number;
  Lk: number;
  /** Head dim: 32, 64 or 128 (part of the key). */
  D: number;
  scale: number;
  causal: boolean;
  mask: boolean;
  /** Mask element strides per batch dim (0 = broadcast), and along queries / keys. */
  maskBatchStrides: readonly number[];
  maskRowStride: number;
  maskColStride: number;
  /** Queries per workgroup (multiple of 8). Default 16. */
  rows?: number;
  /** Also write the softmax stats (m, log l) per query row (for the fused backward). */
  stats?: boolean;
}

const rowsOf = (p: AttentionParams): number => p.rows ?? 16;

export function attentionBatchCount(p: AttentionParams): number {
  return p.batchShape.reduce((a, b) => a * b, 1);
}

export const ATTENTION_HEAD_DIMS = [32, 64, 128] as const;

/** The uniform struct of the attention kernels; `tilesField` names the row-tile count of the side a workgroup owns. */
export function attentionParamsStruct(tilesField: string): string {
  return `struct Params {
  Lq: u32, Lk: u32, batchRank: u32, ${tilesField}: u32,
  nWorkgroups: u32, maskRowStride: u32, maskColStride: u32, scale: f32,
  batchShape: array<vec4<u32>, ${MAX_RANK / 4}>,
  maskBatchStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
}`;
}

function tiles(p: AttentionParams): { tilesQ: number; total: number } {
  const tilesQ = ceilDiv(p.Lq, rowsOf(p));
  return { tilesQ, total: attentionBatchCount(p) * tilesQ };
}

/** WGSL: the mask's element offset maskOff of batch matrix b (broadcast dims have stride 0). */
export const ATTENTION_MASK_OFFSET = `  var maskOff = 0u;
  var rem = b;
  for (var d = i32(u.batchRank) - 1; d >= 0; d--) {
    let du = u32(d);
    let extent = u.batchShape[du / 4u][du % 4u];
    maskOff += (rem % extent) * u.maskBatchStrides[du / 4u][du % 4u];
    rem = rem / extent;
  }
`;

/** Uniform words of the attention kernels (attentionParamsStruct's order), for their own tile counts. */
export function attentionUniformWords(p: Omit<AttentionParams, 'rows' | 'stats'>, tiles: number, total: number): UniformWord[] {
  return [
    u32(p.Lq), u32(p.Lk), u32(p.batchShape.length), u32(tiles),
    u32(total), u32(p.maskRowStride), u32(p.maskColStride), f32(p.scale),
    ...rankWords(p.batchShape), ...rankWords(p.maskBatchStrides),
  ];
}

export const attentionKernel: KernelSpec<AttentionParams> = {
  name: 'attention',
  key: (p) => `attention:fwd:sg${SUBGROUP}:d${p.D}:r${rowsOf(p)}${p.mask ? ':mask' : ''}${p.causal ? ':causal' : ''}${p.stats ? ':stats' : ''}`,
  bindings: (p) => [
    { name: 'q', access: 'read', type: 'f32' },
    { name: 'k', access: 'read', type: 'f32' },
    { name: 'v', access: 'read', type: 'f32' },
    ...(p.mask ? [{ name: 'mask', access: 'read' as const, type: 'f32' as const }] : []),
    { name: 'out', access: 'read_write', type: 'f32' },
    ...(p.stats ? [{ name: 'stats', access: 'read_write' as const, type: 'f32' as const }] : []),
  ],
  uniforms: (p) => {
    const t = tiles(p);
    return attentionUniformWords(p, t.tilesQ, t.total);
  },
  workgroupSize: () => SUBGROUP,
  dispatch: (p) => tiles(p).total,
  source: (p) => {
    const R = rowsOf(p);
    const D = p.D;
    if (!(ATTENTION_HEAD_DIMS as readonly number[]).includes(D)) throw new Error(`attention: head dim ${D} must be 32, 64 or 128`);
    if (R % 8 !== 0) throw new Error(`attention: rows ${R} must be a multiple of 8`);
    const H = R / 8; // cooperative q loads per 4-dim chunk
    const G = D / 32; // output vec4s per lane and row
    const D4 = D / 4;
    const rows = range(R);
    const bindings = attentionKernel.bindings(p);
    const decl = (i: number, name: string, type: string, access: string) =>
      `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`;
    // Score of row r against the lane's key c, after scale, mask and causal masking.
    const maskTerm = (r: number, c: number) =>
      p.mask ? ` + mask[maskOff + min(q0 + ${r}u, u.Lq - 1u) * u.maskRowStride + min(key${c}, u.Lk - 1u) * u.maskColStride]` : '';
    const valid = (r: number, c: number) => `key${c} < u.Lk${p.causal ? ` && key${c} <= q0 + ${r}u` : ''}`;
    return /* wgsl */ `
enable subgroups;

${attentionParamsStruct('tilesQ')}
${decl(0, 'q', 'vec4<f32>', 'read')}
${decl(1, 'k', 'vec4<f32>', 'read')}
${decl(2, 'v', 'vec4<f32>', 'read')}
${p.mask ? decl(3, 'mask', 'f32', 'read') : ''}
${decl(p.mask ? 4 : 3, 'out', 'vec4<f32>', 'read_write')}
${p.stats ? decl(p.mask ? 5 : 4, 'stats', 'vec2<f32>', 'read_write') : ''}
${uniformDecl(bindings.length)}
${linearIndexFn}

@compute @workgroup_size(${SUBGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
  let w = linearWorkgroupIndex(wid, nwg);
  if (w >= u.nWorkgroups) { return; }
  let b = w / u.tilesQ;
  let q0 = (w % u.tilesQ) * ${R}u;
${ATTENTION_MASK_OFFSET}  var negInfBits = 0xff800000u;
  let negInf = bitcast<f32>(negInfBits);
  // In vec4 units: q row i of batch b starts at (b*Lq + i) * D4.
  let qBase = b * u.Lq * ${D4}u;
  let kvBase = b * u.Lk * ${D4}u;
${range(H).map((h) => `  let qRow${h} = qBase + min(q0 + ${8 * h}u + lane, u.Lq - 1u) * ${D4}u;`).join('\n')}
${rows.map((r) => `  var m${r} = negInf;\n  var l${r} = 0.0;\n${range(G).map((g) => `  var o${r}_${g} = vec4<f32>(0.0);`).join('\n')}`).join('\n')}
  for (var kb = 0u; kb < u.Lk; kb += ${KEYS}u) {
${range(4).map((c) => `    let key${c} = kb + lane * 4u + ${c}u;
    let kRow${c} = kvBase + min(key${c}, u.Lk - 1u) * ${D4}u;`).join('\n')}
${rows.map((r) => `    var s${r} = vec4<f32>(0.0);`).join('\n')}
    for (var d4 = 0u; d4 < ${D4}u; d4++) {
${range(H).map((h) => `      let qv${h} = q[qRow${h} + d4];`).join('\n')}
${range(4).map((c) => `      let kv${c} = k[kRow${c} + d4];`).join('\n')}
${range(4).map((dd) => `      let kd${dd} = vec4<f32>(${range(4).map((c) => `kv${c}.${XYZW[dd]}`).join(', ')});`).join('\n')}
${rows.map((r) => {
  const terms = range(4).map((dd) => `subgroupBroadcast(qv${r >> 3}.${XYZW[dd]}, ${r & 7}u) * kd${dd}`);
  return `      s${r} += ${terms.join(' + ')};`;
}).join('\n')}
    }
    // Online softmax per query row; p${'{r}'} holds the probabilities of the lane's 4 keys.
${rows.map((r) => `    let t${r} = vec4<f32>(${range(4).map((c) => `select(negInf, s${r}.${XYZW[c]} * u.scale${maskTerm(r, c)}, ${valid(r, c)})`).join(', ')});
    let mNew${r} = max(m${r}, subgroupMax(max(max(t${r}.x, t${r}.y), max(t${r}.z, t${r}.w))));
    let ref${r} = select(mNew${r}, 0.0, mNew${r} == negInf);
    let p${r} = exp(t${r} - vec4<f32>(ref${r}));
    let decay${r} = exp(m${r} - ref${r});
    l${r} = l${r} * decay${r} + subgroupAdd(p${r}.x + p${r}.y + p${r}.z + p${r}.w);
    m${r} = mNew${r};
${range(G).map((g) => `    o${r}_${g} *= decay${r};`).join('\n')}`).join('\n')}
    // p·v: key kb + 4*src + c belongs to lane src; broadcast its p to every lane.
    for (var c = 0u; c < 4u; c++) {
${rows.map((r) => `      let pc${r} = p${r}[c];`).join('\n')}
${range(SUBGROUP).map((src) => `      let vRow${src} = kvBase + min(kb + ${4 * src}u + c, u.Lk - 1u) * ${D4}u + lane;
${range(G).map((g) => `      let vv${src}_${g} = v[vRow${src} + ${8 * g}u];`).join('\n')}`).join('\n')}
${rows.map((r) => range(G).map((g) => {
  const terms = range(SUBGROUP).map((src) => `subgroupBroadcast(pc${r}, ${src}u) * vv${src}_${g}`);
  return `      o${r}_${g} += ${terms.join(' + ')};`;
}).join('\n')).join('\n')}
    }
  }
${rows.map((r) => `  if (q0 + ${r}u < u.Lq) {
    let inv${r} = select(0.0, 1.0 / l${r}, l${r} > 0.0);
${range(G).map((g) => `    out[qBase + (q0 + ${r}u) * ${D4}u + ${8 * g}u + lane] = o${r}_${g} * inv${r};`).join('\n')}${p.stats ? `
    if (lane == 0u) { stats[b * u.Lq + q0 + ${r}u] = select(vec2<f32>(0.0, ${FLT_MAX}), vec2<f32>(m${r}, log(l${r})), l${r} > 0.0); }` : ''}
  }`).join('\n')}
}
`;
  },
  reference: attentionReference,
};
