/**
 * LayerNorm kernel family over the last dim of a contiguous [R, C] input (R = all leading dims).
 *
 *   forward:         mean = sum(x) / C, var = sum((x - mean)^2) / C (biased, two-pass),
 *                    rstd = 1 / sqrt(var + eps), y = (x - mean) * rstd * w + b
 *   backward_input:  xhat = (x - mean) * rstd, g = dY * w,
 *                    dX = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   backward_params: dW[c] = sum_r dY[r, c] * xhat[r, c], dB[c] = sum_r dY[r, c]
 * Weight and bias are optional (flags in the key); without them w = 1, b = 0.
 *
 * Bindings (in order; [..] only with the flag):
 *   forward:         x, [w], [b] read; y, mean [R], rstd [R] read_write
 *   backward_input:  x, mean, rstd, [w], dY read; dX read_write
 *   backward_params: x, mean, rstd, dY read; dW [C], dB [C] read_write
 * Uniform `Params`: rows, cols: u32, eps: f32, pad: u32.
 * Dispatch: forward / backward_input: one workgroup of 64 per row (1-D, folded over 65535 by the
 * device), threads stride over the row and reduce in workgroup memory; backward_params: one thread
 * per column, ceil(C / 64) workgroups, each thread walks all R rows (coalesced across threads).
 * Key: `layernorm:forward:<w|-><b|->`, `layernorm:backward_input:<w|->`, `layernorm:backward_params`.
 */
import { type BindingDecl, type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { f32, linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { layerNormReference } from './layernorm.ref.js';

export type LayerNormStage = 'forward' | 'backward_input' | 'backward_params';

export interface LayerNormParams {
  stage: LayerNormStage;
  rows: number;
  cols: number;
  eps: number;
  /** A weight tensor is bound (forward, backward_input). */
  hasWeight: boolean;
  /** A bias tensor is bound (forward). */
  hasBias: boolean;
}

const WORKGROUP = 64;

const read = (name: string): BindingDecl => ({ name, access: 'read', type: 'f32' });
const write = (name: string): BindingDecl => ({ name, access: 'read_write', type: 'f32' });

/** Workgroup tree sum of two values at once (one barrier tree for both). */
const sum2Fn = /* wgsl */ `
var<workgroup> partial: array<vec2<f32>, ${WORKGROUP}>;

fn workgroupSum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before it is reused
  return r;
}
`;

function forwardBody(p: LayerNormParams): string {
  const w = p.hasWeight ? ' * w[k]' : '';
  const b = p.hasBias ? ' + b[k]' : '';
  return /* wgsl */ `
  var s = 0.0;
  for (var k = lid; k < n; k += ${WORKGROUP}u) { s += x[base + k]; }
  let mean = workgroupSum2(lid, vec2<f32>(s, 0.0)).x / f32(u.cols);
  var q = 0.0;
  for (var k = lid; k < n; k += ${WORKGROUP}u) {
    let d = x[base + k] - mean;
    q += d * d;
  }
  let variance = workgroupSum2(lid, vec2<f32>(q, 0.0)).x / f32(u.cols);
  let rstd = 1.0 / sqrt(variance + u.eps);
  for (var k = lid; k < n; k += ${WORKGROUP}u) {
    y[base + k] = (x[base + k] - mean) * rstd${w}${b};
  }
  if (lid == 0u && row < u.rows) {
    meanOut[row] = mean;
    rstdOut[row] = rstd;
  }`;
}

function backwardInputBody(p: LayerNormParams): string {
  const w = p.hasWeight ? ' * w[k]' : '';
  return /* wgsl */ `
  let mean = select(0.0, meanIn[min(row, u.rows - 1u)], n > 0u);
  let rstd = select(0.0, rstdIn[min(row, u.rows - 1u)], n > 0u);
  var acc = vec2<f32>(0.0, 0.0);
  for (var k = lid; k < n; k += ${WORKGROUP}u) {
    let xhat = (x[base + k] - mean) * rstd;
    let g = dY[base + k]${w};
    acc += vec2<f32>(g, g * xhat);
  }
  let sums = workgroupSum2(lid, acc) / f32(u.cols);
  for (var k = lid; k < n; k += ${WORKGROUP}u) {
    let xhat = (x[base + k] - mean) * rstd;
    let g = dY[base + k]${w};
    dX[base + k] = rstd * (g - sums.x - xhat * sums.y);
  }`;
}

export const layerNormKernel: KernelSpec<LayerNormParams> = {
  name: 'layernorm',
  key: (p) => {
    if (p.stage === 'forward') return `layernorm:forward:${p.hasWeight ? 'w' : '-'}${p.hasBias ? 'b' : '-'}`;
    if (p.stage === 'backward_input') return `layernorm:backward_input:${p.hasWeight ? 'w' : '-'}`;
    return 'layernorm:backward_params';
  },
  bindings: (p) => {
    if (p.stage === 'forward') {
      return [
        read('x'),
        ...(p.hasWeight ? [read('w')] : []),
        ...(p.hasBias ? [read('b')] : []),
        write('y'),
        write('meanOut'),
        write('rstdOut'),
      ];
    }
    if (p.stage === 'backward_input') {
      return [read('x'), read('meanIn'), read('rstdIn'), ...(p.hasWeight ? [read('w')] : []), read('dY'), write('dX')];
    }
    return [read('x'), read('meanIn'), read('rstdIn'), read('dY'), write('dW'), write('dB')];
  },
  uniforms: (p) => [u32(p.rows), u32(p.cols), f32(p.eps), u32(0)],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => (p.stage === 'backward_params' ? ceilDiv(p.cols, WORKGROUP) : p.rows),
  source: (p) => {
    const bindings = layerNormKernel.bindings(p);
    const header = /* wgsl */ `
struct Params { rows: u32, cols: u32, eps: f32, pad: u32, }
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}`;
    if (p.stage === 'backward_params') {
      return /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let c = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (c >= u.cols) { return; }
  var dw = 0.0;
  var db = 0.0;
  for (var r = 0u; r < u.rows; r++) {
    let i = r * u.cols + c;
    let g = dY[i];
    let xhat = (x[i] - meanIn[r]) * rstdIn[r];
    dw += g * xhat;
    db += g;
  }
  dW[c] = dw;
  dB[c] = db;
}
`;
    }
    return /* wgsl */ `${header}
${sum2Fn}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // No early return: every thread must reach the barriers. Inactive rows just loop zero times.
  let row = linearWorkgroupIndex(wid, nwg);
  let n = select(0u, u.cols, row < u.rows);
  let base = row * u.cols;
${p.stage === 'forward' ? forwardBody(p) : backwardInputBody(p)}
}
`;
  },
  reference: layerNormReference,
};
