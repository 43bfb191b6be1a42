/**
 * The CLIP text transformer (HF CLIPTextTransformer as copied into CLIPSeg;
 * docs/architectures.md §1.3):
 *
 *   x = token_embedding[ids] + position_embedding[0:T]                      [B, T, D]
 *   encoder with the additive mask M[b, i, j] = (j > i ? MIN : 0) + (pad[b, j] ? MIN : 0)
 *   last = final_layer_norm(x); pooled = last[b, eos(b)]                    [B, D]
 *
 * MIN is float32's most negative finite value, as in HF: causal plus padding add up to -inf, and a
 * row whose keys are all masked by MIN alone still attends (as HF does), unlike a pure -inf mask.
 * eos(b) is the first index of the largest id when eos_token_id is 2 (HF's legacy rule, used by
 * every CLIPSeg hub config: `<|endoftext|>` is the largest id), otherwise the first position equal
 * to eos_token_id (0 when absent).
 *
 * Token ids are host data (they come from the tokenizer): masks and pooling indices are built on
 * the host, so the forward never reads back from the device.
 */
import { Module, Tensor, add, indexSelect, narrow, reshape, scope } from '../../engine/index.js';
import { Embedding, type InitOptions, LayerNorm } from '../nn/index.js';
import type { ClipTextConfig } from './config.js';
import { ClipEncoder } from './encoder.js';

/** Row-major [B, T] token ids (structurally compatible with the tokenizer's TokenizedBatch). */
export interface TokenBatch {
  inputIds: ArrayLike<number>;
  /** [B, T]: 1 = real token, 0 = padding (masked as a key). Absent: nothing is masked. */
  attentionMask?: ArrayLike<number> | null;
  shape: readonly [number, number] | readonly number[];
}

export const F32_MIN = -3.4028234663852886e38;

/** Checks a token batch against the text config; returns [B, T]. */
export function checkTokens(tokens: TokenBatch, config: ClipTextConfig, where = 'ClipTextTransformer'): [number, number] {
  const shape = tokens.shape;
  if (shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${where}: token shape [${shape.join(', ')}] must be [B, T] with B, T >= 1 (an empty prompt still has BOS and EOS)`);
  }
  const [b, t] = shape as [number, number];
  if (tokens.inputIds.length !== b * t) {
    throw new Error(`${where}: ${tokens.inputIds.length} token ids do not fill shape [${b}, ${t}]`);
  }
  if (t > config.maxPositionEmbeddings) {
    throw new Error(`${where}: ${t} tokens per row exceed max_position_embeddings ${config.maxPositionEmbeddings} (truncate the prompt)`);
  }
  for (let i = 0; i < b * t; i++) {
    const id = tokens.inputIds[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      throw new Error(`${where}: token id ${id} at [${Math.floor(i / t)}, ${i % t}] is outside the vocabulary 0..${config.vocabSize - 1}`);
    }
  }
  const mask = tokens.attentionMask;
  if (mask) {
    if (mask.length !== b * t) throw new Error(`${where}: attention mask has ${mask.length} entries for tokens [${b}, ${t}]`);
    for (let i = 0; i < b * t; i++) {
      if (mask[i] !== 0 && mask[i] !== 1) throw new Error(`${where}: attention mask value ${mask[i]} at ${i} must be 0 or 1`);
    }
  }
  return [b, t];
}

/** The position of the pooled (EOS) token in each row. */
export function eosPositions(tokens: TokenBatch, eosTokenId: number): number[] {
  const [b, t] = tokens.shape as [number, number];
  const out: number[] = [];
  for (let r = 0; r < b; r++) {
    let best = 0;
    for (let j = 0; j < t; j++) {
      const id = tokens.inputIds[r * t + j]!;
      if (eosTokenId === 2 ? id > tokens.inputIds[r * t + best]! : id === eosTokenId) {
        best = j;
        if (eosTokenId !== 2) break;
      }
    }
    out.push(best);
  }
  return out;
}

/** HF's additive text mask [B, 1, T, T]: causal plus padding, MIN per masked part (f32 sums). */
export function textAttentionMask(tokens: TokenBatch): Float32Array {
  const [b, t] = tokens.shape as [number, number];
  const mask = new Float32Array(b * t * t);
  const pad = tokens.attentionMask;
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < t; i++) {
      for (let j = 0; j < t; j++) {
        const causal = j > i ? F32_MIN : 0;
        const padding = pad && pad[r * t + j] === 0 ? F32_MIN : 0;
        mask[(r * t + i) * t + j] = Math.fround(causal + padding);
      }
    }
  }
  return mask;
}

export class ClipTextEmbeddings extends Module {
  readonly tokenEmbedding: Embedding;
  readonly positionEmbedding: Embedding;

  constructor(config: ClipTextConfig, init: InitOptions) {
    super();
    this.tokenEmbedding = this.registerModule('token_embedding', new Embedding(config.vocabSize, config.hiddenSize, { ...init, std: 0.02 }));
    this.positionEmbedding = this.registerModule(
      'position_embedding',
      new Embedding(config.maxPositionEmbeddings, config.hiddenSize, { ...init, std: 0.02 }),
    );
  }

  /** ids: i32 [B, T] on the device -> [B, T, D]. */
  forward(ids: Tensor): Tensor {
    return scope(() => add(this.tokenEmbedding.forward(ids), narrow(this.positionEmbedding.weight, 0, 0, ids.shape[1]!)));
  }
}

export interface TextOutput {
  /** final_layer_norm output [B, T, D]. */
  lastHiddenState: Tensor;
  /** lastHiddenState at each row's EOS position [B, D]. */
  pooledOutput: Tensor;
}

export class ClipTextTransformer extends Module {
  readonly embeddings: ClipTextEmbeddings;
  readonly encoder: ClipEncoder;
  readonly finalLayerNorm: LayerNorm;

  constructor(readonly config: ClipTextConfig, init: InitOptions = {}) {
    super();
    this.embeddings = this.registerModule('embeddings', new ClipTextEmbeddings(config, init));
    this.encoder = this.registerModule('encoder', new ClipEncoder(config, init));
    this.finalLayerNorm = this.registerModule('final_layer_norm', new LayerNorm(config.hiddenSize, { eps: config.layerNormEps, device: init.device }));
  }

  forward(tokens: TokenBatch): TextOutput {
    const [b, t] = checkTokens(tokens, this.config);
    const device = this.finalLayerNorm.weight!.device;
    return scope(() => {
      const ids = Tensor.fromArray(Int32Array.from(tokens.inputIds), [b, t], { device, dtype: 'i32' });
      const mask = Tensor.fromArray(textAttentionMask(tokens), [b, 1, t, t], { device });
      const states = this.encoder.forward(this.embeddings.forward(ids), mask);
      const lastHiddenState = this.finalLayerNorm.forward(states[states.length - 1]!);
      const rows = eosPositions(tokens, this.config.eosTokenId).map((pos, r) => r * t + pos);
      const index = Tensor.fromArray(Int32Array.from(rows), [b], { device, dtype: 'i32' });
      const pooledOutput = indexSelect(reshape(lastHiddenState, [b * t, this.config.hiddenSize]), 0, index);
      return { lastHiddenState, pooledOutput };
    });
  }
}
