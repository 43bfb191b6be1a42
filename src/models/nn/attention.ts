/**
 * Multi-head attention with separate projections, HF naming (CLIPAttention, CLIPSeg decoder):
 * q_proj, k_proj, v_proj, out_proj, each Linear(E -> E) with bias. (PyTorch's nn.MultiheadAttention
 * packs q|k|v into one in_proj_weight; see the engine's multiHeadAttention for that layout.)
 *
 *   q, k, v = x·Wqᵀ + bq, ...           [B, T, E] -> [B, h, T, E/h]
 *   O = softmax(q·kᵀ / sqrt(E/h) + mask) · v, heads merged -> out_proj
 *
 * HF scales q before the product; the engine scales the product (equal up to float rounding).
 */
import { Module, type Tensor, permute, reshape, scaledDotProductAttention } from '../../engine/index.js';
import type { InitOptions } from './init.js';
import { Linear } from './linear.js';

export interface AttentionCallOptions {
  /** Keys/values from another sequence [B, S, E] (cross-attention); default: the query input. */
  context?: Tensor;
  /** Additive float mask broadcastable to [B, h, T, S]; -inf (or a very negative value) masks. */
  mask?: Tensor | null;
  /** Masks key j > query i. */
  causal?: boolean;
  /** Added to the output in out_proj's epilogue (a pre-LN block's skip connection) [B, T, E]. */
  residual?: Tensor | null;
}

export class Attention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly outProj: Linear;
  readonly headDim: number;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    options: InitOptions = {},
  ) {
    super();
    if (!Number.isInteger(numHeads) || numHeads < 1 || embedDim % numHeads !== 0) {
      throw new Error(`Attention: embed dim ${embedDim} must be divisible by the number of heads ${numHeads}`);
    }
    this.headDim = embedDim / numHeads;
    this.kProj = this.registerModule('k_proj', new Linear(embedDim, embedDim, options));
    this.vProj = this.registerModule('v_proj', new Linear(embedDim, embedDim, options));
    this.qProj = this.registerModule('q_proj', new Linear(embedDim, embedDim, options));
    this.outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, options));
  }

  /** x [B, T, E] -> [B, T, E]. */
  forward(x: Tensor, options: AttentionCallOptions = {}): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.embedDim) {
      throw new Error(`Attention(${this.embedDim}): input [${x.shape.join(', ')}] must be [B, T, ${this.embedDim}]`);
    }
    const context = options.context ?? x;
    const [b, t] = x.shape as [number, number, number];
    const s = context.shape[1]!;
    const heads = (y: Tensor, len: number) => permute(reshape(y, [b, len, this.numHeads, this.headDim]), [0, 2, 1, 3]);
    const q = heads(this.qProj.forward(x), t);
    const k = heads(this.kProj.forward(context), s);
    const v = heads(this.vProj.forward(context), s);
    const o = scaledDotProductAttention(q, k, v, { mask: options.mask ?? null, causal: options.causal ?? false });
    return this.outProj.forward(reshape(permute(o, [0, 2, 1, 3]), [b, t, this.embedDim]), { residual: options.residual ?? null });
  }
}
