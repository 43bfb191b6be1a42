/**
 * The training step's parts (src/train/step.ts) against hand-computed values:
 *   segmentationLoss: per-sample soft Dice (2 images, one with an empty truth), the 'batch'
 *     reduction (= softDiceLoss, the golden fixtures' formula), the BCE term and its weight, and the
 *     per-sample loss's gradient by finite differences;
 *   clipGradients: the global L2 norm over all gradients, scaling to maxNorm as
 *     torch.nn.utils.clip_grad_norm_ (factor maxNorm / (norm + 1e-6)), no change below maxNorm;
 *   trainStep: a NaN loss raises NonFiniteLossError and leaves weights, gradients and optimizer
 *     state untouched; a finite step changes the weights and clears the gradients;
 *   masksToTarget: nearest resizing to the model's input size.
 */
import { describe, expect, it } from 'vitest';
import { type Device, Tensor, add, mulScalar, softDiceLoss, sqrt, sub } from '../../src/engine/index.js';
import type { Image } from '../../src/models/image/index.js';
import { createRng } from '../../src/models/nn/init.js';
import type { BinaryMask } from '../../src/train/data/mask.js';
import { AdamW } from '../../src/train/optim.js';
import type { Segmenter } from '../../src/train/segmenter.js';
import { UNetSegmenter } from '../../src/train/segmenters/unet.js';
import { NonFiniteLossError, clipGradients, masksToTarget, segmentationLoss, trainStep } from '../../src/train/step.js';
import { cpuDevice, testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const bce = (x: number, t: number) => Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));

/** Plain-double reference: soft Dice per image (or over the batch) with smoothing 1. */
function diceRef(logits: ArrayLike<number>, target: ArrayLike<number>, b: number, perSample: boolean): number {
  const n = logits.length / b;
  const groups = perSample ? Array.from({ length: b }, (_, i) => [i * n, (i + 1) * n]) : [[0, logits.length]];
  let total = 0;
  for (const [lo, hi] of groups) {
    let pt = 0;
    let ps = 0;
    let ts = 0;
    for (let i = lo!; i < hi!; i++) {
      const p = sigmoid(logits[i]!);
      pt += p * target[i]!;
      ps += p;
      ts += target[i]!;
    }
    total += 1 - (2 * pt + 1) / (ps + ts + 1);
  }
  return total / groups.length;
}

