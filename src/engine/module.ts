/**
 * Parameters and modules: named, nested collections of tensors that outlive scopes.
 *
 * - A parameter is a leaf Tensor with requiresGrad (by default) that has been `keep()`-ed, so no
 *   scope disposes it; its module owns it and frees it in `dispose()`.
 * - A buffer is non-trainable state saved with the model (BatchNorm running statistics).
 * - A Module registers parameters, buffers and child modules by name; names nest with dots, as in
 *   PyTorch (`decoder.layers.0.weight`), so state dicts map one to one onto PyTorch checkpoints.
 */
import { copyKernel } from '../kernels/copy/copy.js';
import { noGrad } from './autograd.js';
import { cast } from './ops/cast.js';
import { requireShaderF16 } from './ops/run.js';
import { keep } from './scope.js';
import { formatShape, sameShape } from './shape.js';
import { Tensor } from './tensor.js';

/** A trainable tensor (a leaf that a Module owns). */
export type Parameter = Tensor;

/** Storage precision of a model's matmul weights (Module.toPrecision). */
export type Precision = 'f32' | 'f16';

/** A state-dict value: a tensor, or host data with its shape (as read from a weights file). */
export type StateValue = Tensor | { shape: readonly number[]; data: Float32Array | Int32Array };

export type StateDictInput = Map<string, StateValue> | Record<string, StateValue>;

export interface LoadStateDictOptions {
  /** Throw when a key is missing from the dict or not expected by the module (default true). */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missing: string[];
  unexpected: string[];
}

/**
 * Makes `t` a parameter: keeps it out of every scope and turns gradients on (or off). `t` must be a
 * leaf (not the output of a recorded op). Returns `t`.
 */
export function asParameter(t: Tensor, requiresGrad = true): Parameter {
  if (t.node !== null) {
    throw new Error(`parameter: ${t} is the output of '${t.node.op}'; pass a leaf tensor (detach() it first)`);
  }
  if (requiresGrad) refuseHalfGradient(t, 'parameter');
  keep(t);
  t.requiresGrad = requiresGrad;
  return t;
}

/** f16 tensors never take gradients (inference-only weights, Module.toPrecision). */
function refuseHalfGradient(t: Tensor, what: string): void {
  if (t.dtype !== 'f16') return;
  throw new Error(`${what}: ${t} is stored as f16, which is inference-only and takes no gradient; keep the model at f32 precision to train it`);
}

function checkName(owner: Module, name: string): void {
  if (name.length === 0 || name.includes('.')) {
    throw new Error(`${owner.constructor.name}: invalid member name '${name}' (non-empty, no dots)`);
  }
}

