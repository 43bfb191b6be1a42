/**
 * A small UNet (Ronneberger et al. 2015, with padded convolutions): the image-only baseline that the
 * MedVLSM study trains and evaluates with the same pipeline as the vision-language models.
 *
 * With base channels c and depth d (levels 0..d-1, level i has c * 2^i channels):
 *
 *   down.i      DoubleConv  (conv3x3 pad 1 + ReLU, twice), then maxPool 2x2 (except into the bottleneck,
 *               which follows the last pool)
 *   bottleneck  DoubleConv  c * 2^(d-1) -> c * 2^d
 *   up.i        upsample: ConvTranspose2d(c * 2^(i+1) -> c * 2^i, kernel 2, stride 2), then
 *               concat([skip_i, upsampled], channel dim) and a DoubleConv c * 2^(i+1) -> c * 2^i;
 *               run from the deepest level (i = d-1) back to level 0
 *   head        conv1x1 c -> 1: the mask logits
 *
 * `up.i` sits at the same resolution as `down.i` (torch names: `down.0.conv1.weight`,
 * `up.1.upsample.weight`, `bottleneck.conv2.bias`, `head.weight`). No normalisation layers: the
 * batches of the study are small, and plain ReLU convolutions with He (Kaiming) initialisation train
 * stably at this size.
 */
import { Module, ModuleList, Tensor, concat, maxPool2d, reshape, scope } from '../../engine/index.js';
import { Conv2d, ConvTranspose2d, type InitOptions, uniformTensor } from '../nn/index.js';
import { type UNetConfig, parseUNetConfig, unetConfigToJson } from './config.js';

/**
 * conv3x3 (pad 1), with He-uniform weights U(±sqrt(6 / fan_in)) and zero biases: a ReLU halves the
 * second moment, and torch's default bound 1/sqrt(fan_in) would shrink the signal ~6x in variance
 * per layer. Initial values come from the nn init generator (createRng / setInitSeed), so a model
 * built twice with the same seed is the same.
 */
function heConv3x3(inChannels: number, outChannels: number, init: InitOptions): Conv2d {
  const conv = new Conv2d(inChannels, outChannels, 3, { ...init, padding: 1, empty: true });
  if (init.empty) return conv;
  const bound = Math.sqrt(6 / (inChannels * 9));
  scope(() => {
    const device = conv.weight.device;
    conv.loadStateDict({
      weight: uniformTensor(conv.weight.shape, bound, { ...init, device, empty: false }),
      bias: Tensor.zeros([outChannels], { device }),
    });
  });
  return conv;
}

/** Two conv3x3 + ReLU (`conv1`, `conv2`). */
export class DoubleConv extends Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;

  constructor(inChannels: number, outChannels: number, init: InitOptions = {}) {
    super();
    this.conv1 = this.registerModule('conv1', heConv3x3(inChannels, outChannels, init));
    this.conv2 = this.registerModule('conv2', heConv3x3(outChannels, outChannels, init));
  }

  forward(x: Tensor): Tensor {
    return this.conv2.forward(this.conv1.forward(x, 'relu'), 'relu');
  }
}

/** One decoder level: `upsample` (transposed conv, x2) and `conv` on [skip, upsampled]. */
export class UpBlock extends Module {
  readonly upsample: ConvTranspose2d;
  readonly conv: DoubleConv;

  constructor(inChannels: number, outChannels: number, init: InitOptions = {}) {
    super();
    // kernel 2 stride 2: every output pixel has exactly one tap (the engine's fast path).
    this.upsample = this.registerModule('upsample', new ConvTranspose2d(inChannels, outChannels, 2, { ...init, stride: 2 }));
    this.conv = this.registerModule('conv', new DoubleConv(2 * outChannels, outChannels, init));
  }

  forward(x: Tensor, skip: Tensor): Tensor {
    return this.conv.forward(concat([skip, this.upsample.forward(x)], 1));
  }
}

function isParsed(config: UNetConfig | Record<string, unknown>): config is UNetConfig {
  return ['inChannels', 'baseChannels', 'depth', 'imageSize'].every((k) => typeof config[k as keyof typeof config] === 'number');
}

export class UNet extends Module {
  readonly config: UNetConfig;
  readonly down: ModuleList<DoubleConv>;
  readonly bottleneck: DoubleConv;
  readonly up: ModuleList<UpBlock>;
  readonly head: Conv2d;

  /**
   * Builds the model from a parsed config or its JSON form (both validated). `init.empty`
   * allocates the parameters without initial values, for weights loaded right after.
   */
  constructor(config: UNetConfig | Record<string, unknown>, init: InitOptions = {}) {
    super();
    // A parsed config goes through the parser too, so hand-built objects get the same checks.
    const c = parseUNetConfig(isParsed(config) ? unetConfigToJson(config) : config, 'UNet config');
    this.config = c;
    const width = (level: number) => c.baseChannels * 2 ** level;
    this.down = this.registerModule('down', new ModuleList<DoubleConv>());
    for (let i = 0; i < c.depth; i++) {
      this.down.push(new DoubleConv(i === 0 ? c.inChannels : width(i - 1), width(i), init));
    }
    this.bottleneck = this.registerModule('bottleneck', new DoubleConv(width(c.depth - 1), width(c.depth), init));
    this.up = this.registerModule('up', new ModuleList<UpBlock>());
    for (let i = 0; i < c.depth; i++) this.up.push(new UpBlock(width(i + 1), width(i), init));
    this.head = this.registerModule('head', new Conv2d(width(0), 1, 1, init));
  }

  /** pixels [B, inChannels, H, W] (H, W multiples of 2^depth) -> mask logits [B, H, W]. */
  forward(pixels: Tensor): Tensor {
    this.checkInput(pixels);
    const [b, , h, w] = pixels.shape as [number, number, number, number];
    return scope(() => {
      const skips: Tensor[] = [];
      let x = pixels;
      for (const block of this.down) {
        const y = block.forward(x);
        skips.push(y);
        x = maxPool2d(y, { kernelSize: 2 });
      }
      x = this.bottleneck.forward(x);
      for (let i = this.config.depth - 1; i >= 0; i--) x = this.up.get(i).forward(x, skips[i]!);
      return reshape(this.head.forward(x), [b, h, w]);
    });
  }

  private checkInput(pixels: Tensor): void {
    const { inChannels, depth } = this.config;
    const factor = 2 ** depth;
    const s = pixels.shape;
    if (s.length !== 4 || s[1] !== inChannels) {
      throw new Error(`UNet.forward: pixels must be [B, ${inChannels}, H, W], got [${s.join(', ')}]`);
    }
    const [h, w] = [s[2]!, s[3]!];
    if (h === 0 || w === 0 || h % factor !== 0 || w % factor !== 0) {
      throw new Error(`UNet.forward: height ${h} and width ${w} must be positive multiples of 2^depth = ${factor} (depth ${depth})`);
    }
    if (pixels.dtype !== 'f32') throw new Error(`UNet.forward: pixels must be f32, got ${pixels.dtype}`);
  }
}
