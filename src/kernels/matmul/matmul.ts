/**
 * Matmul kernel family: out = alpha * op(A) · op(B) (+ bias), batched with broadcast batch dims.
 *
 * op(X) is X or its transpose over the last two dims, read in place (no copy):
 *   A(m, k) = a[aOff + m * K + k]       (transA false: A stored [.., M, K])
 *           = a[aOff + k * M + m]       (transA true:  A stored [.., K, M])
 *   B(k, n) = b[bOff + k * N + n]       (transB false: B stored [.., K, N])
 *           = b[bOff + n * K + k]       (transB true:  B stored [.., N, K])
 * out is contiguous [batch.., M, N]. For output batch index t (row-major over batchShape) the
 * operand offsets are aOff = sum_d coord_d * aBatchStrides_d (stride 0 = broadcast dim), same for b.
 * bias (variant `bias`) is one f32 per column n, added after the alpha scaling; then the fused
 * epilogue's optional activation and residual add (matmulEpilogueFn, shared by every variant).
 * Variant `scatter` (MatmulScatter): element (m, n) of batch t goes to
 *   out[t*M*N + (m / R0)*S1 + (m % R0)*S0 + (n / (C1*C0))*T2 + ((n / C0) % C1)*T1 + (n % C0)*T0]
 * instead of out[t*M*N + m*N + n]: a separable 2+3-level reindexing that lets a product write an
 * interleaved layout directly (the non-overlapping transposed conv writes [co, py, ky, px, kx]).
 *
 * Bindings: a read f32, b read f32 (f16 with `bF16`: weights stored at f16 precision, widened to
 * f32 as they are loaded; needs `enable f16;`, i.e. the shader-f16 feature), (bias read f32),
 * (residual read f32), out read_write f32. Uniform `Params`:
 *   M, N, K, batchRank, tilesM, tilesN, nWorkgroups: u32, alpha: f32,
 *   batchShape, aBatchStrides, bBatchStrides: array<vec4<u32>, 2> (batch rank <= MAX_RANK = 8),
 *   then (scatter only) sc0 = (R0, S1, S0, C1), sc1 = (C0, T2, T1, T0): vec4<u32>.
 * Geometry: each thread computes a TxT block of outputs (T = 4 or 8, `tile`) from registers only;
 * a workgroup of 8x8 threads covers an 8T x 8T output tile. No workgroup memory: on lavapipe, shared
 * tiles with barriers cost about 2x. Rows/cols past the edge load a clamped (valid) address and
 * are simply not written, so the inner loop has no branches.
 * Dispatch: batchCount * tilesM * tilesN workgroups, 1-D (the device folds counts over 65535 into
 * 2-D; the kernel decodes (batch, tileM, tileN) from the linear workgroup index).
 * Limits: element offsets are u32 (tensors below 2^32 elements). K = 0 writes bias (or zeros).
 * Key: `matmul:f32[:bf16]:<nn|nt|tn|tt>:<bias|plain>[:<activation>][:res][:scatter]:t<T>x<T>:wg8x8`.
 */
import { activationFnWgsl } from '../elementwise/elementwise.ops.js';
import { type BindingDecl, type KernelSpec, type UniformWord, ceilDiv } from '../kernel-spec.js';
import { MAX_RANK, f32, linearIndexFn, rankWords, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { matmulReference } from './matmul.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export interface MatmulParams {
  transA: boolean;
  transB: boolean;
  /** Adds bias[n] to every row (binding after b). */
  bias: boolean;
  M: number;
  N: number;
  K: number;
  /** Output batch dims (empty for a plain 2-D product). */
  batchShape: readonly number[];
  /** Element strides of A's / B's matrices per output batch dim; 0 where that operand broadcasts. */
  aBatchStrides: readonly number[];
  bBatchStrides: readonly number[];
  /** Scale applied to the product (not to the bias); default 1. */
  alpha?: number;
  /** Outputs per thread along M and N (4x4 or 8x8); part of the key. Default 4. */
  tile?: 4 | 8;
  /** Write element (m, n) through this reindexing (see the file head); part of the key. */
  scatter?: MatmulScatter;
  /** B is stored as f16 (weights at f16 precision): loaded as f16, widened to f32; part of the key. */
  bF16?: boolean;
  /** Activation applied after alpha and the bias (fused epilogue); part of the key. */
  activation?: MatmulActivation;
  /** Adds residual[i] (same layout as out, binding after the bias) last; part of the key. */
  residual?: boolean;
}

