/** torch.nn.LayerNorm over the last dimension, with optional affine weight (ones) and bias (zeros). */
import { type Device, Module, Tensor, getDefaultDevice, layerNorm } from '../../engine/index.js';

export interface LayerNormOptions {
  eps?: number;
  elementwiseAffine?: boolean;
  device?: Device;
}

export class LayerNorm extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(
    readonly normalizedShape: number,
    options: LayerNormOptions = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    const device = options.device ?? getDefaultDevice();
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? this.registerParameter('weight', Tensor.ones([normalizedShape], { device })) : null;
    this.bias = affine ? this.registerParameter('bias', Tensor.zeros([normalizedShape], { device })) : null;
  }

  forward(x: Tensor): Tensor {
    if (x.shape[x.rank - 1] !== this.normalizedShape) {
      throw new Error(`LayerNorm(${this.normalizedShape}): input [${x.shape.join(', ')}] has last dim ${x.shape[x.rank - 1]}`);
    }
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
