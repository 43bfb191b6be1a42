/**
 * 2-D pooling family (NCHW, each of the N*C planes pooled independently), PyTorch semantics:
 *   avg            out[p, oy, ox] = sum of the window / divisor. Window rows [oy*sH - pH, +kH) cut to
 *                  [.., H + pH) give poolSize; then cut to [0, H). divisor = countIncludePad ? poolSize
 *                  : number of input elements in the window (avg_pool2d, incl. ceil_mode windows).
 *   max            out = max of the window rows oy*sH - pH + kh*dilH (and columns likewise), skipping
 *                  positions outside the input (-inf padding); idx = y*W + x of the first maximum (a NaN
 *                  wins, as in PyTorch), an index within the plane like max_pool2d's indices.
 *   adaptive_avg   bins rows [floor(oy*H/Ho), ceil((oy+1)*H/Ho)) and columns likewise, averaged.
 * Backward variants gather from the output: each input element sums dOut over the windows that
 * contain it (avg: dOut / divisor; max: only where idx names it; adaptive: dOut / bin size).
 * Deterministic, no atomics.
 *
 * Bindings:
 *   avg, adaptive_avg:           src read f32, out read_write f32
 *   max:                         src read f32, out read_write f32, idx read_write i32
 *   avg_grad, adaptive_avg_grad: dOut read f32, dIn read_write f32
 *   max_grad:                    dOut read f32, idx read i32, dIn read_write f32
 * Uniform `Params` (16 u32): total (elements written), planes, inH, inW, outH, outW, kH, kW, sH, sW,
 *   pH, pW, dilH, dilW, countIncludePad, pad word.
 * Dispatch: ceil(total / 64) workgroups of 64, 1-D (folded into 2-D over 65535 by the device).
 * Key: `pool:<variant>`. The op layer checks PyTorch's limits (pad <= kernel/2, last window starts
 * inside the input or its left padding), so every avg window holds at least one input element. A
 * dilated max window that only covers padding yields -inf with idx -1 and routes no gradient.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { poolReference } from './pool.ref.js';

export type PoolVariant = 'avg' | 'avg_grad' | 'max' | 'max_grad' | 'adaptive_avg' | 'adaptive_avg_grad';

export interface PoolParams {
  variant: PoolVariant;
  /** N * C. */
  planes: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  /** Window geometry (unused by the adaptive variants). */
  kernel: readonly [number, number];
  stride: readonly [number, number];
  padding: readonly [number, number];
  dilation: readonly [number, number];
  countIncludePad: boolean;
}

const WORKGROUP = 64;

export const isPoolGrad = (v: PoolVariant): boolean => v.endsWith('_grad');

/** Elements written: the output for forward variants, the input for gradients. */
export function poolTotal(p: PoolParams): number {
  return isPoolGrad(p.variant) ? p.planes * p.inH * p.inW : p.planes * p.outH * p.outW;
}

const PARAMS_STRUCT = /* wgsl */ `
struct Params {
  total: u32, planes: u32, inH: u32, inW: u32,
  outH: u32, outW: u32, kH: u32, kW: u32,
  sH: u32, sW: u32, pH: u32, pW: u32,
  dilH: u32, dilW: u32, countIncludePad: u32, _p0: u32,
}`;

