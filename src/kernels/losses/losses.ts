/**
 * Loss kernel family: the per-element parts of fused losses (the reduction runs in the reduce
 * family). All tensors are contiguous with the same number of elements n.
 *
 *   bce_forward:      out = max(x, 0) - x * t + log1p(exp(-|x|))        (x = logits, t = target)
 *   bce_grad_logits:  dX = (sigmoid(x) - t) * dOut[0] * scale
 *   bce_grad_target:  dT = -x * dOut[0] * scale
 * dOut is the 0-d gradient of the reduced loss (one element) and scale = 1 / n for a mean, so the
 * backward needs no broadcast of dOut. log1p(e) uses the exact trick log(u) * e / (u - 1) with
 * u = 1 + e (Goldberg), as WGSL has no log1p; sigmoid is evaluated without overflow on either side.
 *
 * Bindings: bce_forward: x, t read; out read_write. bce_grad_logits: x, t, dOut read; dX
 * read_write. bce_grad_target: x, dOut read; dT read_write.
 * Uniform `Params`: n: u32, scale: f32, pad, pad: u32.
 * Dispatch: ceil(n / 256) workgroups of 256, 1-D (folded over 65535 by the device).
 * Key: `losses:<fn>`.
 */
import { type BindingDecl, type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { f32, linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { lossesReference } from './losses.ref.js';

export type LossFn = 'bce_forward' | 'bce_grad_logits' | 'bce_grad_target';

export interface LossParams {
  fn: LossFn;
  n: number;
  /** Multiplier of dOut in the gradient variants (1 / n for a mean). */
  scale?: number;
}

const WORKGROUP = 256;

const read = (name: string): BindingDecl => ({ name, access: 'read', type: 'f32' });
const write = (name: string): BindingDecl => ({ name, access: 'read_write', type: 'f32' });

const BINDINGS: Record<LossFn, BindingDecl[]> = {
  bce_forward: [read('x'), read('t'), write('out')],
  bce_grad_logits: [read('x'), read('t'), read('dOut'), write('dX')],
  bce_grad_target: [read('x'), read('dOut'), write('dT')],
};

const BODIES: Record<LossFn, string> = {
  bce_forward: 'let v = x[i];\n  out[i] = max(v, 0.0) - v * t[i] + log1pSmall(exp(-abs(v)));',
  bce_grad_logits: 'dX[i] = (stableSigmoid(x[i]) - t[i]) * (dOut[0] * u.scale);',
  bce_grad_target: 'dT[i] = -x[i] * (dOut[0] * u.scale);',
};

const helpersWgsl = /* wgsl */ `
// log(1 + e) for e in [0, 1], accurate for tiny e (1 + e rounds to 1 there).
fn log1pSmall(e: f32) -> f32 {
  let v = 1.0 + e;
  if (v == 1.0) { return e; }
  return log(v) * e / (v - 1.0);
}

fn stableSigmoid(v: f32) -> f32 {
  let e = exp(-abs(v));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
}
`;

export const lossesKernel: KernelSpec<LossParams> = {
  name: 'losses',
  key: (p) => `losses:${p.fn}`,
  bindings: (p) => BINDINGS[p.fn],
  uniforms: (p) => [u32(p.n), f32(p.scale ?? 1), u32(0), u32(0)],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(p.n, WORKGROUP),
  source: (p) => /* wgsl */ `
struct Params { n: u32, scale: f32, pad0: u32, pad1: u32, }
${storageDecls(BINDINGS[p.fn])}
${uniformDecl(BINDINGS[p.fn].length)}
${linearIndexFn}
${helpersWgsl}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }
  ${BODIES[p.fn]}
}
`,
  reference: lossesReference,
};
