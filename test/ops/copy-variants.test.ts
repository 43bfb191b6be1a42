/**
 * The row copy (copy-rows.ts) and the 4x4 tile transpose (copy-tile.ts) against an independent
 * element-by-element strided copy: the simplified geometry (copyRowsPlan / copyTilePlan), vec4 and
 * scalar units, offsets, steps, broadcast (stride 0) outer dims and runs longer than one thread's
 * segment; copies each must refuse (transposes, unaligned shapes, padding); and the movement ops
 * that use them, with gradients. On cpu they run the shared reference.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import type { CopyParams } from '../../src/kernels/copy/copy.js';
import { copyRowsKernel, copyRowsPlan } from '../../src/kernels/copy/copy-rows.js';
import { copyTileKernel, copyTilePlan } from '../../src/kernels/copy/copy-tile.js';
import { contiguousStrides } from '../../src/kernels/wgsl.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

/** dst after copying every element of the iteration shape (dst starts as `init`). */
function naive(p: CopyParams, src: Float32Array, init: Float32Array): Float32Array {
  const dst = init.slice();
  const n = p.shape.reduce((a, b) => a * b, 1);
  for (let e = 0; e < n; e++) {
    let rem = e;
    let s = p.srcOffset;
    let d = p.dstOffset;
    for (let k = p.shape.length - 1; k >= 0; k--) {
      const c = rem % p.shape[k]!;
      rem = Math.floor(rem / p.shape[k]!);
      s += c * p.srcStep[k]! * p.srcStrides[k]!;
      d += c * p.dstStrides[k]!;
    }
    dst[d] = src[s]!;
  }
  return dst;
}

/** Permute of a contiguous `shape` by `axes`, as movement.ts builds it. */
function permuteParams(shape: number[], axes: number[]): CopyParams {
  const out = axes.map((a) => shape[a]!);
  const strides = contiguousStrides(shape);
  return {
    shape: out, srcShape: out, srcStrides: axes.map((a) => strides[a]!), srcStep: out.map(() => 1),
    srcOffset: 0, dstStrides: contiguousStrides(out), dstOffset: 0,
  };
}

