/**
 * Dropout kernel family: out[i] = keep(seed, i) ? x[i] * scale : 0, with a counter-based hash RNG,
 * so the mask is a pure function of (seed, element index). The backward of dropout is this same
 * kernel applied to dOut with the same seed (the mask is regenerated, never stored).
 *
 * RNG: h(v) is the `lowbias32` integer hash (C. Wellons: xorshift-multiply, 2 rounds);
 *   r = h(h(i) ^ h(seed ^ 0x9e3779b9)),  keep(seed, i) = (r >> 8) >= threshold,
 * where threshold = round(p * 2^24) in [0, 2^24] (24-bit resolution; p = 1 drops everything).
 * u32 multiplication wraps mod 2^32 in WGSL, as Math.imul does in the reference.
 *
 * Bindings: x read f32; out read_write f32. Uniform `Params`: n, seed, threshold: u32, scale: f32.
 * Dispatch: ceil(n / 256) workgroups of 256, 1-D (folded over 65535 by the device).
 * Limits: indices are u32 (n < 2^32). Key: `dropout`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { f32, linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { dropoutReference, dropoutScale, dropoutThreshold } from './dropout.ref.js';

export { dropoutKeeps, dropoutScale, dropoutThreshold } from './dropout.ref.js';

export interface DropoutParams {
  n: number;
  /** 32-bit seed (taken mod 2^32). */
  seed: number;
  /** Drop probability in [0, 1]. */
  p: number;
}

const WORKGROUP = 256;

const bindings = [
  { name: 'x', access: 'read' as const, type: 'f32' as const },
  { name: 'out', access: 'read_write' as const, type: 'f32' as const },
];

export const dropoutKernel: KernelSpec<DropoutParams> = {
  name: 'dropout',
  key: () => 'dropout',
  bindings: () => bindings,
  uniforms: (p) => [u32(p.n), u32(p.seed >>> 0), u32(dropoutThreshold(p.p)), f32(dropoutScale(p.p))],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(p.n, WORKGROUP),
  source: () => /* wgsl */ `
struct Params { n: u32, seed: u32, threshold: u32, scale: f32, }
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
fn lowbias32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }
  let r = lowbias32(lowbias32(i) ^ lowbias32(u.seed ^ 0x9e3779b9u));
  out[i] = select(0.0, x[i] * u.scale, (r >> 8u) >= u.threshold);
}
`,
  reference: dropoutReference,
};
