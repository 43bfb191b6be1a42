/** CRIS (CRIS.pytorch): config, published configs, neck, decoder, projector, model, weights, outputs. */
export { type CrisConfig, checkCrisConfig, parseCrisConfig } from './config.js';
export { CRIS_CONFIGS, CRIS_R101_CONFIG_JSON, CRIS_R50_CONFIG_JSON, type CrisConfigName, crisConfigFor } from './configs.js';
export { ConvBnRelu, LinearBnRelu, linspaceF32, up2 } from './layers.js';
export { CoordConv, Fpn, coordinateChannels } from './neck.js';
export { TransformerDecoder, TransformerDecoderLayer, positionEncoding1d, positionEncoding2d } from './decoder.js';
export { Projector } from './projector.js';
export {
  Cris,
  type CrisForwardOptions,
  type CrisInputs,
  type CrisIntermediates,
  type CrisOutput,
  paddingMask,
} from './model.js';
export {
  CLIP_ARCHIVE_SCALARS,
  type ClipBackboneReport,
  float16RoundTripNames,
  loadClipBackbone,
  loadCrisWeights,
  roundToFloat16,
} from './weights.js';
export { CRIS_THRESHOLD, crisLoss, crisMask, crisProbabilities } from './postprocess.js';
export type { TokenBatch } from '../clip/text.js';
export { CRIS } from './api.js';
export { CRIS_INPUT_SIZE, crisPreprocess, letterboxTransform, unletterbox } from './preprocess.js';