describe.each(await testDevices())('copy row variant on %s', (_name, device) => {
  it('plans: merged dims, vec4 only when every stride and offset allows it, refusals', () => {
    // Attention head split [B, L, H, D] -> [B, H, L, D]: runs of D, vec4.
    const split = copyRowsPlan(permuteParams([2, 65, 4, 16], [0, 2, 1, 3]))!;
    expect(split).toMatchObject({ vec4: true, shape: [2, 4, 65], len: 4, srcStrides: [1040, 4, 16], dstStrides: [1040, 260, 4] });
    // A contiguous copy collapses to one run.
    expect(copyRowsPlan(permuteParams([3, 5, 7], [0, 1, 2]))).toMatchObject({ shape: [], len: 105, vec4: false, segs: 14 });
    // Runs of 15 words: scalar units.
    expect(copyRowsPlan(permuteParams([2, 3, 15], [1, 0, 2]))!.vec4).toBe(false);
    // A transpose (innermost source stride != 1) and a padded copy are refused.
    expect(copyRowsPlan(permuteParams([4, 8, 8], [0, 2, 1]))).toBeNull();
    expect(copyRowsPlan({ ...permuteParams([4, 8], [0, 1]), padBefore: [0, 1] })).toBeNull();
  });

  it('copies permutes, strided slices, offsets and broadcasts like the naive copy', async () => {
    const cases: [CopyParams, number, number][] = [
      [permuteParams([3, 65, 4, 16], [0, 2, 1, 3]), 3 * 65 * 64, 3 * 65 * 64],
      [permuteParams([3, 4, 65, 16], [0, 2, 1, 3]), 3 * 65 * 64, 3 * 65 * 64],
      [permuteParams([2, 5, 3, 15], [0, 2, 1, 3]), 450, 450],
      [permuteParams([2, 3, 100], [1, 0, 2]), 600, 600], // runs of 25 vec4: several segments
      // narrow rows 2..5 of [6, 12] (srcOffset 24): vec4
      [{ shape: [4, 12], srcShape: [6, 12], srcStrides: [12, 1], srcStep: [1, 1], srcOffset: 24, dstStrides: [12, 1], dstOffset: 0 }, 72, 48],
      // every other row, into the middle of a wider destination (concat-like dstOffset 3): scalar
      [{ shape: [3, 8], srcShape: [6, 8], srcStrides: [8, 1], srcStep: [2, 1], srcOffset: 0, dstStrides: [11, 1], dstOffset: 3 }, 48, 40],
      // a row broadcast along an outer dim (source stride 0)
      [{ shape: [5, 8], srcShape: [5, 8], srcStrides: [0, 1], srcStep: [1, 1], srcOffset: 0, dstStrides: [8, 1], dstOffset: 0 }, 8, 40],
    ];
    const keys = new Set<string>();
    for (const [p, nSrc, nDst] of cases) {
      expect(copyRowsPlan(p)).not.toBeNull();
      const src = randomNormal(nSrc, nSrc);
      const init = randomNormal(nDst, 9);
      const s = E.Tensor.fromArray(src, [nSrc], { device });
      const d = E.Tensor.fromArray(init, [nDst], { device });
      device.run(copyRowsKernel, p, [s.storage, d.storage]);
      keys.add(copyRowsKernel.key(p));
      expectClose(await d.read(), naive(p, src, init), 0, 0, `${copyRowsKernel.key(p)} [${p.shape}]`);
      s.dispose();
      d.dispose();
    }
    expect([...keys].sort()).toEqual(['copy:rows:s', 'copy:rows:v4']);
  });

  it('tile transposes: [B, C, HW] <-> [B, HW, C], 2-D, offsets; refusals', async () => {
    const cases: [CopyParams, number, number][] = [
      [permuteParams([3, 8, 12], [0, 2, 1]), 288, 288],
      [permuteParams([12, 20], [1, 0]), 240, 240],
      [permuteParams([2, 4, 3, 8], [3, 0, 2, 1]), 192, 192],
      // transpose of rows 1..4 of [5, 8] into a destination at offset 4
      [{ shape: [8, 4], srcShape: [5, 8], srcStrides: [1, 8], srcStep: [1, 1], srcOffset: 8, dstStrides: [4, 1], dstOffset: 4 }, 40, 40],
    ];
    for (const [p, nSrc, nDst] of cases) {
      expect(copyRowsPlan(p)).toBeNull();
      expect(copyTilePlan(p), JSON.stringify(p.shape)).not.toBeNull();
      const src = randomNormal(nSrc, nSrc + 5);
      const init = randomNormal(nDst, 8);
      const s = E.Tensor.fromArray(src, [nSrc], { device });
      const d = E.Tensor.fromArray(init, [nDst], { device });
      device.run(copyTileKernel, p, [s.storage, d.storage]);
      expectClose(await d.read(), naive(p, src, init), 0, 0, `tile4 [${p.shape}]`);
      s.dispose();
      d.dispose();
    }
    expect(copyTilePlan(permuteParams([3, 6, 8], [0, 2, 1]))).toBeNull(); // 6 rows: not 4-aligned
    expect(copyTilePlan(permuteParams([3, 3, 64, 64], [2, 3, 1, 0]))).toBeNull(); // J = kW of 3
    expect(copyTilePlan(permuteParams([4, 8, 8], [0, 1, 2]))).toBeNull(); // not a transpose
  });

  it('movement ops through them: permute, narrow, concat, transpose, with gradients; zero-size', async () => {
    const x = randomNormal(2 * 9 * 4 * 8, 1);
    const xt = E.Tensor.fromArray(x, [2, 9, 4, 8], { device, requiresGrad: true });
    const p = E.permute(xt, [0, 2, 1, 3]);
    const expected = naive(permuteParams([2, 9, 4, 8], [0, 2, 1, 3]), x, new Float32Array(x.length));
    expectClose(await p.read(), expected, 0, 0, 'permute');
    const cat = E.concat([E.narrow(p, 2, 1, 5), E.narrow(p, 2, 0, 1)], 2);
    const w = randomNormal(cat.size, 2);
    E.backward(E.sum(E.mul(cat, E.Tensor.fromArray(w, cat.shape, { device }))));
    // Every x element reaches cat at most once; dX is w scattered back through the same indices.
    const dX = new Float32Array(x.length);
    for (let b = 0; b < 2; b++)
      for (let h = 0; h < 4; h++)
        for (let l = 0; l < 6; l++)
          for (let d = 0; d < 8; d++) {
            const src = l < 5 ? l + 1 : 0;
            dX[((b * 9 + src) * 4 + h) * 8 + d] = w[((b * 4 + h) * 6 + l) * 8 + d]!;
          }
    expectClose(await xt.grad!.read(), dX, 0, 0, 'permute/narrow/concat gradient');
    const tr = E.transpose(E.Tensor.fromArray(x, [2, 36, 8], { device }), 1, 2);
    expectClose(await tr.read(), naive(permuteParams([2, 36, 8], [0, 2, 1]), x, new Float32Array(x.length)), 0, 0, 'transpose');
    const empty = E.permute(E.Tensor.zeros([0, 3, 4], { device }), [1, 0, 2]);
    expect(empty.shape).toEqual([3, 0, 4]);
    xt.dispose();
  });
});
