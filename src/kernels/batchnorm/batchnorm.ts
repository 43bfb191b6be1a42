/**
 * BatchNorm (eval mode, running statistics) kernel family. The input is a contiguous
 * [N, C, S] view of [N, C] or [N, C, ...spatial] (S = product of the spatial dims, 1 for [N, C]);
 * element i has channel c = (i / S) % C.
 *
 *   forward:         rstd[c] = 1 / sqrt(runVar[c] + eps),
 *                    y = (x - runMean[c]) * rstd[c] * w[c] + b[c]
 *   backward_input:  dX = dY * rstd[c] * w[c]
 *   backward_params: dW[c] = sum over n, s of dY * (x - runMean[c]) * rstd[c], dB[c] = sum dY
 * Weight and bias are optional (flags in the key); without them w = 1, b = 0. The running
 * statistics get no gradient.
 *
 * Bindings (in order; [..] only with the flag):
 *   forward:         x, runMean, runVar, [w], [b] read; y read_write
 *   backward_input:  dY, runVar, [w] read; dX read_write
 *   backward_params: x, dY, runMean, runVar read; dW [C], dB [C] read_write
 * Uniform `Params`: n (elements), channels, inner (S): u32, eps: f32.
 * Dispatch: forward / backward_input: ceil(n / 256) workgroups of 256, 1-D (folded over 65535 by
 * the device). backward_params: one workgroup of 64 per channel; threads stride over the N * S
 * elements of the channel, then a tree reduction in workgroup memory.
 * Key: `batchnorm:forward:<w|-><b|->`, `batchnorm:backward_input:<w|->`, `batchnorm:backward_params`.
 */
import { type BindingDecl, type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { f32, linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { batchNormReference } from './batchnorm.ref.js';

export type BatchNormStage = 'forward' | 'backward_input' | 'backward_params';

export interface BatchNormParams {
  stage: BatchNormStage;
  /** Total elements N * C * S. */
  n: number;
  channels: number;
  /** Product of the spatial dims (1 for [N, C]). */
  inner: number;
  eps: number;
  hasWeight: boolean;
  hasBias: boolean;
}

const ELEMENT_WG = 256;
const CHANNEL_WG = 64;

const read = (name: string): BindingDecl => ({ name, access: 'read', type: 'f32' });
const write = (name: string): BindingDecl => ({ name, access: 'read_write', type: 'f32' });

function elementwiseBody(p: BatchNormParams): string {
  const w = p.hasWeight ? ' * w[c]' : '';
  if (p.stage === 'forward') {
    const b = p.hasBias ? ' + b[c]' : '';
    return `  y[i] = (x[i] - runMean[c]) * rstd${w}${b};`;
  }
  return `  dX[i] = dY[i] * rstd${w};`;
}

export const batchNormKernel: KernelSpec<BatchNormParams> = {
  name: 'batchnorm',
  key: (p) => {
    if (p.stage === 'forward') return `batchnorm:forward:${p.hasWeight ? 'w' : '-'}${p.hasBias ? 'b' : '-'}`;
    if (p.stage === 'backward_input') return `batchnorm:backward_input:${p.hasWeight ? 'w' : '-'}`;
    return 'batchnorm:backward_params';
  },
  bindings: (p) => {
    if (p.stage === 'forward') {
      return [
        read('x'),
        read('runMean'),
        read('runVar'),
        ...(p.hasWeight ? [read('w')] : []),
        ...(p.hasBias ? [read('b')] : []),
        write('y'),
      ];
    }
    if (p.stage === 'backward_input') return [read('dY'), read('runVar'), ...(p.hasWeight ? [read('w')] : []), write('dX')];
    return [read('x'), read('dY'), read('runMean'), read('runVar'), write('dW'), write('dB')];
  },
  uniforms: (p) => [u32(p.n), u32(p.channels), u32(p.inner), f32(p.eps)],
  workgroupSize: (p) => (p.stage === 'backward_params' ? CHANNEL_WG : ELEMENT_WG),
  dispatch: (p) => (p.stage === 'backward_params' ? p.channels : ceilDiv(p.n, ELEMENT_WG)),
  source: (p) => {
    const bindings = batchNormKernel.bindings(p);
    const header = /* wgsl */ `
struct Params { n: u32, channels: u32, inner: u32, eps: f32, }
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}`;
    if (p.stage !== 'backward_params') {
      return /* wgsl */ `${header}
@compute @workgroup_size(${ELEMENT_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${ELEMENT_WG}u + lid;
  if (i >= u.n) { return; }
  let c = (i / u.inner) % u.channels;
  let rstd = 1.0 / sqrt(runVar[c] + u.eps);
${elementwiseBody(p)}
}
`;
    }
    return /* wgsl */ `${header}
var<workgroup> partial: array<vec2<f32>, ${CHANNEL_WG}>;

@compute @workgroup_size(${CHANNEL_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // No early return: every thread must reach the barriers. Inactive channels loop zero times.
  let c = linearWorkgroupIndex(wid, nwg);
  let live = c < u.channels;
  let cc = min(c, u.channels - 1u);
  let count = select(0u, u.n / u.channels, live); // N * S elements per channel
  let mean = runMean[cc];
  let rstd = 1.0 / sqrt(runVar[cc] + u.eps);
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < count; j += ${CHANNEL_WG}u) {
    let i = ((j / u.inner) * u.channels + cc) * u.inner + j % u.inner;
    let g = dY[i];
    acc += vec2<f32>(g * ((x[i] - mean) * rstd), g);
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${CHANNEL_WG / 2}u; s > 0u; s = s / 2u) {
    if (lid < s) { partial[lid] = partial[lid] + partial[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u && live) {
    dW[c] = partial[0].x;
    dB[c] = partial[0].y;
  }
}
`;
  },
  reference: batchNormReference,
};
