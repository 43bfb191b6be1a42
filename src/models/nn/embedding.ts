/** torch.nn.Embedding: a lookup table weight [num, dim]; forward(ids) -> [...ids.shape, dim]. */
import { Module, type Tensor, embedding } from '../../engine/index.js';
import { type InitOptions, normalTensor } from './init.js';

export interface EmbeddingOptions extends InitOptions {
  /** Standard deviation of the initial values (torch: 1; HF CLIP re-initialises with 0.02). */
  std?: number;
}

export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: EmbeddingOptions = {},
  ) {
    super();
    if (![numEmbeddings, embeddingDim].every((d) => Number.isInteger(d) && d > 0)) {
      throw new Error(`Embedding: sizes (${numEmbeddings}, ${embeddingDim}) must be positive integers`);
    }
    this.weight = this.registerParameter('weight', normalTensor([numEmbeddings, embeddingDim], options.std ?? 1, options));
  }

  /** Rows of the table for i32 `ids` of any shape. */
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
