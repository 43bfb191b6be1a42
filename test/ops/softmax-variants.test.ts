/**
 * Both softmax kernels (workgroup per row, softmax.ts; thread per row, softmax-row.ts) against an
 * independent float64 softmax: forward and backward of softmax and log-softmax, odd row lengths,
 * rows strided through `inner`, masked (-inf) entries and fully masked rows; and the op on rows
 * past the short-row limit and on zero-size inputs. On cpu both run the shared reference.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import type { KernelSpec } from '../../src/kernels/kernel-spec.js';
import { type SoftmaxParams, softmaxKernel } from '../../src/kernels/softmax/softmax.js';
import { SOFTMAX_SHORT_ROW, softmaxRowKernel } from '../../src/kernels/softmax/softmax-row.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

interface Geo {
  outer: number;
  len: number;
  inner: number;
}

/** Element (o, k, i) of [outer, len, inner] lives at (o*len + k)*inner + i. */
const at = (g: Geo, o: number, k: number, i: number): number => (o * g.len + k) * g.inner + i;

/** Independent float64 forward (op) or backward (given y and dY) over every row. */
function naive(g: Geo, op: SoftmaxParams['op'], dir: SoftmaxParams['dir'], a: ArrayLike<number>, dY?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let o = 0; o < g.outer; o++) {
    for (let i = 0; i < g.inner; i++) {
      const idx = Array.from({ length: g.len }, (_, k) => at(g, o, k, i));
      if (dir === 'forward') {
        const live = idx.filter((j) => a[j] !== -Infinity);
        const m = Math.max(...live.map((j) => a[j]!));
        const s = live.reduce((acc, j) => acc + Math.exp(a[j]! - m), 0);
        for (const j of idx) {
          const ok = a[j] !== -Infinity;
          if (op === 'softmax') out[j] = ok ? Math.exp(a[j]! - m) / s : 0;
          else out[j] = ok ? a[j]! - m - Math.log(s) : -Infinity;
        }
      } else if (op === 'softmax') {
        const dot = idx.reduce((acc, j) => acc + (a[j] !== 0 ? dY![j]! * a[j]! : 0), 0);
        for (const j of idx) out[j] = a[j] !== 0 ? a[j]! * (dY![j]! - dot) : 0;
      } else {
        const total = idx.reduce((acc, j) => acc + (a[j] !== -Infinity ? dY![j]! : 0), 0);
        for (const j of idx) out[j] = a[j] !== -Infinity ? dY![j]! - Math.exp(a[j]!) * total : 0;
      }
    }
  }
  return out;
}

/** Scores with a few masked entries and (when there are at least 3 rows) one fully masked row. */
function scores(g: Geo, seed: number): Float32Array {
  const x = randomNormal(g.outer * g.len * g.inner, seed).map((v) => v * 3);
  for (let j = 0; j < x.length; j += 7) x[j] = -Infinity;
  if (g.outer >= 3) for (let k = 0; k < g.len; k++) for (let i = 0; i < g.inner; i++) x[at(g, 1, k, i)] = -Infinity;
  return x;
}

const GEOS: Geo[] = [
  { outer: 5, len: 65, inner: 1 },
  { outer: 3, len: 9, inner: 4 },
  { outer: 4, len: 1, inner: 3 },
  { outer: 3, len: 130, inner: 1 },
  { outer: 2, len: SOFTMAX_SHORT_ROW + 37, inner: 2 },
];

