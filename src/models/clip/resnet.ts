/**
 * The CLIP ModifiedResNet image tower (openai/CLIP clip/model.py) with the attention pool as CRIS
 * modifies it (CRIS.pytorch model/clip.py; docs/architectures.md §3.3). PyTorch state-dict names
 * (`conv1.weight`, `layer2.0.downsample.1.running_var`, `attnpool.connect.0.weight`, ...).
 *
 *   stem:    3x (conv 3x3 (stride 2 for the first) + BN + ReLU), channels 3 -> w/2 -> w/2 -> w,
 *            then AvgPool2d(2)                                              [B, w, H/4, W/4]
 *   layer1..4: Bottleneck stages of planes w, 2w, 4w, 8w (output 4x planes), strides 1, 2, 2, 2;
 *            striding is an AvgPool2d after conv2 (anti-aliasing), convs are stride 1
 *   attnpool (CRIS): 32 heads-per-64-channels self-attention over the H/32 x W/32 tokens with the
 *            positional embedding's spatial rows bicubic-resized to the grid (row 0, CLIP's
 *            mean-token position, dropped; no mean token), c_proj to outputDim, plus the
 *            `connect` residual (1x1 conv + BN) and a ReLU                 [B, outputDim, H/32, W/32]
 *
 * Every BatchNorm uses its running statistics (see batch-norm.ts). Only the CRIS pool is
 * implemented (CLIP's original global pool, with the mean token as the only query, is not).
 */
import {
  Module,
  ModuleList,
  type Tensor,
  add,
  avgPool2d,
  getDefaultDevice,
  interpolate,
  narrow,
  permute,
  relu,
  reshape,
  scaledDotProductAttention,
  scope,
} from '../../engine/index.js';
import { Conv2d, type InitOptions, Linear, normalTensor } from '../nn/index.js';
import { BatchNorm } from './batch-norm.js';

export interface ModifiedResNetDims {
  /** Bottleneck blocks per stage: RN50 [3, 4, 6, 3], RN101 [3, 4, 23, 3]. */
  layers: readonly [number, number, number, number];
  /** Stem width (64 for the released models); stage outputs are 4w, 8w, 16w, 32w. */
  width: number;
  /** Attention-pool output channels (CLIP's embed dim). */
  outputDim: number;
  /** Attention-pool heads (CLIP: width * 32 / 64). */
  heads: number;
  /** Pre-training resolution: the positional embedding has (inputResolution / 32)^2 + 1 rows. */
  inputResolution: number;
}

/** What the tower computes for one image batch (NCHW). */
export interface ResNetFeatures {
  /** Stem + layer1 [B, 4w, H/4, W/4]. */
  layer1: Tensor;
  /** layer2 output [B, 8w, H/8, W/8] (CRIS v3 / C3). */
  c3: Tensor;
  /** layer3 output [B, 16w, H/16, W/16] (CRIS v4 / C4). */
  c4: Tensor;
  /** layer4 output [B, 32w, H/32, W/32] (the pool's input). */
  layer4: Tensor;
  /** Attention-pool output [B, outputDim, H/32, W/32] (CRIS v5 / C5). */
  c5: Tensor;
}

function conv(cin: number, cout: number, k: number, init: InitOptions, stride = 1): Conv2d {
  return new Conv2d(cin, cout, k, { ...init, bias: false, stride, padding: k === 3 ? 1 : 0 });
}

function bn(channels: number, init: InitOptions): BatchNorm {
  return new BatchNorm(channels, { device: init.device, empty: init.empty });
}

/** `downsample`: AvgPool2d(stride) (entry -1, no parameters), 1x1 conv (entry 0), BN (entry 1). */
class Downsample extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;

  constructor(inplanes: number, outplanes: number, readonly stride: number, init: InitOptions) {
    super();
    this.conv = this.registerModule('0', conv(inplanes, outplanes, 1, init));
    this.bn = this.registerModule('1', bn(outplanes, init));
  }

  forward(x: Tensor): Tensor {
    const pooled = this.stride > 1 ? avgPool2d(x, { kernelSize: this.stride }) : x;
    return this.bn.forward(this.conv.forward(pooled));
  }
}

