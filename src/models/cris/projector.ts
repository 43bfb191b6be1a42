/**
 * The CRIS Projector (CRIS.pytorch model/layers.py; docs/architectures.md §3.7), d = vis_dim / 2:
 *
 *   vis:  up2 -> CBR3(2d -> 2d) (entry 1) -> up2 -> CBR3(2d -> d) (entry 3) -> Conv1x1(d -> d, bias)
 *         (entry 4)                                                      x [B, d, 4H, 4W]
 *   txt:  Linear(word_dim -> 9d + 1)(state): per item a 3x3 kernel [1, d, 3, 3] (first 9d values,
 *         channel-major) and a bias (the last value)
 *   out_b = conv2d(x_b, K_b, padding 1) + bias_b                          [B, 1, 4H, 4W]
 *
 * As upstream, the per-item convolutions are one grouped conv (groups = B) over [1, B*d, ...].
 */
import { Module, type Tensor, conv2d, narrow, reshape, scope } from '../../engine/index.js';
import { Conv2d, type InitOptions, Linear } from '../nn/index.js';
import { ConvBnRelu, up2 } from './layers.js';

/** `vis`: the visual path (Sequential entries 0 and 2 are the parameter-free upsamplers). */
class ProjectorVis extends Module {
  readonly conv1: ConvBnRelu;
  readonly conv3: ConvBnRelu;
  readonly conv4: Conv2d;

  constructor(d: number, init: InitOptions) {
    super();
    this.conv1 = this.registerModule('1', new ConvBnRelu(2 * d, 2 * d, 3, init));
    this.conv3 = this.registerModule('3', new ConvBnRelu(2 * d, d, 3, init));
    this.conv4 = this.registerModule('4', new Conv2d(d, d, 1, init));
  }

  forward(x: Tensor): Tensor {
    return scope(() => this.conv4.forward(this.conv3.forward(up2(this.conv1.forward(up2(x))))));
  }
}

export class Projector extends Module {
  readonly vis: ProjectorVis;
  readonly txt: Linear;
  readonly kernelSize = 3;

  constructor(readonly wordDim: number, readonly inDim: number, init: InitOptions = {}) {
    super();
    this.vis = this.registerModule('vis', new ProjectorVis(inDim, init));
    this.txt = this.registerModule('txt', new Linear(wordDim, inDim * 9 + 1, init));
  }

  /** x [B, 2d, H, W], state [B, word_dim] -> logits [B, 1, 4H, 4W]. */
  forward(x: Tensor, state: Tensor): Tensor {
    const b = x.shape[0]!;
    if (state.rank !== 2 || state.shape[0] !== b || state.shape[1] !== this.wordDim) {
      throw new Error(`Projector: state [${state.shape.join(', ')}] must be [${b}, ${this.wordDim}] for visual input [${x.shape.join(', ')}]`);
    }
    return scope(() => {
      const v = this.vis.forward(x);
      const [, c, h, w] = v.shape as [number, number, number, number];
      const params = this.txt.forward(state);
      const kernel = reshape(narrow(params, 1, 0, c * 9), [b, c, 3, 3]);
      const bias = reshape(narrow(params, 1, c * 9, 1), [b]);
      const out = conv2d(reshape(v, [1, b * c, h, w]), kernel, bias, { padding: 1, groups: b });
      return reshape(out, [b, 1, h, w]);
    });
  }
}
