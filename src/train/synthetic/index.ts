// The synthetic default dataset (browser-safe; the folder writer is write-node.ts).

export * from './generate.js';
export { MODALITIES, type ModalityInfo } from './modalities.js';
export { SHAPES, type ShapeSpec, insideShape, rasterizeShape, shapeExtent } from './shapes.js';
