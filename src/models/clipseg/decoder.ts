/**
 * The CLIPSeg decoder (HF CLIPSegDecoder; docs/architectures.md §1.6). With A the extracted vision
 * activations deepest first ([B, N, Dv] each, N = 1 + gh*gw) and cond [B, P]:
 *
 *   a = reduces[0](A[0]);  a = reduces[i](A[i]) + a for i > 0
 *   at step conditional_layer: a = film_mul(cond)[:, None] * a + film_add(cond)[:, None]
 *   a = layers[i](a)                      post-LN: LN1(a + attn(a)), LN2(a + fc2(relu(fc1(a))))
 *   drop CLS -> [B, rd, gh, gw] -> head -> logits [B, H, W] (no squeeze of a batch of one)
 *
 * Heads: simple ConvTranspose2d(rd -> 1, k = s = patch) or, with use_complex_transposed_convolution,
 * the Sequential Conv2d(rd, rd, 3, pad 1), ReLU, ConvTranspose2d(rd -> rd/2, k = s = patch/4), ReLU,
 * ConvTranspose2d(rd/2 -> 1, k = s = patch/4) (parameters at Sequential indices 0, 2, 4).
 *
 * Batches: activations and conditions broadcast, so one image may be decoded against P prompts
 * (activations batch 1, cond batch P) without repeating the vision tower; HF needs equal batches.
 */
import { Module, ModuleList, type Tensor, add, mul, narrow, permute, relu, reshape, scope } from '../../engine/index.js';
import { Attention, Conv2d, ConvTranspose2d, type InitOptions, LayerNorm, Linear, Mlp } from '../nn/index.js';
import type { ClipSegConfig } from './config.js';

export class ClipSegDecoderLayer extends Module {
  readonly selfAttn: Attention;
  readonly layerNorm1: LayerNorm;
  readonly mlp: Mlp;
  readonly layerNorm2: LayerNorm;

  constructor(config: ClipSegConfig, init: InitOptions) {
    super();
    const d = config.reduceDim;
    const ln = { eps: config.vision.layerNormEps, device: init.device };
    this.selfAttn = this.registerModule('self_attn', new Attention(d, config.decoderNumAttentionHeads, init));
    this.layerNorm1 = this.registerModule('layer_norm1', new LayerNorm(d, ln));
    this.mlp = this.registerModule('mlp', new Mlp(d, config.decoderIntermediateSize, 'relu', init));
    this.layerNorm2 = this.registerModule('layer_norm2', new LayerNorm(d, ln));
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      // Post-LN; the residual adds are fused into out_proj's and fc2's epilogues.
      const h = this.layerNorm1.forward(this.selfAttn.forward(x, { residual: x }));
      return this.layerNorm2.forward(this.mlp.forward(h, h));
    });
  }
}

/** HF's nn.Sequential head: children named 0, 2, 4 (1 and 3 are parameterless ReLUs). */
export class ComplexHead extends Module {
  readonly conv: Conv2d;
  readonly up1: ConvTranspose2d;
  readonly up2: ConvTranspose2d;

  constructor(reduceDim: number, patchSize: number, init: InitOptions) {
    super();
    const k = Math.floor(patchSize / 4);
    const half = Math.floor(reduceDim / 2);
    this.conv = this.registerModule('0', new Conv2d(reduceDim, reduceDim, 3, { ...init, padding: 1 }));
    this.up1 = this.registerModule('2', new ConvTranspose2d(reduceDim, half, k, { ...init, stride: k }));
    this.up2 = this.registerModule('4', new ConvTranspose2d(half, 1, k, { ...init, stride: k }));
  }

  forward(x: Tensor): Tensor {
    return scope(() => this.up2.forward(relu(this.up1.forward(this.conv.forward(x, 'relu')))));
  }
}

export interface DecoderOutput {
  /** [B, H, W] pre-sigmoid mask logits. */
  logits: Tensor;
  /** Output of each decoder layer [B, N, rd] (HF decoder hidden_states). */
  hiddenStates: Tensor[];
}

