// Datasets in MedVLSM's layout: annotation files, prompt choice, seeded batching, the pre-training
// file check, summaries, binary masks, prompt attributes and the prompt writer. Browser-safe; Node
// file access is in source-node.ts and prompt-tool-node.ts.

export * from './anns.js';
export * from './attributes.js';
export * from './batching.js';
export * from './check.js';
export * from './dataset.js';
export * from './mask.js';
export * from './prompt.js';
export * from './prompt-writer.js';
export { hashSeed, rngFor, shuffleInPlace } from './random.js';
export * from './source.js';
export * from './summary.js';
