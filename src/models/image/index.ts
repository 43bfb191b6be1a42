// Image input/output for webvlsm: PNG/JPEG decoding, PNG encoding, Pillow-exact resizing, CLIPSeg
// preprocessing and segmentation postprocessing. Pure TypeScript (plus fflate), for Node and browsers.

export * from './types.js';
export { decodeImage, sniffFormat, toRgb, toRgba, toFloat32, applyOrientation, type SniffedFormat } from './image.js';
export { decodePng, crc32, PNG_SIGNATURE } from './png.js';
export { encodePng, makeChunk, type PngEncodeOptions, type PngFilter, type PngInput } from './png-encode.js';
export { decodeJpeg } from './jpeg.js';
export { resizePil, resizeBilinearPlanes, pilCoefficients, type PilFilter } from './resize.js';
export * from './preprocess.js';
export * from './postprocess.js';
