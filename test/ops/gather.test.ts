import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/** Independent index_select on host arrays: walk every output coordinate. */
function naiveIndexSelect(x: Float32Array, shape: number[], axis: number, ids: number[]): Float32Array {
  const outShape = [...shape];
  outShape[axis] = ids.length;
  const out = new Float32Array(size(outShape));
  for (let i = 0; i < out.length; i++) {
    let rem = i;
    let src = 0;
    let stride = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rem % outShape[d]!;
      rem = Math.floor(rem / outShape[d]!);
      src += (d === axis ? ids[c]! : c) * stride;
      stride *= shape[d]!;
    }
    out[i] = x[src]!;
  }
  return out;
}

describe.each(await testDevices())('gather on %s', (name, device) => {
  it('indexSelect along every axis with repeats', async () => {
    const shape = [3, 4, 5];
    const x = randomNormal(size(shape), 7);
    const X = E.Tensor.fromArray(x, shape, { device });
    const cases: [number, number[]][] = [[0, [2, 0, 2]], [1, [3, 3, 1, 0, 2]], [2, [4]], [-1, [0, 4, 1, 1]]];
    for (const [axis, list] of cases) {
      const ids = E.Tensor.fromArray(new Int32Array(list), [list.length], { device });
      const out = E.indexSelect(X, axis, ids);
      const a = (axis + 3) % 3;
      const want = naiveIndexSelect(x, shape, a, list);
      expect(out.shape).toEqual(shape.map((d, i) => (i === a ? list.length : d)));
      expect(Array.from(await out.read())).toEqual(Array.from(want));
    }
  });

  it('indexSelect copies i32 tensors and handles empty id lists', async () => {
    const x = E.Tensor.fromArray(new Int32Array([10, 11, 12, 13, 14, 15]), [3, 2], { device });
    const ids = E.Tensor.fromArray(new Int32Array([2, 0]), [2], { device });
    const out = E.indexSelect(x, 0, ids);
    expect(out.dtype).toBe('i32');
    expect(Array.from(await out.read())).toEqual([14, 15, 10, 11]);
    const none = E.indexSelect(x, 1, E.Tensor.fromArray(new Int32Array([]), [0], { device }));
    expect(none.shape).toEqual([3, 0]);
  });

  it('embedding: ids of any shape', async () => {
    const w = randomNormal(6 * 4, 3);
    const W = E.Tensor.fromArray(w, [6, 4], { device });
    const list = [5, 0, 0, 3, 5, 1];
    const out = E.embedding(W, E.Tensor.fromArray(new Int32Array(list), [2, 3], { device }));
    expect(out.shape).toEqual([2, 3, 4]);
    expect(Array.from(await out.read())).toEqual(Array.from(naiveIndexSelect(w, [6, 4], 0, list)));
    const one = E.embedding(W, E.Tensor.fromArray(new Int32Array([2]), [], { device }));
    expect(one.shape).toEqual([4]);
    expect(Array.from(await one.read())).toEqual(Array.from(w.slice(8, 12)));
  });

  it('scatter-adds gradients of repeated ids deterministically', async () => {
    const W = E.Tensor.fromArray(randomNormal(5 * 3, 4), [5, 3], { device, requiresGrad: true });
    const list = [1, 4, 1, 1, 0, 4];
    const ids = E.Tensor.fromArray(new Int32Array(list), [2, 3], { device });
    const g = randomNormal(6 * 3, 9);
    const out = E.embedding(W, ids);
    E.backward(out, E.Tensor.fromArray(g, [2, 3, 3], { device }));
    const want = new Float32Array(15);
    list.forEach((id, c) => {
      for (let j = 0; j < 3; j++) want[id * 3 + j]! += g[c * 3 + j]!;
    });
    expectClose(await W.grad!.read(), want, 1e-6, 1e-5, 'embedding grad');
  });

  it('backward is deterministic and frees its intermediates', async () => {
    const before = device.stats().liveBuffers;
    const list = Int32Array.from({ length: 200 }, (_, i) => (i * 7919) % 13);
    const grads: Float32Array[] = [];
    for (let run = 0; run < 2; run++) {
      const W = E.Tensor.fromArray(randomNormal(13 * 8, 1), [13, 8], { device, requiresGrad: true });
      const ids = E.Tensor.fromArray(list, [200], { device });
      const out = E.indexSelect(W, 0, ids);
      const seed = E.Tensor.fromArray(randomNormal(200 * 8, 2), [200, 8], { device });
      E.backward(out, seed);
      grads.push((await W.grad!.read()) as Float32Array);
      for (const t of [W, ids, out, seed]) t.dispose();
    }
    expect(new Uint32Array(grads[0]!.buffer)).toEqual(new Uint32Array(grads[1]!.buffer));
    expect(device.stats().liveBuffers).toBe(before);
  });

  it('gradients', async () => {
    const ids = new Int32Array([2, 0, 2, 2, 1]);
    await gradcheck(device, ([x, i]) => E.indexSelect(x!, 1, i!), [[2, 4, 3], [5]], { values: [undefined, ids] });
    await gradcheck(device, ([x, i]) => E.indexSelect(x!, 0, i!), [[4, 3], [5]], { values: [undefined, ids] });
    await gradcheck(device, ([w, i]) => E.embedding(w!, i!), [[3, 4], [2, 3]], {
      values: [undefined, new Int32Array([1, 1, 0, 2, 1, 0])],
    });
  });

  it('checks arguments and out-of-range ids', async () => {
    const x = E.Tensor.zeros([3, 2], { device });
    expect(() => E.indexSelect(x, 0, E.Tensor.zeros([2], { device }))).toThrow(/ids \[2\] has dtype f32, expected i32/);
    expect(() => E.indexSelect(x, 0, E.Tensor.zeros([1, 2], { device, dtype: 'i32' }))).toThrow(/must have rank 1/);
    expect(() => E.embedding(E.Tensor.zeros([3], { device }), E.Tensor.zeros([1], { device, dtype: 'i32' }))).toThrow(/must have rank 2/);
    const bad = E.Tensor.fromArray(new Int32Array([0, 3]), [2], { device });
    const W = E.Tensor.fromArray([1, 2, 3, 4, 5, 6], [3, 2], { device });
    if (name === 'cpu') {
      expect(() => E.indexSelect(W, 0, bad)).toThrow('gather: id 3 is out of range for an axis of size 3');
    } else {
      // The GPU kernel clamps: id 3 reads row 2.
      expect(Array.from(await E.indexSelect(W, 0, bad).read())).toEqual([1, 2, 5, 6]);
    }
  });
});
