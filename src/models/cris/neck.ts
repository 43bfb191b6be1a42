/**
 * The CRIS multi-modal FPN neck (CRIS.pytorch model/layers.py `FPN`; docs/architectures.md §3.5),
 * with in = fpn_in (v3, v4, v5 channels) and out = fpn_out:
 *
 *   s   = LinearBnRelu(in2 -> out2)(state)                        [B, out2, 1, 1]   txt_proj
 *   f5  = ReLU(BN(CBR1(in2 -> out2)(v5) * s))                     [B, out2, H/32]   f1_v_proj, norm_layer
 *   f4  = CBR1(out2 + out1 -> out1)([CBR3(in1 -> out1)(v4), up2(f5)])   H/16       f2_v_proj, f2_cat
 *   f3  = CBR1(out0 + out1 -> out1)([avgpool2(CBR3(in0 -> out0)(v3)), f4])  H/16   f3_v_proj, f3_cat
 *   fq  = CBR1(3 out1 -> out1)([CBR3(f3), CBR3(f4), up2(CBR3(f5))])                 f4_proj3/4/5, aggr
 *   fq  = CBR3(out1 -> out1)(CBR3(out1 + 2 -> out1)([fq, x, y]))   CoordConv       coordconv.0 / .1
 *
 * CBRk = conv k x k + BN + ReLU; up2 = bilinear x2 (align_corners false); x, y = linspace(-1, 1)
 * over the columns / rows (float32, as torch.linspace), channel x first.
 */
import { Module, Tensor, avgPool2d, concat, mul, relu, reshape, scope } from '../../engine/index.js';
import { BatchNorm } from '../clip/batch-norm.js';
import type { InitOptions } from '../nn/index.js';
import { ConvBnRelu, LinearBnRelu, linspaceF32, up2 } from './layers.js';

/** `norm_layer`: 0 BatchNorm2d, ReLU. */
class BnRelu extends Module {
  readonly bn: BatchNorm;

  constructor(channels: number, init: InitOptions) {
    super();
    this.bn = this.registerModule('0', new BatchNorm(channels, { device: init.device, empty: init.empty }));
  }

  forward(x: Tensor): Tensor {
    return relu(this.bn.forward(x));
  }
}

/** The two coordinate channels [B, 2, H, W]: x = linspace over W, then y = linspace over H. */
export function coordinateChannels(b: number, h: number, w: number, like: Tensor): Tensor {
  const xs = linspaceF32(-1, 1, w);
  const ys = linspaceF32(-1, 1, h);
  const data = new Float32Array(b * 2 * h * w);
  for (let n = 0; n < b; n++) {
    const base = n * 2 * h * w;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        data[base + i * w + j] = xs[j]!;
        data[base + h * w + i * w + j] = ys[i]!;
      }
    }
  }
  return Tensor.fromArray(data, [b, 2, h, w], { device: like.device });
}

/** `CoordConv`: appends the coordinate channels, then `conv1` (CBR 3x3). */
export class CoordConv extends Module {
  readonly conv1: ConvBnRelu;

  constructor(cin: number, cout: number, init: InitOptions) {
    super();
    this.conv1 = this.registerModule('conv1', new ConvBnRelu(cin + 2, cout, 3, init));
  }

  forward(x: Tensor): Tensor {
    const [b, , h, w] = x.shape as [number, number, number, number];
    return scope(() => this.conv1.forward(concat([x, coordinateChannels(b, h, w, x)], 1)));
  }
}

/** `coordconv`: 0 CoordConv, 1 CBR 3x3. */
class CoordConvStack extends Module {
  readonly coord: CoordConv;
  readonly conv: ConvBnRelu;

  constructor(channels: number, init: InitOptions) {
    super();
    this.coord = this.registerModule('0', new CoordConv(channels, channels, init));
    this.conv = this.registerModule('1', new ConvBnRelu(channels, channels, 3, init));
  }

  forward(x: Tensor): Tensor {
    return scope(() => this.conv.forward(this.coord.forward(x)));
  }
}

export class Fpn extends Module {
  readonly txtProj: LinearBnRelu;
  readonly f1VProj: ConvBnRelu;
  readonly normLayer: BnRelu;
  readonly f2VProj: ConvBnRelu;
  readonly f2Cat: ConvBnRelu;
  readonly f3VProj: ConvBnRelu;
  readonly f3Cat: ConvBnRelu;
  readonly f4Proj5: ConvBnRelu;
  readonly f4Proj4: ConvBnRelu;
  readonly f4Proj3: ConvBnRelu;
  readonly aggr: ConvBnRelu;
  readonly coordconv: CoordConvStack;

  constructor(
    readonly inChannels: readonly [number, number, number],
    readonly outChannels: readonly [number, number, number],
    init: InitOptions = {},
  ) {
    super();
    const [i0, i1, i2] = inChannels;
    const [o0, o1, o2] = outChannels;
    this.txtProj = this.registerModule('txt_proj', new LinearBnRelu(i2, o2, init));
    this.f1VProj = this.registerModule('f1_v_proj', new ConvBnRelu(i2, o2, 1, init));
    this.normLayer = this.registerModule('norm_layer', new BnRelu(o2, init));
    this.f2VProj = this.registerModule('f2_v_proj', new ConvBnRelu(i1, o1, 3, init));
    this.f2Cat = this.registerModule('f2_cat', new ConvBnRelu(o2 + o1, o1, 1, init));
    this.f3VProj = this.registerModule('f3_v_proj', new ConvBnRelu(i0, o0, 3, init));
    this.f3Cat = this.registerModule('f3_cat', new ConvBnRelu(o0 + o1, o1, 1, init));
    this.f4Proj5 = this.registerModule('f4_proj5', new ConvBnRelu(o2, o1, 3, init));
    this.f4Proj4 = this.registerModule('f4_proj4', new ConvBnRelu(o1, o1, 3, init));
    this.f4Proj3 = this.registerModule('f4_proj3', new ConvBnRelu(o1, o1, 3, init));
    this.aggr = this.registerModule('aggr', new ConvBnRelu(3 * o1, o1, 1, init));
    this.coordconv = this.registerModule('coordconv', new CoordConvStack(o1, init));
  }

  /** v3 [B, in0, 2h, 2w], v4 [B, in1, h, w], v5 [B, in2, h/2, w/2], state [B, in2] -> fq [B, out1, h, w]. */
  forward(v3: Tensor, v4: Tensor, v5: Tensor, state: Tensor): Tensor {
    const b = state.shape[0]!;
    return scope(() => {
      const s = reshape(this.txtProj.forward(state), [b, this.outChannels[2], 1, 1]);
      const f5 = this.normLayer.forward(mul(this.f1VProj.forward(v5), s));
      const f4 = this.f2Cat.forward(concat([this.f2VProj.forward(v4), up2(f5)], 1));
      const f3 = this.f3Cat.forward(concat([avgPool2d(this.f3VProj.forward(v3), { kernelSize: 2, stride: 2 }), f4], 1));
      const q = concat([this.f4Proj3.forward(f3), this.f4Proj4.forward(f4), up2(this.f4Proj5.forward(f5))], 1);
      return this.coordconv.forward(this.aggr.forward(q));
    });
  }
}