export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm;
  readonly downsample: Downsample | null;

  constructor(inplanes: number, planes: number, readonly stride: number, init: InitOptions) {
    super();
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', conv(inplanes, planes, 1, init));
    this.bn1 = this.registerModule('bn1', bn(planes, init));
    this.conv2 = this.registerModule('conv2', conv(planes, planes, 3, init));
    this.bn2 = this.registerModule('bn2', bn(planes, init));
    this.conv3 = this.registerModule('conv3', conv(planes, out, 1, init));
    this.bn3 = this.registerModule('bn3', bn(out, init));
    this.downsample = stride > 1 || inplanes !== out ? this.registerModule('downsample', new Downsample(inplanes, out, stride, init)) : null;
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      let y = relu(this.bn1.forward(this.conv1.forward(x)));
      y = relu(this.bn2.forward(this.conv2.forward(y)));
      if (this.stride > 1) y = avgPool2d(y, { kernelSize: this.stride });
      y = this.bn3.forward(this.conv3.forward(y));
      return relu(add(y, this.downsample ? this.downsample.forward(x) : x));
    });
  }
}

/** `connect`: the CRIS residual branch of the pool, 1x1 conv (entry 0) + BN (entry 1). */
class ConvBn extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;

  constructor(cin: number, cout: number, init: InitOptions) {
    super();
    this.conv = this.registerModule('0', conv(cin, cout, 1, init));
    this.bn = this.registerModule('1', bn(cout, init));
  }

  forward(x: Tensor): Tensor {
    return this.bn.forward(this.conv.forward(x));
  }
}

/** CRIS's AttentionPool2d: dense attention over the grid, no mean token (see the file header). */
export class AttentionPool2d extends Module {
  readonly positionalEmbedding: Tensor;
  readonly kProj: Linear;
  readonly qProj: Linear;
  readonly vProj: Linear;
  readonly cProj: Linear;
  readonly connect: ConvBn;
  /** Side of the stored position grid (rows = grid^2 + 1). */
  readonly grid: number;

  constructor(
    spacialDim: number,
    readonly embedDim: number,
    readonly numHeads: number,
    readonly outputDim: number,
    init: InitOptions = {},
  ) {
    super();
    if (!Number.isInteger(numHeads) || numHeads < 1 || embedDim % numHeads !== 0) {
      throw new Error(`AttentionPool2d: embed dim ${embedDim} must be divisible by the number of heads ${numHeads}`);
    }
    this.grid = spacialDim;
    const device = init.device ?? getDefaultDevice();
    this.positionalEmbedding = this.registerParameter(
      'positional_embedding',
      normalTensor([spacialDim * spacialDim + 1, embedDim], 1 / Math.sqrt(embedDim), { ...init, device }),
    );
    this.kProj = this.registerModule('k_proj', new Linear(embedDim, embedDim, init));
    this.qProj = this.registerModule('q_proj', new Linear(embedDim, embedDim, init));
    this.vProj = this.registerModule('v_proj', new Linear(embedDim, embedDim, init));
    this.cProj = this.registerModule('c_proj', new Linear(embedDim, outputDim, init));
    this.connect = this.registerModule('connect', new ConvBn(embedDim, outputDim, init));
  }

  /**
   * The grid rows of the positional embedding (row 0 dropped) bicubic-resized (align_corners
   * false) to h x w, as [C, h*w]; CRIS resizes even when the size is unchanged.
   */
  resizedPositions(h: number, w: number): Tensor {
    return scope(() => {
      const g = this.grid;
      const rows = narrow(this.positionalEmbedding, 0, 1, g * g);
      const map = permute(reshape(rows, [1, g, g, this.embedDim]), [0, 3, 1, 2]);
      const resized = interpolate(map, { size: [h, w], mode: 'bicubic', alignCorners: false });
      return reshape(resized, [this.embedDim, h * w]);
    });
  }

