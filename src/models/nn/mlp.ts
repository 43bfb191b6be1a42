/**
 * The transformer feed-forward block of HF CLIP: fc2(act(fc1(x))), with fc1: D -> F, fc2: F -> D.
 * The activation runs in fc1's epilogue and an optional residual in fc2's (one launch each in
 * inference; recorded as separate ops under autograd, see the engine's linear).
 */
import { type MatmulActivation, Module, type Tensor } from '../../engine/index.js';
import { type ActivationName, fusedActivation } from './activation.js';
import type { InitOptions } from './init.js';
import { Linear } from './linear.js';

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  private readonly fused: MatmulActivation;

  constructor(dim: number, hidden: number, readonly activation: ActivationName, options: InitOptions = {}) {
    super();
    this.fused = fusedActivation(activation);
    this.fc1 = this.registerModule('fc1', new Linear(dim, hidden, options));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, dim, options));
  }

  /** fc2(act(fc1(x))) (+ residual, e.g. the block input of a pre-LN transformer layer). */
  forward(x: Tensor, residual: Tensor | null = null): Tensor {
    return this.fc2.forward(this.fc1.forward(x, { activation: this.fused }), { residual });
  }
}
