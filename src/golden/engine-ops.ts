/**
 * The engine ops the golden adapters call, with the signatures the engine promises (the op
 * signature list of the engine-foundation issue). `ops` is the engine's public index held to
 * these signatures: if an op goes missing or its signature drifts incompatibly, `tsc` fails here
 * rather than a golden case at run time.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export type Pair = number | [number, number];

export interface GoldenEngineOps {
  add(a: Tensor, b: Tensor): Tensor;
  relu(x: Tensor): Tensor;
  sigmoid(x: Tensor): Tensor;
  gelu(x: Tensor): Tensor;
  geluTanh(x: Tensor): Tensor;
  quickGelu(x: Tensor): Tensor;
  softmax(x: Tensor, axis?: number): Tensor;
  layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps?: number): Tensor;
  batchNorm(
    x: Tensor,
    runningMean: Tensor,
    runningVar: Tensor,
    weight: Tensor | null,
    bias: Tensor | null,
    eps?: number,
  ): Tensor;
  bceWithLogits(logits: Tensor, target: Tensor): Tensor;
  softDiceLoss(logits: Tensor, target: Tensor, smooth?: number): Tensor;
  matmul(a: Tensor, b: Tensor, options?: { transA?: boolean; transB?: boolean }): Tensor;
  linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor;
  scaledDotProductAttention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    options?: { causal?: boolean; mask?: Tensor; scale?: number },
  ): Tensor;
  multiHeadAttention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: {
      inProjWeight: Tensor;
      inProjBias?: Tensor;
      outProjWeight: Tensor;
      outProjBias?: Tensor;
      numHeads: number;
      attnMask?: Tensor;
      keyPaddingMask?: Tensor;
      batchFirst?: boolean;
      causal?: boolean;
    },
  ): Tensor;
  conv2d(
    x: Tensor,
    weight: Tensor,
    bias?: Tensor,
    options?: { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number },
  ): Tensor;
  convTranspose2d(
    x: Tensor,
    weight: Tensor,
    bias?: Tensor,
    options?: { stride?: Pair; padding?: Pair; outputPadding?: Pair; dilation?: Pair; groups?: number },
  ): Tensor;
  avgPool2d(
    x: Tensor,
    options: { kernelSize: Pair; stride?: Pair; padding?: Pair; ceilMode?: boolean; countIncludePad?: boolean },
  ): Tensor;
  adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor;
  interpolate(
    x: Tensor,
    options: { size?: [number, number]; scaleFactor?: number; mode?: 'nearest' | 'bilinear' | 'bicubic'; alignCorners?: boolean },
  ): Tensor;
  adamwStep(
    param: Tensor,
    grad: Tensor,
    expAvg: Tensor,
    expAvgSq: Tensor,
    hyper: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number },
  ): void;
}

export const ops: GoldenEngineOps = E;
