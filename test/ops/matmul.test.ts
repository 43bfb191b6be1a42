import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { matmulKernel } from '../../src/kernels/matmul/matmul.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

/**
 * Independent torch.matmul for rank >= 2 operands: materialise op(a), op(b) as explicit
 * [batch.., rows, cols] index functions, broadcast the batch dims by coordinates, triple loop.
 */
function naiveMatmul(
  a: Float32Array, aShape: number[], b: Float32Array, bShape: number[], transA = false, transB = false,
): { data: Float32Array; shape: number[] } {
  const ra = aShape.length;
  const rb = bShape.length;
  const at = (batch: number[], i: number, j: number): number => {
    // element (i, j) of op(a) at output batch coords
    const [r, c] = transA ? [j, i] : [i, j];
    let off = 0;
    let stride = 1;
    const full = [...aBatchCoords(batch), r, c];
    for (let d = ra - 1; d >= 0; d--) {
      off += full[d]! * stride;
      stride *= aShape[d]!;
    }
    return a[off]!;
  };
  const bt = (batch: number[], i: number, j: number): number => {
    const [r, c] = transB ? [j, i] : [i, j];
    let off = 0;
    let stride = 1;
    const full = [...bBatchCoords(batch), r, c];
    for (let d = rb - 1; d >= 0; d--) {
      off += full[d]! * stride;
      stride *= bShape[d]!;
    }
    return b[off]!;
  };
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const outBatch: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[aBatch.length - rank + i] ?? 1;
    const db = bBatch[bBatch.length - rank + i] ?? 1;
    outBatch.push(Math.max(da, db));
  }
  const aBatchCoords = (c: number[]) => aBatch.map((d, i) => (d === 1 ? 0 : c[rank - aBatch.length + i]!));
  const bBatchCoords = (c: number[]) => bBatch.map((d, i) => (d === 1 ? 0 : c[rank - bBatch.length + i]!));
  const M = transA ? aShape[ra - 1]! : aShape[ra - 2]!;
  const K = transA ? aShape[ra - 2]! : aShape[ra - 1]!;
  const N = transB ? bShape[rb - 2]! : bShape[rb - 1]!;
  const nb = outBatch.reduce((x, y) => x * y, 1);
  const data = new Float32Array(nb * M * N);
  for (let t = 0; t < nb; t++) {
    const coords: number[] = [];
    let rem = t;
    for (let d = rank - 1; d >= 0; d--) {
      coords.unshift(rem % outBatch[d]!);
      rem = Math.floor(rem / outBatch[d]!);
    }
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += at(coords, i, k) * bt(coords, k, j);
        data[(t * M + i) * N + j] = s;
      }
    }
  }
  return { data, shape: [...outBatch, M, N] };
}

const size = (s: number[]) => s.reduce((x, y) => x * y, 1);

