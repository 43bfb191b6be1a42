/**
 * UNet settings (the image-only baseline of the MedVLSM study). The JSON form uses snake_case keys,
 * like the other models' config.json files:
 *
 *   { "model_type": "unet", "in_channels": 3, "base_channels": 16, "depth": 3, "image_size": 64 }
 *
 * Absent keys take the defaults above. Unknown keys are errors: a misspelt `base_channel` would
 * otherwise silently build a different model than the one a checkpoint was trained as.
 */
import { ConfigReader, isPlainObject } from '../clip/config-reader.js';

export interface UNetConfig {
  /** Input image channels (3 for RGB pixels). */
  inChannels: number;
  /** Channels of the first level; level i has baseChannels * 2^i, the bottleneck baseChannels * 2^depth. */
  baseChannels: number;
  /** Number of 2x downsamplings (and of upsamplings). */
  depth: number;
  /** Square training/eval input size; a multiple of 2^depth. */
  imageSize: number;
}

export const UNET_DEFAULTS: Readonly<UNetConfig> = { inChannels: 3, baseChannels: 16, depth: 3, imageSize: 64 };

const KEYS = ['model_type', 'in_channels', 'base_channels', 'depth', 'image_size'] as const;

/** Parses and validates a UNet config object; `source` names it in errors (a file, a checkpoint). */
export function parseUNetConfig(raw: unknown, source = 'config.json'): UNetConfig {
  if (!isPlainObject(raw)) throw new Error(`${source}: a UNet config must be a JSON object, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  const r = new ConfigReader(raw, source);
  const unknown = Object.keys(raw).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    r.fail(unknown[0]!, `is not a UNet setting; known keys: ${KEYS.map((k) => `'${k}'`).join(', ')}`);
  }
  if (r.has('model_type') && raw.model_type !== 'unet') r.fail('model_type', `is '${String(raw.model_type)}', expected 'unet'`);
  const config: UNetConfig = {
    inChannels: r.int('in_channels', UNET_DEFAULTS.inChannels),
    baseChannels: r.int('base_channels', UNET_DEFAULTS.baseChannels),
    depth: r.int('depth', UNET_DEFAULTS.depth),
    imageSize: r.int('image_size', UNET_DEFAULTS.imageSize),
  };
  // 2^depth must divide the image size, and the deepest level must keep at least 1x1 pixels.
  if (config.depth > 10) r.fail('depth', `must be at most 10, got ${config.depth}`);
  const factor = 2 ** config.depth;
  if (config.imageSize % factor !== 0) {
    r.fail('image_size', `(${config.imageSize}) must be a multiple of 2^depth = ${factor} (depth ${config.depth})`);
  }
  return config;
}

/** The JSON form of a config (what checkpoints store); parseUNetConfig reads it back unchanged. */
export function unetConfigToJson(config: UNetConfig): Record<string, unknown> {
  return {
    model_type: 'unet',
    in_channels: config.inChannels,
    base_channels: config.baseChannels,
    depth: config.depth,
    image_size: config.imageSize,
  };
}