describe.each(await testDevices())('segmentationLoss and clipGradients on %s', (_name, device) => {
  // 2 images of 2x2; image 0: one foreground pixel, image 1: empty truth.
  const target = new Float32Array([1, 0, 0, 0, 0, 0, 0, 0]);
  const t = () => Tensor.fromArray(target, [2, 2, 2], { device });

  it('per-sample Dice of zero logits: (1 - 2/4 + 1 - 1/3) / 2, by hand', async () => {
    // p = 0.5 everywhere. Image 0: Σpt 0.5, Σp 2, Σt 1 -> 1 - 2/4. Image 1: Σpt 0, Σp 2, Σt 0 -> 1 - 1/3.
    const logits = Tensor.zeros([2, 2, 2], { device });
    const dice = await segmentationLoss(logits, t(), { kind: 'dice' }).item();
    expect(dice).toBeCloseTo((0.5 + 2 / 3) / 2, 6);
    // Over the whole batch: Σpt 0.5, Σp 4, Σt 1 -> 1 - 2/6.
    expect(await segmentationLoss(logits, t(), { kind: 'dice', diceReduction: 'batch' }).item()).toBeCloseTo(2 / 3, 6);
    // BCE of zero logits is ln 2 for every pixel; bceWeight scales it.
    expect(await segmentationLoss(logits, t(), { kind: 'dice+bce' }).item()).toBeCloseTo((0.5 + 2 / 3) / 2 + Math.LN2, 6);
    expect(await segmentationLoss(logits, t(), { kind: 'dice+bce', bceWeight: 0.25 }).item()).toBeCloseTo((0.5 + 2 / 3) / 2 + 0.25 * Math.LN2, 6);
  });

  it('per-sample and batch Dice of random logits equal the double-precision reference; batch = softDiceLoss', async () => {
    const values = randomNormal(2 * 3 * 4, 11).map((v) => 3 * v);
    const tgt = new Float32Array(24).map((_, i) => (i < 12 ? Number(i % 3 === 0) : 0)); // image 1 empty
    const logits = Tensor.fromArray(values, [2, 3, 4], { device });
    const target4 = Tensor.fromArray(tgt, [2, 3, 4], { device });
    const perSample = await segmentationLoss(logits, target4, { kind: 'dice' }).item();
    const batch = await segmentationLoss(logits, target4, { kind: 'dice', diceReduction: 'batch' }).item();
    expect(perSample).toBeCloseTo(diceRef(values, tgt, 2, true), 5);
    expect(batch).toBeCloseTo(diceRef(values, tgt, 2, false), 5);
    expect(Math.abs(perSample - batch)).toBeGreaterThan(1e-3); // the two reductions really differ here
    expect(batch).toBeCloseTo(await softDiceLoss(logits, target4).item(), 6);
    let bceMean = 0;
    for (let i = 0; i < 24; i++) bceMean += bce(values[i]!, tgt[i]!) / 24;
    const withBce = await segmentationLoss(logits, target4, { kind: 'dice+bce', bceWeight: 2 }).item();
    expect(withBce).toBeCloseTo(diceRef(values, tgt, 2, true) + 2 * bceMean, 5);
  });

  it('the per-sample dice+bce gradient matches finite differences', async () => {
    const tgt = new Float32Array(2 * 3 * 3).map((_, i) => (i < 9 ? Number(i % 2 === 0) : 0));
    await gradcheck(device, ([x, y]) => segmentationLoss(x!, y!, { kind: 'dice+bce' }), [[2, 3, 3], [2, 3, 3]], {
      constant: [1], values: [undefined, tgt], samples: 8,
    });
  });

  it('clipGradients: global L2 norm, then scaling to maxNorm (clip_grad_norm_)', async () => {
    const a = Tensor.fromArray([1, 2, 3], [3], { device });
    const b = Tensor.fromArray([0.5, -0.5, 4, 0], [2, 2], { device });
    const noGrad = Tensor.fromArray([7], [1], { device });
    const ga = [3, -4, 0];
    const gb = [12, 0, 0, 0];
    const norm = Math.sqrt(9 + 16 + 144); // 13
    const params: [string, Tensor][] = [['a', a], ['b', b], ['c', noGrad]];
    const setGrads = () => {
      a.grad = Tensor.fromArray(ga, [3], { device });
      b.grad = Tensor.fromArray(gb, [2, 2], { device });
    };
    setGrads();
    // No clipping (0) and a maxNorm above the norm leave the gradients as they are.
    expect(await clipGradients(params, 0)).toBeCloseTo(norm, 5);
    expect(await clipGradients(params, 20)).toBeCloseTo(norm, 5);
    expect(Array.from(await a.grad!.read())).toEqual(ga);
    // maxNorm 1: every gradient times 1 / (13 + 1e-6); the clipped norm is 1 (to 1e-6).
    expect(await clipGradients(params, 1)).toBeCloseTo(norm, 5);
    const factor = 1 / (norm + 1e-6);
    const ca = Array.from(await a.grad!.read());
    const cb = Array.from(await b.grad!.read());
    ca.forEach((v, i) => expect(v).toBeCloseTo(ga[i]! * factor, 6));
    cb.forEach((v, i) => expect(v).toBeCloseTo(gb[i]! * factor, 6));
    expect(Math.hypot(...ca, ...cb)).toBeCloseTo(1, 5);
    expect(noGrad.grad).toBeNull();
    // A NaN gradient gives a NaN norm and nothing is scaled.
    a.grad!.dispose();
    a.grad = Tensor.fromArray([NaN, 0, 0], [3], { device });
    expect(await clipGradients(params, 1)).toBeNaN();
    expect(await clipGradients([['c', noGrad]], 1)).toBe(0);
    for (const p of [a, b, noGrad]) {
      p.grad?.dispose();
      p.dispose();
    }
  });
});

/**
 * A tiny UNet that can be poisoned: 'gradient' adds 0 * sqrt(logits - logits) to the logits (the
 * loss stays finite, but sqrt's backward at 0 is infinite, and 0 * inf makes every weight gradient
 * NaN); 'logits' makes the loss NaN.
 */
