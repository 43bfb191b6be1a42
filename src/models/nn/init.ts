/**
 * Parameter initialisation: PyTorch's default schemes on a seeded generator, so that a model built
 * twice with the same seed has the same weights (tests, reproducible runs).
 */
import { type Device, Tensor, getDefaultDevice } from '../../engine/index.js';

/** Uniform [0, 1) generator (mulberry32). */
export function createRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let defaultRng = createRng(0);

/** Reseeds the generator that layers use when they are given none. */
export function setInitSeed(seed: number): void {
  defaultRng = createRng(seed);
}

export interface InitOptions {
  device?: Device;
  /** Source of uniform [0, 1) numbers; the module-wide seeded generator when absent. */
  rng?: () => number;
  /**
   * Allocate the parameters without computing initial values (their contents are undefined until
   * a state dict is loaded): cheap construction of big models whose weights come from a file.
   */
  empty?: boolean;
}

/** A tensor of U(-bound, bound) values: torch's default for Linear/Conv weights and biases. */
export function uniformTensor(shape: readonly number[], bound: number, options: InitOptions = {}): Tensor {
  if (options.empty) return Tensor.empty(shape, 'f32', options.device ?? getDefaultDevice());
  const rng = options.rng ?? defaultRng;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng() * 2 - 1) * bound;
  return Tensor.fromArray(data, shape, { device: options.device ?? getDefaultDevice() });
}

/** A tensor of N(0, std²) values (Box-Muller on the generator): torch's nn.init.normal_. */
export function normalTensor(shape: readonly number[], std: number, options: InitOptions = {}): Tensor {
  if (options.empty) return Tensor.empty(shape, 'f32', options.device ?? getDefaultDevice());
  const rng = options.rng ?? defaultRng;
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng()));
    const theta = 2 * Math.PI * rng();
    data[i] = r * Math.cos(theta) * std;
    if (i + 1 < n) data[i + 1] = r * Math.sin(theta) * std;
  }
  return Tensor.fromArray(data, shape, { device: options.device ?? getDefaultDevice() });
}
