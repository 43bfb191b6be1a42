/**
 * conv2d weight gradient as an implicit GEMM, subgroup variant (groups = 1, NCHW, zero padding):
 * the `weight` variant of conv2d.ts (same relation, bindings a, b, out and CPU reference),
 *
 *   W[cb, j] = sum_{n, oy, ox} B[n, cb, oy, ox] * A[n, ca, oy*sH - pH + kh*dH, ox*sW - pW + kw*dW]
 *   with j = (ca*kH + kh)*kW + kw (W's own [bC, aC, kH, kW] layout; reads outside A are 0),
 *
 * i.e. the product B [bC, N*bH*bW] · im2col(A) [N*bH*bW, aC*kH*kW] that never materialises im2col.
 * conv2d's dW is (A = x, B = dOut); convTranspose2d's is (A = dOut, B = x).
 * Same scheme as matmul-sg.ts (see there for why on lavapipe): one workgroup = one subgroup of 8
 * computes ROWS (24) rows cb x 32 columns j; lane l owns columns j0 + 4l .. j0 + 4l + 3 and
 * decodes their (ca, kh, kw) once. The sum runs over images, output rows oy and chunks of 4
 * output columns ox, so no index is divided inside the loop. Per chunk, B's ROWS x 4 block takes
 * ROWS/2 cooperative loads (lane l: row 2q + l/4, pixel ox0 + l%4) handed out with
 * subgroupBroadcast; each lane gathers its 4 columns x 4 pixels of im2col(A) itself.
 * Split-K over images: with `splits` = S > 1 the images are cut into S ranges of
 * ceil(batch / S) and split s writes its partial sums to out[s, cb, j] (S * bC * J floats); the
 * op sums them. Few output tiles (a dW of 32 x 4) would otherwise leave most cores idle.
 *
 * Bindings: a read f32, b read f32, out read_write f32.
 * Uniform `Params` (u32): batch, aC, aH, aW, bC, bH, bW, kH, kW, sH, sW, pH, pW, dH, dW,
 *   J (= aC*kH*kW), tilesN (column tiles), nWorkgroups, tiles (per split), perSplit (images).
 * Dispatch: S * ceil(bC / ROWS) * ceil(J / 32) workgroups of 8, 1-D (folded past 65535).
 * Empty image ranges (S > batch) write zeros.
 * Requires subgroups of exactly 8 (the op checks). Limits: tensors under 2^32 elements.
 * Key: `conv2d:gemm_weight:sg8:r<ROWS>`.
 */
import { type HostArray, type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, u32, uniformDecl } from '../wgsl.js';
import type { Conv2dParams } from './conv2d.js';
import { conv2dReference } from './conv2d.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const SUBGROUP = 8;
const COLS = 4 * SUBGROUP;

export interface Conv2dGemmWeightParams extends Omit<Conv2dParams, 'variant' | 'bias' | 'groups'> {
  /** Rows cb per workgroup (multiple of 2). Default 24. */
  rows?: number;
  /** Image ranges summed separately into out[s] (split-K, see the file head). Default 1. */
  splits?: number;
}

/** Workgroups the op aims for, and the fewest output pixels (K) a split gets. */
const TARGET_WORKGROUPS = 64;
const MIN_SPLIT_PIXELS = 256;

/** Split count for `p` (without splits): enough workgroups, splits of whole images of >= 256 pixels. */
export function conv2dGemmWeightSplits(p: Conv2dGemmWeightParams): number {
  if (p.batch <= 1) return 1;
  const perImage = p.b[1] * p.b[2];
  const byWork = Math.floor((p.batch * perImage) / MIN_SPLIT_PIXELS);
  const want = ceilDiv(TARGET_WORKGROUPS, tiles(p).tiles);
  const splits = Math.max(1, Math.min(p.batch, byWork, want));
  // Equal image ranges: no split left empty.
  return ceilDiv(p.batch, ceilDiv(p.batch, splits));
}

const rowsOf = (p: Conv2dGemmWeightParams): number => p.rows ?? 24;

function tiles(p: Conv2dGemmWeightParams): { J: number; tilesN: number; tiles: number; total: number; perSplit: number } {
  const J = p.a[0] * p.kernel[0] * p.kernel[1];
  const tilesN = ceilDiv(J, COLS);
  const perSplit = ceilDiv(p.batch, p.splits ?? 1);
  const count = ceilDiv(p.b[0], rowsOf(p)) * tilesN;
  return { J, tilesN, tiles: count, total: count * (p.splits ?? 1), perSplit };
}

