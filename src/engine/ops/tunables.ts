/**
 * The kernel choices measured per adapter by engine/device/tuning.ts (autotune at first use in the
 * CLI, bench and web app; cached per adapter). Each op reads its choice with tunedVariant and falls
 * back to its default when tuning is off or the adapter was never measured:
 *
 *   matmul-sg     rows of the subgroup matmul's rows x 32 tile ('r16' | 'r24' | 'r32'; default r24),
 *                 problem 256x768x768 (a ViT-B/16-like linear layer at a quarter of the tokens)
 *   matmul-tiled  outputs per thread of the register-tiled matmul on adapters without 8-wide
 *                 subgroups (SwiftShader, real GPUs): 't8' | 't4' (default t8), problem 256x512x512
 *   conv2d-gemm   pixels per workgroup of the implicit-GEMM conv ('r16' | 'r24' | 'r32'; default
 *                 r24), problem 3x3 128->128 at 26x26 (a CRIS RN50 layer3-like stage)
 *
 * Candidates are cheap to compile (a few seconds each on lavapipe), and every candidate of a choice
 * sums in the same order, so tuning changes speed, never results. The compile-heavy large matmul
 * tile is a fixed rule instead (ops/matmul.ts, subgroupMatmulTile).
 * Bump TUNING_VERSION (device/tuning-table.ts) when a kernel changes enough to re-measure.
 */
import { conv2dGemmKernel } from '../../kernels/conv2d/conv2d-gemm.js';
import { type MatmulParams, matmulKernel } from '../../kernels/matmul/matmul.js';
import { matmulSgKernel } from '../../kernels/matmul/matmul-sg.js';
import type { Device } from '../device/device.js';
import { registerTunable } from '../device/tuning.js';
import { Tensor } from '../tensor.js';
import { CONV2D_GEMM_TUNABLE } from './conv.js';
import { MATMUL_SG_TUNABLE, MATMUL_TILED_TUNABLE, useSubgroupKernels } from './matmul.js';

/** Seeded inputs of the given sizes on `device`; disposed by the problem's dispose(). */
function inputs(device: Device, sizes: number[]): Tensor[] {
  return sizes.map((n, i) => Tensor.fromArray(Float32Array.from({ length: n }, (_, j) => Math.sin(j * 0.37 + i)), [n], { device }));
}

function matmulProblem(M: number, K: number, N: number): MatmulParams {
  return { transA: false, transB: true, bias: true, M, N, K, batchShape: [], aBatchStrides: [], bBatchStrides: [] };
}

registerTunable({
  name: MATMUL_SG_TUNABLE,
  candidates: ['r24', 'r16', 'r32'],
  applies: (device) => useSubgroupKernels(device),
  problems: [{
    shapeClass: 'default',
    setup(device) {
      const p = matmulProblem(256, 768, 768);
      const t = inputs(device, [p.M * p.K, p.N * p.K, p.N, p.M * p.N]);
      return {
        run: (c) => device.run(matmulSgKernel, { ...p, rows: Number(c.slice(1)), groups: 1 }, t.map((x) => x.storage)),
        dispose: () => t.forEach((x) => x.dispose()),
      };
    },
  }],
});

registerTunable({
  name: MATMUL_TILED_TUNABLE,
  candidates: ['t8', 't4'],
  applies: (device) => device.kind === 'webgpu' && !useSubgroupKernels(device),
  problems: [{
    shapeClass: 'default',
    setup(device) {
      const p = matmulProblem(256, 512, 512);
      const t = inputs(device, [p.M * p.K, p.N * p.K, p.N, p.M * p.N]);
      return {
        run: (c) => device.run(matmulKernel, { ...p, tile: c === 't4' ? 4 : 8 }, t.map((x) => x.storage)),
        dispose: () => t.forEach((x) => x.dispose()),
      };
    },
  }],
});

registerTunable({
  name: CONV2D_GEMM_TUNABLE,
  candidates: ['r24', 'r16', 'r32'],
  applies: (device) => useSubgroupKernels(device),
  problems: [{
    shapeClass: 'default',
    setup(device) {
      const [c, size] = [128, 26];
      const p = {
        batch: 1, a: [c, size, size], b: [c, size, size], kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], bias: true,
      } as const;
      const t = inputs(device, [c * size * size, c * c * 9, c, c * size * size]);
      return {
        run: (r) => device.run(conv2dGemmKernel, { ...p, rows: Number(r.slice(1)) }, t.map((x) => x.storage)),
        dispose: () => t.forEach((x) => x.dispose()),
      };
    },
  }],
});
