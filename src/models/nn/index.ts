/** Building-block layers on the engine's Module (PyTorch names and parameter layouts). */
export { Linear, type LinearOptions } from './linear.js';
export { LayerNorm, type LayerNormOptions } from './layer-norm.js';
export { Conv2d, type Conv2dModuleOptions } from './conv2d.js';
export { ConvTranspose2d, type ConvTranspose2dModuleOptions } from './conv-transpose2d.js';
export { Embedding, type EmbeddingOptions } from './embedding.js';
export { Attention, type AttentionCallOptions } from './attention.js';
export { Mlp } from './mlp.js';
export { ACTIVATION_NAMES, activationFn, isActivationName, type ActivationName } from './activation.js';
export { createRng, normalTensor, setInitSeed, uniformTensor, type InitOptions } from './init.js';