describe.each(await testDevices())('matmul on %s', (_name, device) => {
  const tensor = (shape: number[], seed: number, requiresGrad = false) =>
    E.Tensor.fromArray(randomNormal(size(shape), seed), shape, { device, requiresGrad });

  async function check(aShape: number[], bShape: number[], transA = false, transB = false): Promise<void> {
    const a = randomNormal(size(aShape), 11);
    const b = randomNormal(size(bShape), 12);
    const want = naiveMatmul(a, aShape, b, bShape, transA, transB);
    const out = E.scope(() =>
      E.matmul(E.Tensor.fromArray(a, aShape, { device }), E.Tensor.fromArray(b, bShape, { device }), { transA, transB }),
    );
    expect(out.shape).toEqual(want.shape);
    expectClose(await out.read(), want.data, 1e-5, 1e-4, `${aShape} x ${bShape} t${+transA}${+transB}`);
    out.dispose();
  }

  it('2-D products of every transpose variant, sizes off the 32x32 tile', async () => {
    await check([7, 13], [13, 5]);
    await check([33, 70], [70, 17]);
    await check([1, 100], [100, 1]);
    await check([13, 7], [13, 5], true, false);
    await check([7, 13], [5, 13], false, true);
    await check([37, 9], [35, 37], true, true);
  });

  it('broadcast batch dims, folded leading dims and transposes', async () => {
    await check([3, 17, 29], [3, 29, 11]);
    await check([4, 2, 5, 19], [4, 1, 19, 7]);
    await check([2, 3, 9, 20], [20, 6]);
    await check([5, 3], [2, 3, 4]);
    await check([2, 1, 6, 5], [3, 6, 4], true, false);
    await check([2, 3, 9, 20], [6, 20], false, true);
    await check([3, 20, 9], [2, 1, 6, 20], true, true);
  });

  it('kernel: every variant (tile x transposes x bias) with broadcast batch strides and alpha', async () => {
    for (const [tile, M, N, K] of [[4, 6, 9, 5], [8, 70, 67, 13]] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const bias of [false, true]) {
            const aShape = transA ? [2, 1, K, M] : [2, 1, M, K];
            const bShape = transB ? [3, N, K] : [3, K, N];
            const a = randomNormal(size(aShape), 1);
            const b = randomNormal(size(bShape), 2);
            const c = randomNormal(N, 3);
            const want = naiveMatmul(a, aShape, b, bShape, transA, transB).data.map((v, i) => 1.5 * v + (bias ? c[i % N]! : 0));
            const tensors = [E.Tensor.fromArray(a, aShape, { device }), E.Tensor.fromArray(b, bShape, { device })];
            if (bias) tensors.push(E.Tensor.fromArray(c, [N], { device }));
            const out = E.Tensor.empty([2, 3, M, N], 'f32', device);
            const params = {
              transA, transB, bias, M, N, K, alpha: 1.5,
              batchShape: [2, 3], aBatchStrides: [M * K, 0], bBatchStrides: [0, K * N], tile,
            };
            device.run(matmulKernel, params, [...tensors, out].map((t) => t.storage));
            expectClose(await out.read(), want, 1e-5, 1e-4, matmulKernel.key(params));
          }
        }
      }
    }
  });

  it('rank-1 operands follow torch', async () => {
    const v = E.Tensor.fromArray([1, 2, 3], [3], { device });
    const w = E.Tensor.fromArray([4, 5, 6], [3], { device });
    const m = E.Tensor.fromArray([1, 0, 2, 1, 0, 3], [3, 2], { device }); // [[1,0],[2,1],[0,3]]
    const bm = E.Tensor.fromArray([1, 0, 2, 1, 0, 3, 1, 1, 1, 1, 1, 1], [2, 3, 2], { device });
    const dot = E.matmul(v, w);
    expect(dot.shape).toEqual([]);
    expect(await dot.item()).toBe(32);
    const vm = E.matmul(v, m);
    expect(vm.shape).toEqual([2]);
    expect(Array.from(await vm.read())).toEqual([5, 11]);
    const mv = E.matmul(E.transpose(m), v);
    expect(mv.shape).toEqual([2]);
    expect(Array.from(await mv.read())).toEqual([5, 11]);
    const vbm = E.matmul(v, bm);
    expect(vbm.shape).toEqual([2, 2]);
    expect(Array.from(await vbm.read())).toEqual([5, 11, 6, 6]);
    expect(() => E.matmul(v, m, { transA: true })).toThrow(/rank-1 operand cannot be transposed/);
  });

  it('alpha, empty inner dim and empty outputs', async () => {
    const a = E.Tensor.fromArray([1, 2, 3, 4], [2, 2], { device });
    expect(Array.from(await E.matmul(a, a, { alpha: 0.5 }).read())).toEqual([3.5, 5, 7.5, 11]);
    const z = E.matmul(E.Tensor.zeros([3, 0], { device }), E.Tensor.zeros([0, 4], { device }));
    expect(Array.from(await z.read())).toEqual(new Array(12).fill(0));
    const e = E.matmul(E.Tensor.zeros([0, 5], { device }), E.Tensor.zeros([5, 4], { device }));
    expect(e.shape).toEqual([0, 4]);
  });

  it('names the op and shapes in errors', () => {
    const a = tensor([2, 3], 1);
    const b = tensor([4, 5], 2);
    expect(() => E.matmul(a, b)).toThrow('matmul: [2, 3] x [4, 5]: inner dimensions 3 and 4 differ');
    expect(() => E.matmul(tensor([2, 3, 4], 3), tensor([3, 4, 5], 4))).toThrow(/do not broadcast/);
  });

  it('frees every intermediate, also for vector operands outside a scope', async () => {
    const before = device.stats().liveBuffers;
    const a = tensor([4], 1, true);
    const b = tensor([2, 4, 3], 2, true);
    const c = tensor([5, 3], 3, true);
    const bias = tensor([5], 4, true);
    const ab = E.matmul(a, b);
    const out = E.matmul(ab, c, { transB: true });
    const y = E.linear(b, c, bias);
    const seeds = [E.Tensor.ones(out.shape, { device }), E.Tensor.ones(y.shape, { device })];
    E.backward(out, seeds[0]);
    E.backward(y, seeds[1]);
    expect(a.grad!.shape).toEqual([4]);
    expect(bias.grad!.shape).toEqual([5]);
    for (const t of [a, b, c, bias, ab, out, y, ...seeds]) t.dispose();
    expect(device.stats().liveBuffers).toBe(before);
  });

  it('gradients of every transpose variant', async () => {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const aShape = transA ? [5, 6] : [6, 5];
      const bShape = transB ? [7, 5] : [5, 7];
      await gradcheck(device, ([a, b]) => E.matmul(a!, b!, { transA, transB, alpha: 0.7 }), [aShape, bShape]);
    }
  });

  it('gradients with broadcast batches, folded dims and vectors', async () => {
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!), [[2, 2, 3, 4], [2, 1, 4, 5]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!, { transA: true }), [[3, 4, 3], [1, 4, 2]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!, { transB: true }), [[4, 3], [2, 5, 3]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!), [[2, 3, 4], [4, 5]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!, { transB: true }), [[2, 3, 4], [5, 4]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!), [[4], [2, 4, 3]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!), [[2, 3, 4], [4]]);
    await gradcheck(device, ([a, b]) => E.matmul(a!, b!), [[4], [4]]);
  });
});

