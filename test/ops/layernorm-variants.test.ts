/**
 * Both layernorm kernels for `forward` and `backward_input` (workgroup per row, layernorm.ts;
 * thread per row, layernorm-row.ts, with vec4 rows when C % 4 == 0) against an independent float64
 * layer norm, with and without weight / bias, at odd widths; and the op past the short-row limit
 * and on zero-size inputs. On cpu both run the shared reference.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import type { KernelSpec } from '../../src/kernels/kernel-spec.js';
import { type LayerNormParams, layerNormKernel } from '../../src/kernels/layernorm/layernorm.js';
import { LAYERNORM_SHORT_ROW, layerNormRowKernel } from '../../src/kernels/layernorm/layernorm-row.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

interface Naive {
  y: Float64Array;
  dX: Float64Array;
  mean: Float64Array;
  rstd: Float64Array;
}

/** y = xhat * w + b per row, and dX for upstream dY (float64, the textbook formulas). */
function naive(x: Float32Array, rows: number, C: number, w: Float32Array | null, b: Float32Array | null, dY: Float32Array, eps: number): Naive {
  const y = new Float64Array(rows * C);
  const dX = new Float64Array(rows * C);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * C, (r + 1) * C));
    const m = row.reduce((a, v) => a + v, 0) / C;
    const v = row.reduce((a, u) => a + (u - m) ** 2, 0) / C;
    const s = 1 / Math.sqrt(v + eps);
    mean[r] = m;
    rstd[r] = s;
    const xhat = row.map((u) => (u - m) * s);
    const g = xhat.map((_, k) => dY[r * C + k]! * (w ? w[k]! : 1));
    const mg = g.reduce((a, u) => a + u, 0) / C;
    const mgx = g.reduce((a, u, k) => a + u * xhat[k]!, 0) / C;
    for (let k = 0; k < C; k++) {
      y[r * C + k] = xhat[k]! * (w ? w[k]! : 1) + (b ? b[k]! : 0);
      dX[r * C + k] = s * (g[k]! - mg - xhat[k]! * mgx);
    }
  }
  return { y, dX, mean, rstd };
}

describe.each(await testDevices())('layernorm kernel variants on %s', (_name, device) => {
  const tensor = (data: Float32Array) => E.Tensor.fromArray(data, [data.length], { device });

  async function check(spec: KernelSpec<LayerNormParams>, rows: number, cols: number, hasWeight: boolean, hasBias: boolean): Promise<string> {
    const eps = 1e-5;
    const x = randomNormal(rows * cols, rows + cols).map((v, i) => v * 2 + (i % 3));
    const w = hasWeight ? randomNormal(cols, 5) : null;
    const b = hasBias ? randomNormal(cols, 6) : null;
    const dY = randomNormal(rows * cols, 7);
    const ref = naive(x, rows, cols, w, b, dY, eps);
    const p = { rows, cols, eps, hasWeight, hasBias };
    const label = spec.key({ ...p, stage: 'forward' });
    const xt = tensor(x);
    const wt = w ? tensor(w) : null;
    const bt = b ? tensor(b) : null;
    const yt = E.Tensor.empty([rows * cols], 'f32', device);
    const mt = E.Tensor.empty([rows], 'f32', device);
    const st = E.Tensor.empty([rows], 'f32', device);
    const fwd = [xt, ...(wt ? [wt] : []), ...(bt ? [bt] : []), yt, mt, st];
    device.run(spec, { ...p, stage: 'forward' }, fwd.map((t) => t.storage));
    expectClose(await yt.read(), ref.y, 1e-5, 1e-4, `${label} [${rows}, ${cols}] y`);
    expectClose(await mt.read(), ref.mean, 1e-5, 1e-4, `${label} mean`);
    expectClose(await st.read(), ref.rstd, 1e-5, 1e-4, `${label} rstd`);
    const dYt = tensor(dY);
    const dXt = E.Tensor.empty([rows * cols], 'f32', device);
    const bwd = [xt, mt, st, ...(wt ? [wt] : []), dYt, dXt];
    device.run(spec, { ...p, stage: 'backward_input' }, bwd.map((t) => t.storage));
    expectClose(await dXt.read(), ref.dX, 1e-5, 1e-4, `${label} [${rows}, ${cols}] dX`);
    for (const t of [...fwd, dYt, dXt]) t.dispose();
    return label;
  }

  for (const [name, spec] of [['workgroup per row', layerNormKernel], ['thread per row', layerNormRowKernel]] as const) {
    it(`${name}: forward and backward_input at odd widths, with and without affine`, async () => {
      const keys = new Set<string>();
      for (const [rows, cols] of [[67, 64], [5, 7], [3, 1], [9, 132], [2, 300]] as const) {
        keys.add(await check(spec, rows, cols, true, true));
      }
      keys.add(await check(spec, 6, 12, false, false));
      keys.add(await check(spec, 6, 13, true, false));
      if (spec === layerNormRowKernel) {
        expect([...keys].some((k) => k.endsWith(':v4'))).toBe(true);
        expect([...keys].some((k) => k.endsWith(':s'))).toBe(true);
      }
    });
  }

  it('the op: rows past the short-row limit, gradients of x, weight and bias, zero-size', async () => {
    for (const cols of [64, LAYERNORM_SHORT_ROW + 6]) {
      const rows = 3;
      const x = randomNormal(rows * cols, cols);
      const w = randomNormal(cols, 2);
      const b = randomNormal(cols, 3);
      const dY = randomNormal(rows * cols, 4);
      const ref = naive(x, rows, cols, w, b, dY, 1e-5);
      const xt = E.Tensor.fromArray(x, [rows, cols], { device, requiresGrad: true });
      const wt = E.Tensor.fromArray(w, [cols], { device, requiresGrad: true });
      const bt = E.Tensor.fromArray(b, [cols], { device, requiresGrad: true });
      const y = E.layerNorm(xt, wt, bt);
      expectClose(await y.read(), ref.y, 1e-5, 1e-4, `layerNorm C=${cols}`);
      E.backward(E.sum(E.mul(y, E.Tensor.fromArray(dY, [rows, cols], { device }))));
      expectClose(await xt.grad!.read(), ref.dX, 1e-5, 1e-4, `layerNorm dX C=${cols}`);
      const dB = Array.from({ length: cols }, (_, k) => dY[k]! + dY[cols + k]! + dY[2 * cols + k]!);
      expectClose(await bt.grad!.read(), dB, 1e-5, 1e-4, `layerNorm dB C=${cols}`);
      for (const t of [xt, wt, bt]) t.dispose();
    }
    const xt = E.Tensor.zeros([0, 64], { device, requiresGrad: true });
    const y = E.layerNorm(xt, null, null);
    expect(y.shape).toEqual([0, 64]);
    E.backward(E.sum(y));
    expect(xt.grad!.shape).toEqual([0, 64]);
    xt.dispose();
  });
});
