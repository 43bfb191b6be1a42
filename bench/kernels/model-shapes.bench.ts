/**
 * Kernel benchmarks at the real model shapes: CLIP ViT-B/16 at 352x352 (485 tokens, 768 wide, MLP
 * 3072, 12 heads of 64), the CLIPSeg decoder and heads (64 wide at 22x22 and 88x88), and the CLIP
 * RN50 image encoder of CRIS at 416x416 (stages at 104, 52, 26 and 13). Cases with an `op` are
 * also run by the peers (--peers) on the same shapes and data.
 */
import * as E from '../../src/engine/index.js';
import type { BenchCase } from '../harness.js';
import { type PeerOp, hostData, inputShapes } from '../peers/ops.js';

function upload(device: E.Device, shape: number[], seed: number): E.Tensor {
  return E.keep(E.Tensor.fromArray(hostData(shape, seed).data, shape, { device }));
}

function opCase(
  name: string,
  shape: string,
  shapes: number[][],
  f: (x: E.Tensor[]) => E.Tensor,
  extra: { flops?: number; bytes?: number; op?: PeerOp } = {},
): BenchCase {
  return {
    name,
    shape,
    ...extra,
    setup(device) {
      const inputs = shapes.map((s, i) => upload(device, s, i + 1));
      return {
        run: () => E.noGrad(() => E.scope(() => void f(inputs))),
        output: async () => {
          const out = E.noGrad(() => E.keep(f(inputs)));
          const data = (await out.read()) as Float32Array;
          out.dispose();
          return data;
        },
        dispose: () => inputs.forEach((t) => t.dispose()),
      };
    },
  };
}

/** A case the peers run too: inputs come from the op description (same data as the peers). */
function peerCase(name: string, shape: string, op: PeerOp, f: (x: E.Tensor[]) => E.Tensor, extra: { flops?: number; bytes?: number }): BenchCase {
  return opCase(name, shape, inputShapes(op), f, { ...extra, op });
}

const F32 = 4;

const mm = (m: number, k: number, n: number): BenchCase =>
  peerCase('matmul', `${m}x${k}x${n}`, { kind: 'matmul', m, k, n }, ([a, b]) => E.matmul(a!, b!), { flops: 2 * m * k * n });

const attention = (heads: number, seq: number, dim: number): BenchCase =>
  peerCase(
    'attention',
    `${heads}x${seq}x${dim}`,
    { kind: 'attention', heads, seq, dim },
    ([q, k, v]) => E.scaledDotProductAttention(q!, k!, v!),
    { flops: 4 * heads * seq * seq * dim },
  );

/**
 * Attention forward + backward (ours only): q, k, v need gradients, so the forward also writes the
 * softmax stats and the backward is the fused one where the adapter has it. FLOPs: the usual 3.5x
 * of the forward's 4·H·L²·D (the fused backward recomputes the scores, so it does more).
 */
const attentionBackward = (heads: number, seq: number, dim: number): BenchCase => ({
  name: 'attention_backward',
  shape: `${heads}x${seq}x${dim} fwd+bwd`,
  flops: 14 * heads * seq * seq * dim,
  setup(device) {
    const shape = [heads, seq, dim];
    const [q, k, v] = [1, 2, 3].map((seed) => E.keep(E.Tensor.fromArray(hostData(shape, seed).data, shape, { device, requiresGrad: true })));
    const dOut = upload(device, shape, 4);
    const params = [q!, k!, v!];
    const clearGrads = () => params.forEach((t) => { t.grad?.dispose(); t.grad = null; });
    return {
      run: () => {
        clearGrads();
        E.scope(() => E.backward(E.scaledDotProductAttention(q!, k!, v!), dOut));
      },
      dispose: () => {
        clearGrads();
        [...params, dOut].forEach((t) => t.dispose());
      },
    };
  },
});

/** Stride-1 'same' convolution with a bias, square input of `size`; groups = cin is depthwise. */
const conv = (cin: number, cout: number, kernel: number, size: number, where: string, groups = 1): BenchCase => {
  const padding = (kernel - 1) / 2;
  return peerCase(
    'conv2d',
    `${kernel}x${kernel} ${groups === 1 ? '' : 'depthwise '}${cin}->${cout} ${size}x${size} (${where})`,
    { kind: 'conv2d', cin, cout, kernel, size, padding, groups },
    ([x, w, b]) => E.conv2d(x!, w!, b!, { padding, groups }),
    { flops: (2 * cout * cin * kernel * kernel * size * size) / groups },
  );
};

export const KERNEL_CASES: BenchCase[] = [
  mm(485, 768, 2304),
  mm(485, 768, 3072),
  mm(485, 3072, 768),
  mm(1024, 1024, 1024),
  attention(12, 485, 64),
  attentionBackward(12, 485, 64),
  conv(64, 64, 3, 88, 'CLIPSeg decoder'),
  conv(64, 64, 3, 104, 'RN50 layer1'),
  conv(128, 128, 3, 52, 'RN50 layer2'),
  conv(256, 256, 3, 26, 'RN50 layer3'),
  conv(512, 512, 3, 13, 'RN50 layer4'),
  conv(256, 64, 1, 104, 'RN50 layer1 reduce'),
  // Depthwise: none of our models has one; MobileNetV2- and ConvNeXt-T-like stages.
  conv(144, 144, 3, 56, 'MobileNetV2 block', 144),
  conv(96, 96, 7, 56, 'ConvNeXt-T stage 1', 96),
  peerCase(
    'layer_norm',
    '485x768',
    { kind: 'layer_norm', rows: 485, cols: 768, eps: 1e-5 },
    ([x, w, b]) => E.layerNorm(x!, w!, b!, 1e-5),
    { bytes: 2 * 485 * 768 * F32 },
  ),
  peerCase(
    'softmax',
    '12x485x485',
    { kind: 'softmax', shape: [12, 485, 485] },
    ([x]) => E.softmax(x!, -1),
    { bytes: 2 * 12 * 485 * 485 * F32 },
  ),
  opCase('linear', '485x768->768', [[485, 768], [768, 768], [768]], ([x, w, b]) => E.linear(x!, w!, b!), {
    flops: 2 * 485 * 768 * 768,
  }),
  opCase('quick_gelu', '485x3072', [[485, 3072]], ([x]) => E.quickGelu(x!), { bytes: 2 * 485 * 3072 * F32 }),
  opCase(
    'conv_transpose2d',
    'k16 s16 64->1 22->352',
    [[1, 64, 22, 22], [64, 1, 16, 16], [1]],
    ([x, w, b]) => E.convTranspose2d(x!, w!, b!, { stride: 16 }),
    { flops: 2 * 64 * 256 * 22 * 22 },
  ),
  opCase('interpolate_bicubic', '768x14x14->22x22', [[1, 768, 14, 14]], ([x]) =>
    E.interpolate(x!, { size: [22, 22], mode: 'bicubic' }),
  ),
];
