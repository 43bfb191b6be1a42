/**
 * Optimizers. AdamW follows torch.optim.AdamW (amsgrad=False): one fused in-place kernel per
 * parameter (the engine's `adamwStep`), per-parameter step counts, state created lazily on the
 * first step that sees a gradient and kept outside scopes until `dispose()`.
 */
import { Tensor, adamwStep, copy, keep, noGrad, scope } from '../engine/index.js';

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Per-parameter state, as torch keeps it: step count, first and second moments. */
export interface AdamWParamState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
}

/** What loadStateDict accepts per parameter: live tensors or host copies of the moments. */
export interface SavedParamState {
  step: number;
  expAvg: Tensor | Float32Array;
  expAvgSq: Tensor | Float32Array;
}

export class AdamW {
  /** Learning rate; schedules assign it between steps. */
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** The optimized parameters with their names ('0', '1', ... when given as a plain list). */
  readonly params: readonly [string, Tensor][];
  private readonly state = new Map<Tensor, AdamWParamState>();

  constructor(params: Tensor[] | Iterable<[string, Tensor]>, options: AdamWOptions) {
    const list: [string, Tensor][] = [];
    for (const item of params as Iterable<Tensor | [string, Tensor]>) {
      list.push(item instanceof Tensor ? [String(list.length), item] : item);
    }
    const names = new Set<string>();
    const seen = new Set<Tensor>();
    for (const [name, p] of list) {
      if (names.has(name)) throw new Error(`AdamW: parameter name '${name}' appears twice`);
      if (seen.has(p)) throw new Error(`AdamW: parameter '${name}' (${p}) appears twice`);
      if (p.dtype !== 'f32') {
        const why = p.dtype === 'f16' ? ' (f16 weights are inference-only: load the model at f32 precision to train it)' : '';
        throw new Error(`AdamW: parameter '${name}' has dtype ${p.dtype}, expected f32${why}`);
      }
      names.add(name);
      seen.add(p);
    }
    this.params = list;
    this.lr = options.lr;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 1e-2;
  }

  /** Updates every parameter that has a gradient; parameters without one are skipped. */
  step(): void {
    noGrad(() =>
      scope(() => {
        for (const [name, p] of this.params) {
          const grad = p.grad;
          if (grad === null) continue;
          if (p.disposed) throw new Error(`AdamW: parameter '${name}' was disposed`);
          let s = this.state.get(p);
          if (!s) {
            const expAvg = keep(Tensor.zeros(p.shape, { device: p.device, label: `${name}.exp_avg` }));
            const expAvgSq = keep(Tensor.zeros(p.shape, { device: p.device, label: `${name}.exp_avg_sq` }));
            s = { step: 0, expAvg, expAvgSq };
            this.state.set(p, s);
          }
          s.step++;
          adamwStep(p, grad, s.expAvg, s.expAvgSq, {
            lr: this.lr,
            beta1: this.betas[0],
            beta2: this.betas[1],
            eps: this.eps,
            weightDecay: this.weightDecay,
            step: s.step,
          });
        }
      }),
    );
  }

  /** Drops (disposes) the gradients of every optimized parameter. */
  zeroGrad(): void {
    for (const [, p] of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Per-parameter state by parameter name (the live tensors; absent before a parameter's first step). */
  stateDict(): Map<string, AdamWParamState> {
    const out = new Map<string, AdamWParamState>();
    for (const [name, p] of this.params) {
      const s = this.state.get(p);
      if (s) out.set(name, { ...s });
    }
    return out;
  }

  /**
   * Restores state saved by stateDict() (or read from a checkpoint as Float32Arrays). The moments
   * are copied onto each parameter's device, so the caller keeps ownership of what it passes in.
   * Everything is checked before the current state is replaced.
   */
  loadStateDict(state: Map<string, SavedParamState>): void {
    const byName = new Map(this.params);
    for (const [name, saved] of state) {
      const p = byName.get(name);
      if (!p) throw new Error(`AdamW.loadStateDict: unknown parameter '${name}'`);
      if (!Number.isInteger(saved.step) || saved.step < 0) {
        throw new Error(`AdamW.loadStateDict: '${name}' has step ${saved.step}`);
      }
      for (const [what, v] of [['exp_avg', saved.expAvg], ['exp_avg_sq', saved.expAvgSq]] as const) {
        const size = v instanceof Tensor ? v.size : v.length;
        const shapeOk = v instanceof Tensor ? v.shape.join() === p.shape.join() : size === p.size;
        if (!shapeOk) {
          const got = v instanceof Tensor ? `shape [${v.shape.join(', ')}]` : `${size} values`;
          throw new Error(`AdamW.loadStateDict: '${name}' ${what} has ${got}, the parameter has shape [${p.shape.join(', ')}]`);
        }
        if (v instanceof Tensor && v.device !== p.device) {
          throw new Error(`AdamW.loadStateDict: '${name}' ${what} lives on ${v.device.kind}, the parameter on ${p.device.kind}`);
        }
      }
    }
    this.disposeState();
    for (const [name, saved] of state) {
      const p = byName.get(name)!;
      this.state.set(p, { step: saved.step, expAvg: ownCopy(saved.expAvg, p), expAvgSq: ownCopy(saved.expAvgSq, p) });
    }
  }

  /** Frees the optimizer state (the parameters belong to their module). */
  dispose(): void {
    this.disposeState();
  }

  private disposeState(): void {
    for (const s of this.state.values()) {
      s.expAvg.dispose();
      s.expAvgSq.dispose();
    }
    this.state.clear();
  }
}

/** A kept copy of `v` with `like`'s shape, on `like`'s device. */
function ownCopy(v: Tensor | Float32Array, like: Tensor): Tensor {
  if (v instanceof Float32Array) return keep(Tensor.fromArray(v, like.shape, { device: like.device }));
  return keep(noGrad(() => copy(v)));
}