/** Activations a product's epilogue applies: entries of the elementwise table (same WGSL and reference). */
export const MATMUL_ACTIVATIONS = ['relu', 'gelu_erf', 'gelu_tanh', 'quick_gelu'] as const;
export type MatmulActivation = (typeof MATMUL_ACTIVATIONS)[number];

/**
 * WGSL `fn epilogue(acc: f32, col: u32, i: u32) -> f32` shared by the matmul variants: the value
 * stored at out[i] for a product sum acc in column col, i.e.
 *   residual[i] + act(alpha * acc + bias[col])   (each part only where the variant has it).
 * Fusing them saves a pass over the output per part (a CLIP MLP's quick_gelu, a block's residual add).
 */
export function matmulEpilogueFn(p: MatmulParams): string {
  if (p.residual && p.scatter) throw new Error('matmul: a residual add cannot be fused with a scatter output');
  return `${p.activation ? activationFnWgsl(p.activation) : ''}
fn epilogue(acc: f32, col: u32, i: u32) -> f32 {
  let a = u.alpha * acc${p.bias ? ' + bias[col]' : ''};
  return ${p.activation ? 'activate(a)' : 'a'}${p.residual ? ' + residual[i]' : ''};
}`;
}

/** out offset of (m, n) = (m / R0)*S1 + (m % R0)*S0 + (n / (C1*C0))*T2 + ((n / C0) % C1)*T1 + (n % C0)*T0. */
export interface MatmulScatter {
  R0: number;
  S1: number;
  S0: number;
  C1: number;
  C0: number;
  T2: number;
  T1: number;
  T0: number;
}

/** Offset of output element (m, n) within its batch matrix. */
export function matmulOutOffset(p: MatmulParams, m: number, n: number): number {
  const s = p.scatter;
  if (!s) return m * p.N + n;
  return (
    Math.floor(m / s.R0) * s.S1 + (m % s.R0) * s.S0 +
    Math.floor(n / (s.C1 * s.C0)) * s.T2 + (Math.floor(n / s.C0) % s.C1) * s.T1 + (n % s.C0) * s.T0
  );
}

/**
 * WGSL: the element offsets aOff / bOff of batch matrix `batch` in a and b, from the uniform
 * batchShape and per-operand batch strides (broadcast dims have stride 0). Shared by the matmul
 * variants.
 */
export const MATMUL_BATCH_OFFSETS = `  var aOff = 0u;
  var bOff = 0u;
  var rem = batch;
  for (var d = i32(u.batchRank) - 1; d >= 0; d--) {
    let du = u32(d);
    let extent = u.batchShape[du / 4u][du % 4u];
    let coord = rem % extent;
    rem = rem / extent;
    aOff += coord * u.aBatchStrides[du / 4u][du % 4u];
    bOff += coord * u.bBatchStrides[du / 4u][du % 4u];
  }
`;

/** Uniform words of the scatter variant (after the batch arrays). */
export function matmulScatterWords(p: MatmulParams): UniformWord[] {
  const s = p.scatter;
  return s ? [s.R0, s.S1, s.S0, s.C1, s.C0, s.T2, s.T1, s.T0].map(u32) : [];
}

