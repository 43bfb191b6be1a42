/**
 * What an op adapter sees of a golden case: its parameters (type-checked accessors) and its
 * tensors, uploaded to the device under test. `input(name)` returns `input.<name>`, created with
 * requiresGrad when the manifest lists it in `differentiated_inputs`; each input is uploaded once
 * per run, so an op that uses one tensor three times (self-attention) accumulates its gradient.
 */
import { type Device, Tensor } from '../engine/index.js';
import type { SafetensorsFile } from '../engine/io/safetensors.js';
import type { GoldenManifest } from './manifest.js';
import type { Pair } from './engine-ops.js';

export class CaseContext {
  private readonly inputs = new Map<string, Tensor>();

  constructor(
    readonly manifest: GoldenManifest,
    readonly file: SafetensorsFile,
    readonly device: Device,
  ) {}

  get op(): string {
    return this.manifest.op;
  }

  private fail(message: string): never {
    throw new Error(`${this.manifest.case || this.manifest.op}: ${message}`);
  }

  /** Whether the case has `input.<name>`. */
  has(name: string): boolean {
    return this.file.has(`input.${name}`);
  }

  /** `input.<name>` on the device (BOOL becomes f32 0/1, I64 becomes i32). */
  input(name: string): Tensor {
    const cached = this.inputs.get(name);
    if (cached) return cached;
    const key = `input.${name}`;
    if (!this.file.has(key)) this.fail(`the case has no tensor '${key}'`);
    const requiresGrad = this.manifest.differentiated_inputs.includes(name);
    const t = this.tensor(key, requiresGrad);
    this.inputs.set(name, t);
    return t;
  }

  /** `input.<name>`, or undefined when the case does not have it (optional bias, masks). */
  optionalInput(name: string): Tensor | undefined {
    return this.has(name) ? this.input(name) : undefined;
  }

  /** Any tensor of the file, uploaded to the device (never requires a gradient unless asked). */
  tensor(key: string, requiresGrad = false): Tensor {
    const host = this.file.get(key);
    return Tensor.fromArray(host.data, host.shape, { device: this.device, dtype: host.dtype, requiresGrad });
  }

  /** The inputs created so far that require a gradient, by name. */
  differentiatedInputs(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const name of this.manifest.differentiated_inputs) out.set(name, this.input(name));
    return out;
  }

  private param(name: string): unknown {
    return this.manifest.parameters[name];
  }

  num(name: string, fallback?: number): number {
    const v = this.param(name) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`parameter '${name}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  int(name: string, fallback?: number): number {
    const v = this.num(name, fallback);
    if (!Number.isInteger(v)) this.fail(`parameter '${name}' must be an integer, got ${v}`);
    return v;
  }

  bool(name: string, fallback?: boolean): boolean {
    const v = this.param(name) ?? fallback;
    if (typeof v !== 'boolean') this.fail(`parameter '${name}' must be a boolean, got ${JSON.stringify(v)}`);
    return v;
  }

  str(name: string, fallback?: string): string {
    const v = this.param(name) ?? fallback;
    if (typeof v !== 'string') this.fail(`parameter '${name}' must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** An int or an [h, w] pair of ints (kernel sizes, strides, paddings). */
  pair(name: string, fallback?: Pair): Pair {
    const v = this.param(name) ?? fallback;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x))) return [v[0] as number, v[1] as number];
    return this.fail(`parameter '${name}' must be an int or a pair of ints, got ${JSON.stringify(v)}`);
  }

  /** Like pair, but always [h, w]. */
  pair2(name: string, fallback?: Pair): [number, number] {
    const p = this.pair(name, fallback);
    return typeof p === 'number' ? [p, p] : p;
  }

  hasParam(name: string): boolean {
    return this.param(name) !== undefined && this.param(name) !== null;
  }

  /** Fails unless parameter `name` is absent or equals `value` (features the engine does not have). */
  expectParam(name: string, value: unknown): void {
    const v = this.param(name);
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(value)) {
      this.fail(`parameter ${name}=${JSON.stringify(v)} is not supported by this adapter (only ${JSON.stringify(value)})`);
    }
  }
}
