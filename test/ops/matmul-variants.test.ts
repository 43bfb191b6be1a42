import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { type MatmulParams, matmulKernel } from '../../src/kernels/matmul/matmul.js';
import { type MatmulSgParams, matmulSgKernel, matmulSgVecA, matmulSgVecB } from '../../src/kernels/matmul/matmul-sg.js';
import { matmulSharedKernel } from '../../src/kernels/matmul/matmul-shared.js';
import type { KernelSpec } from '../../src/kernels/kernel-spec.js';
import { TUNING_VERSION, installTuning } from '../../src/engine/device/tuning.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

/**
 * Every matmul kernel variant against an independent triple loop: odd sizes (not multiples of any
 * tile), all four transposes, bias, alpha and broadcast batch strides. Subgroup variants run where
 * the adapter has 8-wide subgroups (and always on the CPU device, which runs the shared reference).
 */

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  bias: boolean;
}

/** out[t, m, n] = alpha * sum_k op(A)(m, k) op(B)(k, n) + bias[n] for batch [2, 3]: A varies along dim 0, B along dim 1. */
function naive(c: Case, a: Float32Array, b: Float32Array, bias: Float32Array, alpha: number): Float32Array {
  const { M, N, K } = c;
  const out = new Float32Array(6 * M * N);
  for (let t = 0; t < 6; t++) {
    const aOff = Math.floor(t / 3) * M * K;
    const bOff = (t % 3) * K * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[aOff + (c.transA ? k * M + m : m * K + k)]!;
          const bv = b[bOff + (c.transB ? n * K + k : k * N + n)]!;
          s += av * bv;
        }
        out[(t * M + m) * N + n] = alpha * s + (c.bias ? bias[n]! : 0);
      }
    }
  }
  return out;
}

const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]] as const;

/** erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): independent of the kernels' own fit. */
function erfAS(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

/** The epilogue activations written out from their definitions (torch's formulas). */
const HOST_ACTIVATIONS: Record<E.MatmulActivation, (x: number) => number> = {
  relu: (x) => Math.max(x, 0),
  gelu_erf: (x) => 0.5 * x * (1 + erfAS(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  quick_gelu: (x) => x / (1 + Math.exp(-1.702 * x)),
};

function sgSupported(device: E.Device): boolean {
  return device.kind === 'cpu' || E.useSubgroupKernels(device);
}

describe.each(await testDevices())('matmul kernel variants on %s', (_name, device) => {
  async function check<P extends MatmulParams>(spec: KernelSpec<P>, c: Case, extra: Partial<P>): Promise<string> {
    const a = randomNormal(2 * c.M * c.K, c.M + 7 * c.K);
    const b = randomNormal(3 * c.K * c.N, c.N + 3);
    const bias = randomNormal(c.N, 5);
    const residual = randomNormal(6 * c.M * c.N, 6);
    const alpha = 1.5;
    const params = {
      ...c, alpha,
      batchShape: [2, 3], aBatchStrides: [c.M * c.K, 0], bBatchStrides: [0, c.K * c.N],
      ...extra,
    } as unknown as P;
    const inputs = [E.Tensor.fromArray(a, [2 * c.M * c.K], { device }), E.Tensor.fromArray(b, [3 * c.K * c.N], { device })];
    if (c.bias) inputs.push(E.Tensor.fromArray(bias, [c.N], { device }));
    if (params.residual) inputs.push(E.Tensor.fromArray(residual, [6 * c.M * c.N], { device }));
    const out = E.Tensor.empty([6 * c.M * c.N], 'f32', device);
    device.run(spec, params, [...inputs, out].map((t) => t.storage));
    const key = spec.key(params);
    const act = params.activation ? HOST_ACTIVATIONS[params.activation] : (x: number) => x;
    const want = naive(c, a, b, bias, alpha).map((x, i) => act(x) + (params.residual ? residual[i]! : 0));
    expectClose(await out.read(), want, 1e-5, 1e-4, key);
    for (const t of [...inputs, out]) t.dispose();
    return key;
  }

  it('register-tiled variants (4x4 and 8x8 outputs per thread)', async () => {
    for (const tile of [4, 8] as const) {
      for (const [transA, transB] of TRANSPOSES) {
        await check(matmulKernel, { M: 29, N: 67, K: 13, transA, transB, bias: transA }, { tile });
      }
    }
  });

  it('workgroup-memory variant: every transpose, edges inside and across its 64x64 tiles and 16-k steps', async () => {
    for (const [transA, transB] of TRANSPOSES) {
      await check(matmulSharedKernel, { M: 29, N: 67, K: 13, transA, transB, bias: transB }, {});
      await check(matmulSharedKernel, { M: 70, N: 65, K: 37, transA, transB, bias: !transB }, transA ? { activation: 'gelu_tanh', residual: true } : {});
    }
  });

  it.skipIf(!sgSupported(device))('subgroup variants: scalar and vec4 loads, every transpose', async () => {
    const keys = new Set<string>();
    for (const [transA, transB] of TRANSPOSES) {
      // Odd sizes: every operand read with scalar loads, K not a multiple of the 4-chunk.
      keys.add(await check(matmulSgKernel, { M: 29, N: 37, K: 23, transA, transB, bias: false }, { rows: 24 }));
      // K, N, M multiples of 4: vec4 loads of B (and of A where the layout allows), with bias.
      keys.add(await check(matmulSgKernel, { M: 36, N: 44, K: 20, transA, transB, bias: true }, { rows: 24 }));
    }
    expect([...keys].some((k) => k.includes(':av4:bv4'))).toBe(true);
    expect([...keys].some((k) => k.includes(':as:bs'))).toBe(true);
  });

  it.skipIf(!sgSupported(device))('subgroup variants: other tile shapes', async () => {
    const shapes: [Case, Partial<MatmulSgParams>][] = [
      [{ M: 13, N: 9, K: 7, transA: false, transB: false, bias: true }, { rows: 8 }],
      [{ M: 21, N: 70, K: 12, transA: false, transB: true, bias: false }, { rows: 16 }],
      // transA with M % 4 == 0 and 32 rows: vec4 cooperative loads along M.
      [{ M: 40, N: 36, K: 9, transA: true, transB: false, bias: false }, { rows: 32 }],
      [{ M: 33, N: 70, K: 17, transA: true, transB: true, bias: true }, { rows: 16, groups: 2 }],
    ];
    for (const [c, extra] of shapes) await check(matmulSgKernel, c, extra);
    const p = { ...shapes[2]![0], ...shapes[2]![1], batchShape: [], aBatchStrides: [], bBatchStrides: [] };
    expect(matmulSgVecA(p)).toBe(true);
    expect(matmulSgVecB(p)).toBe(true);
  });

  it('fused epilogues: every activation, with and without a residual add, in both kernel families', async () => {
    const combos: [E.MatmulActivation | undefined, boolean][] = [
      ['relu', true], ['gelu_erf', false], ['gelu_tanh', true], ['quick_gelu', true], [undefined, true],
    ];
    const c: Case = { M: 21, N: 38, K: 11, transA: false, transB: true, bias: true };
    const keys: string[] = [];
    for (const [activation, residual] of combos) {
      const epilogue = { ...(activation ? { activation } : {}), residual };
      keys.push(await check(matmulKernel, c, { tile: 4, ...epilogue }));
      if (sgSupported(device)) keys.push(await check(matmulSgKernel, c, { rows: 8, ...epilogue }));
    }
    expect(keys.filter((k) => k.includes(':quick_gelu:res:')).length).toBe(sgSupported(device) ? 2 : 1);
  });

  it('linear: a fused epilogue equals the recorded ops, and gradients go through the recorded ones', async () => {
    const [M, K, N] = [13, 20, 24];
    const x = randomNormal(2 * M * K, 1);
    const w = randomNormal(N * K, 2);
    const bias = randomNormal(N, 3);
    const r = randomNormal(2 * M * N, 4);
    for (const [activation, composed] of [['quick_gelu', E.quickGelu], ['gelu_erf', E.gelu], ['relu', E.relu]] as const) {
      const run = async (fused: boolean, grad: boolean) => {
        const X = E.Tensor.fromArray(x, [2, M, K], { device, requiresGrad: grad });
        const W = E.Tensor.fromArray(w, [N, K], { device, requiresGrad: grad });
        const B = E.Tensor.fromArray(bias, [N], { device });
        const R = E.Tensor.fromArray(r, [2, M, N], { device, requiresGrad: grad });
        const y = fused ? E.linear(X, W, B, { activation, residual: R }) : E.add(composed(E.linear(X, W, B)), R);
        const out = [await y.read()];
        if (grad) {
          E.backward(E.sum(E.mul(y, y)));
          out.push(await X.grad!.read(), await W.grad!.read(), await R.grad!.read());
        }
        for (const t of [X, W, B, R, y]) t.dispose();
        return out;
      };
      const [want] = await run(false, false);
      const [got] = await run(true, false);
      expectClose(got!, want!, 1e-5, 1e-5, `linear + ${activation} + residual, fused`);
      const wantGrads = await run(false, true);
      const gotGrads = await run(true, true);
      gotGrads.forEach((g, i) => expectClose(g, wantGrads[i]!, 1e-5, 1e-5, `${activation}: output ${i} with gradients`));
    }
    const X = E.Tensor.fromArray(x, [2, M, K], { device });
    const W = E.Tensor.fromArray(w, [N, K], { device });
    expect(() => E.linear(X, W, null, { residual: E.Tensor.zeros([M, N], { device }) })).toThrow(/residual \[13, 24\] must have the output's shape \[2, 13, 24\]/);
    expect(() => E.linear(X, W, null, { activation: 'swish' as E.MatmulActivation })).toThrow(/activation 'swish' is not one of relu, gelu_erf/);
  });

  it('tile choice: tuned rows of the rows x 32 tile, 24 by default', () => {
    expect(E.subgroupMatmulRows(device)).toBe(24);
    installTuning(device, {
      version: TUNING_VERSION,
      adapter: 'test',
      entries: { [E.MATMUL_SG_TUNABLE]: { default: { choice: 'r16', candidates: ['r24', 'r16', 'r32'], ms: {}, timing: 'gpu' } } },
    });
    try {
      expect(E.subgroupMatmulRows(device)).toBe(16);
    } finally {
      installTuning(device, null);
    }
  });

  it('ops give the same products with and without the subgroup variants', async () => {
    const a = randomNormal(3 * 45 * 28, 1);
    const b = randomNormal(28 * 52, 2);
    const run = async (): Promise<ArrayLike<number>> => {
      const A = E.Tensor.fromArray(a, [3, 45, 28], { device });
      const B = E.Tensor.fromArray(b, [52, 28], { device });
      const out = E.matmul(A, B, { transB: true });
      const data = await out.read();
      for (const t of [A, B, out]) t.dispose();
      return data;
    };
    const auto = await run();
    E.kernelVariants.mode = 'portable';
    try {
      expectClose(await run(), auto, 1e-5, 1e-4, 'portable vs auto');
    } finally {
      E.kernelVariants.mode = 'auto';
    }
  });
});