export const conv2dGemmWeightKernel: KernelSpec<Conv2dGemmWeightParams> = {
  name: 'conv2d',
  key: (p) => `conv2d:gemm_weight:sg${SUBGROUP}:r${rowsOf(p)}`,
  bindings: () => [
    { name: 'a', access: 'read', type: 'f32' },
    { name: 'b', access: 'read', type: 'f32' },
    { name: 'out', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => {
    const t = tiles(p);
    return [
      p.batch, p.a[0], p.a[1], p.a[2], p.b[0], p.b[1], p.b[2],
      p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1],
      t.J, t.tilesN, t.total, t.tiles, t.perSplit,
    ].map(u32);
  },
  workgroupSize: () => SUBGROUP,
  dispatch: (p) => tiles(p).total,
  source: (p) => {
    const R = rowsOf(p);
    if (R % 2 !== 0 || R < 2) throw new Error(`conv2d gemm_weight: rows ${R} must be a positive even number`);
    const slots = range(R / 2);
    const cols = range(4);
    return /* wgsl */ `
enable subgroups;

struct Params {
  batch: u32, aC: u32, aH: u32, aW: u32, bC: u32, bH: u32, bW: u32,
  kH: u32, kW: u32, sH: u32, sW: u32, pH: u32, pW: u32, dH: u32, dW: u32,
  J: u32, tilesN: u32, nWorkgroups: u32, tiles: u32, perSplit: u32,
}
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${uniformDecl(3)}
${linearIndexFn}

@compute @workgroup_size(${SUBGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
  // The workgroup index is uniform, so this early return keeps the subgroup whole.
  let w = linearWorkgroupIndex(wid, nwg);
  if (w >= u.nWorkgroups) { return; }
  let split = w / u.tiles;
  let tile = w % u.tiles;
  let m0 = (tile / u.tilesN) * ${R}u;
  let j0 = (tile % u.tilesN) * ${COLS}u + lane * 4u;
  let nEnd = min(u.batch, (split + 1u) * u.perSplit);
  let taps = u.kH * u.kW;
  let outBase = split * u.bC * u.J;
  let aHW = u.aH * u.aW;
  let bHW = u.bH * u.bW;
  // The lane's 4 columns j: A plane offset and the tap's offset from (oy*sH, ox*sW).
${cols.map((c) => `  let jc${c} = min(j0 + ${c}u, u.J - 1u);
  let aPlane${c} = (jc${c} / taps) * aHW;
  let dy${c} = i32(((jc${c} % taps) / u.kW) * u.dH) - i32(u.pH);
  let dx${c} = i32((jc${c} % u.kW) * u.dW) - i32(u.pW);`).join('\n')}
  // Cooperative slot q: row cb = m0 + 2q + lane/4 of B.
${slots.map((q) => `  let bRow${q} = min(m0 + ${2 * q}u + lane / 4u, u.bC - 1u) * bHW;`).join('\n')}
${range(R).map((r) => `  var acc${r} = vec4<f32>(0.0);`).join('\n')}
  for (var n = split * u.perSplit; n < nEnd; n++) {
    let aImage = n * u.aC * aHW;
    let bImage = n * u.bC * bHW;
    for (var oy = 0u; oy < u.bH; oy++) {
${cols.map((c) => `      let y${c} = i32(oy * u.sH) + dy${c};
      let yOk${c} = y${c} >= 0 && y${c} < i32(u.aH);
      let aRow${c} = aImage + aPlane${c} + u32(clamp(y${c}, 0, i32(u.aH) - 1)) * u.aW;`).join('\n')}
      for (var ox0 = 0u; ox0 < u.bW; ox0 += 4u) {
        let oxL = ox0 + lane % 4u;
        let bAt = bImage + oy * u.bW + min(oxL, u.bW - 1u);
${slots.map((q) => `        let bv${q} = select(0.0, b[bRow${q} + bAt], oxL < u.bW);`).join('\n')}
${range(4).map((kk) => `        let ox${kk} = ox0 + ${kk}u;
        let xBase${kk} = i32(ox${kk} * u.sW);
        let col${kk} = vec4<f32>(${cols.map((c) => `im2col(aRow${c}, yOk${c} && ox${kk} < u.bW, xBase${kk} + dx${c})`).join(', ')});`).join('\n')}
${range(R).map((r) => {
  const q = r >> 1;
  const lane0 = (r & 1) * 4;
  const terms = range(4).map((kk) => `subgroupBroadcast(bv${q}, ${lane0 + kk}u) * col${kk}`);
  return `        acc${r} += ${terms.join(' + ')};`;
}).join('\n')}
      }
    }
  }

${range(R).map((r) => `  if (m0 + ${r}u < u.bC) {
    for (var c = 0u; c < 4u; c++) {
      if (j0 + c < u.J) { out[outBase + (m0 + ${r}u) * u.J + j0 + c] = acc${r}[c]; }
    }
  }`).join('\n')}
}

// A at (row, x) of one plane, or 0 outside A (the address is clamped so the read stays valid).
fn im2col(rowAt: u32, rowOk: bool, x: i32) -> f32 {
  let ok = rowOk && x >= 0 && x < i32(u.aW);
  return select(0.0, a[rowAt + u32(clamp(x, 0, i32(u.aW) - 1))], ok);
}
`;
  },
  reference: conv2dGemmWeightReference,
};

/** CPU reference: conv2d.ts's `weight` reference once per image range, into out[s]. */
function conv2dGemmWeightReference(p: Conv2dGemmWeightParams, [a, b, out]: HostArray[]): void {
  const { perSplit, J } = tiles(p);
  const [aC, aH, aW] = p.a;
  const [bC, bH, bW] = p.b;
  for (let s = 0; s < (p.splits ?? 1); s++) {
    const n0 = Math.min(p.batch, s * perSplit);
    const n1 = Math.min(p.batch, n0 + perSplit);
    const part = out!.subarray(s * bC * J, (s + 1) * bC * J);
    const aPart = a!.subarray(n0 * aC * aH * aW, n1 * aC * aH * aW);
    const bPart = b!.subarray(n0 * bC * bH * bW, n1 * bC * bH * bW);
    conv2dReference({ ...p, batch: n1 - n0, groups: 1, variant: 'weight', bias: false }, [aPart, bPart, part]);
  }
}
