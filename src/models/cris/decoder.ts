/**
 * The CRIS vision-language TransformerDecoder (CRIS.pytorch model/layers.py; docs/architectures.md
 * §3.6). Tokens are kept batch-first here ([B, HW, C] visual, [B, L, C] words); PyTorch's
 * sequence-first layout gives the same numbers. Each layer (pre-norm, extra post-attention norms):
 *
 *   t = norm1(v);  v += self_attn_norm(MHA(q = k = t + vis_pos, v = t))
 *   t = norm2(v);  v += cross_attn_norm(MHA(q = t + vis_pos, k = words + txt_pos, v = words,
 *                                           key_padding_mask = (ids == 0)))
 *   t = norm3(v);  v += ffn.4(LayerNorm_ffn.3(ReLU(ffn.0(t))))
 * then `norm` and the output layout [B, C, HW].
 *
 * vis_pos [HW, C] is the 2-D sine encoding (x in channels 0..C/2-1, y in C/2..C-1, interleaved
 * sin/cos), txt_pos [L, C] the 1-D one, both computed in float32 as PyTorch does. Dropout (p =
 * config.dropout) is applied to the three residual branches and after the FFN's ReLU in training
 * mode only; attention-weight dropout is not implemented.
 */
import { Module, ModuleList, Tensor, add, dropout, permute, relu, reshape, scope } from '../../engine/index.js';
import { MultiheadAttention } from '../clip/multihead-attention.js';
import { type InitOptions, LayerNorm, Linear } from '../nn/index.js';

const f = Math.fround;

/** exp(2k * -(ln 10000 / d)) for k = 0 .. d/2 - 1, in float32. */
function divTerm(d: number): Float32Array {
  const factor = f(-(Math.log(10000) / d));
  const out = new Float32Array(d / 2);
  for (let k = 0; k < d / 2; k++) out[k] = f(Math.exp(f(2 * k * factor)));
  return out;
}

/** CRIS `pos2d`: [H*W, C] (token i*W + j). */
export function positionEncoding2d(c: number, h: number, w: number): Float32Array {
  if (c % 4 !== 0) throw new Error(`positionEncoding2d: channels ${c} must be a multiple of 4`);
  const half = c / 2;
  const div = divTerm(half);
  const out = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const row = (i * w + j) * c;
      for (let k = 0; k < half / 2; k++) {
        const ax = f(j * div[k]!);
        const ay = f(i * div[k]!);
        out[row + 2 * k] = Math.sin(ax);
        out[row + 2 * k + 1] = Math.cos(ax);
        out[row + half + 2 * k] = Math.sin(ay);
        out[row + half + 2 * k + 1] = Math.cos(ay);
      }
    }
  }
  return out;
}

/** CRIS `pos1d`: [L, D]. */
export function positionEncoding1d(d: number, length: number): Float32Array {
  if (d % 2 !== 0) throw new Error(`positionEncoding1d: dim ${d} must be even`);
  const div = divTerm(d);
  const out = new Float32Array(length * d);
  for (let p = 0; p < length; p++) {
    for (let k = 0; k < d / 2; k++) {
      const a = f(p * div[k]!);
      out[p * d + 2 * k] = Math.sin(a);
      out[p * d + 2 * k + 1] = Math.cos(a);
    }
  }
  return out;
}

/** `ffn`: 0 Linear(C -> F), ReLU, Dropout, 3 LayerNorm(F), 4 Linear(F -> C). */
class Ffn extends Module {
  readonly fc1: Linear;
  readonly norm: LayerNorm;
  readonly fc2: Linear;

  constructor(d: number, dimFfn: number, readonly p: number, init: InitOptions) {
    super();
    this.fc1 = this.registerModule('0', new Linear(d, dimFfn, init));
    this.norm = this.registerModule('3', new LayerNorm(dimFfn, { device: init.device }));
    this.fc2 = this.registerModule('4', new Linear(dimFfn, d, init));
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.norm.forward(dropout(relu(this.fc1.forward(x)), this.p, this.training)));
  }
}

