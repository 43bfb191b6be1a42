/** The transformer feed-forward block of HF CLIP: fc2(act(fc1(x))), with fc1: D -> F, fc2: F -> D. */
import { Module, type Tensor } from '../../engine/index.js';
import { type ActivationName, activationFn } from './activation.js';
import type { InitOptions } from './init.js';
import { Linear } from './linear.js';

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly act: (x: Tensor) => Tensor;

  constructor(dim: number, hidden: number, readonly activation: ActivationName, options: InitOptions = {}) {
    super();
    this.act = activationFn(activation);
    this.fc1 = this.registerModule('fc1', new Linear(dim, hidden, options));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, dim, options));
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.act(this.fc1.forward(x)));
  }
}
