/** Building-block layers on the engine's Module (PyTorch names and parameter layouts). */
export { Linear, type LinearOptions } from './linear.js';
export { LayerNorm, type LayerNormOptions } from './layer-norm.js';
export { Conv2d, type Conv2dModuleOptions } from './conv2d.js';
export { createRng, setInitSeed, uniformTensor, type InitOptions } from './init.js';
