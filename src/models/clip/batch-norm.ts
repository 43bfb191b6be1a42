/**
 * torch.nn.BatchNorm1d / BatchNorm2d with PyTorch's state-dict names (weight, bias, running_mean,
 * running_var, num_batches_tracked), always normalising with the running statistics:
 *
 *   y = (x - running_mean[c]) / sqrt(running_var[c] + eps) * weight[c] + bias[c]     (channel axis 1)
 *
 * This is eval-mode batch norm (the CLIP ResNet and CRIS run it so at inference, and a frozen
 * backbone trains it so). Batch statistics (training-mode BN) are not implemented: the engine's
 * batchNorm op is the eval form. Gradients flow to x, weight and bias.
 * `num_batches_tracked` is an i32 scalar buffer (PyTorch: int64), kept only so that checkpoints
 * load strictly and save back with the same keys.
 */
import { type Device, Module, Tensor, batchNorm, getDefaultDevice } from '../../engine/index.js';
import type { InitOptions } from '../nn/index.js';

export interface BatchNormOptions extends Pick<InitOptions, 'device' | 'empty'> {
  eps?: number;
}

function filled(shape: number[], value: number, device: Device, empty: boolean, dtype: 'f32' | 'i32' = 'f32'): Tensor {
  return empty ? Tensor.empty(shape, dtype, device) : Tensor.full(shape, value, { device, dtype });
}

export class BatchNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly eps: number;

  constructor(
    readonly numFeatures: number,
    options: BatchNormOptions = {},
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new Error(`BatchNorm: numFeatures ${numFeatures} must be a positive integer`);
    this.eps = options.eps ?? 1e-5;
    const device = options.device ?? getDefaultDevice();
    const empty = options.empty ?? false;
    // torch's initial values: weight 1, bias 0, running mean 0, running var 1, 0 batches.
    this.weight = this.registerParameter('weight', filled([numFeatures], 1, device, empty));
    this.bias = this.registerParameter('bias', filled([numFeatures], 0, device, empty));
    this.runningMean = this.registerBuffer('running_mean', filled([numFeatures], 0, device, empty));
    this.runningVar = this.registerBuffer('running_var', filled([numFeatures], 1, device, empty));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', filled([], 0, device, empty, 'i32'));
  }

  /** x [N, C] or [N, C, ...spatial] -> same shape. */
  forward(x: Tensor): Tensor {
    if (x.rank < 2 || x.shape[1] !== this.numFeatures) {
      throw new Error(`BatchNorm(${this.numFeatures}): input [${x.shape.join(', ')}] must be [N, ${this.numFeatures}, ...]`);
    }
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, this.eps);
  }
}