export class ClipSegDecoder extends Module {
  readonly filmMul: Linear;
  readonly filmAdd: Linear;
  readonly transposedConvolution: ConvTranspose2d | ComplexHead;
  readonly reduces: ModuleList<Linear>;
  readonly layers: ModuleList<ClipSegDecoderLayer>;

  constructor(readonly config: ClipSegConfig, init: InitOptions = {}) {
    super();
    const { projectionDim: p, reduceDim: rd } = config;
    const patch = config.vision.patchSize;
    const depth = config.extractLayers.length;
    this.filmMul = this.registerModule('film_mul', new Linear(p, rd, init));
    this.filmAdd = this.registerModule('film_add', new Linear(p, rd, init));
    this.transposedConvolution = this.registerModule(
      'transposed_convolution',
      config.useComplexTransposedConvolution ? new ComplexHead(rd, patch, init) : new ConvTranspose2d(rd, 1, patch, { ...init, stride: patch }),
    );
    const reduces: Linear[] = [];
    const layers: ClipSegDecoderLayer[] = [];
    for (let i = 0; i < depth; i++) {
      reduces.push(new Linear(config.vision.hiddenSize, rd, init));
      layers.push(new ClipSegDecoderLayer(config, init));
    }
    this.reduces = this.registerModule('reduces', new ModuleList(reduces));
    this.layers = this.registerModule('layers', new ModuleList(layers));
  }

  /**
   * `activations`: the vision hidden states of extract_layers in config order (shallowest first)
   * [Bi, 1 + gh*gw, Dv]; `cond` [Bc, P] with Bi = Bc or one of them 1; `grid` = [gh, gw].
   */
  forward(activations: readonly Tensor[], cond: Tensor, grid: readonly [number, number]): DecoderOutput {
    const depth = this.layers.length;
    const [gh, gw] = grid;
    const n = 1 + gh * gw;
    const dv = this.config.vision.hiddenSize;
    if (activations.length !== depth) {
      throw new Error(`ClipSegDecoder: ${activations.length} activations given, the decoder has ${depth} layers`);
    }
    const bi = activations[0]!.shape[0]!;
    for (const a of activations) {
      if (a.rank !== 3 || a.shape[0] !== bi || a.shape[1] !== n || a.shape[2] !== dv) {
        throw new Error(`ClipSegDecoder: activation [${a.shape.join(', ')}] must be [${bi}, ${n}, ${dv}] for a ${gh}x${gw} grid`);
      }
    }
    const bc = cond.shape[0]!;
    if (cond.rank !== 2 || cond.shape[1] !== this.config.projectionDim) {
      throw new Error(`ClipSegDecoder: conditional embeddings [${cond.shape.join(', ')}] must be [B, ${this.config.projectionDim}]`);
    }
    if (bi !== bc && bi !== 1 && bc !== 1) {
      throw new Error(`ClipSegDecoder: ${bi} images and ${bc} conditions: the batches must match (or one of them be 1)`);
    }
    const rd = this.config.reduceDim;
    return scope(() => {
      const hiddenStates: Tensor[] = [];
      let a: Tensor | null = null;
      for (let i = 0; i < depth; i++) {
        const r = this.reduces.get(i).forward(activations[depth - 1 - i]!);
        a = a ? add(r, a) : r;
        if (i === this.config.conditionalLayer) {
          const scale = reshape(this.filmMul.forward(cond), [bc, 1, rd]);
          const shift = reshape(this.filmAdd.forward(cond), [bc, 1, rd]);
          a = add(mul(scale, a), shift);
        }
        a = this.layers.get(i).forward(a);
        hiddenStates.push(a);
      }
      const b = a!.shape[0]!;
      const grid2d = reshape(permute(narrow(a!, 1, 1, n - 1), [0, 2, 1]), [b, rd, gh, gw]);
      const out = this.transposedConvolution.forward(grid2d);
      const logits = reshape(out, [b, out.shape[2]!, out.shape[3]!]);
      return { logits, hiddenStates };
    });
  }
}
