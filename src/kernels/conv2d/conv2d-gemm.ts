/**
 * conv2d forward as an implicit GEMM, subgroup variant (groups = 1, NCHW, zero padding):
 *
 *   out[n, co, pix] = bias[co] + sum_{kh, kw, ci} X[n, ci, iy, ix] * Wt[ci*kH*kW + kh*kW + kw, co]
 *   with pix = oy*Wo + ox, iy = oy*sH - pH + kh*dH, ix = ox*sW - pW + kw*dW (reads outside X are 0)
 *
 * i.e. a product im2col(X)ᵀ [Ho*Wo, Cin*kH*kW] · Wt [Cin*kH*kW, Cout] that never materialises
 * im2col. Wt is the weight W [Cout, Cin, kH, kW] viewed as [Cout, Cin*kH*kW] and transposed (the op
 * makes it: a plain 2-D transpose, which the 4x4 tile copy kernel does fast), so each lane reads its
 * output channels as one vec4.
 * Same scheme as matmul-sg.ts (see there for why on lavapipe): one workgroup = one subgroup of 8;
 * a workgroup computes ROWS pixels x 32 channels; lane l owns channels co0 + 4l .. co0 + 4l + 3.
 * (More channels per lane, as the large matmul tile has, measured slower here.)
 * The ROWS x 4 block of im2col values of a chunk (4 input channels at one tap) takes ROWS/2
 * cooperative loads (lane l: pixel 2q + l/4, channel ci0 + l%4) handed out with subgroupBroadcast.
 * Taps (kh, kw) are the outer loop, so each lane recomputes its pixels' input positions and
 * padding masks once per tap, not per load.
 *
 * `flip` reads the taps of Wt in reverse order (tap (kh, kw) uses Wt's rows of
 * (kH-1-kh, kW-1-kw)): with stride 1 that makes this kernel conv2d's input gradient, see
 * conv2dGemmFlipPadding.
 *
 * Bindings: x read f32, wt read f32 (vec4<f32> when Cout % 4 == 0), (bias read f32), out read_write f32.
 * Uniform `Params` (u32): batch, Cin, H, W, Cout, Ho, Wo, kH, kW, sH, sW, pH, pW, dH, dW,
 *   tilesM (pixel tiles per image), tilesN (channel tiles), nWorkgroups, 2 pad words.
 * Dispatch: batch * tilesM * tilesN workgroups of 8, 1-D (folded past 65535 by the device).
 * Requires subgroups of exactly 8 (the op checks). Limits: tensors under 2^32 elements.
 * `activation` (relu, gelu_erf, gelu_tanh, quick_gelu) is applied to each output after the bias.
 * Key: `conv2d:gemm:sg8:r<ROWS>:<v4|s>[:bias][:flip][:<activation>]`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, u32, uniformDecl } from '../wgsl.js';
import { activationFnWgsl } from '../elementwise/elementwise.ops.js';
import type { MatmulActivation } from '../matmul/matmul.js';
import { conv2dGemmReference } from './conv2d-gemm.ref.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const SUBGROUP = 8;
const COLS = 4 * SUBGROUP;

export interface Conv2dGemmParams {
  bias: boolean;
  batch: number;
  /** X's [Cin, H, W]. */
  a: readonly [number, number, number];
  /** out's [Cout, Ho, Wo]. */
  b: readonly [number, number, number];
  kernel: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
  /** Output pixels per workgroup (multiple of 2). Default 24. */
  rows?: number;
  /** Read the weight taps in reverse order (see the file head). */
  flip?: boolean;
  /** Applied to each output (after the bias) before it is stored. */
  activation?: MatmulActivation;
}

/**
 * The gradient of a stride-1 conv2d (padding p, dilation d, kernel k per dim) with respect to its
 * input is the flipped-tap convolution of dOut with padding d*(k-1) - p and the same dilation,
 * over Wt = W [Cout, Cin, kH, kW] permuted to [Cout, kH, kW, Cin]: this returns that padding, or
 * null where it would be negative (p > d*(k-1)) and the direct kernel must run.
 */
export function conv2dGemmFlipPadding(
  kernel: readonly [number, number],
  padding: readonly [number, number],
  dilation: readonly [number, number],
): [number, number] | null {
  const ph = dilation[0] * (kernel[0] - 1) - padding[0];
  const pw = dilation[1] * (kernel[1] - 1) - padding[1];
  return ph >= 0 && pw >= 0 ? [ph, pw] : null;
}

const rowsOf = (p: Conv2dGemmParams): number => p.rows ?? 24;
const vecW = (p: Conv2dGemmParams): boolean => p.b[0] % 4 === 0;

function tiles(p: Conv2dGemmParams): { tilesM: number; tilesN: number; total: number } {
  const tilesM = ceilDiv(p.b[1] * p.b[2], rowsOf(p));
  const tilesN = ceilDiv(p.b[0], COLS);
  return { tilesM, tilesN, total: p.batch * tilesM * tilesN };
}

