/**
 * AdamW family: one fused, in-place optimizer step over a flat parameter (torch.optim.AdamW,
 * single-tensor path, amsgrad=False, maximize=False).
 *
 * Per element i, with host-computed constants (float64 on the host, rounded to f32 uniforms):
 *   p = p * decay                              decay    = 1 - lr * weightDecay
 *   m = m + (1 - beta1) * (g - m)              (torch's exp_avg.lerp_(grad, 1 - beta1))
 *   v = v * beta2 + (1 - beta2) * g * g        (exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2))
 *   p = p - stepSize * m / (sqrt(v) / bc2Sqrt + eps)
 *                                              stepSize = lr / (1 - beta1^t), bc2Sqrt = sqrt(1 - beta2^t)
 *
 * Bindings (all flat, n elements, f32):
 *   0 param     read_write
 *   1 grad      read
 *   2 expAvg    read_write   (m)
 *   3 expAvgSq  read_write   (v)
 * The four must be distinct buffers: WebGPU forbids binding one buffer twice when a binding is
 * writable (this in-place kernel is the "INPLACE" variant in ggml's terms).
 * Uniform `Params`: n: u32, decay, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, bc2Sqrt, eps: f32
 *   (8 words, 32 bytes).
 * Dispatch: ceil(n / 256) workgroups of 256, 1-D (the device folds counts over 65535 into 2-D).
 * Key: `adamw:f32` (no variants; sizes and hyperparameters are uniforms).
 * Limits: n < 2^32; each tensor must fit one storage binding.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { f32, linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { adamwReference } from './adamw.ref.js';

export interface AdamwParams {
  /** Elements in each of the four buffers. */
  n: number;
  /** 1 - lr * weightDecay. */
  decay: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** lr / (1 - beta1^step). */
  stepSize: number;
  /** sqrt(1 - beta2^step). */
  bc2Sqrt: number;
  eps: number;
}

export interface AdamwHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count (after incrementing, as torch does before the update). */
  step: number;
}

/** Folds the hyperparameters and the bias corrections of `step` into kernel constants (float64). */
export function adamwConstants(n: number, h: AdamwHyper): AdamwParams {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  return {
    n,
    decay: 1 - h.lr * h.weightDecay,
    oneMinusBeta1: 1 - h.beta1,
    beta2: h.beta2,
    oneMinusBeta2: 1 - h.beta2,
    stepSize: h.lr / bc1,
    bc2Sqrt: Math.sqrt(bc2),
    eps: h.eps,
  };
}

const WORKGROUP = 256;

export const adamwKernel: KernelSpec<AdamwParams> = {
  name: 'adamw',
  key: () => 'adamw:f32',
  bindings: () => [
    { name: 'param', access: 'read_write', type: 'f32' },
    { name: 'grad', access: 'read', type: 'f32' },
    { name: 'expAvg', access: 'read_write', type: 'f32' },
    { name: 'expAvgSq', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => [
    u32(p.n), f32(p.decay), f32(p.oneMinusBeta1), f32(p.beta2),
    f32(p.oneMinusBeta2), f32(p.stepSize), f32(p.bc2Sqrt), f32(p.eps),
  ],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(p.n, WORKGROUP),
  source: (p) => /* wgsl */ `
struct Params {
  n: u32, decay: f32, oneMinusBeta1: f32, beta2: f32,
  oneMinusBeta2: f32, stepSize: f32, bc2Sqrt: f32, eps: f32,
}
${storageDecls(adamwKernel.bindings(p))}
${uniformDecl(4)}
${linearIndexFn}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }
  let g = grad[i];
  let p = param[i] * u.decay;
  let m0 = expAvg[i];
  let m = m0 + u.oneMinusBeta1 * (g - m0);
  let v = expAvgSq[i] * u.beta2 + u.oneMinusBeta2 * g * g;
  let denom = sqrt(v) / u.bc2Sqrt + u.eps;
  expAvg[i] = m;
  expAvgSq[i] = v;
  param[i] = p - u.stepSize * m / denom;
}
`,
  reference: adamwReference,
};
