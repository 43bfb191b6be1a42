/**
 * Dropout with a counter-based hash RNG in the kernel (kernels/dropout): the mask is a pure
 * function of (seed, element index), identical on the CPU and WebGPU devices. The backward
 * regenerates the same mask from the seed instead of saving it.
 */
import { dropoutKernel } from '../../kernels/dropout/dropout.js';
import { record } from '../autograd.js';
import type { Tensor } from '../tensor.js';
import { expectDtype, launch, output } from './run.js';

/** Seed used by the next dropout call that is given none; advances by one per such call. */
let nextSeed = 0;

/** Resets the global dropout seed counter (for reproducible training runs). */
export function setDropoutSeed(seed: number): void {
  nextSeed = seed >>> 0;
}

function dropoutRaw(x: Tensor, p: number, seed: number): Tensor {
  const out = output('dropout', x, x.shape);
  launch(dropoutKernel, { n: x.size, seed, p }, [x, out], out);
  return out;
}

/**
 * Zeroes each element with probability p and scales the kept ones by 1 / (1 - p) (p = 1 gives
 * zeros). Identity when !training or p == 0: NOTE: x itself is returned then, no copy is made.
 * Without a seed, a global counter supplies one and advances (see setDropoutSeed).
 */
export function dropout(x: Tensor, p: number, training: boolean, seed?: number): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: probability ${p} must be in [0, 1]`);
  expectDtype('dropout', x, 'f32');
  if (!training || p === 0) return x;
  let s: number;
  if (seed === undefined) {
    s = nextSeed;
    nextSeed = (nextSeed + 1) >>> 0;
  } else {
    s = seed >>> 0;
  }
  const out = dropoutRaw(x, p, s);
  return record('dropout', out, [x], [], (dOut) => [dropoutRaw(dOut, p, s)]);
}
