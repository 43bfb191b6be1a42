/**
 * torch.nn.MultiheadAttention (kdim = vdim = embed_dim, bias, no bias_k/bias_v), PyTorch's
 * state-dict names: in_proj_weight [3E, E] (rows q | k | v), in_proj_bias [3E], out_proj.weight
 * [E, E], out_proj.bias [E]. Used by the OpenAI CLIP text transformer (`attn`) and the CRIS
 * decoder (`self_attn`, `multihead_attn`). The math is the engine's multiHeadAttention.
 *
 * Inputs are sequence-first [L, B, E] like PyTorch's default, or [B, L, E] with `batchFirst`.
 */
import { Module, Tensor, getDefaultDevice, multiHeadAttention } from '../../engine/index.js';
import { type InitOptions, Linear, uniformTensor } from '../nn/index.js';

export interface MultiheadAttentionCall {
  /** Inputs and output are [B, L, E] (default false: [L, B, E]). */
  batchFirst?: boolean;
  /** Additive float mask [Lq, Lk] or [B * heads, Lq, Lk] (-inf masks). */
  attnMask?: Tensor | null;
  /** Float [B, Lk]: nonzero = ignore that key. */
  keyPaddingMask?: Tensor | null;
  /** Masks key j > query i. */
  causal?: boolean;
}

export class MultiheadAttention extends Module {
  readonly inProjWeight: Tensor;
  readonly inProjBias: Tensor;
  readonly outProj: Linear;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    init: InitOptions = {},
  ) {
    super();
    if (!Number.isInteger(numHeads) || numHeads < 1 || embedDim % numHeads !== 0) {
      throw new Error(`MultiheadAttention: embed dim ${embedDim} must be divisible by the number of heads ${numHeads}`);
    }
    // torch: xavier_uniform_ on in_proj_weight (fan_in E, fan_out 3E), zero biases.
    const bound = Math.sqrt(6 / (embedDim + 3 * embedDim));
    this.inProjWeight = this.registerParameter('in_proj_weight', uniformTensor([3 * embedDim, embedDim], bound, init));
    this.inProjBias = this.registerParameter('in_proj_bias', zeros([3 * embedDim], init));
    this.outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, init));
    if (!init.empty) {
      // torch zeroes out_proj.bias too; Linear drew a random one (overwritten in place).
      this.outProj.loadStateDict(new Map([['bias', { shape: [embedDim], data: new Float32Array(embedDim) }]]), { strict: false });
    }
  }

  forward(query: Tensor, key: Tensor, value: Tensor, call: MultiheadAttentionCall = {}): Tensor {
    return multiHeadAttention(query, key, value, {
      inProjWeight: this.inProjWeight,
      inProjBias: this.inProjBias,
      outProjWeight: this.outProj.weight,
      outProjBias: this.outProj.bias,
      numHeads: this.numHeads,
      attnMask: call.attnMask ?? null,
      keyPaddingMask: call.keyPaddingMask ?? null,
      batchFirst: call.batchFirst ?? false,
      causal: call.causal ?? false,
    });
  }
}

function zeros(shape: number[], init: InitOptions): Tensor {
  const device = init.device ?? getDefaultDevice();
  return init.empty ? Tensor.empty(shape, 'f32', device) : Tensor.zeros(shape, { device });
}
