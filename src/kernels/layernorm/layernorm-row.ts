/**
 * LayerNorm family, short-row variant: the `forward` and `backward_input` stages of layernorm.ts
 * (same LayerNormParams, bindings, uniforms, formulas and CPU reference) with one thread per row,
 * for rows of at most LAYERNORM_SHORT_ROW (1024) columns. No workgroup memory, no barriers.
 *
 * Why: the portable stages give each row a workgroup of 64 threads and reduce in workgroup memory;
 * with C = 64 (CLIPSeg's tiny widths) each thread holds one element and the two tree reductions
 * dominate, and on lavapipe every barrier switches between the workgroup's 8-wide coroutines.
 * Measured on lavapipe (forward / backward_input, ms): [2080, 64] 45 / 46 -> 7.7 / 6.3;
 * [3880, 768] 343 / 278 -> 128 / 110.
 *
 * Each thread walks its row from memory: forward three times (sum; sum of squared deviations, so
 * the variance stays two-pass as in layernorm.ts; write), backward_input twice (the two sums;
 * write). `v4` (C % 4 == 0, a bounded fact in the key): x, dY, w, b, y and dX are read and written
 * as vec4 (on lavapipe each storage access costs a per-lane loop, so 4 elements per access pay).
 *
 * Bindings and uniform `Params` (rows, cols, eps, pad): as layernorm.ts (vec4<f32> element type
 * for the row tensors and w / b under `v4`; mean / rstd stay f32).
 * Dispatch: ceil(rows / 64) workgroups of 64, 1-D (folded past 65535 by the device).
 * Key: `layernorm:forward:<w|-><b|->:row:<v4|s>`, `layernorm:backward_input:<w|->:row:<v4|s>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, uniformDecl } from '../wgsl.js';
import { type LayerNormParams, layerNormKernel } from './layernorm.js';
import { layerNormReference } from './layernorm.ref.js';

/** Widest row the op sends to this variant; wider rows keep the workgroup-per-row kernel. */
export const LAYERNORM_SHORT_ROW = 1024;

const WORKGROUP = 64;

/** Whether rows are read as vec4 (a bounded layout fact, part of the key). */
export const layerNormRowVec4 = (p: LayerNormParams): boolean => p.cols > 0 && p.cols % 4 === 0;

/** Row-sized bindings (viewed as vec4 under v4); mean / rstd are per-row scalars. */
const ROW_TENSORS = new Set(['x', 'w', 'b', 'y', 'dY', 'dX']);

function forwardBody(p: LayerNormParams, v4: boolean): string {
  const E = v4 ? 'vec4<f32>' : 'f32';
  const total = (e: string) => (v4 ? `dot(${e}, vec4<f32>(1.0))` : e);
  const w = p.hasWeight ? ' * w[k]' : '';
  const b = p.hasBias ? ' + b[k]' : '';
  return /* wgsl */ `
  var s = ${E}(0.0);
  for (var k = 0u; k < n; k++) { s += x[base + k]; }
  let mean = ${total('s')} / f32(u.cols);
  var q = ${E}(0.0);
  for (var k = 0u; k < n; k++) {
    let d = x[base + k] - mean;
    q += d * d;
  }
  let rstd = 1.0 / sqrt(${total('q')} / f32(u.cols) + u.eps);
  for (var k = 0u; k < n; k++) {
    y[base + k] = (x[base + k] - mean) * rstd${w}${b};
  }
  meanOut[row] = mean;
  rstdOut[row] = rstd;`;
}

function backwardInputBody(p: LayerNormParams, v4: boolean): string {
  const E = v4 ? 'vec4<f32>' : 'f32';
  const total = (e: string) => (v4 ? `dot(${e}, vec4<f32>(1.0))` : e);
  const w = p.hasWeight ? ' * w[k]' : '';
  return /* wgsl */ `
  let mean = meanIn[row];
  let rstd = rstdIn[row];
  var sg = ${E}(0.0);
  var sgx = ${E}(0.0);
  for (var k = 0u; k < n; k++) {
    let xhat = (x[base + k] - mean) * rstd;
    let g = dY[base + k]${w};
    sg += g;
    sgx += g * xhat;
  }
  let meanG = ${total('sg')} / f32(u.cols);
  let meanGX = ${total('sgx')} / f32(u.cols);
  for (var k = 0u; k < n; k++) {
    let xhat = (x[base + k] - mean) * rstd;
    let g = dY[base + k]${w};
    dX[base + k] = rstd * (g - meanG - xhat * meanGX);
  }`;
}

export const layerNormRowKernel: KernelSpec<LayerNormParams> = {
  name: 'layernorm',
  key: (p) => `${layerNormKernel.key(p)}:row:${layerNormRowVec4(p) ? 'v4' : 's'}`,
  bindings: (p) => layerNormKernel.bindings(p),
  uniforms: (p) => layerNormKernel.uniforms(p),
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(p.rows, WORKGROUP),
  source: (p) => {
    if (p.stage === 'backward_params') throw new Error('layernorm row variant: backward_params has no row variant (use layernorm.ts)');
    const v4 = layerNormRowVec4(p);
    const bindings = layerNormRowKernel.bindings(p);
    const decls = bindings
      .map((b, i) => {
        const type = v4 && ROW_TENSORS.has(b.name) ? 'vec4<f32>' : 'f32';
        return `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${type}>;`;
      })
      .join('\n');
    return /* wgsl */ `
struct Params { rows: u32, cols: u32, eps: f32, pad: u32, }
${decls}
${uniformDecl(bindings.length)}
${linearIndexFn}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (row >= u.rows) { return; }
  // Row length and offset in elements of the bound arrays (vec4 under v4).
  let n = u.cols${v4 ? ' / 4u' : ''};
  let base = row * n;
${p.stage === 'forward' ? forwardBody(p, v4) : backwardInputBody(p, v4)}
}
`;
  },
  reference: layerNormReference,
};
