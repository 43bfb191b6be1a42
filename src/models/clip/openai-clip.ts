/**
 * OpenAI CLIP with the ModifiedResNet image tower (openai/CLIP clip/model.py `CLIP`), with the
 * original state-dict names: `visual.*`, `transformer.resblocks.{i}.*`, `token_embedding.weight`,
 * `positional_embedding`, `ln_final.*`, `text_projection` ([in, out], used as stored),
 * `logit_scale`. This is the `backbone` of CRIS (docs/architectures.md §3.3-3.4), whose image
 * tower is the CRIS variant of the attention pool (resnet.ts).
 *
 * Text (same block math as the HF text tower in text.ts, OpenAI names and packed q|k|v):
 *   x = token_embedding[ids] + positional_embedding[0:L]                    [B, L, D]
 *   L pre-LN residual blocks: x += attn(ln_1(x), causal -inf mask); x += mlp(ln_2(x)) (QuickGELU)
 *   words = ln_final(x)                                                     [B, L, D]
 *   state = words[b, argmax(ids[b])] · text_projection                     [B, E]
 * The causal mask spans the L given tokens (CRIS builds it for word_len = L); no padding mask.
 * argmax takes the first largest id (the EOS token, the largest id in the vocabulary).
 */
import {
  Module,
  ModuleList,
  Tensor,
  add,
  getDefaultDevice,
  indexSelect,
  matmul,
  narrow,
  reshape,
  scope,
} from '../../engine/index.js';
import { Embedding, type InitOptions, LayerNorm, Linear, normalTensor } from '../nn/index.js';
import { MultiheadAttention } from './multihead-attention.js';
import { type ModifiedResNetDims, ModifiedResNet, type ResNetFeatures } from './resnet.js';
import type { TokenBatch } from './text.js';

export interface OpenAiClipResNetDims {
  embedDim: number;
  /** Image tower (its outputDim is embedDim). */
  vision: Omit<ModifiedResNetDims, 'outputDim'>;
  contextLength: number;
  vocabSize: number;
  transformerWidth: number;
  transformerHeads: number;
  transformerLayers: number;
}

/** `mlp`: c_fc (D -> 4D), QuickGELU, c_proj (4D -> D). */
class OpenAiMlp extends Module {
  readonly cFc: Linear;
  readonly cProj: Linear;

  constructor(width: number, init: InitOptions) {
    super();
    this.cFc = this.registerModule('c_fc', new Linear(width, width * 4, init));
    this.cProj = this.registerModule('c_proj', new Linear(width * 4, width, init));
  }

  /** c_proj(quick_gelu(c_fc(x))) + residual, the activation and the add fused into the epilogues. */
  forward(x: Tensor, residual: Tensor | null = null): Tensor {
    return this.cProj.forward(this.cFc.forward(x, { activation: 'quick_gelu' }), { residual });
  }
}

/** `ResidualAttentionBlock`: pre-LN attention and MLP, LayerNorm eps 1e-5. */
export class ResidualAttentionBlock extends Module {
  readonly attn: MultiheadAttention;
  readonly ln1: LayerNorm;
  readonly mlp: OpenAiMlp;
  readonly ln2: LayerNorm;

  constructor(width: number, heads: number, init: InitOptions) {
    super();
    this.attn = this.registerModule('attn', new MultiheadAttention(width, heads, init));
    this.ln1 = this.registerModule('ln_1', new LayerNorm(width, { device: init.device }));
    this.mlp = this.registerModule('mlp', new OpenAiMlp(width, init));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(width, { device: init.device }));
  }

  /** x [B, L, D] -> [B, L, D]; `causal` masks key j > query i. */
  forward(x: Tensor, causal: boolean): Tensor {
    return scope(() => {
      const t = this.ln1.forward(x);
      const h = add(x, this.attn.forward(t, t, t, { batchFirst: true, causal }));
      return this.mlp.forward(this.ln2.forward(h), h);
    });
  }
}

/** `transformer`: the residual blocks (`resblocks.{i}`). */
export class OpenAiTransformer extends Module {
  readonly resblocks: ModuleList<ResidualAttentionBlock>;

  constructor(width: number, layers: number, heads: number, init: InitOptions) {
    super();
    const blocks: ResidualAttentionBlock[] = [];
    for (let i = 0; i < layers; i++) blocks.push(new ResidualAttentionBlock(width, heads, init));
    this.resblocks = this.registerModule('resblocks', new ModuleList(blocks));
  }

  forward(x: Tensor, causal: boolean): Tensor {
    let y = x;
    for (const block of this.resblocks) y = block.forward(y, causal);
    return y;
  }
}