const HELPERS = /* wgsl */ `
// avg_pool2d window of output (oy, ox): clamped bounds [y0, y1) x [x0, x1) and the divisor.
struct AvgWindow { y0: i32, y1: i32, x0: i32, x1: i32, divisor: f32 }
fn avgWindow(oy: u32, ox: u32) -> AvgWindow {
  var y0 = i32(oy * u.sH) - i32(u.pH);
  var x0 = i32(ox * u.sW) - i32(u.pW);
  var y1 = min(y0 + i32(u.kH), i32(u.inH + u.pH));
  var x1 = min(x0 + i32(u.kW), i32(u.inW + u.pW));
  let poolSize = (y1 - y0) * (x1 - x0);
  y0 = max(y0, 0);
  x0 = max(x0, 0);
  y1 = min(y1, i32(u.inH));
  x1 = min(x1, i32(u.inW));
  let count = select((y1 - y0) * (x1 - x0), poolSize, u.countIncludePad != 0u);
  return AvgWindow(y0, y1, x0, x1, f32(count));
}

// First output whose window [o*stride - pad, o*stride - pad + span) can contain input i.
fn firstWindow(i: u32, pad: u32, span: u32, stride: u32) -> u32 {
  let t = i32(i + pad) - i32(span) + 1;
  if (t <= 0) { return 0u; }
  return (u32(t) + stride - 1u) / stride;
}

// One past the last output whose window can contain input i.
fn endWindow(i: u32, pad: u32, stride: u32, outLen: u32) -> u32 {
  return min((i + pad) / stride + 1u, outLen);
}

// Adaptive bins: [floor(o*inLen/outLen), ceil((o+1)*inLen/outLen)).
fn binStart(o: u32, inLen: u32, outLen: u32) -> u32 { return (o * inLen) / outLen; }
fn binEnd(o: u32, inLen: u32, outLen: u32) -> u32 { return ((o + 1u) * inLen + outLen - 1u) / outLen; }`;

/** Splits i into (plane, row, col) over a [planes, rows, cols] tensor. */
const split = (rows: string, cols: string, r: string, c: string) => /* wgsl */ `
  let ${c} = i % u.${cols};
  let ${r} = (i / u.${cols}) % u.${rows};
  let plane = i / (u.${cols} * u.${rows});`;

function body(variant: PoolVariant): string {
  switch (variant) {
    case 'avg':
      return /* wgsl */ `${split('outH', 'outW', 'oy', 'ox')}
  let win = avgWindow(oy, ox);
  let base = plane * u.inH * u.inW;
  var acc = 0.0;
  for (var y = win.y0; y < win.y1; y++) {
    for (var x = win.x0; x < win.x1; x++) {
      acc += src[base + u32(y) * u.inW + u32(x)];
    }
  }
  out[i] = acc / win.divisor;`;
    case 'avg_grad':
      return /* wgsl */ `${split('inH', 'inW', 'iy', 'ix')}
  let base = plane * u.outH * u.outW;
  var acc = 0.0;
  for (var oy = firstWindow(iy, u.pH, u.kH, u.sH); oy < endWindow(iy, u.pH, u.sH, u.outH); oy++) {
    for (var ox = firstWindow(ix, u.pW, u.kW, u.sW); ox < endWindow(ix, u.pW, u.sW, u.outW); ox++) {
      let win = avgWindow(oy, ox);
      let inside = i32(iy) >= win.y0 && i32(iy) < win.y1 && i32(ix) >= win.x0 && i32(ix) < win.x1;
      if (inside) { acc += dOut[base + oy * u.outW + ox] / win.divisor; }
    }
  }
  dIn[i] = acc;`;
    case 'max':
      return /* wgsl */ `${split('outH', 'outW', 'oy', 'ox')}
  let base = plane * u.inH * u.inW;
  let y0 = i32(oy * u.sH) - i32(u.pH);
  let x0 = i32(ox * u.sW) - i32(u.pW);
  var inf_bits = 0x7f800000u;
  var best = -bitcast<f32>(inf_bits);
  var bestIdx = -1;
  for (var kh = 0u; kh < u.kH; kh++) {
    let y = y0 + i32(kh * u.dilH);
    if (y < 0 || y >= i32(u.inH)) { continue; }
    for (var kw = 0u; kw < u.kW; kw++) {
      let x = x0 + i32(kw * u.dilW);
      if (x < 0 || x >= i32(u.inW)) { continue; }
      let v = src[base + u32(y) * u.inW + u32(x)];
      if (bestIdx < 0 || v > best || v != v) {
        best = v;
        bestIdx = y * i32(u.inW) + x;
      }
    }
  }
  out[i] = best;
  idx[i] = bestIdx;`;
    case 'max_grad':
      return /* wgsl */ `${split('inH', 'inW', 'iy', 'ix')}
  let base = plane * u.outH * u.outW;
  let want = i32(iy * u.inW + ix);
  let spanH = (u.kH - 1u) * u.dilH + 1u;
  let spanW = (u.kW - 1u) * u.dilW + 1u;
  var acc = 0.0;
  for (var oy = firstWindow(iy, u.pH, spanH, u.sH); oy < endWindow(iy, u.pH, u.sH, u.outH); oy++) {
    for (var ox = firstWindow(ix, u.pW, spanW, u.sW); ox < endWindow(ix, u.pW, u.sW, u.outW); ox++) {
      let o = base + oy * u.outW + ox;
      if (idx[o] == want) { acc += dOut[o]; }
    }
  }
  dIn[i] = acc;`;
    case 'adaptive_avg':
      return /* wgsl */ `${split('outH', 'outW', 'oy', 'ox')}
  let base = plane * u.inH * u.inW;
  let y0 = binStart(oy, u.inH, u.outH);
  let y1 = binEnd(oy, u.inH, u.outH);
  let x0 = binStart(ox, u.inW, u.outW);
  let x1 = binEnd(ox, u.inW, u.outW);
  var acc = 0.0;
  for (var y = y0; y < y1; y++) {
    for (var x = x0; x < x1; x++) {
      acc += src[base + y * u.inW + x];
    }
  }
  out[i] = acc / f32((y1 - y0) * (x1 - x0));`;
    case 'adaptive_avg_grad':
      return /* wgsl */ `${split('inH', 'inW', 'iy', 'ix')}
  let base = plane * u.outH * u.outW;
  let oyEnd = min(((iy + 1u) * u.outH + u.inH - 1u) / u.inH, u.outH);
  let oxEnd = min(((ix + 1u) * u.outW + u.inW - 1u) / u.inW, u.outW);
  var acc = 0.0;
  for (var oy = (iy * u.outH) / u.inH; oy < oyEnd; oy++) {
    let y0 = binStart(oy, u.inH, u.outH);
    let y1 = binEnd(oy, u.inH, u.outH);
    if (iy < y0 || iy >= y1) { continue; }
    for (var ox = (ix * u.outW) / u.inW; ox < oxEnd; ox++) {
      let x0 = binStart(ox, u.inW, u.outW);
      let x1 = binEnd(ox, u.inW, u.outW);
      if (ix < x0 || ix >= x1) { continue; }
      acc += dOut[base + oy * u.outW + ox] / f32((y1 - y0) * (x1 - x0));
    }
  }
  dIn[i] = acc;`;
  }
}

