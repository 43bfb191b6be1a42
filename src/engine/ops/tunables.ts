/**
 * The kernel choices measured per adapter by engine/device/tuning.ts (autotune at first use in the
 * CLI, bench and web app; cached per adapter). Each op reads its choice with tunedVariant and falls
 * back to its default when tuning is off or the adapter was never measured:
 *
 *   matmul-sg     rows of the subgroup matmul's rows x 32 tile ('r16' | 'r24' | 'r32'; default r24),
 *                 problem 256x768x768 (a ViT-B/16-like linear layer at a quarter of the tokens)
 *   matmul-tiled  the matmul on adapters without 8-wide subgroups (SwiftShader, real GPUs):
 *                 register-tiled with 8x8 or 4x4 outputs per thread ('t8' | 't4', default t8), or
 *                 the workgroup-memory kernel ('shared', matmul-shared.ts), problem 256x512x512
 *   conv2d-gemm   pixels per workgroup of the implicit-GEMM conv ('r16' | 'r24' | 'r32'; default
 *                 r24), problem 3x3 128->128 at 26x26 (a CRIS RN50 layer3-like stage)
 *
 * Candidates are cheap to compile (a few seconds each on lavapipe), and every candidate of a choice
 * sums in the same order, so tuning changes speed, never results. The wider matmul tiles are no
 * candidates: they compile for 30 s to minutes each and measured no faster (ops/matmul.ts,
 * subgroupMatmulRows).
 * Bump TUNING_VERSION (device/tuning-table.ts) when a kernel changes enough to re-measure.
 */
import { conv2dGemmKernel } from '../../kernels/conv2d/conv2d-gemm.js';
import { type MatmulParams, matmulKernel } from '../../kernels/matmul/matmul.js';
import { matmulSgKernel } from '../../kernels/matmul/matmul-sg.js';
import { matmulSharedKernel } from '../../kernels/matmul/matmul-shared.js';
import type { Device, Storage } from '../device/device.js';
import { type TunableProblem, registerTunable } from '../device/tuning.js';
import { Tensor } from '../tensor.js';
import { CONV2D_GEMM_TUNABLE } from './conv.js';
import { MATMUL_SG_TUNABLE, MATMUL_TILED_TUNABLE, useSubgroupKernels } from './matmul.js';

/** A 'default'-class problem: seeded buffers of `sizes` elements, `launch` runs one candidate on them. */
function problem(sizes: number[], launch: (device: Device, candidate: string, storages: Storage[]) => void): TunableProblem {
  return {
    shapeClass: 'default',
    setup(device) {
      const t = sizes.map((n, i) => Tensor.fromArray(Float32Array.from({ length: n }, (_, j) => Math.sin(j * 0.37 + i)), [n], { device }));
      return {
        run: (c) => launch(device, c, t.map((x) => x.storage)),
        dispose: () => t.forEach((x) => x.dispose()),
      };
    },
  };
}

/** A linear layer's product x·Wᵀ + bias, [M, K] x [N, K]. */
function matmulProblem(M: number, K: number, N: number): MatmulParams {
  return { transA: false, transB: true, bias: true, M, N, K, batchShape: [], aBatchStrides: [], bBatchStrides: [] };
}

/** Element counts of x, W, bias and out. */
const matmulSizes = (p: MatmulParams): number[] => [p.M * p.K, p.N * p.K, p.N, p.M * p.N];

const SG_PROBLEM = matmulProblem(256, 768, 768);
const TILED_PROBLEM = matmulProblem(256, 512, 512);
/** 3x3 conv 128 -> 128 at 26x26 with bias. */
const CONV_PROBLEM = {
  batch: 1, a: [128, 26, 26], b: [128, 26, 26], kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], bias: true,
} as const;

registerTunable({
  name: MATMUL_SG_TUNABLE,
  candidates: ['r24', 'r16', 'r32'],
  applies: (device) => useSubgroupKernels(device),
  problems: [problem(matmulSizes(SG_PROBLEM), (device, c, storages) =>
    device.run(matmulSgKernel, { ...SG_PROBLEM, rows: Number(c.slice(1)), groups: 1 }, storages))],
});

registerTunable({
  name: MATMUL_TILED_TUNABLE,
  candidates: ['t8', 't4', 'shared'],
  applies: (device) => device.kind === 'webgpu' && !useSubgroupKernels(device),
  problems: [problem(matmulSizes(TILED_PROBLEM), (device, c, storages) =>
    c === 'shared'
      ? device.run(matmulSharedKernel, TILED_PROBLEM, storages)
      : device.run(matmulKernel, { ...TILED_PROBLEM, tile: c === 't4' ? 4 : 8 }, storages))],
});

registerTunable({
  name: CONV2D_GEMM_TUNABLE,
  candidates: ['r24', 'r16', 'r32'],
  applies: (device) => useSubgroupKernels(device),
  problems: [problem([128 * 26 * 26, 128 * 128 * 9, 128, 128 * 26 * 26], (device, c, storages) =>
    device.run(conv2dGemmKernel, { ...CONV_PROBLEM, rows: Number(c.slice(1)) }, storages))],
});