export interface TextFeatures {
  /** ln_final output for every position [B, L, D] (not projected). */
  words: Tensor;
  /** EOS feature · text_projection [B, E]. */
  state: Tensor;
}

export class OpenAiClipResNet extends Module {
  readonly visual: ModifiedResNet;
  readonly transformer: OpenAiTransformer;
  readonly tokenEmbedding: Embedding;
  readonly positionalEmbedding: Tensor;
  readonly lnFinal: LayerNorm;
  readonly textProjection: Tensor;
  readonly logitScale: Tensor;

  constructor(readonly dims: OpenAiClipResNetDims, init: InitOptions = {}) {
    super();
    const device = init.device ?? getDefaultDevice();
    const d = dims.transformerWidth;
    if (!Number.isInteger(dims.transformerHeads) || dims.transformerHeads < 1 || d % dims.transformerHeads !== 0) {
      throw new Error(`OpenAiClipResNet: transformer width ${d} must be divisible by its heads ${dims.transformerHeads}`);
    }
    this.visual = this.registerModule('visual', new ModifiedResNet({ ...dims.vision, outputDim: dims.embedDim }, init));
    this.transformer = this.registerModule('transformer', new OpenAiTransformer(d, dims.transformerLayers, dims.transformerHeads, init));
    this.tokenEmbedding = this.registerModule('token_embedding', new Embedding(dims.vocabSize, d, { ...init, std: 0.02 }));
    this.positionalEmbedding = this.registerParameter('positional_embedding', normalTensor([dims.contextLength, d], 0.01, { ...init, device }));
    this.lnFinal = this.registerModule('ln_final', new LayerNorm(d, { device }));
    this.textProjection = this.registerParameter('text_projection', normalTensor([d, dims.embedDim], d ** -0.5, { ...init, device }));
    const scale = init.empty ? Tensor.empty([], 'f32', device) : Tensor.scalar(Math.log(1 / 0.07), { device });
    this.logitScale = this.registerParameter('logit_scale', scale);
  }

  /** pixels [B, 3, H, W] (normalised) -> the image tower's stage outputs. */
  encodeImage(pixels: Tensor): ResNetFeatures {
    return this.visual.forward(pixels);
  }

  /** Token ids [B, L] (host data, L <= contextLength) -> word features and sentence state. */
  encodeText(tokens: TokenBatch): TextFeatures {
    const [b, l] = checkTokenBatch(tokens, this.dims.vocabSize, this.dims.contextLength);
    const d = this.dims.transformerWidth;
    const device = this.textProjection.device;
    return scope(() => {
      const ids = Tensor.fromArray(Int32Array.from(tokens.inputIds), [b, l], { device, dtype: 'i32' });
      const x = add(this.tokenEmbedding.forward(ids), narrow(this.positionalEmbedding, 0, 0, l));
      const words = this.lnFinal.forward(this.transformer.forward(x, true));
      const rows = argmaxPositions(tokens).map((pos, r) => r * l + pos);
      const index = Tensor.fromArray(Int32Array.from(rows), [b], { device, dtype: 'i32' });
      const state = matmul(indexSelect(reshape(words, [b * l, d]), 0, index), this.textProjection);
      return { words, state };
    });
  }
}

/** Per row of [B, L] ids: the first index of the largest id (torch argmax; the EOS token). */
export function argmaxPositions(tokens: TokenBatch): number[] {
  const [b, l] = tokens.shape as [number, number];
  const out: number[] = [];
  for (let r = 0; r < b; r++) {
    let best = 0;
    for (let j = 1; j < l; j++) if (tokens.inputIds[r * l + j]! > tokens.inputIds[r * l + best]!) best = j;
    out.push(best);
  }
  return out;
}

/** Checks a [B, L] token batch; returns [B, L]. */
export function checkTokenBatch(tokens: TokenBatch, vocabSize: number, contextLength: number, where = 'OpenAiClipResNet'): [number, number] {
  const shape = tokens.shape;
  if (shape.length !== 2 || !shape.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new Error(`${where}: token shape [${shape.join(', ')}] must be [B, L] with B, L >= 1`);
  }
  const [b, l] = shape as [number, number];
  if (tokens.inputIds.length !== b * l) throw new Error(`${where}: ${tokens.inputIds.length} token ids do not fill shape [${b}, ${l}]`);
  if (l > contextLength) throw new Error(`${where}: ${l} tokens per row exceed the context length ${contextLength}`);
  for (let i = 0; i < b * l; i++) {
    const id = tokens.inputIds[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`${where}: token id ${id} at [${Math.floor(i / l)}, ${i % l}] is outside the vocabulary 0..${vocabSize - 1}`);
    }
  }
  return [b, l];
}
