/** torch.nn.Conv2d (NCHW): weight [Cout, Cin/groups, kH, kW], bias [Cout]. */
import { type Conv2dOptions, type MatmulActivation, Module, type Pair, type Tensor, conv2d } from '../../engine/index.js';
import { type InitOptions, uniformTensor } from './init.js';

export interface Conv2dModuleOptions extends Conv2dOptions, InitOptions {
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly conv: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: Conv2dModuleOptions = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d: channels (${inChannels}, ${outChannels}) must be divisible by groups ${groups}`);
    }
    this.kernelSize = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const [kh, kw] = this.kernelSize;
    const fanIn = (inChannels / groups) * kh * kw;
    // torch: kaiming_uniform(a=sqrt(5)) and U(±1/sqrt(fan_in)) for the bias.
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.weight = this.registerParameter('weight', uniformTensor([outChannels, inChannels / groups, kh, kw], bound, options));
    this.bias = options.bias === false ? null : this.registerParameter('bias', uniformTensor([outChannels], bound, options));
    this.conv = { stride: options.stride ?? 1, padding: options.padding ?? 0, dilation: options.dilation ?? 1, groups };
  }

  /** `activation` follows the conv (fused into its kernel when no gradient is recorded). */
  forward(x: Tensor, activation?: MatmulActivation): Tensor {
    return conv2d(x, this.weight, this.bias, activation ? { ...this.conv, activation } : this.conv);
  }
}