/** Params struct shared by the matmul kernels. */
export function matmulParamsStruct(p: MatmulParams): string {
  return `
struct Params {
  M: u32, N: u32, K: u32, batchRank: u32,
  tilesM: u32, tilesN: u32, nWorkgroups: u32, alpha: f32,
  batchShape: array<vec4<u32>, ${MAX_RANK / 4}>,
  aBatchStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  bBatchStrides: array<vec4<u32>, ${MAX_RANK / 4}>,${p.scatter ? '\n  sc0: vec4<u32>,\n  sc1: vec4<u32>,' : ''}
}

fn outOffset(row: u32, col: u32) -> u32 {
${p.scatter
    ? `  let colHi = col / u.sc1.x;
  return (row / u.sc0.x) * u.sc0.y + (row % u.sc0.x) * u.sc0.z +
         (colHi / u.sc0.w) * u.sc1.y + (colHi % u.sc0.w) * u.sc1.z + (col % u.sc1.x) * u.sc1.w;`
    : '  return row * u.N + col;'}
}`;
}

/** Key part naming the element types: `f32`, or `f32:bf16` when B is stored as f16. */
export function matmulDtypeTag(p: MatmulParams): string {
  return p.bF16 ? 'f32:bf16' : 'f32';
}

/** Key part naming the epilogue (bias, activation, residual) and output layout. */
export function matmulEpilogueTag(p: MatmulParams): string {
  return `${p.bias ? 'bias' : 'plain'}${p.activation ? `:${p.activation}` : ''}${p.residual ? ':res' : ''}${p.scatter ? ':scatter' : ''}`;
}

/** Storage bindings of every matmul variant: a, b, (bias), (residual), out. */
export function matmulBindings(p: MatmulParams): BindingDecl[] {
  return [
    { name: 'a', access: 'read', type: 'f32' },
    { name: 'b', access: 'read', type: p.bF16 ? 'f16' : 'f32' },
    ...(p.bias ? [{ name: 'bias', access: 'read' as const, type: 'f32' as const }] : []),
    ...(p.residual ? [{ name: 'residual', access: 'read' as const, type: 'f32' as const }] : []),
    { name: 'out', access: 'read_write', type: 'f32' },
  ];
}

const WG_X = 8; // threads along N
const WG_Y = 8; // threads along M
const tileOf = (p: MatmulParams): number => p.tile ?? 4;

export function matmulBatchCount(p: MatmulParams): number {
  let n = 1;
  for (const d of p.batchShape) n *= d;
  return n;
}

function tiles(p: MatmulParams): { tilesM: number; tilesN: number; total: number } {
  const tilesM = ceilDiv(p.M, tileOf(p) * WG_Y);
  const tilesN = ceilDiv(p.N, tileOf(p) * WG_X);
  return { tilesM, tilesN, total: matmulBatchCount(p) * tilesM * tilesN };
}

/**
 * WGSL head of the variants that bind plain arrays (matmul.ts, matmul-shared.ts): the f16
 * extension where B is f16, Params, the storage and uniform bindings, the index and epilogue fns.
 */
export function matmulPlainHeader(p: MatmulParams): string {
  const bindings = matmulBindings(p);
  return `${p.bF16 ? '\nenable f16;' : ''}
${matmulParamsStruct(p)}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
${matmulEpilogueFn(p)}`;
}

/** Key part naming the operand layouts: nn, nt, tn or tt. */
export const matmulTransTag = (p: MatmulParams): string => `${p.transA ? 't' : 'n'}${p.transB ? 't' : 'n'}`;

/** Uniform words of every matmul variant (the Params struct's order), for its own tile counts. */
export function matmulUniformWords(p: MatmulParams, t: { tilesM: number; tilesN: number; total: number }): UniformWord[] {
  return [
    u32(p.M), u32(p.N), u32(p.K), u32(p.batchShape.length),
    u32(t.tilesM), u32(t.tilesN), u32(t.total), f32(p.alpha ?? 1),
    ...rankWords(p.batchShape), ...rankWords(p.aBatchStrides), ...rankWords(p.bBatchStrides),
    ...matmulScatterWords(p),
  ];
}

/**
 * WGSL: the linear workgroup index w, leaving when past the launch (w is the same for the whole
 * workgroup, so this return keeps barriers and subgroups uniform), and w's batch and tile t.
 */
export const MATMUL_TILE_INDEX = `  let w = linearWorkgroupIndex(wid, nwg);
  if (w >= u.nWorkgroups) { return; }
  let tilesPerBatch = u.tilesM * u.tilesN;
  let batch = w / tilesPerBatch;
  let t = w % tilesPerBatch;
`;

