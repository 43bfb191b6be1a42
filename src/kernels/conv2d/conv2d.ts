/**
 * 2-D convolution family (NCHW, zero padding, PyTorch cross-correlation), direct loops.
 *
 * Every kernel here is one side of the same relation between an "input side" tensor A
 * [N, aC, aH, aW], an "output side" tensor B [N, bC, bH, bW] and a weight W [bC, aC/groups, kH, kW]:
 *
 *   B[n, cb, oy, ox] += A[n, g*aPerG + cl, oy*sH - pH + kh*dilH, ox*sW - pW + kw*dilW] * W[cb, cl, kh, kw]
 *
 * with g = cb / bPerG (bPerG = bC/groups, aPerG = aC/groups) and out-of-range A reads being zero.
 * Three variants gather that relation towards one of its three tensors:
 *   forward     B from A, W (+ bias[cb]): conv2d forward, and convTranspose2d dX (A = dOut).
 *   transposed  A from B, W (+ bias[ca]): conv2d dX (B = dOut), and convTranspose2d forward
 *               (B = x, whose weight layout [Cin, Cout/groups, kH, kW] is exactly W above).
 *   weight      W from A, B: dW of conv2d (A = x, B = dOut) and of convTranspose2d (A = dOut, B = x).
 * Each thread owns one element of the gathered tensor and loops over everything that reaches it,
 * so the gradients are deterministic (no atomics). The transposed variant walks only the B pixels
 * whose taps can land on its A pixel (about kH*dilH/sH per dim), so k16 s16 costs one tap per dim.
 *
 * Bindings (all f32):
 *   forward:    a read, w read, [bias read], out read_write (B layout)
 *   transposed: b read, w read, [bias read], out read_write (A layout)
 *   weight:     a read, b read, out read_write (W layout)
 * Uniform `Params` (u32 words, 20 with padding): total (elements of the gathered tensor), batch,
 *   groups, aC, aH, aW, bC, bH, bW, kH, kW, sH, sW, pH, pW, dilH, dilW, 3 pad words.
 * Dispatch: ceil(total / 64) workgroups of 64, 1-D (the device folds > 65535 into 2-D).
 * Key: `conv2d:<variant>[:bias]`. Limits: tensors under 2^32 elements; sizes in uniforms.
 * NOTE: direct loops, one output per thread, no tiling; a later issue tunes them.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { conv2dReference } from './conv2d.ref.js';

export type Conv2dVariant = 'forward' | 'transposed' | 'weight';

/** Geometry of the A/B/W relation; the variant decides which tensor is written. */
export interface Conv2dParams {
  variant: Conv2dVariant;
  /** forward/transposed only: add bias[channel of the written tensor]. */
  bias: boolean;
  batch: number;
  groups: number;
  /** A's [C, H, W]. */
  a: readonly [number, number, number];
  /** B's [C, H, W]. */
  b: readonly [number, number, number];
  kernel: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
}

const WORKGROUP = 64;

/** Elements of the tensor the variant writes. */
export function conv2dTotal(p: Conv2dParams): number {
  const [aC, aH, aW] = p.a;
  const [bC, bH, bW] = p.b;
  if (p.variant === 'forward') return p.batch * bC * bH * bW;
  if (p.variant === 'transposed') return p.batch * aC * aH * aW;
  return bC * (aC / p.groups) * p.kernel[0] * p.kernel[1];
}

const PARAMS_STRUCT = /* wgsl */ `
struct Params {
  total: u32, batch: u32, groups: u32,
  aC: u32, aH: u32, aW: u32,
  bC: u32, bH: u32, bW: u32,
  kH: u32, kW: u32, sH: u32, sW: u32, pH: u32, pW: u32, dilH: u32, dilW: u32,
  _p0: u32, _p1: u32, _p2: u32,
}`;

/** First B index o with o*stride + span >= t, i.e. whose window can reach t (t, span >= 0). */
const FIRST_OUT = /* wgsl */ `
fn firstOut(t: u32, span: u32, stride: u32) -> u32 {
  if (t <= span) { return 0u; }
  return (t - span + stride - 1u) / stride;
}`;

/** Thread index prologue shared by the three variants. */
const PROLOGUE = /* wgsl */ `
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.total) { return; }
  let aPerG = u.aC / u.groups;
  let bPerG = u.bC / u.groups;`;

