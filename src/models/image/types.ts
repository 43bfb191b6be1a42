// Image types, decode limits and the error every decoder throws.
//
// Pixels are interleaved HWC, row-major, top row first: data[(y * width + x) * channels + c].
// Channel layouts: 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA (alpha is straight, not premultiplied).
// No Node API is used here or anywhere in src/models/image/: the module runs in browsers as well.

export type Channels = 1 | 2 | 3 | 4;

/** An 8-bit image (the working type of decoding, resizing and encoding). */
export interface Image {
  width: number;
  height: number;
  channels: Channels;
  data: Uint8Array;
}

/** A float image in the same HWC layout (values in whatever range the producer documents). */
export interface ImageF32 {
  width: number;
  height: number;
  channels: Channels;
  data: Float32Array;
}

export type ImageFormat = 'png' | 'jpeg';

/** What decodePng/decodeJpeg/decodeImage return. */
export interface DecodedImage extends Image {
  format: ImageFormat;
  /** Bits per sample in the file: 1, 2, 4, 8 or 16 (PNG), 8 (JPEG). */
  bitDepth: number;
  /**
   * Full-precision samples of a 16-bit PNG, same layout as `data` (which then holds the high byte of each
   * sample, as Pillow's "RGB;16B"/"RGBA;16B"/"LA;16B" unpackers do). Absent for 8-bit and lower depths.
   */
  data16?: Uint16Array;
  /** EXIF orientation tag (1..8; 1 = as stored, also when absent). Not applied: see applyOrientation(). */
  orientation: number;
}

/** Size limits checked from the header, before any pixel memory is allocated. */
export interface DecodeLimits {
  /** Largest accepted width or height (default MAX_DIMENSION). */
  maxDimension?: number;
  /** Largest accepted width * height (default MAX_PIXELS). */
  maxPixels?: number;
}

export const MAX_DIMENSION = 16384;
/** 2^27 pixels (about 11585 x 11585): an RGBA copy is 512 MiB. An 8000 x 8000 image (64 Mpx) passes. */
export const MAX_PIXELS = 2 ** 27;

/** A decoding or encoding failure; the message starts with the file name. */
export class ImageError extends Error {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'ImageError';
    this.file = file;
    this.reason = reason;
  }
}

/** Throws ImageError unless 1 <= width, height <= maxDimension and width * height <= maxPixels. */
export function checkDimensions(
  file: string,
  format: string,
  width: number,
  height: number,
  limits: DecodeLimits = {},
): void {
  const maxDim = limits.maxDimension ?? MAX_DIMENSION;
  const maxPixels = limits.maxPixels ?? MAX_PIXELS;
  if (width < 1 || height < 1) {
    throw new ImageError(file, `${format} header declares an empty image (${width}x${height})`);
  }
  if (width > maxDim || height > maxDim) {
    throw new ImageError(
      file,
      `${format} image is ${width}x${height}; the largest accepted side is ${maxDim} pixels (DecodeLimits.maxDimension)`,
    );
  }
  if (width * height > maxPixels) {
    throw new ImageError(
      file,
      `${format} image is ${width}x${height} = ${width * height} pixels; at most ${maxPixels} are accepted ` +
        '(DecodeLimits.maxPixels)',
    );
  }
}

/**
 * Reads the orientation tag (0x0112) of IFD0 from an EXIF block that starts with the TIFF header
 * ("II*\0" or "MM\0*"). Returns 1 when the tag is absent or the block is malformed.
 */
export function parseExifOrientation(tiff: Uint8Array): number {
  if (tiff.length < 8) return 1;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  const big = tiff[0] === 0x4d && tiff[1] === 0x4d;
  if (!little && !big) return 1;
  const u16 = (o: number): number =>
    little ? tiff[o]! | (tiff[o + 1]! << 8) : (tiff[o]! << 8) | tiff[o + 1]!;
  const u32 = (o: number): number => (little ? u16(o) + u16(o + 2) * 65536 : u16(o) * 65536 + u16(o + 2));
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}