describe.each(await testDevices())('softmax kernel variants on %s', (_name, device) => {
  const tensor = (data: Float32Array) => E.Tensor.fromArray(data, [data.length], { device });

  async function check(spec: KernelSpec<SoftmaxParams>, g: Geo, op: SoftmaxParams['op'], seed: number): Promise<void> {
    const p = { rows: g.outer * g.inner, len: g.len, inner: g.inner, op };
    const x = scores(g, seed);
    const label = `${spec.key({ ...p, dir: 'forward' })} [${g.outer}, ${g.len}, ${g.inner}]`;
    const xt = tensor(x);
    const yt = E.Tensor.empty([x.length], 'f32', device);
    device.run(spec, { ...p, dir: 'forward' }, [xt.storage, yt.storage]);
    const y = await yt.read();
    expectClose(y, naive(g, op, 'forward', x), 1e-6, 1e-5, `${label} forward`);
    // Backward from the kernel's own y (its exact zeros / -inf mark the masked entries).
    const dY = randomNormal(x.length, seed + 1);
    const dYt = tensor(dY);
    const dXt = E.Tensor.empty([x.length], 'f32', device);
    device.run(spec, { ...p, dir: 'backward' }, [yt.storage, dYt.storage, dXt.storage]);
    expectClose(await dXt.read(), naive(g, op, 'backward', y, dY), 1e-5, 1e-4, `${label} backward`);
    for (const t of [xt, yt, dYt, dXt]) t.dispose();
  }

  for (const [name, spec] of [['workgroup per row', softmaxKernel], ['thread per row', softmaxRowKernel]] as const) {
    it(`${name}: softmax and log-softmax, forward and backward`, async () => {
      let seed = 1;
      for (const g of GEOS) {
        for (const op of ['softmax', 'log_softmax'] as const) await check(spec, g, op, seed++);
      }
    });
  }

  it('fully masked rows: softmax zeros, log-softmax -inf, zero gradients (thread per row)', async () => {
    const x = new Float32Array(10).fill(-Infinity);
    x[7] = 2;
    const p = { rows: 2, len: 5, inner: 1 };
    const xt = tensor(x);
    const yt = E.Tensor.empty([10], 'f32', device);
    device.run(softmaxRowKernel, { ...p, op: 'softmax', dir: 'forward' }, [xt.storage, yt.storage]);
    expect(Array.from(await yt.read())).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
    device.run(softmaxRowKernel, { ...p, op: 'log_softmax', dir: 'forward' }, [xt.storage, yt.storage]);
    const ly = Array.from(await yt.read());
    expect(ly.slice(0, 5).every((v) => v === -Infinity)).toBe(true);
    expect(ly[7]).toBe(0);
    const dYt = tensor(new Float32Array(10).fill(1));
    const dXt = E.Tensor.empty([10], 'f32', device);
    device.run(softmaxRowKernel, { ...p, op: 'log_softmax', dir: 'backward' }, [yt.storage, dYt.storage, dXt.storage]);
    expect(Array.from(await dXt.read()).slice(0, 5)).toEqual([0, 0, 0, 0, 0]);
    for (const t of [xt, yt, dYt, dXt]) t.dispose();
  });

  it('the op: short and long rows on any axis, gradients, zero-size inputs', async () => {
    for (const [shape, axis] of [[[3, 65], -1], [[2, SOFTMAX_SHORT_ROW + 5], 1], [[4, 70, 3], 1]] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const g: Geo = {
        outer: shape.slice(0, axis < 0 ? shape.length - 1 : axis).reduce((a, b) => a * b, 1),
        len: shape[axis < 0 ? shape.length - 1 : axis]!,
        inner: axis < 0 ? 1 : shape.slice(axis + 1).reduce((a, b) => a * b, 1),
      };
      const x = scores(g, n);
      const xt = E.Tensor.fromArray(x, [...shape], { device, requiresGrad: true });
      const y = E.softmax(xt, axis);
      const yv = await y.read();
      expectClose(yv, naive(g, 'softmax', 'forward', x), 1e-6, 1e-5, `softmax [${shape}] axis ${axis}`);
      const dY = randomNormal(n, 3);
      E.backward(E.sum(E.mul(y, E.Tensor.fromArray(dY, [...shape], { device }))));
      expectClose(await xt.grad!.read(), naive(g, 'softmax', 'backward', yv, dY), 1e-5, 1e-4, `softmax grad [${shape}]`);
      xt.dispose();
    }
    for (const shape of [[0, 5], [3, 0]]) {
      const xt = E.Tensor.zeros(shape, { device, requiresGrad: true });
      const y = E.logSoftmax(xt, -1);
      expect(y.shape).toEqual(shape);
      E.backward(E.sum(y));
      expect(xt.grad!.shape).toEqual(shape);
      xt.dispose();
    }
  });
});