export const matmulKernel: KernelSpec<MatmulParams> = {
  name: 'matmul',
  key: (p) => `matmul:${matmulDtypeTag(p)}:${matmulTransTag(p)}:${matmulEpilogueTag(p)}:t${tileOf(p)}x${tileOf(p)}:wg${WG_X}x${WG_Y}`,
  bindings: matmulBindings,
  uniforms: (p) => matmulUniformWords(p, tiles(p)),
  workgroupSize: () => WG_X * WG_Y,
  dispatch: (p) => tiles(p).total,
  source: (p) => {
    // Per-k address steps and the 4 row / column base addresses, for each transpose variant.
    const aRows = (rows: string) => (p.transA ? `aOff + ${rows}` : `aOff + ${rows} * u.K`);
    const aStep = p.transA ? 'u.M' : '1u';
    const bCols = (cols: string) => (p.transB ? `bOff + ${cols} * u.K` : `bOff + ${cols}`);
    const bStep = p.transB ? '1u' : 'u.N';
    // T x T outputs per thread, kept as T rows of Q = T/4 vec4 accumulators (unrolled below).
    const T = tileOf(p);
    const Q = T / 4;
    // An f16 B (array<f16>) is widened as it is loaded; all arithmetic stays f32.
    const bVec = (v: string) => (p.bF16 ? `vec4<f32>(vec4<f16>(${v}))` : `vec4<f32>(${v})`);
    return /* wgsl */ `${matmulPlainHeader(p)}

fn storeRow(base: u32, row: u32, col0: u32, v: vec4<f32>) {
  if (row >= u.M) { return; }
  for (var j = 0u; j < 4u; j++) {
    let col = col0 + j;
    if (col < u.N) {
      let i = base + outOffset(row, col);
      out[i] = epilogue(v[j], col, i);
    }
  }
}

@compute @workgroup_size(${WG_X * WG_Y})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
${MATMUL_TILE_INDEX}  let row0 = (t / u.tilesN) * ${T * WG_Y}u + (lid / ${WG_X}u) * ${T}u;
  let col0 = (t % u.tilesN) * ${T * WG_X}u + (lid % ${WG_X}u) * ${T}u;
  if (row0 >= u.M || col0 >= u.N) { return; }

${MATMUL_BATCH_OFFSETS}
  // Edge rows/cols read a clamped, valid address; their results are never stored.
${range(Q).map((q) => `  let rows${q} = min(vec4<u32>(row0 + ${4 * q}u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.M - 1u));
  let cols${q} = min(vec4<u32>(col0 + ${4 * q}u) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.N - 1u));
  var ai${q} = ${aRows(`rows${q}`)};
  var bi${q} = ${bCols(`cols${q}`)};`).join('\n')}
  let aStep = vec4<u32>(${aStep});
  let bStep = vec4<u32>(${bStep});
${range(T).flatMap((r) => range(Q).map((q) => `  var acc${r}_${q} = vec4<f32>(0.0);`)).join('\n')}
  for (var k = 0u; k < u.K; k++) {
${range(Q).map((q) => `    let av${q} = vec4<f32>(a[ai${q}.x], a[ai${q}.y], a[ai${q}.z], a[ai${q}.w]);
    let bv${q} = ${bVec(`b[bi${q}.x], b[bi${q}.y], b[bi${q}.z], b[bi${q}.w]`)};`).join('\n')}
${range(T).flatMap((r) => range(Q).map((q) => `    acc${r}_${q} += av${Math.floor(r / 4)}.${'xyzw'[r % 4]} * bv${q};`)).join('\n')}
${range(Q).map((q) => `    ai${q} += aStep;
    bi${q} += bStep;`).join('\n')}
  }

  let base = batch * u.M * u.N;
${range(T).flatMap((r) => range(Q).map((q) => `  storeRow(base, row0 + ${r}u, col0 + ${4 * q}u, acc${r}_${q});`)).join('\n')}
}
`;
  },
  reference: matmulReference,
};