function tinyUNet(device: Device, poison: { on: 'gradient' | 'logits' | null }): Segmenter {
  const inner = new UNetSegmenter({ base_channels: 4, depth: 2, image_size: 16 }, { device, init: { rng: createRng(3) } });
  return {
    kind: inner.kind, module: inner.module, usesText: false, inputSize: inner.inputSize, threshold: 0.5,
    pixels: (images) => inner.pixels(images),
    logits: (p, prompts, o) => {
      const logits = inner.logits(p, prompts, o);
      if (poison.on === 'gradient') return add(logits, mulScalar(sqrt(sub(logits, logits)), 0));
      return poison.on === 'logits' ? add(logits, Tensor.scalar(NaN, { device })) : logits;
    },
    trainable: (f) => inner.trainable(f),
    describe: () => inner.describe(),
  };
}

function testImage(seed: number): Image {
  const rng = createRng(seed);
  const data = new Uint8Array(16 * 16 * 3).map(() => Math.floor(rng() * 256));
  return { width: 16, height: 16, channels: 3, data };
}

function testMask(seed: number): BinaryMask {
  const rng = createRng(seed);
  return { width: 16, height: 16, data: new Uint8Array(256).map(() => (rng() < 0.3 ? 1 : 0)) };
}

describe.each(await testDevices())('trainStep on %s', (_name, device) => {
  it('a NaN loss or NaN gradients raise NonFiniteLossError and change nothing; a finite step updates and clears', async () => {
    const poison: { on: 'gradient' | 'logits' | null } = { on: null };
    const seg = tinyUNet(device, poison);
    const optimizer = new AdamW(seg.trainable('full'), { lr: 1e-2 });
    const batch = { images: [testImage(1), testImage(2)], prompts: ['a', 'b'], masks: [testMask(3), testMask(4)] };
    const options = { freeze: 'full' as const, loss: { kind: 'dice+bce' as const }, clipGradNorm: 1 };
    const snapshot = async () => Promise.all(seg.module.namedParameters().map(async ([, p]) => Array.from(await p.read())));
    const before = await snapshot();
    for (const [on, message] of [
      ['logits', /^training loss is NaN: stopped before updating the weights/],
      ['gradient', /^training loss is NaN \(gradient norm\): stopped before updating the weights/],
    ] as const) {
      poison.on = on;
      const err = await trainStep(seg, optimizer, batch, options).catch((e: unknown) => e);
      expect(err, `poisoned ${on}`).toBeInstanceOf(NonFiniteLossError);
      expect((err as NonFiniteLossError).value).toBeNaN();
      expect((err as Error).message).toMatch(message);
      expect(await snapshot()).toEqual(before);
      expect(seg.module.namedParameters().every(([, p]) => p.grad === null)).toBe(true);
      expect(optimizer.stateDict().size).toBe(0);
    }

    poison.on = null;
    const r = await trainStep(seg, optimizer, batch, options);
    expect(Number.isFinite(r.loss) && Number.isFinite(r.gradNorm) && r.gradNorm > 0).toBe(true);
    const after = await snapshot();
    expect(after.some((p, i) => p.some((v, j) => v !== before[i]![j]))).toBe(true);
    expect(seg.module.namedParameters().every(([, p]) => p.grad === null)).toBe(true);
    expect([...optimizer.stateDict().values()].every((s) => s.step === 1)).toBe(true);
    optimizer.dispose();
    seg.module.dispose();
  });
});

describe('masksToTarget', () => {
  it('resizes each mask to the input size with nearest sampling, as 0/1 floats [B, H, W]', async () => {
    // 2x2 -> 4x4: each pixel becomes a 2x2 block. 4x4 -> 4x4: unchanged. 8x2 (wide) -> 4x4.
    const small: BinaryMask = { width: 2, height: 2, data: new Uint8Array([1, 0, 0, 1]) };
    const same: BinaryMask = { width: 4, height: 4, data: new Uint8Array(16).map((_, i) => (i === 5 ? 1 : 0)) };
    const wide: BinaryMask = { width: 8, height: 2, data: new Uint8Array([0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1]) };
    const t = masksToTarget([small, same, wide], [4, 4], cpuDevice);
    expect(t.shape).toEqual([3, 4, 4]);
    const v = Array.from(await t.read());
    expect(v.slice(0, 16)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
    expect(v.slice(16, 32)).toEqual(Array.from(same.data));
    // Nearest: column x reads source column floor((x + 0.5) * 2) = 1, 3, 5, 7; row y reads floor((y + 0.5) / 2) = 0, 0, 1, 1.
    expect(v.slice(32, 48)).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
  });
});