function listNames(names: string[], max = 10): string {
  const shown = names.slice(0, max).map((n) => `'${n}'`).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

function matchesPrefix(name: string, prefix: string | undefined): boolean {
  return prefix === undefined || prefix === '' || name === prefix || name.startsWith(`${prefix}.`);
}

export class Module {
  /** Training mode (dropout active, ...). Set recursively by train()/eval(). */
  training = true;
  private readonly ownParameters = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly ownModules = new Map<string, Module>();

  /** Registers a parameter under `name` (made a kept leaf with requiresGrad). Returns it. */
  registerParameter(name: string, t: Tensor, requiresGrad = true): Parameter {
    this.checkFree(name);
    this.ownParameters.set(name, asParameter(t, requiresGrad));
    return t;
  }

  /** Registers non-trainable state saved in the state dict (kept, requiresGrad false). Returns it. */
  registerBuffer(name: string, t: Tensor): Tensor {
    this.checkFree(name);
    this.ownBuffers.set(name, asParameter(t, false));
    return t;
  }

  /** Registers a child module; its members are named `<name>.<member>`. Returns it. */
  registerModule<M extends Module>(name: string, m: M): M {
    this.checkFree(name);
    if (m === (this as Module)) throw new Error(`${this.constructor.name}: a module cannot contain itself`);
    this.ownModules.set(name, m);
    return m;
  }

  /** This module and every descendant, with dotted names ('' for this one), depth first. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const work: [string, Module][] = [[prefix, this]];
    while (work.length > 0) {
      const [name, m] = work.pop()!;
      if (seen.has(m)) continue;
      seen.add(m);
      out.push([name, m]);
      const children = [...m.ownModules].map(([n, c]): [string, Module] => [name ? `${name}.${n}` : n, c]);
      for (let i = children.length - 1; i >= 0; i--) work.push(children[i]!);
    }
    return out;
  }

  /** Every parameter with its dotted name, in registration order; a shared one appears once. */
  namedParameters(): [string, Parameter][] {
    return this.collect((m) => m.ownParameters);
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    return this.collect((m) => m.ownBuffers);
  }

  /** Total element count of the parameters (optionally only those with requiresGrad). */
  numParameters(trainableOnly = false): number {
    return this.parameters()
      .filter((p) => !trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.size, 0);
  }

  /** Drops (disposes) every parameter gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /**
   * Turns gradients off for the parameters named `prefix` or under `prefix.` (all when omitted)
   * and drops their gradients. Throws when the prefix matches no parameter (a typo, usually).
   */
  freeze(prefix?: string): this {
    this.setRequiresGrad(prefix, false, 'freeze');
    return this;
  }

  unfreeze(prefix?: string): this {
    this.setRequiresGrad(prefix, true, 'unfreeze');
    return this;
  }

  /**
   * Stores the matmul weights of this module and its descendants at `precision`: the parameters
   * each module names in `precisionParameterNames` (nn.Linear: its weight; biases, norms,
   * embeddings and convs stay f32). 'f16' halves their bytes, and linear() reads them as f16 and
   * computes in f32. f16 weights are inference-only: frozen (requiresGrad false); unfreezing them
   * or differentiating through them throws. 'f32' converts them back (exactly) as trainable
   * parameters. A weight registered in several places is converted once. On a WebGPU device
   * without `shader-f16`, 'f16' throws before converting anything. Returns this.
   */
  toPrecision(precision: Precision): this {
    const what = `${this.constructor.name}.toPrecision`;
    if (precision !== 'f32' && precision !== 'f16') {
      throw new Error(`${what}: precision must be 'f32' or 'f16', got '${String(precision)}'`);
    }
    const slots: { owner: Module; name: string; t: Tensor }[] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const name of m.precisionParameterNames()) {
        const t = m.ownParameters.get(name);
        if (!t) throw new Error(`${what}: '${prefix ? `${prefix}.` : ''}${name}' is not a parameter of ${m.constructor.name}`);
        if (t.dtype !== precision) slots.push({ owner: m, name, t });
      }
    }
    if (precision === 'f16') for (const { t } of slots) requireShaderF16(what, t.device);
    const converted = new Map<Tensor, Tensor>();
    noGrad(() => {
      for (const { owner, name, t } of slots) {
        let c = converted.get(t);
        if (!c) {
          c = asParameter(cast(t, precision), precision === 'f32');
          converted.set(t, c);
        }
        owner.ownParameters.set(name, c);
      }
    });
    // The old tensors go, unless a module keeps one under a name it does not convert.
    const registered = new Set(this.parameters());
    for (const old of converted.keys()) if (!registered.has(old)) old.dispose();
    return this;
  }

  /**
   * Names of this module's own parameters that toPrecision converts: weights that only linear()
   * reads. None by default; nn.Linear returns ['weight'].
   */
  protected precisionParameterNames(): readonly string[] {
    return [];
  }

  /** This module's own parameter `name` (its current tensor: toPrecision may replace it). */
  protected ownParameter(name: string): Parameter {
    const t = this.ownParameters.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter '${name}'`);
    return t;
  }

  /** Parameters and buffers by dotted name (the module's own tensors, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into the existing parameters and buffers (in place, so optimizers holding them
   * stay valid). Shapes and dtypes must match; with `strict` (default) the keys must match exactly.
   * Everything is checked before anything is written. Tensor values must live on the same device.
   */
  loadStateDict(state: StateDictInput, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const targets = this.stateDict();
    const missing = [...targets.keys()].filter((k) => !entries.has(k));
    const unexpected = [...entries.keys()].filter((k) => !targets.has(k));
    const problems: string[] = [];
    if (strict && missing.length > 0) problems.push(`missing keys: ${listNames(missing)}`);
    if (strict && unexpected.length > 0) problems.push(`unexpected keys: ${listNames(unexpected)}`);
    for (const [name, target] of targets) {
      const value = entries.get(name);
      if (value === undefined) continue;
      if (!sameShape(value.shape, target.shape)) {
        problems.push(`'${name}': shape ${formatShape(value.shape)} in the state dict, ${formatShape(target.shape)} in the model`);
        continue;
      }
      const dtype = value instanceof Tensor ? value.dtype : value.data instanceof Int32Array ? 'i32' : 'f32';
      if (dtype !== target.dtype) problems.push(`'${name}': dtype ${dtype} in the state dict, ${target.dtype} in the model`);
      if (value instanceof Tensor && value.device !== target.device) {
        problems.push(`'${name}': the value lives on ${value.device.kind}, the model on ${target.device.kind}`);
      }
      if (!(value instanceof Tensor) && value.data.length !== target.size) {
        problems.push(`'${name}': ${value.data.length} values for shape ${formatShape(target.shape)}`);
      }
    }
    if (problems.length > 0) {
      throw new Error(`${this.constructor.name}.loadStateDict: ${problems.join('; ')}`);
    }
    for (const [name, target] of targets) {
      const value = entries.get(name);
      if (value !== undefined) copyInto(target, value);
    }
    return { missing, unexpected };
  }

  /** Disposes every parameter and buffer of this module and its descendants. */
  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }

  private checkFree(name: string): void {
    checkName(this, name);
    if (this.ownParameters.has(name) || this.ownBuffers.has(name) || this.ownModules.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
  }

  private collect(pick: (m: Module) => Map<string, Tensor>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of pick(m)) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${name}` : name, t]);
      }
    }
    return out;
  }

  private setRequiresGrad(prefix: string | undefined, on: boolean, what: string): void {
    const hits = this.namedParameters().filter(([name]) => matchesPrefix(name, prefix));
    if (hits.length === 0) {
      throw new Error(`${this.constructor.name}.${what}('${prefix}'): no parameter is named '${prefix}' or '${prefix}.*'`);
    }
    if (on) for (const [name, p] of hits) refuseHalfGradient(p, `${this.constructor.name}.${what}: '${name}'`);
    for (const [, p] of hits) {
      p.requiresGrad = on;
      if (!on) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }
}

/** An indexed list of child modules, named 0, 1, 2, ... (`layers.0.weight`). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }

  push(m: M): M {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return m;
  }

  get(i: number): M {
    const m = this.items[i < 0 ? this.items.length + i : i];
    if (!m) throw new Error(`ModuleList: index ${i} out of range for length ${this.items.length}`);
    return m;
  }

  get length(): number {
    return this.items.length;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
}

/** Writes `value` into `target`'s storage in place (same shape and dtype, checked by the caller). */
function copyInto(target: Tensor, value: StateValue): void {
  if (target.size === 0) return;
  const device = target.device;
  if (!(value instanceof Tensor)) {
    // A queue write would overtake recorded, unsubmitted work that still reads the old values.
    device.flush();
    device.write(target.storage, value.data);
    return;
  }
  if (value.storage === target.storage) return;
  // The copy moves 32-bit words: an f16 tensor's halves are packed two to a word.
  const n = target.dtype === 'f16' ? Math.ceil(target.size / 2) : target.size;
  device.run(
    copyKernel,
    { shape: [n], srcShape: [n], srcStrides: [1], srcStep: [1], srcOffset: 0, dstStrides: [1], dstOffset: 0 },
    [value.storage, target.storage],
  );
}
