/**
 * Elementwise kernel family: out[i] = f(a, b, c) with NumPy broadcasting of up to three inputs.
 *
 * Bindings: a, (b), (c) read f32; out read_write f32. Uniform `Params`:
 *   n: u32 (output elements), rank: u32, s0: f32, s1: f32 (scalar parameters of f),
 *   shape, aStrides, bStrides, cStrides: array<vec4<u32>, 2> (MAX_RANK = 8 dims; stride 0 = broadcast).
 * Dispatch: ceil(n / 256) workgroups of 256, 1-D (the device folds launches over 65535 into 2-D).
 * Variant `flat`: every input has the output's shape, so the index math is skipped.
 * Key: `elementwise:<fn>:<arity>:<flat|strided>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { MAX_RANK, f32, linearIndexFn, rankWords, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { ELEMENTWISE_FNS, type ElementwiseOp, elementwiseHelpersWgsl } from './elementwise.ops.js';
import { elementwiseReference } from './elementwise.ref.js';

export interface ElementwiseParams {
  fn: ElementwiseOp;
  /** Output shape. */
  shape: readonly number[];
  /** Per input, strides over the output shape (0 where broadcast). */
  inputStrides: (readonly number[])[];
  /** All inputs are contiguous with the output's shape. */
  flat: boolean;
  s0?: number;
  s1?: number;
}

const WORKGROUP = 256;
const INPUT_NAMES = ['a', 'b', 'c'] as const;

export const elementwiseKernel: KernelSpec<ElementwiseParams> = {
  name: 'elementwise',
  key: (p) => `elementwise:${p.fn}:${ELEMENTWISE_FNS[p.fn].arity}:${p.flat ? 'flat' : 'strided'}`,
  bindings: (p) => [
    ...INPUT_NAMES.slice(0, ELEMENTWISE_FNS[p.fn].arity).map((name) => ({ name, access: 'read' as const, type: 'f32' as const })),
    { name: 'out', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => {
    let n = 1;
    for (const d of p.shape) n *= d;
    const strides = [0, 1, 2].map((i) => rankWords(p.inputStrides[i] ?? []));
    return [u32(n), u32(p.shape.length), f32(p.s0 ?? 0), f32(p.s1 ?? 0), ...rankWords(p.shape), ...strides.flat()];
  },
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => {
    let n = 1;
    for (const d of p.shape) n *= d;
    return ceilDiv(n, WORKGROUP);
  },
  source: (p) => {
    const fn = ELEMENTWISE_FNS[p.fn];
    const names = INPUT_NAMES.slice(0, fn.arity);
    const bindings = elementwiseKernel.bindings(p);
    const loads = p.flat
      ? names.map((x) => `  let ${x} = ${x}[i];`).join('\n')
      : `  var rem = i;
${names.map((x) => `  var ${x}_off = 0u;`).join('\n')}
  for (var d = i32(u.rank) - 1; d >= 0; d--) {
    let du = u32(d);
    let extent = u.shape[du / 4u][du % 4u];
    let coord = rem % extent;
    rem = rem / extent;
${names.map((x, k) => `    ${x}_off += coord * u.${['a', 'b', 'c'][k]}Strides[du / 4u][du % 4u];`).join('\n')}
  }
${names.map((x) => `  let ${x} = ${x}[${x}_off];`).join('\n')}`;
    return /* wgsl */ `
struct Params {
  n: u32, rank: u32, s0: f32, s1: f32,
  shape: array<vec4<u32>, ${MAX_RANK / 4}>,
  aStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  bStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  cStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
${elementwiseHelpersWgsl}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }
  let s0 = u.s0;
  let s1 = u.s1;
${loads}
  out[i] = ${fn.wgsl};
}
`;
  },
  reference: elementwiseReference,
};
