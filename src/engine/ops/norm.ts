/**
 * Normalisation ops: layerNorm (over the last dim) and batchNorm in eval mode (running statistics),
 * each with a dedicated forward kernel and backward kernels for the input and for weight/bias.
 */
import { batchNormKernel } from '../../kernels/batchnorm/batchnorm.js';
import type { KernelSpec } from '../../kernels/kernel-spec.js';
import { type LayerNormParams, layerNormKernel } from '../../kernels/layernorm/layernorm.js';
import { LAYERNORM_SHORT_ROW, layerNormRowKernel } from '../../kernels/layernorm/layernorm-row.js';
import { record } from '../autograd.js';
import { formatShape, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { deviceOf, expectDtype, launch, output } from './run.js';

function expectVector(op: string, t: Tensor | null, n: number, name: string): void {
  if (t === null) return;
  expectDtype(op, t, 'f32', name);
  if (!sameShape(t.shape, [n])) throw new Error(`${op}: ${name} ${formatShape(t.shape)} must have shape [${n}]`);
}

/** Rows of at most LAYERNORM_SHORT_ROW columns run one thread per row (layernorm-row.ts). */
function rowStageKernel(cols: number): KernelSpec<LayerNormParams> {
  return cols <= LAYERNORM_SHORT_ROW ? layerNormRowKernel : layerNormKernel;
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance, like
 * torch.nn.functional.layer_norm). weight and bias have shape [C] and are optional.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const op = 'layerNorm';
  expectDtype(op, x, 'f32');
  if (x.rank < 1) throw new Error(`layerNorm: input ${formatShape(x.shape)} must have rank >= 1`);
  const cols = x.shape[x.rank - 1]!;
  expectVector(op, weight, cols, 'weight');
  expectVector(op, bias, cols, 'bias');
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  deviceOf(op, inputs);
  const rows = cols === 0 ? 0 : x.size / cols;
  const geo = { rows, cols, eps, hasWeight: weight !== null, hasBias: bias !== null };

  const out = output(op, x, x.shape);
  const mean = output(op, x, [rows]);
  const rstd = output(op, x, [rows]);
  launch(rowStageKernel(cols), { stage: 'forward', ...geo }, [...inputs, out, mean, rstd], out);

  const saved = [x, mean, rstd, ...(weight ? [weight] : [])];
  const result = record(op, out, inputs, saved, (dOut, [sx, sMean, sRstd, sw], needs) => {
    const grads: (Tensor | null)[] = [null];
    if (needs[0]) {
      const dX = output('layerNorm_backward', dOut, dOut.shape);
      launch(rowStageKernel(cols), { stage: 'backward_input', ...geo }, [sx!, sMean!, sRstd!, ...(sw ? [sw] : []), dOut, dX], dX);
      grads[0] = dX;
    }
    const needW = weight !== null && needs[1]!;
    const needB = bias !== null && needs[weight ? 2 : 1]!;
    if (needW || needB) {
      const dW = output('layerNorm_backward', dOut, [cols]);
      const dB = output('layerNorm_backward', dOut, [cols]);
      launch(layerNormKernel, { stage: 'backward_params', ...geo }, [sx!, sMean!, sRstd!, dOut, dW, dB], dW);
      if (weight) grads.push(needW ? dW : null);
      if (bias) grads.push(needB ? dB : null);
    }
    return grads;
  });
  // The tape holds its own references to mean and rstd; these handles are no longer needed.
  mean.dispose();
  rstd.dispose();
  return result;
}

/**
 * Eval-mode batch norm with channel axis 1, for [N, C] and [N, C, ...spatial]:
 * y = (x - runningMean[c]) / sqrt(runningVar[c] + eps) * weight[c] + bias[c].
 * Gradients flow to x, weight and bias; never to the running statistics.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor,
  runningVar: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
): Tensor {
  const op = 'batchNorm';
  expectDtype(op, x, 'f32');
  if (x.rank < 2) throw new Error(`batchNorm: input ${formatShape(x.shape)} must have rank >= 2 ([N, C, ...])`);
  const channels = x.shape[1]!;
  expectVector(op, runningMean, channels, 'runningMean');
  expectVector(op, runningVar, channels, 'runningVar');
  expectVector(op, weight, channels, 'weight');
  expectVector(op, bias, channels, 'bias');
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  deviceOf(op, [...inputs, runningMean, runningVar]);
  const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const geo = { n: x.size, channels, inner, eps, hasWeight: weight !== null, hasBias: bias !== null };

  const out = output(op, x, x.shape);
  launch(batchNormKernel, { stage: 'forward', ...geo }, [x, runningMean, runningVar, ...inputs.slice(1), out], out);

  const saved = [x, runningMean, runningVar, ...(weight ? [weight] : [])];
  return record(op, out, inputs, saved, (dOut, [sx, sMean, sVar, sw], needs) => {
    const grads: (Tensor | null)[] = [null];
    if (needs[0]) {
      const dX = output('batchNorm_backward', dOut, dOut.shape);
      launch(batchNormKernel, { stage: 'backward_input', ...geo }, [dOut, sVar!, ...(sw ? [sw] : []), dX], dX);
      grads[0] = dX;
    }
    const needW = weight !== null && needs[1]!;
    const needB = bias !== null && needs[weight ? 2 : 1]!;
    if (needW || needB) {
      const dW = output('batchNorm_backward', dOut, [channels]);
      const dB = output('batchNorm_backward', dOut, [channels]);
      launch(batchNormKernel, { stage: 'backward_params', ...geo }, [sx!, dOut, sMean!, sVar!, dW, dB], dW);
      if (weight) grads.push(needW ? dW : null);
      if (bias) grads.push(needB ? dB : null);
    }
    return grads;
  });
}