  /** x [B, embedDim, H, W] -> [B, outputDim, H, W]. */
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.embedDim) {
      throw new Error(`AttentionPool2d: input [${x.shape.join(', ')}] must be [B, ${this.embedDim}, H, W]`);
    }
    const [b, c, h, w] = x.shape as [number, number, number, number];
    const hd = c / this.numHeads;
    return scope(() => {
      const res = this.connect.forward(x);
      const tokens = permute(add(reshape(x, [b, c, h * w]), this.resizedPositions(h, w)), [0, 2, 1]); // [B, HW, C]
      const heads = (y: Tensor) => permute(reshape(y, [b, h * w, this.numHeads, hd]), [0, 2, 1, 3]);
      const q = heads(this.qProj.forward(tokens));
      const k = heads(this.kProj.forward(tokens));
      const v = heads(this.vProj.forward(tokens));
      const o = reshape(permute(scaledDotProductAttention(q, k, v), [0, 2, 1, 3]), [b, h * w, c]);
      const y = reshape(permute(this.cProj.forward(o), [0, 2, 1]), [b, this.outputDim, h, w]);
      return relu(add(y, res));
    });
  }
}

export class ModifiedResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm;
  readonly stages: ModuleList<Bottleneck>[];
  readonly attnpool: AttentionPool2d;

  constructor(readonly dims: ModifiedResNetDims, init: InitOptions = {}) {
    super();
    const w = dims.width;
    if (!Number.isInteger(w) || w < 2 || w % 2 !== 0) throw new Error(`ModifiedResNet: width ${w} must be an even integer >= 2`);
    if (dims.layers.length !== 4 || !dims.layers.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new Error(`ModifiedResNet: layers [${dims.layers.join(', ')}] must be four positive block counts`);
    }
    if (!Number.isInteger(dims.inputResolution) || dims.inputResolution < 32 || dims.inputResolution % 32 !== 0) {
      throw new Error(`ModifiedResNet: input resolution ${dims.inputResolution} must be a positive multiple of 32`);
    }
    this.conv1 = this.registerModule('conv1', conv(3, w / 2, 3, init, 2));
    this.bn1 = this.registerModule('bn1', bn(w / 2, init));
    this.conv2 = this.registerModule('conv2', conv(w / 2, w / 2, 3, init));
    this.bn2 = this.registerModule('bn2', bn(w / 2, init));
    this.conv3 = this.registerModule('conv3', conv(w / 2, w, 3, init));
    this.bn3 = this.registerModule('bn3', bn(w, init));
    let inplanes = w;
    this.stages = dims.layers.map((blocks, i) => {
      const planes = w * 2 ** i;
      const list: Bottleneck[] = [];
      for (let b = 0; b < blocks; b++) {
        list.push(new Bottleneck(inplanes, planes, b === 0 && i > 0 ? 2 : 1, init));
        inplanes = planes * Bottleneck.expansion;
      }
      return this.registerModule(`layer${i + 1}`, new ModuleList(list));
    });
    this.attnpool = this.registerModule('attnpool', new AttentionPool2d(dims.inputResolution / 32, w * 32, dims.heads, dims.outputDim, init));
  }

  /** pixels [B, 3, H, W] (H, W multiples of 32 keep every stage exact) -> the stage outputs. */
  forward(pixels: Tensor): ResNetFeatures {
    if (pixels.rank !== 4 || pixels.shape[1] !== 3) {
      throw new Error(`ModifiedResNet: pixels [${pixels.shape.join(', ')}] must be [B, 3, H, W]`);
    }
    if (pixels.shape[2]! < 32 || pixels.shape[3]! < 32) {
      throw new Error(`ModifiedResNet: pixels [${pixels.shape.join(', ')}] must be at least 32x32`);
    }
    return scope(() => {
      let x = pixels;
      for (const [c, n] of [[this.conv1, this.bn1], [this.conv2, this.bn2], [this.conv3, this.bn3]] as const) {
        x = relu(n.forward(c.forward(x)));
      }
      x = avgPool2d(x, { kernelSize: 2 });
      const outs: Tensor[] = [];
      for (const stage of this.stages) {
        for (const block of stage) x = block.forward(x);
        outs.push(x);
      }
      const [layer1, c3, c4, layer4] = outs as [Tensor, Tensor, Tensor, Tensor];
      return { layer1, c3, c4, layer4, c5: this.attnpool.forward(layer4) };
    });
  }
}
