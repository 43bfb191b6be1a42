/**
 * Gather kernel family: index_select along one axis, and its deterministic scatter-add backward.
 *
 * The tensor is viewed as [O, V, I] (O = dims before the axis, V = the axis, I = dims after) and
 * ids as a flat list of C i32 indices. Modes (one pipeline each, key `gather:<mode>`):
 *   select       out[o, c, i] = x[o, id(c), i]                      x, out as raw u32 words (f32 or i32)
 *   links        for each c: links[c] = the next c' > c with id(c') == id(c), or -1;
 *                links[C + c] = 1 if c is the first occurrence of its id, else 0   (O(C) per thread)
 *   zero         dX[i] = 0 for i < n
 *   scatter_add  for each first occurrence c and each (o, i): dX[o, id(c), i] = sum of dOut[o, c', i]
 *                over the chain c, links[c], links[links[c]], ... (ascending c', so deterministic).
 *                Rows no id selects are left as they are (run `zero` first).
 * id(c) = clamp(ids[c], 0, V - 1): WGSL cannot report errors, so out-of-range ids read (and send
 * gradient to) the nearest valid row. The CPU reference throws instead, naming the id.
 * WGSL has no f32 atomics: the scatter is race-free because exactly one thread (the first
 * occurrence's) owns each written element.
 *
 * Bindings:
 *   select:      x read u32, ids read i32, out read_write u32
 *   links:       ids read i32, links read_write i32 (2C entries)
 *   zero:        dX read_write f32
 *   scatter_add: dOut read f32, ids read i32, links read i32, dX read_write f32
 * Uniform `Params`: n, outer (O), axis (V), inner (I), count (C), 3 padding words: u32 (n = threads
 *   launched: O*C*I for select/scatter_add, C for links, the element count for zero).
 * Dispatch: ceil(n / 256) workgroups of 256, 1-D (folded into 2-D over 65535 by the device).
 * Limits: offsets are u32; links is O(C^2) in total, fine for the token counts of these models.
 */
import { type BindingDecl, type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { gatherReference } from './gather.ref.js';

export type GatherMode = 'select' | 'links' | 'zero' | 'scatter_add';

export interface GatherParams {
  mode: GatherMode;
  outer: number;
  axis: number;
  inner: number;
  count: number;
}

const WORKGROUP = 256;

/** Threads launched for a mode. */
export function gatherThreads(p: GatherParams): number {
  switch (p.mode) {
    case 'select':
    case 'scatter_add':
      return p.outer * p.count * p.inner;
    case 'links':
      return p.count;
    case 'zero':
      return p.outer * p.axis * p.inner;
  }
}

const BINDINGS: Record<GatherMode, BindingDecl[]> = {
  select: [
    { name: 'x', access: 'read', type: 'u32' },
    { name: 'ids', access: 'read', type: 'i32' },
    { name: 'out', access: 'read_write', type: 'u32' },
  ],
  links: [
    { name: 'ids', access: 'read', type: 'i32' },
    { name: 'links', access: 'read_write', type: 'i32' },
  ],
  zero: [{ name: 'dX', access: 'read_write', type: 'f32' }],
  scatter_add: [
    { name: 'dOut', access: 'read', type: 'f32' },
    { name: 'ids', access: 'read', type: 'i32' },
    { name: 'links', access: 'read', type: 'i32' },
    { name: 'dX', access: 'read_write', type: 'f32' },
  ],
};

const BODIES: Record<GatherMode, string> = {
  select: `
  let inner = i % u.inner;
  let t = i / u.inner;
  let c = t % u.count;
  let o = t / u.count;
  out[i] = x[(o * u.axis + rowOf(ids[c])) * u.inner + inner];`,
  links: `
  let id = rowOf(ids[i]);
  var next = -1;
  for (var c = i + 1u; c < u.count; c++) {
    if (rowOf(ids[c]) == id) { next = i32(c); break; }
  }
  var first = 1;
  for (var c = 0u; c < i; c++) {
    if (rowOf(ids[c]) == id) { first = 0; break; }
  }
  links[i] = next;
  links[u.count + i] = first;`,
  zero: `
  dX[i] = 0.0;`,
  scatter_add: `
  let inner = i % u.inner;
  let t = i / u.inner;
  let c = t % u.count;
  let o = t / u.count;
  if (links[u.count + c] == 0) { return; }
  var acc = 0.0;
  var cc = i32(c);
  loop {
    acc += dOut[(o * u.count + u32(cc)) * u.inner + inner];
    cc = links[cc];
    if (cc < 0) { break; }
  }
  dX[(o * u.axis + rowOf(ids[c])) * u.inner + inner] = acc;`,
};

export const gatherKernel: KernelSpec<GatherParams> = {
  name: 'gather',
  key: (p) => `gather:${p.mode}`,
  bindings: (p) => BINDINGS[p.mode],
  uniforms: (p) => [u32(gatherThreads(p)), u32(p.outer), u32(p.axis), u32(p.inner), u32(p.count), u32(0), u32(0), u32(0)],
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(gatherThreads(p), WORKGROUP),
  source: (p) => {
    const bindings = BINDINGS[p.mode];
    return /* wgsl */ `
struct Params { n: u32, outer: u32, axis: u32, inner: u32, count: u32, _p0: u32, _p1: u32, _p2: u32 }
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}

// Out-of-range ids clamp to the nearest valid row (see the header).
fn rowOf(id: i32) -> u32 {
  return u32(clamp(id, 0, i32(u.axis) - 1));
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }${BODIES[p.mode]}
}
`;
  },
  reference: gatherReference,
};
