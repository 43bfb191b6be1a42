/**
 * WebGPU/CPU parity: every op runs on random inputs on both devices; outputs and input gradients
 * must agree to float32 tolerance. The CPU device runs the kernels' TypeScript references, so this
 * checks each WGSL kernel against its reference at shapes the golden cases do not cover (odd sizes,
 * broadcasting, several variants per op).
 */
import { describe, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { cpuDevice, webgpuDevice } from '../helpers/devices.js';
import { compareClose } from '../helpers/allclose.js';
import { randomNormal } from '../helpers/gradcheck.js';

type Case = {
  name: string;
  shapes: (readonly number[])[];
  f: (x: E.Tensor[]) => E.Tensor;
  /** Inputs that get no gradient (masks, targets). */
  constant?: number[];
  /** Values for an input instead of random normals. */
  values?: Record<number, (n: number) => Float32Array | Int32Array>;
  atol?: number;
};

const binaryMask = (n: number) => Float32Array.from({ length: n }, (_, i) => (i * 7919) % 3 === 0 ? 1 : 0);
const ids = (vocab: number) => (n: number) => Int32Array.from({ length: n }, (_, i) => (i * 31 + 7) % vocab);

const CASES: Case[] = [
  { name: 'add broadcast', shapes: [[3, 1, 5], [4, 1]], f: ([a, b]) => E.add(a!, b!) },
  { name: 'div', shapes: [[6, 7], [7]], f: ([a, b]) => E.div(a!, E.addScalar(E.abs(b!), 1)) },
  { name: 'gelu', shapes: [[5, 33]], f: ([a]) => E.gelu(a!) },
  { name: 'quickGelu', shapes: [[5, 33]], f: ([a]) => E.quickGelu(a!) },
  { name: 'where', shapes: [[4, 9], [4, 9], [9]], f: ([c, a, b]) => E.where(c!, a!, b!), constant: [0], values: { 0: binaryMask } },
  { name: 'sum axes', shapes: [[3, 4, 70]], f: ([a]) => E.sum(a!, [0, 2]) },
  { name: 'max', shapes: [[5, 130]], f: ([a]) => E.max(a!, 1) },
  { name: 'permute+slice', shapes: [[3, 4, 5]], f: ([a]) => E.slice(E.permute(a!, [2, 0, 1]), [{ start: 1 }, undefined, { step: 2 }]) },
  { name: 'concat+pad', shapes: [[2, 3, 4], [2, 1, 4]], f: ([a, b]) => E.pad(E.concat([a!, b!], 1), [[1, 1], [2, 0]], 0.25) },
  { name: 'softmax', shapes: [[6, 77]], f: ([a]) => E.softmax(a!, -1) },
  { name: 'softmax axis 0', shapes: [[9, 4]], f: ([a]) => E.softmax(a!, 0) },
  { name: 'layerNorm', shapes: [[2, 5, 48], [48], [48]], f: ([x, w, b]) => E.layerNorm(x!, w!, b!) },
  { name: 'batchNorm', shapes: [[2, 3, 4, 5], [3], [3], [3], [3]], f: ([x, m, v, w, b]) => E.batchNorm(x!, m!, E.addScalar(E.abs(v!), 0.5), w!, b!), constant: [1, 2] },
  { name: 'bce+dice', shapes: [[2, 1, 9, 11], [2, 1, 9, 11]], f: ([x, t]) => E.add(E.bceWithLogits(x!, t!), E.softDiceLoss(x!, t!)), constant: [1], values: { 1: binaryMask } },
  { name: 'matmul', shapes: [[37, 29], [29, 23]], f: ([a, b]) => E.matmul(a!, b!) },
  { name: 'matmul batched transB', shapes: [[2, 3, 9, 20], [3, 6, 20]], f: ([a, b]) => E.matmul(a!, b!, { transB: true }) },
  { name: 'matmul transA', shapes: [[2, 17, 5], [2, 17, 8]], f: ([a, b]) => E.matmul(a!, b!, { transA: true }) },
  { name: 'linear', shapes: [[2, 7, 33], [19, 33], [19]], f: ([x, w, b]) => E.linear(x!, w!, b!) },
  { name: 'sdpa causal', shapes: [[2, 3, 6, 8], [2, 3, 6, 8], [2, 3, 6, 8]], f: ([q, k, v]) => E.scaledDotProductAttention(q!, k!, v!, { causal: true }) },
  {
    name: 'mha cross keypad',
    shapes: [[5, 2, 12], [4, 2, 12], [4, 2, 12], [36, 12], [36], [12, 12], [12], [2, 4]],
    f: ([q, k, v, wi, bi, wo, bo, kpm]) =>
      E.multiHeadAttention(q!, k!, v!, { inProjWeight: wi!, inProjBias: bi!, outProjWeight: wo!, outProjBias: bo!, numHeads: 3, keyPaddingMask: kpm! }),
    constant: [7],
    // Projection weights scaled like a real initialisation (1/sqrt(E)): unit-variance weights
    // saturate the softmax, whose gradient then amplifies float32 rounding differences.
    values: {
      3: (n) => randomNormal(n, 103).map((v) => v / Math.sqrt(12)),
      5: (n) => randomNormal(n, 105).map((v) => v / Math.sqrt(12)),
      7: (n) => Float32Array.from({ length: n }, (_, i) => (i % 4 === 3 ? 1 : 0)),
    },
  },
  { name: 'embedding', shapes: [[11, 6], [3, 5]], f: ([w, i]) => E.embedding(w!, i!), values: { 1: ids(11) } },
  { name: 'conv2d grouped strided dilated', shapes: [[2, 6, 11, 13], [9, 2, 3, 3], [9]], f: ([x, w, b]) => E.conv2d(x!, w!, b!, { stride: 2, padding: 1, dilation: 2, groups: 3 }) },
  { name: 'conv2d depthwise', shapes: [[1, 4, 7, 6], [4, 1, 3, 3]], f: ([x, w]) => E.conv2d(x!, w!, null, { padding: 1, groups: 4 }) },
  { name: 'convTranspose2d k4s2p1', shapes: [[1, 3, 5, 4], [3, 2, 4, 4], [2]], f: ([x, w, b]) => E.convTranspose2d(x!, w!, b!, { stride: 2, padding: 1 }) },
  { name: 'avgPool2d', shapes: [[2, 3, 9, 10]], f: ([x]) => E.avgPool2d(x!, { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }) },
  { name: 'maxPool2d', shapes: [[1, 2, 9, 8]], f: ([x]) => E.maxPool2d(x!, { kernelSize: 3, stride: 2, padding: 1 }) },
  { name: 'adaptiveAvgPool2d', shapes: [[2, 3, 7, 9]], f: ([x]) => E.adaptiveAvgPool2d(x!, [3, 4]) },
  { name: 'bilinear', shapes: [[1, 2, 5, 7]], f: ([x]) => E.interpolate(x!, { size: [9, 4], mode: 'bilinear' }) },
  { name: 'bilinear ac', shapes: [[1, 2, 5, 7]], f: ([x]) => E.interpolate(x!, { size: [9, 11], mode: 'bilinear', alignCorners: true }) },
  { name: 'bicubic', shapes: [[1, 3, 4, 4]], f: ([x]) => E.interpolate(x!, { size: [7, 5], mode: 'bicubic' }) },
  { name: 'nearest', shapes: [[1, 2, 3, 5]], f: ([x]) => E.interpolate(x!, { scaleFactor: 2, mode: 'nearest' }) },
];

async function runOn(device: E.Device, c: Case): Promise<Float32Array[]> {
  const inputs = c.shapes.map((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = c.values?.[i]?.(n) ?? randomNormal(n, 100 + i);
    const isInt = values instanceof Int32Array;
    return E.Tensor.fromArray(values, shape, { device, dtype: isInt ? 'i32' : 'f32', requiresGrad: !isInt && !c.constant?.includes(i) });
  });
  const [out, loss] = E.scope(() => {
    const y = c.f(inputs);
    const r = E.Tensor.fromArray(randomNormal(y.size, 7), y.shape, { device });
    return [y, E.sum(E.mul(y, r))];
  });
  E.backward(loss!);
  const results = [(await out!.read()) as Float32Array];
  for (const t of inputs) if (t.grad) results.push((await t.grad.read()) as Float32Array);
  for (const t of [out!, loss!, ...inputs]) t.dispose();
  return results;
}

const gpu = await webgpuDevice();
describe.skipIf(!gpu)('WebGPU matches the CPU references', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const want = await runOn(cpuDevice, c);
      const got = await runOn(gpu!, c);
      want.forEach((w, i) => {
        const label = i === 0 ? `${c.name} output` : `${c.name} gradient ${i}`;
        const r = compareClose(got[i]!, w, c.atol ?? 1e-5, 1e-4, label);
        if (!r.ok) throw new Error(r.message);
      });
    });
  }
});
