/** torch.nn.ConvTranspose2d (NCHW): weight [Cin, Cout/groups, kH, kW], bias [Cout]. */
import { type ConvTranspose2dOptions, Module, type Pair, type Tensor, convTranspose2d } from '../../engine/index.js';
import { type InitOptions, uniformTensor } from './init.js';

export interface ConvTranspose2dModuleOptions extends ConvTranspose2dOptions, InitOptions {
  bias?: boolean;
}

export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly kernelSize: [number, number];
  readonly conv: ConvTranspose2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    options: ConvTranspose2dModuleOptions = {},
  ) {
    super();
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`ConvTranspose2d: channels (${inChannels}, ${outChannels}) must be divisible by groups ${groups}`);
    }
    this.kernelSize = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    const [kh, kw] = this.kernelSize;
    // torch computes fan_in from weight.size(1) * kH * kW (= Cout/groups for the transposed layout).
    const fanIn = (outChannels / groups) * kh * kw;
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    this.weight = this.registerParameter('weight', uniformTensor([inChannels, outChannels / groups, kh, kw], bound, options));
    this.bias = options.bias === false ? null : this.registerParameter('bias', uniformTensor([outChannels], bound, options));
    this.conv = {
      stride: options.stride ?? 1,
      padding: options.padding ?? 0,
      dilation: options.dilation ?? 1,
      outputPadding: options.outputPadding ?? 0,
      groups,
    };
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, this.conv);
  }
}
