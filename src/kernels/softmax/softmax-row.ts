/**
 * Softmax family, short-row variant: the same four kernels as softmax.ts (same SoftmaxParams,
 * bindings, uniforms, masking rules, formulas and CPU reference) with one thread per row, for
 * rows of at most SOFTMAX_SHORT_ROW (512) elements. No workgroup memory, no barriers.
 *
 * Why: the portable kernels give each row a workgroup of 64 threads and reduce in workgroup
 * memory. Attention rows are short (CLIP: 65 = 64 patches + the class token) and many (batch x
 * heads x queries); a 65-long row keeps one thread in 64 busy in its second stride, and on lavapipe
 * (Mesa's software Vulkan) every barrier switches between the workgroup's 8-wide coroutines, so the
 * tree reductions cost several times the row itself. Measured on lavapipe at [32*4*65 rows, 65]:
 * forward 56 -> ~6 ms, backward 36 -> ~7 ms; at ViT-B/16's [8*12*485 rows, 485] still 517 -> 214 ms
 * and 476 -> 297 ms. (One 8-wide subgroup per row holding the row in registers, with
 * subgroupMax / subgroupAdd, was tried too: no faster than this, and not portable.)
 *
 * Each thread walks its row from memory: forward three times (max, sum of exp, write), backward
 * twice (dot, write).
 *
 * Bindings and uniform `Params` (rows, len, inner, pad): as softmax.ts.
 * Dispatch: ceil(rows / 64) workgroups of 64, 1-D (folded past 65535 by the device).
 * Key: `softmax:<softmax|log_softmax>:<forward|backward>:row`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, storageDecls, uniformDecl } from '../wgsl.js';
import { type SoftmaxParams, softmaxKernel } from './softmax.js';
import { softmaxReference } from './softmax.ref.js';

/** Longest row the op sends to this variant; longer rows keep the workgroup-per-row kernel. */
export const SOFTMAX_SHORT_ROW = 512;

const WORKGROUP = 64;

/** One walk over the row; `i` is the offset of element k. */
const loop = (body: string): string => `  for (var k = 0u; k < n; k++) {\n    let i = base + k * u.inner;\n${body}\n  }`;

const BODIES: Record<`${SoftmaxParams['op']}:${SoftmaxParams['dir']}`, string> = {
  'softmax:forward': [
    '  var m = -3.4028234663852886e38;',
    loop('    if (!isMasked(x[i])) { m = max(m, x[i]); }'),
    '  var s = 0.0;',
    loop('    if (!isMasked(x[i])) { s += exp(x[i] - m); }'),
    loop('    y[i] = select(0.0, exp(x[i] - m) / s, !isMasked(x[i]) && s > 0.0);'),
  ].join('\n'),
  'log_softmax:forward': [
    '  var m = -3.4028234663852886e38;',
    loop('    if (!isMasked(x[i])) { m = max(m, x[i]); }'),
    '  var s = 0.0;',
    loop('    if (!isMasked(x[i])) { s += exp(x[i] - m); }'),
    '  let logS = log(s);',
    loop('    y[i] = select(negInf(), (x[i] - m) - logS, !isMasked(x[i]) && s > 0.0);'),
  ].join('\n'),
  'softmax:backward': [
    '  var dot = 0.0;',
    loop('    if (y[i] != 0.0) { dot += dY[i] * y[i]; }'),
    loop('    dX[i] = select(0.0, y[i] * (dY[i] - dot), y[i] != 0.0);'),
  ].join('\n'),
  'log_softmax:backward': [
    '  var total = 0.0;',
    loop('    if (!isMasked(y[i])) { total += dY[i]; }'),
    loop('    dX[i] = select(0.0, dY[i] - exp(y[i]) * total, !isMasked(y[i]));'),
  ].join('\n'),
};

export const softmaxRowKernel: KernelSpec<SoftmaxParams> = {
  name: 'softmax',
  key: (p) => `${softmaxKernel.key(p)}:row`,
  bindings: (p) => softmaxKernel.bindings(p),
  uniforms: (p) => softmaxKernel.uniforms(p),
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(p.rows, WORKGROUP),
  source: (p) => {
    const bindings = softmaxRowKernel.bindings(p);
    return /* wgsl */ `
struct Params { rows: u32, len: u32, inner: u32, pad: u32, }
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}

// -inf marks a masked element. Compare bits: shader compilers may assume floats are finite.
fn isMasked(v: f32) -> bool { return bitcast<u32>(v) == 0xff800000u; }
fn negInf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (row >= u.rows) { return; }
  let n = u.len;
  let base = (row / u.inner) * u.len * u.inner + row % u.inner;
${BODIES[`${p.op}:${p.dir}`]}
}
`;
  },
  reference: softmaxReference,
};