function body(p: Conv2dParams): string {
  const biasTerm = (channel: string) => (p.bias ? `bias[${channel}]` : '0.0');
  switch (p.variant) {
    case 'forward':
      return /* wgsl */ `
  let ox = i % u.bW;
  var r = i / u.bW;
  let oy = r % u.bH;
  r = r / u.bH;
  let cb = r % u.bC;
  let n = r / u.bC;
  let g = cb / bPerG;
  let y0 = i32(oy * u.sH) - i32(u.pH);
  let x0 = i32(ox * u.sW) - i32(u.pW);
  var acc = 0.0;
  for (var cl = 0u; cl < aPerG; cl++) {
    let aPlane = (n * u.aC + g * aPerG + cl) * u.aH;
    let wPlane = (cb * aPerG + cl) * u.kH;
    for (var kh = 0u; kh < u.kH; kh++) {
      let y = y0 + i32(kh * u.dilH);
      if (y < 0 || y >= i32(u.aH)) { continue; }
      let aRow = (aPlane + u32(y)) * u.aW;
      let wRow = (wPlane + kh) * u.kW;
      for (var kw = 0u; kw < u.kW; kw++) {
        let x = x0 + i32(kw * u.dilW);
        if (x < 0 || x >= i32(u.aW)) { continue; }
        acc += a[aRow + u32(x)] * w[wRow + kw];
      }
    }
  }
  out[i] = acc + ${biasTerm('cb')};`;
    case 'transposed':
      // B pixel oy reads A row iy through tap kh when oy*sH + kh*dilH = iy + pH: walk the few oy
      // in range (about kH*dilH/sH of them) and keep those where kh is a whole tap, rather than
      // testing every tap (k16 s16 would test 256 taps to find one).
      return /* wgsl */ `
  let ix = i % u.aW;
  var r = i / u.aW;
  let iy = r % u.aH;
  r = r / u.aH;
  let ca = r % u.aC;
  let n = r / u.aC;
  let g = ca / aPerG;
  let cl = ca % aPerG;
  let ty = iy + u.pH;
  let tx = ix + u.pW;
  let oyEnd = min(ty / u.sH + 1u, u.bH);
  let oxEnd = min(tx / u.sW + 1u, u.bW);
  let bPlaneSize = u.bH * u.bW;
  let wPlaneSize = u.kH * u.kW;
  var acc = 0.0;
  for (var oy = firstOut(ty, (u.kH - 1u) * u.dilH, u.sH); oy < oyEnd; oy++) {
    let dy = ty - oy * u.sH;
    if (dy % u.dilH != 0u) { continue; }
    let kh = dy / u.dilH;
    for (var ox = firstOut(tx, (u.kW - 1u) * u.dilW, u.sW); ox < oxEnd; ox++) {
      let dx = tx - ox * u.sW;
      if (dx % u.dilW != 0u) { continue; }
      let kw = dx / u.dilW;
      var bAt = ((n * u.bC + g * bPerG) * u.bH + oy) * u.bW + ox;
      var wAt = ((g * bPerG * aPerG + cl) * u.kH + kh) * u.kW + kw;
      for (var cbl = 0u; cbl < bPerG; cbl++) {
        acc += b[bAt] * w[wAt];
        bAt += bPlaneSize;
        wAt += aPerG * wPlaneSize;
      }
    }
  }
  out[i] = acc + ${biasTerm('ca')};`;
    case 'weight':
      return /* wgsl */ `
  let kw = i % u.kW;
  var r = i / u.kW;
  let kh = r % u.kH;
  r = r / u.kH;
  let cl = r % aPerG;
  let cb = r / aPerG;
  let ca = (cb / bPerG) * aPerG + cl;
  let dy = i32(kh * u.dilH) - i32(u.pH);
  let dx = i32(kw * u.dilW) - i32(u.pW);
  var acc = 0.0;
  for (var n = 0u; n < u.batch; n++) {
    let aPlane = (n * u.aC + ca) * u.aH;
    let bPlane = (n * u.bC + cb) * u.bH;
    for (var oy = 0u; oy < u.bH; oy++) {
      let y = i32(oy * u.sH) + dy;
      if (y < 0 || y >= i32(u.aH)) { continue; }
      let aRow = (aPlane + u32(y)) * u.aW;
      let bRow = (bPlane + oy) * u.bW;
      for (var ox = 0u; ox < u.bW; ox++) {
        let x = i32(ox * u.sW) + dx;
        if (x < 0 || x >= i32(u.aW)) { continue; }
        acc += a[aRow + u32(x)] * b[bRow + ox];
      }
    }
  }
  out[i] = acc;`;
  }
}

export const conv2dKernel: KernelSpec<Conv2dParams> = {
  name: 'conv2d',
  key: (p) => `conv2d:${p.variant}${p.bias && p.variant !== 'weight' ? ':bias' : ''}`,
  bindings: (p) => {
    const withBias = p.bias && p.variant !== 'weight';
    const inputs =
      p.variant === 'forward' ? ['a', 'w'] : p.variant === 'transposed' ? ['b', 'w'] : ['a', 'b'];
    if (withBias) inputs.push('bias');
    return [
      ...inputs.map((name) => ({ name, access: 'read' as const, type: 'f32' as const })),
      { name: 'out', access: 'read_write', type: 'f32' },
    ];
  },
  uniforms: (p) => [
    u32(conv2dTotal(p)), u32(p.batch), u32(p.groups),
    u32(p.a[0]), u32(p.a[1]), u32(p.a[2]),
    u32(p.b[0]), u32(p.b[1]), u32(p.b[2]),
    u32(p.kernel[0]), u32(p.kernel[1]), u32(p.stride[0]), u32(p.stride[1]),
    u32(p.padding[0]), u32(p.padding[1]), u32(p.dilation[0]), u32(p.dilation[1]),
    u32(0), u32(0), u32(0),
  ],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(conv2dTotal(p), WORKGROUP),
  source: (p) => {
    const bindings = conv2dKernel.bindings(p);
    return /* wgsl */ `
${PARAMS_STRUCT}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
${p.variant === 'transposed' ? FIRST_OUT : ''}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
${PROLOGUE}
${body(p)}
}
`;
  },
  reference: conv2dReference,
};
