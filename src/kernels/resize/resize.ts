/**
 * Resize family: F.interpolate on NCHW planes (no antialias), PyTorch CPU semantics, and its
 * backward. Each output coordinate o along an axis reads up to four taps of the input axis:
 *   nearest              tap min(floor(o * ratio), in-1)   (legacy 'nearest'; the op layer passes
 *                        ratio 1 when out == in and 0.5 when out == 2*in, PyTorch's special cases)
 *   bilinear, ac=false   src = max(ratio*(o+0.5) - 0.5, 0); i0 = min(floor(src), in-1),
 *                        t = clamp(src - i0, 0, 1); taps i0, min(i0+1, in-1) with 1-t, t
 *   bicubic,  ac=false   src = ratio*(o+0.5) - 0.5 (not clamped); i0, t as above; taps i0-1..i0+2,
 *                        each clamped into [0, in-1], Keys' cubic weights with A = -0.75
 *   align corners        src = ratio * o (the op layer passes ratio = (in-1)/(out-1), or 0)
 * ratio is in/out, or 1/scaleFactor when the scale was given, computed in f32 by the op layer as
 * PyTorch does; all coordinate math is f32 like PyTorch's CPU kernels. The output is the
 * separable sum over taps: sum_j wy_j * (sum_k wx_k * x[ty_j, tx_k]).
 * The gradient variant gathers: each input element walks the outputs whose source coordinate lies
 * within 2.5 pixels of it (plus a margin), recomputes their taps exactly as the forward does and
 * sums wy * wx * dOut over the taps that land on it. Deterministic, no atomics.
 *
 * Bindings: forward: src read f32, out read_write f32; grad: dOut read f32, dIn read_write f32.
 * Uniform `Params`: total, planes, inH, inW, outH, outW: u32, ratioH, ratioW: f32.
 * Dispatch: ceil(total / 64) workgroups of 64, 1-D (total = output elements forward, input
 * elements for the gradient). Key: `resize:<mode>[:ac]:<fwd|grad>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { f32, linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { resizeReference } from './resize.ref.js';

export type ResizeMode = 'nearest' | 'bilinear' | 'bicubic';

export interface ResizeParams {
  mode: ResizeMode;
  /** Source coordinate o * ratio instead of the half-pixel formula (bilinear, bicubic). */
  alignCorners: boolean;
  grad: boolean;
  planes: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  /** f32 ratios (see header). */
  ratioH: number;
  ratioW: number;
}

const WORKGROUP = 64;

export const RESIZE_TAPS: Record<ResizeMode, number> = { nearest: 1, bilinear: 2, bicubic: 4 };

/** Keys' cubic convolution parameter used by PyTorch's bicubic. */
export const CUBIC_A = -0.75;

export function resizeTotal(p: ResizeParams): number {
  return p.grad ? p.planes * p.inH * p.inW : p.planes * p.outH * p.outW;
}

/** WGSL `srcCoord(o, ratio) -> f32` for the mode (nearest uses o * ratio). */
function srcCoordWgsl(p: ResizeParams): string {
  let expr = 'ratio * (f32(o) + 0.5) - 0.5';
  if (p.mode === 'nearest' || p.alignCorners) expr = 'ratio * f32(o)';
  else if (p.mode === 'bilinear') expr = 'max(ratio * (f32(o) + 0.5) - 0.5, 0.0)';
  return `fn srcCoord(o: u32, ratio: f32) -> f32 { return ${expr}; }`;
}

/** WGSL `taps(o, inLen, ratio) -> Taps` for the mode. */
function tapsWgsl(mode: ResizeMode): string {
  switch (mode) {
    case 'nearest':
      return /* wgsl */ `
fn taps(o: u32, inLen: u32, ratio: f32) -> Taps {
  let s = min(u32(floor(srcCoord(o, ratio))), inLen - 1u);
  return Taps(vec4<i32>(i32(s), -1, -1, -1), vec4<f32>(1.0, 0.0, 0.0, 0.0));
}`;
    case 'bilinear':
      return /* wgsl */ `
fn taps(o: u32, inLen: u32, ratio: f32) -> Taps {
  let s = srcCoord(o, ratio);
  let last = i32(inLen) - 1;
  let i0 = min(i32(floor(s)), last);
  let t = clamp(s - f32(i0), 0.0, 1.0);
  let i1 = select(i0, i0 + 1, i0 < last);
  return Taps(vec4<i32>(i0, i1, -1, -1), vec4<f32>(1.0 - t, t, 0.0, 0.0));
}`;
    case 'bicubic':
      return /* wgsl */ `
const A = ${CUBIC_A};
fn cubic1(x: f32) -> f32 { return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0; }
fn cubic2(x: f32) -> f32 { return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A; }
fn taps(o: u32, inLen: u32, ratio: f32) -> Taps {
  let s = srcCoord(o, ratio);
  let last = i32(inLen) - 1;
  let i0 = min(i32(floor(s)), last);
  let t = clamp(s - f32(i0), 0.0, 1.0);
  let idx = vec4<i32>(clamp(i0 - 1, 0, last), clamp(i0, 0, last), clamp(i0 + 1, 0, last), clamp(i0 + 2, 0, last));
  return Taps(idx, vec4<f32>(cubic2(t + 1.0), cubic1(t), cubic1(1.0 - t), cubic2(2.0 - t)));
}`;
  }
}

