/**
 * One training step of a Segmenter, shared by the Node trainer and the browser app:
 *   forwardBackward (loss and gradients of one micro-batch, scaled for accumulation),
 *   clipGradients (global L2 norm, as torch.nn.utils.clip_grad_norm_), then the optimizer step.
 *
 * Losses (logits and targets [B, H, W], p = sigmoid(logits)):
 *   soft Dice  1 - (2·Σ p·t + 1) / (Σ p + Σ t + 1), smoothing 1; reduction 'sample' (default) takes
 *              the sums per image and averages the B losses (MONAI DiceLoss's batch=False), 'batch'
 *              takes them over the whole batch (the golden fixtures' formula);
 *   dice+bce   soft Dice + bceWeight · mean BCE-with-logits.
 * NOTE: MedVLSM's configs ask for Dice + BCE, but the MONAI version it pins ignores the BCE weight
 * of DiceCELoss for one-channel sigmoid outputs, so the study effectively trained with Dice only;
 * 'dice' reproduces that, 'dice+bce' is what one would expect from its configs.
 */
import {
  type Tensor,
  Tensor as T,
  add,
  addScalar,
  backward,
  bceWithLogits,
  div,
  keep,
  mean,
  mul,
  mulScalar,
  noGrad,
  reshape,
  scope,
  scopeAsync,
  sigmoid,
  softDiceLoss,
  sub,
  sum,
} from '../engine/index.js';
import type { Image } from '../models/image/index.js';
import { type BinaryMask, resizeMaskNearest } from './data/mask.js';
import type { AdamW } from './optim.js';
import type { FreezePolicy, Segmenter } from './segmenter.js';

export interface LossConfig {
  kind: 'dice' | 'dice+bce';
  /** Weight of the BCE term (default 1). */
  bceWeight?: number;
  /** Dice sums per image ('sample', default) or over the batch ('batch'). */
  diceReduction?: 'sample' | 'batch';
}

export interface TrainBatch {
  images: Image[];
  prompts: string[];
  masks: BinaryMask[];
}

export interface StepOptions {
  freeze: FreezePolicy;
  loss: LossConfig;
  /** Clip the global gradient norm to this value (none when absent or 0). */
  clipGradNorm?: number;
}

/** Soft Dice with per-image sums, averaged over the batch. */
function perSampleDice(logits: Tensor, target: Tensor): Tensor {
  const b = logits.shape[0]!;
  const p = sigmoid(reshape(logits, [b, logits.size / b]));
  const t = reshape(target, [b, target.size / b]);
  const numerator = addScalar(mulScalar(sum(mul(p, t), -1), 2), 1);
  const denominator = addScalar(add(sum(p, -1), sum(t, -1)), 1);
  return sub(T.scalar(1, { device: logits.device }), mean(div(numerator, denominator)));
}

/** The training loss of logits [B, H, W] against binary targets [B, H, W]. */
export function segmentationLoss(logits: Tensor, target: Tensor, config: LossConfig): Tensor {
  const dice = (config.diceReduction ?? 'sample') === 'batch' ? softDiceLoss(logits, target) : perSampleDice(logits, target);
  if (config.kind === 'dice') return dice;
  return add(dice, mulScalar(bceWithLogits(logits, target), config.bceWeight ?? 1));
}

/** Masks (any sizes) -> targets [B, H, W] of 0/1 at the model's input size (nearest). */
export function masksToTarget(masks: readonly BinaryMask[], size: readonly [number, number], device: Tensor['device']): Tensor {
  const [h, w] = size;
  const data = new Float32Array(masks.length * h * w);
  masks.forEach((m, i) => {
    const r = m.width === w && m.height === h ? m : resizeMaskNearest(m, w, h);
    for (let j = 0; j < h * w; j++) data[i * h * w + j] = r.data[j]!;
  });
  return T.fromArray(data, [masks.length, h, w], { device });
}

/**
 * Forward and backward of one micro-batch: gradients are ADDED to the parameters' .grad (scaled by
 * `scale`, 1 / accumulation steps). Returns the unscaled loss value.
 */
export async function forwardBackward(segmenter: Segmenter, batch: TrainBatch, options: Omit<StepOptions, 'clipGradNorm'>, scale = 1): Promise<number> {
  if (batch.images.length === 0) throw new Error('train step: empty batch');
  if (batch.prompts.length !== batch.images.length || batch.masks.length !== batch.images.length) {
    throw new Error(`train step: ${batch.images.length} images, ${batch.prompts.length} prompts and ${batch.masks.length} masks`);
  }
  return scopeAsync(async () => {
    const pixels = segmenter.pixels(batch.images);
    const target = masksToTarget(batch.masks, segmenter.inputSize, pixels.device);
    const logits = segmenter.logits(pixels, batch.prompts, { train: true, freeze: options.freeze });
    const loss = segmentationLoss(logits, target, options.loss);
    const value = await loss.item();
    // A non-finite loss must not reach the weights: no backward, the caller stops the run.
    if (Number.isFinite(value)) backward(scale === 1 ? loss : mulScalar(loss, scale));
    return value;
  });
}

/**
 * Global L2 norm of the gradients of `params`; when it exceeds maxNorm (> 0) every gradient is
 * scaled by maxNorm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_. Returns the norm before
 * clipping (NaN when a gradient holds NaN/Inf).
 */
export async function clipGradients(params: readonly (readonly [string, Tensor])[], maxNorm = 0): Promise<number> {
  const grads = params.map(([, p]) => p).filter((p) => p.grad !== null);
  if (grads.length === 0) return 0;
  const total = noGrad(() => scope(() => {
    let acc: Tensor | null = null;
    for (const p of grads) {
      const sq = sum(mul(p.grad!, p.grad!));
      acc = acc === null ? sq : add(acc, sq);
    }
    return keep(acc!);
  }));
  const norm = Math.sqrt(await total.item());
  total.dispose();
  if (maxNorm > 0 && Number.isFinite(norm) && norm > maxNorm) {
    const factor = maxNorm / (norm + 1e-6);
    noGrad(() => scope(() => {
      for (const p of grads) {
        const old = p.grad!;
        p.grad = keep(mulScalar(old, factor));
        old.dispose();
      }
    }));
  }
  return norm;
}

/** One full step: forward, backward, clipping, optimizer step, gradients cleared. */
export async function trainStep(segmenter: Segmenter, optimizer: AdamW, batch: TrainBatch, options: StepOptions): Promise<{ loss: number; gradNorm: number }> {
  optimizer.zeroGrad();
  const loss = await forwardBackward(segmenter, batch, options);
  if (!Number.isFinite(loss)) {
    optimizer.zeroGrad();
    throw new NonFiniteLossError(loss);
  }
  const gradNorm = await clipGradients(optimizer.params, options.clipGradNorm ?? 0);
  // A finite loss can still have NaN gradients (relu maps a NaN activation to 0 in the forward, not
  // in the backward): the same stop as the trainer's, before the weights change.
  if (!Number.isFinite(gradNorm)) {
    optimizer.zeroGrad();
    throw new NonFiniteLossError(gradNorm, '(gradient norm)');
  }
  optimizer.step();
  optimizer.zeroGrad();
  return { loss, gradNorm };
}

export class NonFiniteLossError extends Error {
  constructor(readonly value: number, where = '') {
    super(`training loss is ${value}${where ? ` ${where}` : ''}: stopped before updating the weights ` +
      '(lower the learning rate, enable gradient clipping, or check the data)');
    this.name = 'NonFiniteLossError';
  }
}
