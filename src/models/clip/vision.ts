/**
 * The CLIP vision transformer (HF CLIPVisionTransformer as copied into CLIPSeg;
 * docs/architectures.md §1.4):
 *
 *   patches = Conv2d(C -> D, k = s = patch, no bias)(pixels)      [B, D, gh, gw] -> [B, gh*gw, D]
 *   x = [class_embedding; patches] + positions                     [B, 1 + gh*gw, D]
 *   hidden_states[0] = pre_layrnorm(x); hidden_states[k] = encoder layer k-1 output
 *   pooled = post_layernorm(last_hidden_state[:, 0])               [B, D]
 *
 * Positions: the table has 1 + n² rows (n = image_size / patch_size). When the token count differs,
 * row 0 (CLS) is kept apart and rows 1.. are viewed as an [n, n] grid, bicubic-resized
 * (align_corners false, PyTorch's coefficients) to [gh, gw] and flattened row-major. HF only handles
 * square inputs; here any H, W that are multiples of the patch size work (square inputs are HF's).
 */
import {
  Module,
  type Tensor,
  add,
  concat,
  expand,
  interpolate,
  narrow,
  permute,
  reshape,
  scope,
} from '../../engine/index.js';
import { Conv2d, Embedding, type InitOptions, LayerNorm, normalTensor } from '../nn/index.js';
import type { ClipVisionConfig } from './config.js';
import { ClipEncoder } from './encoder.js';

export class ClipVisionEmbeddings extends Module {
  readonly classEmbedding: Tensor;
  readonly patchEmbedding: Conv2d;
  readonly positionEmbedding: Embedding;
  /** Patch grid side at the pre-training resolution (the position table is 1 + n² rows). */
  readonly gridSize: number;

  constructor(readonly config: ClipVisionConfig, init: InitOptions) {
    super();
    const d = config.hiddenSize;
    this.gridSize = Math.floor(config.imageSize / config.patchSize);
    this.classEmbedding = this.registerParameter('class_embedding', normalTensor([d], d ** -0.5, init));
    this.patchEmbedding = this.registerModule(
      'patch_embedding',
      new Conv2d(config.numChannels, d, config.patchSize, { ...init, stride: config.patchSize, bias: false }),
    );
    this.positionEmbedding = this.registerModule('position_embedding', new Embedding(this.gridSize ** 2 + 1, d, { ...init, std: 0.02 }));
  }

  /** The [1 + gh*gw, D] position rows for a gh x gw patch grid (interpolated unless n x n). */
  positions(gh: number, gw: number): Tensor {
    const n = this.gridSize;
    const table = this.positionEmbedding.weight;
    if (gh === n && gw === n) return table;
    const d = this.config.hiddenSize;
    return scope(() => {
      // rows 1.. are [n*n, D] row-major (y, x): as an image [1, D, n, n].
      const grid = reshape(permute(narrow(table, 0, 1, n * n), [1, 0]), [1, d, n, n]);
      const resized = interpolate(grid, { size: [gh, gw], mode: 'bicubic', alignCorners: false });
      const rows = permute(reshape(resized, [d, gh * gw]), [1, 0]);
      return concat([narrow(table, 0, 0, 1), rows], 0);
    });
  }

  /** pixels [B, C, H, W] (H, W multiples of the patch size) -> [B, 1 + (H/p)(W/p), D]. */
  forward(pixels: Tensor): Tensor {
    const { numChannels: c, patchSize: p, hiddenSize: d } = this.config;
    const shape = `[${pixels.shape.join(', ')}]`;
    if (pixels.rank !== 4 || pixels.shape[1] !== c) {
      throw new Error(`ClipVisionEmbeddings: pixel values ${shape} must be [B, ${c}, H, W]`);
    }
    const [b, , h, w] = pixels.shape as [number, number, number, number];
    if (h % p !== 0 || w % p !== 0 || h === 0 || w === 0) {
      throw new Error(`ClipVisionEmbeddings: image size ${h}x${w} of pixel values ${shape} must be a positive multiple of the patch size ${p}`);
    }
    const gh = h / p;
    const gw = w / p;
    return scope(() => {
      const patches = this.patchEmbedding.forward(pixels);
      const tokens = permute(reshape(patches, [b, d, gh * gw]), [0, 2, 1]);
      const cls = expand(reshape(this.classEmbedding, [1, 1, d]), [b, 1, d]);
      return add(concat([cls, tokens], 1), this.positions(gh, gw));
    });
  }
}

export interface VisionForwardOptions {
  /** Run only the first N encoder layers (the decoder needs no more than its deepest extract layer). */
  numLayers?: number;
}

export interface VisionOutput {
  /** Patch + class embeddings plus positions, before pre_layrnorm [B, 1+N, D]. */
  embeddings: Tensor;
  /** HF hidden_states: [pre_layrnorm output, layer 0 output, ...] (numLayers + 1 entries). */
  hiddenStates: Tensor[];
  /** post_layernorm(CLS of the last layer) [B, D]; only when every layer ran. */
  pooledOutput: Tensor | null;
}

export class ClipVisionTransformer extends Module {
  readonly embeddings: ClipVisionEmbeddings;
  readonly preLayrnorm: LayerNorm;
  readonly encoder: ClipEncoder;
  readonly postLayernorm: LayerNorm;

  constructor(readonly config: ClipVisionConfig, init: InitOptions = {}) {
    super();
    const ln = { eps: config.layerNormEps, device: init.device };
    this.embeddings = this.registerModule('embeddings', new ClipVisionEmbeddings(config, init));
    this.preLayrnorm = this.registerModule('pre_layrnorm', new LayerNorm(config.hiddenSize, ln));
    this.encoder = this.registerModule('encoder', new ClipEncoder(config, init));
    this.postLayernorm = this.registerModule('post_layernorm', new LayerNorm(config.hiddenSize, ln));
  }

  forward(pixels: Tensor, options: VisionForwardOptions = {}): VisionOutput {
    const total = this.config.numHiddenLayers;
    const numLayers = options.numLayers ?? total;
    const embeddings = this.embeddings.forward(pixels);
    const hiddenStates = this.encoder.forward(this.preLayrnorm.forward(embeddings), null, numLayers);
    let pooledOutput: Tensor | null = null;
    if (numLayers === total) {
      const last = hiddenStates[hiddenStates.length - 1]!;
      pooledOutput = scope(() => this.postLayernorm.forward(reshape(narrow(last, 1, 0, 1), [last.shape[0]!, last.shape[2]!])));
    }
    return { embeddings, hiddenStates, pooledOutput };
  }
}
