/**
 * CLIPSegForImageSegmentation (HF transformers modeling_clipseg.py; docs/architectures.md §1):
 * `clip` (the CLIP towers, frozen: they run without recording, as HF runs them under no_grad) and
 * `decoder` (trainable). Parameter names are HF's state-dict keys (`clip.vision_model...`,
 * `decoder.transposed_convolution.0.weight`, ...), so published checkpoints load strictly.
 *
 * The forward runs the vision tower only up to the deepest extracted layer unless intermediates
 * are asked for (`outputIntermediates`: every layer, pooled and projected outputs, text states).
 */
import { Module, type Tensor, noGrad, scope } from '../../engine/index.js';
import { ClipModel } from '../clip/model.js';
import type { TokenBatch } from '../clip/text.js';
import type { InitOptions } from '../nn/index.js';
import { type ClipSegConfig, parseClipSegConfig } from './config.js';
import { ClipSegDecoder } from './decoder.js';
import { type LoadWeightsOptions, type LoadWeightsReport, type WeightSource, loadWeights } from './weights.js';

/** Exactly one source of conditioning: tokens, a prompt image, or given embeddings. */
export interface ClipSegInputs {
  /** [Bi, C, H, W] normalised pixels; H and W multiples of the patch size. */
  pixelValues: Tensor;
  /** Prompts [Bc, T] (host ids, e.g. the tokenizer's batch). */
  tokens?: TokenBatch;
  /** Visual prompts [Bc, C, H', W']: cond = visual_projection(post_layernorm(CLS)). */
  conditionalPixelValues?: Tensor;
  /** Ready-made conditional embeddings [Bc, projection_dim]. */
  conditionalEmbeddings?: Tensor;
}

export interface ClipSegForwardOptions {
  /** Also compute and return every vision layer, the pooled/projected outputs and the text states. */
  outputIntermediates?: boolean;
  /**
   * Record the towers for autograd (training them): CLIPSeg itself keeps CLIP frozen, so by default
   * both towers run without recording and only the decoder gets gradients.
   */
  trainVision?: boolean;
  trainText?: boolean;
}

export interface ClipSegIntermediates {
  visionEmbeddings: Tensor;
  /** All numHiddenLayers + 1 vision hidden states. */
  visionHiddenStates: Tensor[];
  visionPooledOutput: Tensor;
  visionProjected: Tensor;
  /** Present when the condition came from tokens. */
  textLastHiddenState: Tensor | null;
  textPooledOutput: Tensor | null;
}

export interface ClipSegOutput {
  /** [B, H, W] mask logits (B = max(Bi, Bc)); probabilities are sigmoid(logits). */
  logits: Tensor;
  conditionalEmbeddings: Tensor;
  /** The decoder layers' outputs [B, 1 + gh*gw, reduce_dim]. */
  decoderHiddenStates: Tensor[];
  intermediates: ClipSegIntermediates | null;
}

export class ClipSegForImageSegmentation extends Module {
  readonly config: ClipSegConfig;
  readonly clip: ClipModel;
  readonly decoder: ClipSegDecoder;

  /**
   * Builds the model from a parsed config (or a raw config.json object). `init.empty` allocates
   * the parameters without initial values, for weights loaded right after.
   */
  constructor(config: ClipSegConfig | Record<string, unknown>, init: InitOptions = {}) {
    super();
    const c = isParsed(config) ? config : parseClipSegConfig(config);
    this.config = c;
    this.clip = this.registerModule('clip', new ClipModel({
      text: c.text, vision: c.vision, projectionDim: c.projectionDim, logitScaleInitValue: c.logitScaleInitValue,
    }, init));
    this.decoder = this.registerModule('decoder', new ClipSegDecoder(c, init));
  }

  /**
   * Loads an HF checkpoint (a parsed model.safetensors, or any WeightSource) by HF key names;
   * strict by default (see weights.ts for the key rules).
   */
  loadWeights(source: WeightSource, options: LoadWeightsOptions = {}): LoadWeightsReport {
    return loadWeights(this, source, options, 'the CLIPSeg checkpoint');
  }

  /** The condition [Bc, P] from exactly one source (text tower / vision tower without recording). */
  conditionalEmbeddings(inputs: Omit<ClipSegInputs, 'pixelValues'>, trainText = false): { cond: Tensor; textLastHiddenState: Tensor | null; textPooledOutput: Tensor | null } {
    const given = [inputs.tokens, inputs.conditionalPixelValues, inputs.conditionalEmbeddings].filter((x) => x !== undefined);
    if (given.length !== 1) {
      throw new Error('ClipSegForImageSegmentation: give exactly one of tokens, conditionalPixelValues and conditionalEmbeddings');
    }
    if (inputs.conditionalEmbeddings) return { cond: inputs.conditionalEmbeddings, textLastHiddenState: null, textPooledOutput: null };
    const towers = () => {
      if (inputs.tokens) {
        const t = this.clip.textFeatures(inputs.tokens);
        return { cond: t.features, textLastHiddenState: t.lastHiddenState, textPooledOutput: t.pooledOutput };
      }
      const v = scope(() => this.clip.imageFeatures(inputs.conditionalPixelValues!).features!);
      return { cond: v, textLastHiddenState: null, textPooledOutput: null };
    };
    return trainText ? towers() : noGrad(towers);
  }

  forward(inputs: ClipSegInputs, options: ClipSegForwardOptions = {}): ClipSegOutput {
    const c = this.config;
    const all = options.outputIntermediates ?? false;
    const deepest = Math.max(...c.extractLayers) + 1;
    const pixels = inputs.pixelValues;
    const visionTower = () => this.clip.imageFeatures(pixels, { numLayers: all ? c.vision.numHiddenLayers : deepest });
    const vision = options.trainVision ? visionTower() : noGrad(visionTower);
    const { cond, textLastHiddenState, textPooledOutput } = this.conditionalEmbeddings(inputs, options.trainText ?? false);
    const p = c.vision.patchSize;
    const grid: [number, number] = [pixels.shape[2]! / p, pixels.shape[3]! / p];
    const activations = c.extractLayers.map((i) => vision.hiddenStates[i + 1]!);
    const decoded = this.decoder.forward(activations, cond, grid);
    const intermediates: ClipSegIntermediates | null = all
      ? {
          visionEmbeddings: vision.embeddings,
          visionHiddenStates: vision.hiddenStates,
          visionPooledOutput: vision.pooledOutput!,
          visionProjected: vision.features!,
          textLastHiddenState,
          textPooledOutput,
        }
      : null;
    return { logits: decoded.logits, conditionalEmbeddings: cond, decoderHiddenStates: decoded.hiddenStates, intermediates };
  }
}

function isParsed(c: ClipSegConfig | Record<string, unknown>): c is ClipSegConfig {
  return typeof (c as ClipSegConfig).text === 'object' && Array.isArray((c as ClipSegConfig).extractLayers);
}