const FORWARD = /* wgsl */ `
  let ox = i % u.outW;
  let oy = (i / u.outW) % u.outH;
  let plane = i / (u.outW * u.outH);
  let ty = taps(oy, u.inH, u.ratioH);
  let tx = taps(ox, u.inW, u.ratioW);
  let base = plane * u.inH * u.inW;
  var acc = 0.0;
  for (var j = 0; j < NT; j++) {
    let row = base + u32(ty.idx[j]) * u.inW;
    var partial = 0.0;
    for (var k = 0; k < NT; k++) {
      partial += tx.w[k] * src[row + u32(tx.idx[k])];
    }
    acc += ty.w[j] * partial;
  }
  out[i] = acc;`;

const GRAD = /* wgsl */ `
  let ix = i % u.inW;
  let iy = (i / u.inW) % u.inH;
  let plane = i / (u.inW * u.inH);
  let base = plane * u.outH * u.outW;
  let ry = outRange(iy, u.outH, u.ratioH);
  let rx = outRange(ix, u.outW, u.ratioW);
  var acc = 0.0;
  for (var oy = ry.x; oy < ry.y; oy++) {
    let wy = tapWeight(taps(oy, u.inH, u.ratioH), iy);
    if (wy == 0.0) { continue; }
    var partial = 0.0;
    for (var ox = rx.x; ox < rx.y; ox++) {
      let wx = tapWeight(taps(ox, u.inW, u.ratioW), ix);
      partial += wx * dOut[base + oy * u.outW + ox];
    }
    acc += wy * partial;
  }
  dIn[i] = acc;`;

const GRAD_HELPERS = /* wgsl */ `
// Total weight the taps give input index i (taps clamped to a border may repeat an index).
fn tapWeight(t: Taps, i: u32) -> f32 {
  var w = 0.0;
  for (var j = 0; j < NT; j++) {
    if (t.idx[j] == i32(i)) { w += t.w[j]; }
  }
  return w;
}

// Outputs [x, y) that may read input i: srcCoord(o) within 2.5 of i, widened by one each side.
fn outRange(i: u32, outLen: u32, ratio: f32) -> vec2<u32> {
  if (ratio < 1e-6) { return vec2<u32>(0u, outLen); }
  let offset = select(0.0, 0.5 * ratio - 0.5, HALF_PIXEL);
  let lo = floor((f32(i) - 2.5 - offset) / ratio) - 1.0;
  let hi = ceil((f32(i) + 2.5 - offset) / ratio) + 2.0;
  return vec2<u32>(u32(clamp(lo, 0.0, f32(outLen))), u32(clamp(hi, 0.0, f32(outLen))));
}`;

export const resizeKernel: KernelSpec<ResizeParams> = {
  name: 'resize',
  key: (p) => `resize:${p.mode}${p.alignCorners && p.mode !== 'nearest' ? ':ac' : ''}:${p.grad ? 'grad' : 'fwd'}`,
  bindings: (p) => [
    { name: p.grad ? 'dOut' : 'src', access: 'read', type: 'f32' },
    { name: p.grad ? 'dIn' : 'out', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => [
    u32(resizeTotal(p)), u32(p.planes), u32(p.inH), u32(p.inW),
    u32(p.outH), u32(p.outW), f32(p.ratioH), f32(p.ratioW),
  ],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(resizeTotal(p), WORKGROUP),
  source: (p) => {
    const bindings = resizeKernel.bindings(p);
    return /* wgsl */ `
struct Params {
  total: u32, planes: u32, inH: u32, inW: u32,
  outH: u32, outW: u32, ratioH: f32, ratioW: f32,
}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
const NT = ${RESIZE_TAPS[p.mode]};
const HALF_PIXEL = ${p.mode !== 'nearest' && !p.alignCorners};
struct Taps { idx: vec4<i32>, w: vec4<f32> }
${srcCoordWgsl(p)}
${tapsWgsl(p.mode)}
${p.grad ? GRAD_HELPERS : ''}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.total) { return; }
${p.grad ? GRAD : FORWARD}
}
`;
  },
  reference: resizeReference,
};
