/** Every op, one import away. Each op's forward and backward live together in its group file. */
export * from './elementwise.js';
export * from './reduce.js';
export * from './movement.js';
export * from './softmax.js';
export * from './norm.js';
export * from './losses.js';
export * from './dropout.js';
export * from './matmul.js';
export * from './attention.js';
export * from './gather.js';
export * from './conv.js';
export * from './pool.js';
export * from './resize.js';
export * from './optim.js';
export * from './cast.js';
export { requireShaderF16 } from './run.js';
// Registers the per-adapter kernel choices (engine/device/tuning.ts) at import.
import './tunables.js';
