/** torch.nn.Linear: y = x·Wᵀ + b with weight [out, in] and bias [out]. */
import { type LinearEpilogue, Module, type Tensor, linear } from '../../engine/index.js';
import { type InitOptions, uniformTensor } from './init.js';

export interface LinearOptions extends InitOptions {
  bias?: boolean;
}

export class Linear extends Module {
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    if (!Number.isInteger(inFeatures) || !Number.isInteger(outFeatures) || inFeatures < 0 || outFeatures < 0) {
      throw new Error(`Linear: features (${inFeatures}, ${outFeatures}) must be non-negative integers`);
    }
    // torch: kaiming_uniform(a=sqrt(5)) for the weight and U(±1/sqrt(in)) for the bias, both
    // bounded by 1/sqrt(fan_in).
    const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
    this.registerParameter('weight', uniformTensor([outFeatures, inFeatures], bound, options));
    this.bias = options.bias === false ? null : this.registerParameter('bias', uniformTensor([outFeatures], bound, options));
  }

  /** [out, in]; f32, or f16 after toPrecision('f16') (linear() widens it to f32 as it reads). */
  get weight(): Tensor {
    return this.ownParameter('weight');
  }

  /** toPrecision converts the weight only: linear() reads f16 weights, the bias is added in f32. */
  protected override precisionParameterNames(): readonly string[] {
    return ['weight'];
  }

  /** `epilogue`: an activation and a residual add fused into the same launch (inference). */
  forward(x: Tensor, epilogue: LinearEpilogue = {}): Tensor {
    return linear(x, this.weight, this.bias, epilogue);
  }
}
