/**
 * The image-only UNet as a Segmenter: the baseline that shows how much the text prompts of the
 * vision-language models add. Prompts are accepted (one per image, so batches line up with the
 * VLSMs') and ignored.
 *
 * Freeze policies: the UNet has no image or text encoder to freeze (it is all "decoder", as the
 * study trains it from scratch), so every policy trains every parameter. Accepting the policies
 * rather than rejecting them lets one experiment grid run all models under the same settings.
 */
import { type Device, type Tensor, getDefaultDevice, noGrad } from '../../engine/index.js';
import type { Image } from '../../models/image/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../models/image/preprocess.js';
import type { InitOptions } from '../../models/nn/index.js';
import { UNet, type UNetConfig, unetConfigToJson } from '../../models/unet/index.js';
import { FREEZE_POLICIES, type FreezePolicy, type Segmenter, imagesToPixels } from '../segmenter.js';

export interface UNetSegmenterOptions {
  /** Where the model lives; defaults to init.device, then the engine's default device. */
  device?: Device;
  /** Parameter initialisation (seeded generator; `empty` when weights are loaded right after). */
  init?: InitOptions;
}

function checkPolicy(freeze: FreezePolicy): void {
  if (!FREEZE_POLICIES.includes(freeze)) {
    throw new Error(`UNetSegmenter: unknown freeze policy '${String(freeze)}'; known: ${FREEZE_POLICIES.join(', ')}`);
  }
}

export class UNetSegmenter implements Segmenter {
  readonly kind = 'unet' as const;
  readonly module: UNet;
  readonly usesText = false;
  readonly inputSize: readonly [number, number];
  readonly threshold = 0.5;
  readonly device: Device;

  /** Builds a UNet from a parsed config or its JSON form (see models/unet/config.ts). */
  constructor(config: UNetConfig | Record<string, unknown>, options: UNetSegmenterOptions = {}) {
    this.device = options.device ?? options.init?.device ?? getDefaultDevice();
    this.module = new UNet(config, { ...options.init, device: this.device });
    if (this.module.config.inChannels !== 3) {
      throw new Error(`UNetSegmenter: in_channels is ${this.module.config.inChannels}, but the pixels are RGB (3 channels)`);
    }
    const size = this.module.config.imageSize;
    this.inputSize = [size, size];
  }

  /** RGB at inputSize, ImageNet mean/std (the usual normalisation for a CNN trained from scratch). */
  pixels(images: readonly Image[]): Tensor {
    return imagesToPixels(images, this.inputSize, IMAGENET_MEAN, IMAGENET_STD, this.device);
  }

  logits(pixels: Tensor, prompts: readonly string[], options: { train?: boolean; freeze?: FreezePolicy } = {}): Tensor {
    const s = pixels.shape;
    const [h, w] = this.inputSize;
    if (s.length !== 4 || s[2] !== h || s[3] !== w) {
      throw new Error(`UNetSegmenter.logits: pixels must be [B, 3, ${h}, ${w}] (inputSize), got [${s.join(', ')}]`);
    }
    if (prompts.length !== s[0]) {
      throw new Error(`UNetSegmenter.logits: ${s[0]} images but ${prompts.length} prompts (one per image, even though the UNet ignores them)`);
    }
    if (options.freeze !== undefined) checkPolicy(options.freeze);
    // Every policy trains the whole UNet, so training records everything and eval records nothing.
    return options.train ? this.module.forward(pixels) : noGrad(() => this.module.forward(pixels));
  }

  /** All parameters, for every policy (nothing to freeze: see the file comment). */
  trainable(freeze: FreezePolicy): [string, Tensor][] {
    checkPolicy(freeze);
    return this.module.namedParameters();
  }

  describe(): { kind: 'unet'; config: Record<string, unknown> } {
    return { kind: 'unet', config: unetConfigToJson(this.module.config) };
  }
}
