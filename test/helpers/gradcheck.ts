/**
 * Finite-difference gradient check. For L = sum(f(inputs) * R) with a fixed random R, compares the
 * autograd gradient of each differentiable input with central differences at sampled elements.
 * Everything is float32 on the device, so the step is large (1e-2 relative) and the tolerance is
 * set for that: a wrong backward is off by O(1), float noise by ~1e-3.
 */
import { type Device, Tensor, backward, mul, noGrad, scope, sum } from '../../src/engine/index.js';

export interface GradcheckOptions {
  /** Elements sampled per input (all when the input is smaller). */
  samples?: number;
  step?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
  /** Input indices that get no gradient (targets, masks, integer ids). */
  constant?: number[];
  /** Values per input; random normal when absent. */
  values?: (Float32Array | Int32Array | undefined)[];
}

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32, then a Box-Muller normal
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function randomNormal(n: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

export async function gradcheck(
  device: Device,
  f: (inputs: Tensor[]) => Tensor,
  shapes: (readonly number[])[],
  options: GradcheckOptions = {},
): Promise<void> {
  const seed = options.seed ?? 1234;
  const step = options.step ?? 1e-2;
  const atol = options.atol ?? 2e-2;
  const rtol = options.rtol ?? 2e-2;
  const samples = options.samples ?? 12;
  const constant = new Set(options.constant ?? []);
  const hostValues = shapes.map((s, i) => options.values?.[i] ?? randomNormal(s.reduce((a, b) => a * b, 1), seed + 17 * i));

  const evaluate = async (values: (Float32Array | Int32Array)[]): Promise<number> =>
    noGrad(() =>
      scope(() => {
        const inputs = values.map((v, i) => Tensor.fromArray(v, shapes[i]!, { device, dtype: v instanceof Int32Array ? 'i32' : 'f32' }));
        const out = f(inputs);
        const r = Tensor.fromArray(randomNormal(out.size, seed + 999), out.shape, { device });
        return sum(mul(out, r));
      }),
    ).item();

  // Analytical gradients.
  const inputs = hostValues.map((v, i) =>
    Tensor.fromArray(v, shapes[i]!, { device, dtype: v instanceof Int32Array ? 'i32' : 'f32', requiresGrad: !constant.has(i) && !(v instanceof Int32Array) }),
  );
  const loss = scope(() => {
    const out = f(inputs);
    const r = Tensor.fromArray(randomNormal(out.size, seed + 999), out.shape, { device });
    return sum(mul(out, r));
  });
  backward(loss);
  loss.dispose();
  const analytic = await Promise.all(inputs.map(async (t) => (t.grad ? ((await t.grad.read()) as Float32Array) : null)));
  inputs.forEach((t) => t.dispose());

  const rand = seededRandom(seed + 5);
  for (let i = 0; i < shapes.length; i++) {
    const values = hostValues[i]!;
    if (constant.has(i) || values instanceof Int32Array) continue;
    const grad = analytic[i];
    if (!grad) throw new Error(`gradcheck: input ${i} got no gradient`);
    const n = values.length;
    const picks = n <= samples ? [...Array(n).keys()] : Array.from({ length: samples }, () => Math.floor(rand() * n));
    for (const k of picks) {
      const orig = values[k]!;
      const h = step * Math.max(1, Math.abs(orig));
      const plus = hostValues.map((v) => v.slice());
      const minus = hostValues.map((v) => v.slice());
      plus[i]![k] = orig + h;
      minus[i]![k] = orig - h;
      const numeric = ((await evaluate(plus)) - (await evaluate(minus))) / (2 * h);
      const got = grad[k]!;
      if (!(Math.abs(got - numeric) <= atol + rtol * Math.abs(numeric))) {
        throw new Error(`gradcheck: input ${i} element ${k}: autograd ${got}, finite difference ${numeric}`);
      }
    }
  }
}
