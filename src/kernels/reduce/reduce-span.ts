/**
 * Reduce family, span variant: sums over one contiguous span of axes, with one thread per output
 * and no workgroup memory or barriers.
 *
 * The input is viewed as contiguous [outer, R, inner] (the op merges adjacent reduced / kept axes
 * first; reductions over several separate spans run this kernel once per span, innermost first).
 * The R axis may be cut into P parts of `chunk` rows (the last part shorter), giving partial sums:
 *
 *   out[(o*P + p)*inner + i] = sum_{r = p*chunk}^{min(R, (p+1)*chunk) - 1} x[(o*R + r)*inner + i]
 *
 * P = 1 is the plain reduction; P > 1 gives parallelism when there are few outputs (a full sum,
 * a bias gradient over 64 channels), followed by a second launch over [outer, P, inner].
 *
 * Why: the general kernel (reduce.ts) gives each output a workgroup of 64 that decodes every
 * element's index through the rank loop (integer divisions, which are slow on CPUs) and reduces in
 * workgroup memory; a full sum or a bias gradient then runs on one workgroup. Here thread t sums
 * its span with one running index, and the layouts read as vec4 (4 elements per storage access;
 * on lavapipe each access costs a per-lane loop) where a bounded fact allows:
 *   i4: inner % 4 == 0: a thread owns 4 consecutive i (bias gradients: [B*T, C] summed over rows).
 *   r4: inner == 1, R % 4 == 0 and chunk % 4 == 0: a thread reads its span 4 rows at a time.
 *   s:  anything else (and empty inputs, whose 4-byte binding is too small for vec4), scalar.
 *
 * Bindings: x read f32 (vec4<f32> under i4 / r4), out read_write f32 (vec4<f32> under i4).
 * Uniform `Params` (u32): outer, R, inner, chunk, parts, threads, 2 pad words.
 * Dispatch: ceil(threads / 64) workgroups of 64, threads = outer * parts * (inner / 4 under i4,
 * else inner), 1-D (folded past 65535 by the device). Empty spans (R = 0) give 0.
 * Key: `reduce:sum:span:<i4|r4|s>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, u32, uniformDecl } from '../wgsl.js';
import { reduceSpanReference } from './reduce-span.ref.js';

export interface ReduceSpanParams {
  outer: number;
  R: number;
  inner: number;
  /** Rows of R per part (>= 1); parts = ceil(R / chunk), at least 1. */
  chunk: number;
}

export type ReduceSpanLayout = 'i4' | 'r4' | 's';

const WORKGROUP = 64;

export function reduceSpanLayout(p: ReduceSpanParams): ReduceSpanLayout {
  // An empty input binds a 4-byte buffer, too small for a vec4 view.
  if (p.outer * p.R * p.inner === 0) return 's';
  if (p.inner % 4 === 0 && p.inner > 0) return 'i4';
  if (p.inner === 1 && p.R % 4 === 0 && p.chunk % 4 === 0) return 'r4';
  return 's';
}

export function reduceSpanParts(p: ReduceSpanParams): number {
  return Math.max(1, ceilDiv(p.R, p.chunk));
}

function threadsOf(p: ReduceSpanParams): number {
  const groups = reduceSpanLayout(p) === 'i4' ? p.inner / 4 : p.inner;
  return p.outer * reduceSpanParts(p) * groups;
}

/** Threads the op aims for before it splits R into parts, and the fewest rows a part gets. */
const TARGET_THREADS = 1024;
const MIN_CHUNK = 64;

/**
 * Rows per part for a reduction of [outer, R, inner]: the whole of R when there are enough outputs
 * to keep the device busy, else parts of at least MIN_CHUNK rows (a multiple of 4, so that r4
 * keeps its vec4 reads) until about TARGET_THREADS threads run.
 */
export function reduceSpanChunk(outer: number, R: number, inner: number): number {
  const groups = inner % 4 === 0 && inner > 0 ? inner / 4 : inner;
  const base = outer * groups;
  if (base >= TARGET_THREADS || R <= MIN_CHUNK) return Math.max(1, R);
  const parts = Math.min(ceilDiv(TARGET_THREADS, base), ceilDiv(R, MIN_CHUNK));
  return Math.max(MIN_CHUNK, Math.ceil(ceilDiv(R, parts) / 4) * 4);
}

function body(layout: ReduceSpanLayout): string {
  if (layout === 'i4') {
    return /* wgsl */ `
  let groups = u.inner / 4u;
  let i = t % groups;
  let op = t / groups;
  let o = op / u.parts;
  let r0 = (op % u.parts) * u.chunk;
  let r1 = min(u.R, r0 + u.chunk);
  var at = (o * u.R + r0) * groups + i;
  var acc = vec4<f32>(0.0);
  for (var r = r0; r < r1; r++) {
    acc += x[at];
    at += groups;
  }
  out[t] = acc;`;
  }
  if (layout === 'r4') {
    return /* wgsl */ `
  let o = t / u.parts;
  let r0 = (t % u.parts) * u.chunk;
  let r1 = min(u.R, r0 + u.chunk);
  var acc = vec4<f32>(0.0);
  for (var r = (o * u.R + r0) / 4u; r < (o * u.R + r1) / 4u; r++) { acc += x[r]; }
  out[t] = (acc.x + acc.y) + (acc.z + acc.w);`;
  }
  return /* wgsl */ `
  let i = t % u.inner;
  let op = t / u.inner;
  let o = op / u.parts;
  let r0 = (op % u.parts) * u.chunk;
  let r1 = min(u.R, r0 + u.chunk);
  var at = (o * u.R + r0) * u.inner + i;
  var acc = 0.0;
  for (var r = r0; r < r1; r++) {
    acc += x[at];
    at += u.inner;
  }
  out[t] = acc;`;
}

export const reduceSpanKernel: KernelSpec<ReduceSpanParams> = {
  name: 'reduce',
  key: (p) => `reduce:sum:span:${reduceSpanLayout(p)}`,
  bindings: () => [
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'out', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => [p.outer, p.R, p.inner, p.chunk, reduceSpanParts(p), threadsOf(p), 0, 0].map(u32),
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(threadsOf(p), WORKGROUP),
  source: (p) => {
    const layout = reduceSpanLayout(p);
    const xType = layout === 's' ? 'f32' : 'vec4<f32>';
    const outType = layout === 'i4' ? 'vec4<f32>' : 'f32';
    return /* wgsl */ `
struct Params { outer: u32, R: u32, inner: u32, chunk: u32, parts: u32, threads: u32, _p0: u32, _p1: u32, }
@group(0) @binding(0) var<storage, read> x: array<${xType}>;
@group(0) @binding(1) var<storage, read_write> out: array<${outType}>;
${uniformDecl(2)}
${linearIndexFn}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (t >= u.threads) { return; }
${body(layout)}
}
`;
  },
  reference: reduceSpanReference,
};
