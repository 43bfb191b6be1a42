/** CLIPSeg (HF CLIPSegForImageSegmentation): config, published configs, decoder, model, weights. */
export { type ClipSegConfig, headUpsampling, parseClipSegConfig } from './config.js';
export {
  CLIPSEG_CONFIGS,
  CLIPSEG_RD16_CONFIG_JSON,
  CLIPSEG_RD64_CONFIG_JSON,
  CLIPSEG_RD64_REFINED_CONFIG_JSON,
  type ClipSegCheckpointName,
  clipSegConfigFor,
} from './configs.js';
export { ClipSegDecoder, ClipSegDecoderLayer, ComplexHead, type DecoderOutput } from './decoder.js';
export {
  ClipSegForImageSegmentation,
  type ClipSegForwardOptions,
  type ClipSegInputs,
  type ClipSegIntermediates,
  type ClipSegOutput,
} from './model.js';
export { type LoadWeightsOptions, type LoadWeightsReport, type WeightSource, canonicalKey, loadWeights, mapSource } from './weights.js';
export type { TokenBatch } from '../clip/text.js';
export { CLIPSeg } from './api.js';
