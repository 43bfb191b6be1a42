/**
 * CPU reference for the gather family. Same modes and buffers as the WGSL; the one difference is
 * that an out-of-range id throws here (the host can report it) where the WGSL clamps.
 */
import type { HostArray } from '../kernel-spec.js';
import type { GatherParams } from './gather.js';

function rowOf(p: GatherParams, id: number): number {
  if (id < 0 || id >= p.axis) throw new Error(`gather: id ${id} is out of range for an axis of size ${p.axis}`);
  return id;
}

export function gatherReference(p: GatherParams, buffers: HostArray[]): void {
  const { outer, axis, inner, count } = p;
  switch (p.mode) {
    case 'select': {
      const [x, ids, out] = buffers as [HostArray, HostArray, HostArray];
      const rows = Array.from(ids.subarray(0, count), (id) => rowOf(p, id));
      for (let o = 0; o < outer; o++) {
        for (let c = 0; c < count; c++) {
          const src = (o * axis + rows[c]!) * inner;
          out.set(x.subarray(src, src + inner), (o * count + c) * inner);
        }
      }
      return;
    }
    case 'links': {
      const [ids, links] = buffers as [HostArray, HostArray];
      const rows = Array.from(ids.subarray(0, count), (id) => rowOf(p, id));
      const last = new Map<number, number>();
      for (let c = 0; c < count; c++) {
        const prev = last.get(rows[c]!);
        if (prev === undefined) links[count + c] = 1;
        else {
          links[count + c] = 0;
          links[prev] = c;
        }
        links[c] = -1;
        last.set(rows[c]!, c);
      }
      return;
    }
    case 'zero':
      buffers[0]!.fill(0, 0, outer * axis * inner);
      return;
    case 'scatter_add': {
      const [dOut, ids, links, dX] = buffers as [HostArray, HostArray, HostArray, HostArray];
      for (let c = 0; c < count; c++) {
        if (links[count + c] === 0) continue;
        const row = rowOf(p, ids[c]!);
        for (let o = 0; o < outer; o++) {
          for (let i = 0; i < inner; i++) {
            let acc = 0;
            for (let cc = c; cc >= 0; cc = links[cc]!) acc += dOut[(o * count + cc) * inner + i]!;
            dX[(o * axis + row) * inner + i] = acc;
          }
        }
      }
      return;
    }
  }
}