describe.each(await testDevices())('linear on %s', (_name, device) => {
  it('matches x·Wᵀ + b for any leading dims', async () => {
    for (const xShape of [[2, 5, 37], [37], [9, 37]]) {
      const x = randomNormal(size(xShape), 3);
      const w = randomNormal(23 * 37, 4);
      const bias = randomNormal(23, 5);
      const want = naiveMatmul(x, [size(xShape) / 37, 37], w, [23, 37], false, true).data;
      const withBias = want.map((v, i) => v + bias[i % 23]!);
      const X = E.Tensor.fromArray(x, xShape, { device });
      const W = E.Tensor.fromArray(w, [23, 37], { device });
      const B = E.Tensor.fromArray(bias, [23], { device });
      const y = E.linear(X, W, B);
      expect(y.shape).toEqual([...xShape.slice(0, -1), 23]);
      expectClose(await y.read(), withBias, 1e-5, 1e-4, 'linear+bias');
      expectClose(await E.linear(X, W).read(), want, 1e-5, 1e-4, 'linear');
      expectClose(await E.linear(X, W, null).read(), want, 1e-5, 1e-4, 'linear null bias');
    }
  });

  it('checks shapes', () => {
    const x = E.Tensor.zeros([2, 4], { device });
    expect(() => E.linear(x, E.Tensor.zeros([3, 5], { device }))).toThrow('linear: input [2, 4] has 4 features, weight [3, 5] expects 5');
    expect(() => E.linear(x, E.Tensor.zeros([3, 4], { device }), E.Tensor.zeros([4], { device }))).toThrow(/bias \[4\] must be \[3\]/);
  });

  it('gradients', async () => {
    await gradcheck(device, ([x, w, b]) => E.linear(x!, w!, b!), [[2, 3, 6], [5, 6], [5]]);
    await gradcheck(device, ([x, w]) => E.linear(x!, w!), [[6], [4, 6]]);
  });
});
