/**
 * The CLIP transformer encoder (HF CLIPEncoder / CLIPEncoderLayer), shared by the text and the
 * vision towers: pre-LN residual blocks
 *   x = x + self_attn(layer_norm1(x), mask);  x = x + mlp(layer_norm2(x))
 * Each layer runs in its own scope, so only its output (and, when recording, what backward saves)
 * outlives it.
 */
import { Module, ModuleList, type Tensor, scope } from '../../engine/index.js';
import { type ActivationName, Attention, type InitOptions, LayerNorm, Mlp } from '../nn/index.js';

export interface EncoderDims {
  hiddenSize: number;
  intermediateSize: number;
  numAttentionHeads: number;
  numHiddenLayers: number;
  hiddenAct: ActivationName;
  layerNormEps: number;
}

export class ClipEncoderLayer extends Module {
  readonly selfAttn: Attention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: Mlp;
  readonly layerNorm2: LayerNorm;

  constructor(d: EncoderDims, init: InitOptions) {
    super();
    const ln = { eps: d.layerNormEps, device: init.device };
    this.selfAttn = this.registerModule('self_attn', new Attention(d.hiddenSize, d.numAttentionHeads, init));
    this.layerNorm1 = this.registerModule('layer_norm1', new LayerNorm(d.hiddenSize, ln));
    this.mlp = this.registerModule('mlp', new Mlp(d.hiddenSize, d.intermediateSize, d.hiddenAct, init));
    this.layerNorm2 = this.registerModule('layer_norm2', new LayerNorm(d.hiddenSize, ln));
  }

  /** x [B, T, D]; `mask` additive, broadcastable to [B, heads, T, T]. */
  forward(x: Tensor, mask: Tensor | null = null): Tensor {
    return scope(() => {
      // Residual adds fused into out_proj's and fc2's epilogues.
      const h = this.selfAttn.forward(this.layerNorm1.forward(x), { mask, residual: x });
      return this.mlp.forward(this.layerNorm2.forward(h), h);
    });
  }
}

export class ClipEncoder extends Module {
  readonly layers: ModuleList<ClipEncoderLayer>;

  constructor(d: EncoderDims, init: InitOptions) {
    super();
    const layers: ClipEncoderLayer[] = [];
    for (let i = 0; i < d.numHiddenLayers; i++) layers.push(new ClipEncoderLayer(d, init));
    this.layers = this.registerModule('layers', new ModuleList(layers));
  }

  /**
   * Runs the first `numLayers` layers (all by default) and returns HF's `hidden_states`:
   * [x, output of layer 0, ..., output of layer numLayers-1].
   */
  forward(x: Tensor, mask: Tensor | null = null, numLayers = this.layers.length): Tensor[] {
    if (!Number.isInteger(numLayers) || numLayers < 0 || numLayers > this.layers.length) {
      throw new Error(`ClipEncoder: numLayers ${numLayers} must be in 0..${this.layers.length}`);
    }
    const states = [x];
    for (let i = 0; i < numLayers; i++) states.push(this.layers.get(i).forward(states[i]!, mask));
    return states;
  }
}
