/**
 * Split-K (engine/ops/matmul-split.ts): the slice count rule, and thin Aᵀ·B products (a direct
 * matmul and a linear layer's weight gradient) that run split on the register-tiled path ('portable'
 * variants, as on GPUs without 8-wide subgroups) against a float64 triple loop, with the launches
 * recorded to show that they were split, and not split on lavapipe's subgroup path.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { SPLIT_K_TARGET_WORKGROUPS, splitKSlices } from '../../src/engine/ops/matmul-split.js';
import type { KernelSpec } from '../../src/kernels/kernel-spec.js';
import { expectClose } from '../helpers/allclose.js';
import { webgpuDevice } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

/** out[m, n] = sum_k A[k, m] * B[k, n] in float64 (A stored [K, M], B [K, N]). */
function naiveAtB(a: Float32Array, b: Float32Array, M: number, N: number, K: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let k = 0; k < K; k++)
    for (let m = 0; m < M; m++) {
      const av = a[k * M + m]!;
      for (let n = 0; n < N; n++) out[m * N + n] = out[m * N + n]! + av * b[k * N + n]!;
    }
  return out;
}

describe('split-K slice count', () => {
  it('largest divisor of K up to the target, slices of at least 256 k, at most 32 of them', () => {
    expect(splitKSlices(3880, 1, 128)).toBe(10); // want min(128, 32, 15) = 15; 3880 = 2^3 * 5 * 97
    expect(splitKSlices(1 << 16, 1, 128)).toBe(32);
    expect(splitKSlices(1 << 16, 16, 128)).toBe(8);
    expect(splitKSlices(512, 1, 128)).toBe(2);
    expect(splitKSlices(1009, 1, 128)).toBe(1); // prime K: no equal slices
    expect(splitKSlices(511, 1, 128)).toBe(1); // too short to split
    expect(splitKSlices(3880, 128, 128)).toBe(1); // busy enough already
    expect(splitKSlices(3880, 1, 0)).toBe(1); // adapter that never splits
  });
});

const gpu = await webgpuDevice();

describe.skipIf(!gpu)('split-K products on webgpu', () => {
  const device = gpu!;
  afterEach(() => {
    E.kernelVariants.mode = 'auto';
  });

  /** Runs f, returning the matmul launches it made as `key [batch]`. */
  async function launches(f: () => Promise<void>): Promise<string[]> {
    const seen: string[] = [];
    const run = device.run.bind(device);
    device.run = ((spec: KernelSpec<unknown>, params: unknown, buffers: unknown) => {
      if (spec.name === 'matmul') seen.push(`${spec.key(params)} [${(params as { batchShape: number[] }).batchShape.join(',')}] K=${(params as { K: number }).K}`);
      return (run as (s: unknown, p: unknown, b: unknown) => void)(spec, params, buffers);
    }) as typeof device.run;
    try {
      await f();
    } finally {
      device.run = run;
    }
    return seen;
  }

  it('matmul Aᵀ·B with few output tiles runs as K slices and sums to the same product', async () => {
    const [M, N, K] = [20, 36, 2048];
    const av = randomNormal(K * M, 1);
    const bv = randomNormal(K * N, 2);
    E.kernelVariants.mode = 'portable';
    let got: ArrayLike<number> | null = null;
    const seen = await launches(async () => {
      const a = E.Tensor.fromArray(av, [K, M], { device });
      const b = E.Tensor.fromArray(bv, [K, N], { device });
      const out = E.matmul(a, b, { transA: true });
      expect(out.shape).toEqual([M, N]);
      got = await out.read();
      for (const t of [a, b, out]) t.dispose();
    });
    const slices = splitKSlices(K, 1, SPLIT_K_TARGET_WORKGROUPS);
    expect(slices).toBe(8);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(new RegExp(`\\[${slices}\\] K=${K / slices}$`));
    expectClose(got!, naiveAtB(av, bv, M, N, K), 1e-5, 1e-4, 'split-K matmul');
  });

  it("a thin linear layer's weight gradient runs split and matches the naive dYᵀ·X", async () => {
    const [T, inF, outF] = [1536, 24, 20];
    const xv = randomNormal(T * inF, 3);
    const wv = randomNormal(outF * inF, 4);
    const gv = randomNormal(T * outF, 5);
    E.kernelVariants.mode = 'portable';
    let dW: ArrayLike<number> | null = null;
    const seen = await launches(async () => {
      const x = E.Tensor.fromArray(xv, [2, T / 2, inF], { device });
      const w = E.Tensor.fromArray(wv, [outF, inF], { device, requiresGrad: true });
      const y = E.linear(x, w);
      E.backward(E.scope(() => E.sum(E.mul(y, E.Tensor.fromArray(gv, [2, T / 2, outF], { device })))));
      dW = await w.grad!.read();
      for (const t of [x, w, y]) t.dispose();
    });
    // dW [outF, inF] = dYᵀ [outF, T] · X [T, inF]: 1536 = 6 slices of 256.
    expect(seen.some((s) => s.endsWith('[6] K=256'))).toBe(true);
    expectClose(dW!, naiveAtB(gv, xv, outF, inF, T), 1e-5, 1e-4, 'split-K weight gradient');
  });

  it('not on the subgroup path (lavapipe), where splitting measured no faster', async () => {
    const seen = await launches(async () => {
      const a = E.Tensor.fromArray(randomNormal(2048 * 20, 6), [2048, 20], { device });
      const b = E.Tensor.fromArray(randomNormal(2048 * 36, 7), [2048, 36], { device });
      const out = E.matmul(a, b, { transA: true });
      await out.read();
      for (const t of [a, b, out]) t.dispose();
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(E.useSubgroupKernels(device) ? /\[\] K=2048$/ : /\[8\] K=256$/);
  });
});
