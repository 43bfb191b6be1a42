/**
 * Small CRIS building blocks (CRIS.pytorch model/layers.py), with PyTorch's Sequential indices
 * as member names:
 *   ConvBnRelu  = `conv_layer`:   0 Conv2d k x k (padding 0 for k = 1, 1 for k = 3, no bias),
 *                                 1 BatchNorm2d, ReLU
 *   LinearBnRelu = `linear_layer`: 0 Linear (no bias), 1 BatchNorm1d, ReLU
 * plus the host-computed constants: torch.linspace in float32 (CoordConv) and up2 (bilinear x2,
 * align_corners false, as nn.Upsample(scale_factor=2, mode='bilinear')).
 */
import { Module, type Tensor, interpolate, relu } from '../../engine/index.js';
import { BatchNorm } from '../clip/batch-norm.js';
import { Conv2d, type InitOptions, Linear } from '../nn/index.js';

export class ConvBnRelu extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm;

  constructor(cin: number, cout: number, kernelSize: 1 | 3, init: InitOptions) {
    super();
    this.conv = this.registerModule('0', new Conv2d(cin, cout, kernelSize, { ...init, bias: false, padding: kernelSize === 3 ? 1 : 0 }));
    this.bn = this.registerModule('1', new BatchNorm(cout, { device: init.device, empty: init.empty }));
  }

  forward(x: Tensor): Tensor {
    return relu(this.bn.forward(this.conv.forward(x)));
  }
}

export class LinearBnRelu extends Module {
  readonly linear: Linear;
  readonly bn: BatchNorm;

  constructor(fin: number, fout: number, init: InitOptions) {
    super();
    this.linear = this.registerModule('0', new Linear(fin, fout, { ...init, bias: false }));
    this.bn = this.registerModule('1', new BatchNorm(fout, { device: init.device, empty: init.empty }));
  }

  /** x [B, fin] -> [B, fout]. */
  forward(x: Tensor): Tensor {
    return relu(this.bn.forward(this.linear.forward(x)));
  }
}

/** Bilinear x2 upsampling, align_corners false (F.interpolate(scale_factor=2, mode='bilinear')). */
export function up2(x: Tensor): Tensor {
  return interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: false });
}

/**
 * torch.linspace(start, end, steps) in float32 (ATen's CPU kernel: the first half counts up from
 * start, the second half down from end, with step = (end - start) / (steps - 1)).
 */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const f = Math.fround;
  const step = f(f(end - start) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f(start + f(step * i)) : f(end - f(step * (steps - i - 1)));
  }
  return out;
}