export class TransformerDecoderLayer extends Module {
  readonly selfAttnNorm: LayerNorm;
  readonly crossAttnNorm: LayerNorm;
  readonly selfAttn: MultiheadAttention;
  readonly multiheadAttn: MultiheadAttention;
  readonly ffn: Ffn;
  readonly norm1: LayerNorm;
  readonly norm2: LayerNorm;
  readonly norm3: LayerNorm;

  constructor(d: number, heads: number, dimFfn: number, readonly p: number, init: InitOptions) {
    super();
    const ln = () => new LayerNorm(d, { device: init.device });
    this.selfAttnNorm = this.registerModule('self_attn_norm', ln());
    this.crossAttnNorm = this.registerModule('cross_attn_norm', ln());
    this.selfAttn = this.registerModule('self_attn', new MultiheadAttention(d, heads, init));
    this.multiheadAttn = this.registerModule('multihead_attn', new MultiheadAttention(d, heads, init));
    this.ffn = this.registerModule('ffn', new Ffn(d, dimFfn, p, init));
    this.norm1 = this.registerModule('norm1', ln());
    this.norm2 = this.registerModule('norm2', ln());
    this.norm3 = this.registerModule('norm3', ln());
  }

  /** vis [B, HW, C], words [B, L, C], visPos [HW, C], txtPos [L, C], padMask f32 [B, L] (1 = ignore). */
  forward(vis: Tensor, words: Tensor, visPos: Tensor, txtPos: Tensor, padMask: Tensor): Tensor {
    const drop = (x: Tensor) => dropout(x, this.p, this.training);
    return scope(() => {
      let t = this.norm1.forward(vis);
      const qk = add(t, visPos);
      let v = add(vis, drop(this.selfAttnNorm.forward(this.selfAttn.forward(qk, qk, t, { batchFirst: true }))));
      t = this.norm2.forward(v);
      const cross = this.multiheadAttn.forward(add(t, visPos), add(words, txtPos), words, { batchFirst: true, keyPaddingMask: padMask });
      v = add(v, drop(this.crossAttnNorm.forward(cross)));
      return add(v, drop(this.ffn.forward(this.norm3.forward(v))));
    });
  }
}

export class TransformerDecoder extends Module {
  readonly layers: ModuleList<TransformerDecoderLayer>;
  readonly norm: LayerNorm;

  constructor(numLayers: number, readonly dModel: number, heads: number, dimFfn: number, dropoutP: number, init: InitOptions = {}) {
    super();
    const layers: TransformerDecoderLayer[] = [];
    for (let i = 0; i < numLayers; i++) layers.push(new TransformerDecoderLayer(dModel, heads, dimFfn, dropoutP, init));
    this.layers = this.registerModule('layers', new ModuleList(layers));
    this.norm = this.registerModule('norm', new LayerNorm(dModel, { device: init.device }));
  }

  /** fq [B, C, H, W], words [B, L, C], padMask f32 [B, L] -> [B, C, H*W]. */
  forward(fq: Tensor, words: Tensor, padMask: Tensor): Tensor {
    const [b, c, h, w] = fq.shape as [number, number, number, number];
    if (c !== this.dModel || words.rank !== 3 || words.shape[2] !== c) {
      throw new Error(`TransformerDecoder(${this.dModel}): visual [${fq.shape.join(', ')}] and words [${words.shape.join(', ')}] must have ${this.dModel} channels`);
    }
    const l = words.shape[1]!;
    return scope(() => {
      const device = fq.device;
      const visPos = Tensor.fromArray(positionEncoding2d(c, h, w), [h * w, c], { device });
      const txtPos = Tensor.fromArray(positionEncoding1d(c, l), [l, c], { device });
      let v = permute(reshape(fq, [b, c, h * w]), [0, 2, 1]);
      for (const layer of this.layers) v = layer.forward(v, words, visPos, txtPos, padMask);
      return permute(this.norm.forward(v), [0, 2, 1]);
    });
  }
}
