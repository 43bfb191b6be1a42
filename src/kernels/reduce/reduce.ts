/**
 * Reduction kernel family: sum, max, min or argmax over any set of axes of a contiguous input.
 *
 * The output has the kept dims (in order). Output element o maps to a base offset through the kept
 * dims' input strides; the R = prod(reduced dims) elements it reduces are walked with the reduced
 * dims' input strides. One workgroup of 64 threads per output element: each thread strides over R,
 * then a tree reduction in workgroup memory combines the 64 partials.
 *
 * Bindings: x read f32; out read_write (f32, or i32 for argmax). Uniform `Params`:
 *   nOut, reduceCount, keptRank, reducedRank: u32,
 *   keptShape, keptStrides, reducedShape, reducedStrides: array<vec4<u32>, 2>.
 * Dispatch: nOut workgroups, 1-D (folded into 2-D over 65535 by the device).
 * argmax returns the first index of the maximum in the reduced index space (row-major over the
 * reduced dims), like torch.argmax; NaN is not treated specially. Empty reductions: sum -> 0,
 * max/min -> -inf/+inf, argmax -> 0.
 * Key: `reduce:<op>`.
 */
import { type KernelSpec } from '../kernel-spec.js';
import { MAX_RANK, linearIndexFn, rankWords, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { reduceReference } from './reduce.ref.js';

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax';

export interface ReduceParams {
  op: ReduceOp;
  keptShape: readonly number[];
  keptStrides: readonly number[];
  reducedShape: readonly number[];
  reducedStrides: readonly number[];
}

const WORKGROUP = 64;

export function reduceCounts(p: ReduceParams): { nOut: number; reduceCount: number } {
  let nOut = 1;
  for (const d of p.keptShape) nOut *= d;
  let reduceCount = 1;
  for (const d of p.reducedShape) reduceCount *= d;
  return { nOut, reduceCount };
}

const IDENTITY: Record<ReduceOp, string> = {
  sum: '0.0',
  max: '-3.4028234663852886e38', // stand-in for -inf, fixed up when the reduction is empty
  min: '3.4028234663852886e38',
  argmax: '-3.4028234663852886e38',
};

export const reduceKernel: KernelSpec<ReduceParams> = {
  name: 'reduce',
  key: (p) => `reduce:${p.op}`,
  bindings: (p) => [
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'out', access: 'read_write', type: p.op === 'argmax' ? 'i32' : 'f32' },
  ],
  uniforms: (p) => {
    const { nOut, reduceCount } = reduceCounts(p);
    return [
      u32(nOut), u32(reduceCount), u32(p.keptShape.length), u32(p.reducedShape.length),
      ...rankWords(p.keptShape), ...rankWords(p.keptStrides),
      ...rankWords(p.reducedShape), ...rankWords(p.reducedStrides),
    ];
  },
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => reduceCounts(p).nOut,
  source: (p) => {
    const combine =
      p.op === 'sum'
        ? 'acc = acc + v;'
        : p.op === 'max'
          ? 'acc = max(acc, v);'
          : p.op === 'min'
            ? 'acc = min(acc, v);'
            : 'if (v > acc) { acc = v; best = r; }';
    const merge =
      p.op === 'sum'
        ? 'partial[lid] = partial[lid] + partial[lid + s];'
        : p.op === 'max'
          ? 'partial[lid] = max(partial[lid], partial[lid + s]);'
          : p.op === 'min'
            ? 'partial[lid] = min(partial[lid], partial[lid + s]);'
            : `let ov = partial[lid + s]; let oi = partialIdx[lid + s];
      if (ov > partial[lid] || (ov == partial[lid] && oi < partialIdx[lid])) { partial[lid] = ov; partialIdx[lid] = oi; }`;
    const result =
      p.op === 'argmax'
        ? 'out[o] = i32(partialIdx[0]);'
        : p.op === 'sum'
          ? 'out[o] = partial[0];'
          : `out[o] = select(partial[0], ${p.op === 'max' ? '-' : ''}bitcast<f32>(inf_bits), u.reduceCount == 0u);`;
    return /* wgsl */ `
struct Params {
  nOut: u32, reduceCount: u32, keptRank: u32, reducedRank: u32,
  keptShape: array<vec4<u32>, ${MAX_RANK / 4}>,
  keptStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
  reducedShape: array<vec4<u32>, ${MAX_RANK / 4}>,
  reducedStrides: array<vec4<u32>, ${MAX_RANK / 4}>,
}
${storageDecls(reduceKernel.bindings(p))}
${uniformDecl(2)}
${linearIndexFn}
var<workgroup> partial: array<f32, ${WORKGROUP}>;
var<workgroup> partialIdx: array<u32, ${WORKGROUP}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // Every thread of the workgroup reaches the barriers: the bounds check only masks the result.
  let o = linearWorkgroupIndex(wid, nwg);
  var base = 0u;
  var rem = o;
  for (var d = i32(u.keptRank) - 1; d >= 0; d--) {
    let du = u32(d);
    let extent = u.keptShape[du / 4u][du % 4u];
    base += (rem % extent) * u.keptStrides[du / 4u][du % 4u];
    rem = rem / extent;
  }
  var acc: f32 = ${IDENTITY[p.op]};
  var best: u32 = 0u;
  if (o < u.nOut) {
    for (var r = lid; r < u.reduceCount; r += ${WORKGROUP}u) {
      var off = base;
      var rr = r;
      for (var d = i32(u.reducedRank) - 1; d >= 0; d--) {
        let du = u32(d);
        let extent = u.reducedShape[du / 4u][du % 4u];
        off += (rr % extent) * u.reducedStrides[du / 4u][du % 4u];
        rr = rr / extent;
      }
      let v = x[off];
      ${combine}
    }
  }
  partial[lid] = acc;
  partialIdx[lid] = best;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s / 2u) {
    if (lid < s) {
      ${merge}
    }
    workgroupBarrier();
  }
  var inf_bits = 0x7f800000u;
  if (lid == 0u && o < u.nOut) {
    ${result}
  }
}
`;
  },
  reference: reduceReference,
};