export const conv2dGemmKernel: KernelSpec<Conv2dGemmParams> = {
  name: 'conv2d',
  key: (p) =>
    `conv2d:gemm:sg${SUBGROUP}:r${rowsOf(p)}:${vecW(p) ? 'v4' : 's'}${p.bias ? ':bias' : ''}${p.flip ? ':flip' : ''}` +
    `${p.activation ? `:${p.activation}` : ''}`,
  bindings: (p) => [
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'wt', access: 'read', type: 'f32' },
    ...(p.bias ? [{ name: 'bias', access: 'read' as const, type: 'f32' as const }] : []),
    { name: 'out', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => {
    const t = tiles(p);
    return [
      p.batch, p.a[0], p.a[1], p.a[2], p.b[0], p.b[1], p.b[2],
      p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1],
      t.tilesM, t.tilesN, t.total, 0, 0,
    ].map(u32);
  },
  workgroupSize: () => SUBGROUP,
  dispatch: (p) => tiles(p).total,
  source: (p) => {
    const R = rowsOf(p);
    if (R % 2 !== 0 || R < 2) throw new Error(`conv2d gemm: rows ${R} must be a positive even number`);
    const v4 = vecW(p);
    const slots = range(R / 2);
    const bindings = conv2dGemmKernel.bindings(p);
    const store = (value: string) => (p.activation ? `activate(${value})` : value);
    const decl = (i: number, name: string, type: string, access: string) =>
      `@group(0) @binding(${i}) var<storage, ${access}> ${name}: array<${type}>;`;
    const wLoad = (cc: number) => {
      const row = `(min(ci0 + ${cc}u, u.Cin - 1u) * kTaps + tap) * u.Cout`;
      return v4
        ? `      let w${cc} = wt[(${row} + co) / 4u];`
        : `      let w${cc} = vec4<f32>(${range(4).map((j) => `wt[${row} + coS${j}]`).join(', ')});`;
    };
    return /* wgsl */ `
enable subgroups;

struct Params {
  batch: u32, Cin: u32, H: u32, W: u32, Cout: u32, Ho: u32, Wo: u32,
  kH: u32, kW: u32, sH: u32, sW: u32, pH: u32, pW: u32, dH: u32, dW: u32,
  tilesM: u32, tilesN: u32, nWorkgroups: u32, _p0: u32, _p1: u32,
}
${decl(0, 'x', 'f32', 'read')}
${decl(1, 'wt', v4 ? 'vec4<f32>' : 'f32', 'read')}
${p.bias ? decl(2, 'bias', 'f32', 'read') : ''}
${decl(bindings.length - 1, 'out', 'f32', 'read_write')}
${uniformDecl(bindings.length)}
${linearIndexFn}
${p.activation ? activationFnWgsl(p.activation) : ''}

@compute @workgroup_size(${SUBGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
  let w = linearWorkgroupIndex(wid, nwg);
  if (w >= u.nWorkgroups) { return; }
  let perImage = u.tilesM * u.tilesN;
  let n = w / perImage;
  let t = w % perImage;
  let HWo = u.Ho * u.Wo;
  let HW = u.H * u.W;
  // Consecutive workgroups share one channel tile (one slice of wt, reused from cache).
  let m0 = (t % u.tilesM) * ${R}u;
  let co0 = (t / u.tilesM) * ${COLS}u + lane * 4u;
  let kTaps = u.kH * u.kW;
  // Cout % 4 == 0 for vec4 weights: the lane's 4 channels are all in range or all out of range.
  let co = ${v4 ? 'min(co0, u.Cout - 4u)' : 'co0'};
${v4 ? '' : range(4).map((j) => `  let coS${j} = min(co0 + ${j}u, u.Cout - 1u);`).join('\n')}
  let xBase = n * u.Cin * HW;
  let ciLane = lane % 4u;
  // Cooperative slot q: pixel m0 + 2q + lane/4.
${slots.map((q) => `  let pix${q} = min(m0 + ${2 * q}u + lane / 4u, HWo - 1u);
  let iy${q} = i32((pix${q} / u.Wo) * u.sH) - i32(u.pH);
  let ix${q} = i32((pix${q} % u.Wo) * u.sW) - i32(u.pW);`).join('\n')}
${range(R).map((r) => `  var acc${r} = vec4<f32>(0.0);`).join('\n')}
  for (var kh = 0u; kh < u.kH; kh++) {
    for (var kw = 0u; kw < u.kW; kw++) {
      let tap = ${p.flip ? '(kTaps - 1u - (kh * u.kW + kw))' : '(kh * u.kW + kw)'};
${slots.map((q) => `      let y${q} = iy${q} + i32(kh * u.dH);
      let x${q} = ix${q} + i32(kw * u.dW);
      let ok${q} = y${q} >= 0 && y${q} < i32(u.H) && x${q} >= 0 && x${q} < i32(u.W);
      let at${q} = xBase + select(0u, u32(y${q}) * u.W + u32(x${q}), ok${q});`).join('\n')}
      for (var ci0 = 0u; ci0 < u.Cin; ci0 += 4u) {
        let ci = ci0 + ciLane;
        let ciOk = ci < u.Cin;
        let ciAt = min(ci, u.Cin - 1u) * HW;
${slots.map((q) => `        let av${q} = select(0.0, x[at${q} + ciAt], ok${q} && ciOk);`).join('\n')}
${range(4).map((cc) => '  ' + wLoad(cc)).join('\n')}
${range(R).map((r) => {
  const q = r >> 1;
  const lane0 = (r & 1) * 4;
  const terms = range(4).map((cc) => `subgroupBroadcast(av${q}, ${lane0 + cc}u) * w${cc}`);
  return `        acc${r} += ${terms.join(' + ')};`;
}).join('\n')}
      }
    }
  }

  let outBase = n * u.Cout * HWo;
${range(R).map((r) => `  if (m0 + ${r}u < HWo) {
    for (var j = 0u; j < 4u; j++) {
      let c = co0 + j;
      if (c < u.Cout) { out[outBase + c * HWo + m0 + ${r}u] = ${store(`acc${r}[j]${p.bias ? ' + bias[c]' : ''}`)}; }
    }
  }`).join('\n')}
}
`;
  },
  reference: conv2dGemmReference,
};
