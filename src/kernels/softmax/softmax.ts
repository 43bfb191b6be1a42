/**
 * Softmax kernel family: softmax and log-softmax along one axis, forward and backward.
 *
 * Layout: the input is viewed as [outer, L, inner] (L = the softmax axis, inner = product of the
 * dims after it), so any axis works without a permute. There are rows = outer * inner rows; row r
 * starts at (r / inner) * L * inner + r % inner and its L elements are `inner` apart.
 *
 * Masking: an element equal to -inf (bit pattern 0xff800000) is masked. Its probability is exactly
 * 0 (log-probability -inf) and its gradient exactly 0. A fully masked row gives all zeros for
 * softmax (PyTorch gives NaN) and all -inf for log-softmax, with zero gradients.
 *
 * Variants (op:dir), bindings and formulas, per row (m = max over unmasked x, s = sum exp(x - m)):
 *   softmax:forward       x read, y read_write      y = exp(x - m) / s
 *   log_softmax:forward   x read, y read_write      y = (x - m) - log(s)
 *   softmax:backward      y read, dY read, dX rw    dX = y * (dY - sum(dY * y)); entries with
 *                                                  y == 0 get 0 and are left out of the sum
 *   log_softmax:backward  y read, dY read, dX rw    dX = dY - exp(y) * sum(dY); masked entries
 *                                                  (y = -inf) get 0 and their dY is ignored
 * Uniform `Params`: rows, len, inner, pad: u32.
 * Dispatch: one workgroup of 64 per row, 1-D (the device folds counts over 65535 into 2-D); each
 * thread strides over the row, then a tree reduction in workgroup memory. Inactive workgroups of a
 * folded launch skip the loops but still reach every barrier.
 * Key: `softmax:<softmax|log_softmax>:<forward|backward>`.
 */
import { type KernelSpec } from '../kernel-spec.js';
import { linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { softmaxReference } from './softmax.ref.js';

export type SoftmaxOp = 'softmax' | 'log_softmax';
export type SoftmaxDir = 'forward' | 'backward';

export interface SoftmaxParams {
  op: SoftmaxOp;
  dir: SoftmaxDir;
  /** Number of rows: outer * inner. */
  rows: number;
  /** Length of the softmax axis. */
  len: number;
  /** Product of the dims after the softmax axis (the stride between row elements). */
  inner: number;
}

const WORKGROUP = 64;

/** Per-row body of each variant; `at(k)` is the offset of element k of the row. */
const BODIES: Record<`${SoftmaxOp}:${SoftmaxDir}`, string> = {
  'softmax:forward': /* wgsl */ `
  let m = rowMax(lid, base, n);
  let s = rowExpSum(lid, base, n, m);
  for (var k = lid; k < n; k += WG) {
    let v = x[at(base, k)];
    var o = 0.0;
    if (!isMasked(v) && s > 0.0) { o = exp(v - m) / s; }
    y[at(base, k)] = o;
  }`,
  'log_softmax:forward': /* wgsl */ `
  let m = rowMax(lid, base, n);
  let s = rowExpSum(lid, base, n, m);
  let logS = log(s);
  var negInfBits = 0xff800000u;
  let negInf = bitcast<f32>(negInfBits);
  for (var k = lid; k < n; k += WG) {
    let v = x[at(base, k)];
    var o = negInf;
    if (!isMasked(v) && s > 0.0) { o = (v - m) - logS; }
    y[at(base, k)] = o;
  }`,
  'softmax:backward': /* wgsl */ `
  var acc = 0.0;
  for (var k = lid; k < n; k += WG) {
    let yk = y[at(base, k)];
    if (yk != 0.0) { acc += dY[at(base, k)] * yk; }
  }
  let dot = workgroupSum(lid, acc);
  for (var k = lid; k < n; k += WG) {
    let yk = y[at(base, k)];
    var o = 0.0;
    if (yk != 0.0) { o = yk * (dY[at(base, k)] - dot); }
    dX[at(base, k)] = o;
  }`,
  'log_softmax:backward': /* wgsl */ `
  var acc = 0.0;
  for (var k = lid; k < n; k += WG) {
    if (!isMasked(y[at(base, k)])) { acc += dY[at(base, k)]; }
  }
  let total = workgroupSum(lid, acc);
  for (var k = lid; k < n; k += WG) {
    let yk = y[at(base, k)];
    var o = 0.0;
    if (!isMasked(yk)) { o = dY[at(base, k)] - exp(yk) * total; }
    dX[at(base, k)] = o;
  }`,
};

/** Helpers shared by the variants (only the forward ones read `x`). */
function helpers(forward: boolean): string {
  const rowFns = forward
    ? /* wgsl */ `
fn rowMax(lid: u32, base: u32, n: u32) -> f32 {
  var m = -3.4028234663852886e38;
  for (var k = lid; k < n; k += WG) {
    let v = x[at(base, k)];
    if (!isMasked(v)) { m = max(m, v); }
  }
  return workgroupMax(lid, m);
}

// Sum of exp(x - m) over unmasked elements: 0 exactly when the row is fully masked, >= 1 otherwise.
fn rowExpSum(lid: u32, base: u32, n: u32, m: f32) -> f32 {
  var s = 0.0;
  for (var k = lid; k < n; k += WG) {
    let v = x[at(base, k)];
    if (!isMasked(v)) { s += exp(v - m); }
  }
  return workgroupSum(lid, s);
}

fn workgroupMax(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = max(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before it is reused
  return r;
}`
    : '';
  return /* wgsl */ `
const WG: u32 = ${WORKGROUP}u;
var<workgroup> partial: array<f32, ${WORKGROUP}>;

// -inf marks a masked element. Compare bits: shader compilers may assume floats are finite.
fn isMasked(v: f32) -> bool { return bitcast<u32>(v) == 0xff800000u; }

fn at(base: u32, k: u32) -> u32 { return base + k * u.inner; }

fn workgroupSum(lid: u32, v: f32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  let r = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before it is reused
  return r;
}
${rowFns}`;
}

export const softmaxKernel: KernelSpec<SoftmaxParams> = {
  name: 'softmax',
  key: (p) => `softmax:${p.op}:${p.dir}`,
  bindings: (p) =>
    p.dir === 'forward'
      ? [
          { name: 'x', access: 'read', type: 'f32' },
          { name: 'y', access: 'read_write', type: 'f32' },
        ]
      : [
          { name: 'y', access: 'read', type: 'f32' },
          { name: 'dY', access: 'read', type: 'f32' },
          { name: 'dX', access: 'read_write', type: 'f32' },
        ],
  uniforms: (p) => [u32(p.rows), u32(p.len), u32(p.inner), u32(0)],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => p.rows,
  source: (p) => {
    const bindings = softmaxKernel.bindings(p);
    return /* wgsl */ `
struct Params { rows: u32, len: u32, inner: u32, pad: u32, }
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
${helpers(p.dir === 'forward')}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // No early return: every thread must reach the barriers. Inactive rows just loop zero times.
  let row = linearWorkgroupIndex(wid, nwg);
  let n = select(0u, u.len, row < u.rows);
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
${BODIES[`${p.op}:${p.dir}`]}
}
`;
  },
  reference: softmaxReference,
};