export const poolKernel: KernelSpec<PoolParams> = {
  name: 'pool',
  key: (p) => `pool:${p.variant}`,
  bindings: (p) => {
    const f = (name: string, access: 'read' | 'read_write' = 'read') => ({ name, access, type: 'f32' as const });
    switch (p.variant) {
      case 'max':
        return [f('src'), f('out', 'read_write'), { name: 'idx', access: 'read_write', type: 'i32' }];
      case 'max_grad':
        return [f('dOut'), { name: 'idx', access: 'read', type: 'i32' }, f('dIn', 'read_write')];
      case 'avg_grad':
      case 'adaptive_avg_grad':
        return [f('dOut'), f('dIn', 'read_write')];
      default:
        return [f('src'), f('out', 'read_write')];
    }
  },
  uniforms: (p) => [
    u32(poolTotal(p)), u32(p.planes), u32(p.inH), u32(p.inW),
    u32(p.outH), u32(p.outW), u32(p.kernel[0]), u32(p.kernel[1]),
    u32(p.stride[0]), u32(p.stride[1]), u32(p.padding[0]), u32(p.padding[1]),
    u32(p.dilation[0]), u32(p.dilation[1]), u32(p.countIncludePad ? 1 : 0), u32(0),
  ],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(poolTotal(p), WORKGROUP),
  source: (p) => {
    const bindings = poolKernel.bindings(p);
    return /* wgsl */ `
${PARAMS_STRUCT}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
${HELPERS}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.total) { return; }
${body(p.variant)}
}
`;
  },
  reference: poolReference,
};
