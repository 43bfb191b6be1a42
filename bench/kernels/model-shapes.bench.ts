/**
 * Kernel benchmarks at the real model shapes (CLIP ViT-B/16 at 352x352: 485 tokens, 768 wide, MLP
 * 3072, 12 heads of 64; the CLIPSeg decoder and heads; a CRIS-like 3x3 convolution).
 */
import * as E from '../../src/engine/index.js';
import type { BenchCase } from '../harness.js';

function random(device: E.Device, shape: number[]): E.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
  return E.keep(E.Tensor.fromArray(data, shape, { device }));
}

function opCase(name: string, shape: string, shapes: number[][], f: (x: E.Tensor[]) => E.Tensor, flops?: number): BenchCase {
  return {
    name,
    shape,
    flops,
    setup(device) {
      const inputs = shapes.map((s) => random(device, s));
      return {
        run: () => E.noGrad(() => E.scope(() => void f(inputs))),
        dispose: () => inputs.forEach((t) => t.dispose()),
      };
    },
  };
}

const mm = (m: number, k: number, n: number): BenchCase =>
  opCase('matmul', `${m}x${k}x${n}`, [[m, k], [k, n]], ([a, b]) => E.matmul(a!, b!), 2 * m * k * n);

export const KERNEL_CASES: BenchCase[] = [
  mm(485, 768, 2304),
  mm(485, 768, 3072),
  mm(485, 3072, 768),
  mm(1024, 1024, 1024),
  opCase('linear', '485x768->768', [[485, 768], [768, 768], [768]], ([x, w, b]) => E.linear(x!, w!, b!), 2 * 485 * 768 * 768),
  opCase(
    'attention',
    '12x485x64',
    [[1, 12, 485, 64], [1, 12, 485, 64], [1, 12, 485, 64]],
    ([q, k, v]) => E.scaledDotProductAttention(q!, k!, v!),
    4 * 12 * 485 * 485 * 64,
  ),
  opCase('softmax', '12x485x485', [[12, 485, 485]], ([x]) => E.softmax(x!, -1)),
  opCase('layer_norm', '485x768', [[485, 768], [768], [768]], ([x, w, b]) => E.layerNorm(x!, w!, b!)),
  opCase('quick_gelu', '485x3072', [[485, 3072]], ([x]) => E.quickGelu(x!)),
  opCase(
    'conv2d',
    '3x3 64->64 88x88',
    [[1, 64, 88, 88], [64, 64, 3, 3], [64]],
    ([x, w, b]) => E.conv2d(x!, w!, b!, { padding: 1 }),
    2 * 64 * 64 * 9 * 88 * 88,
  ),
  opCase(
    'conv_transpose2d',
    'k16 s16 64->1 22->352',
    [[1, 64, 22, 22], [64, 1, 16, 16], [1]],
    ([x, w, b]) => E.convTranspose2d(x!, w!, b!, { stride: 16 }),
    2 * 64 * 256 * 22 * 22,
  ),
  opCase('interpolate_bicubic', '768x14x14->22x22', [[1, 768, 14, 14]], ([x]) => E.interpolate(x!, { size: [22, 22], mode: 'bicubic' })),
];
