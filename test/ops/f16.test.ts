/**
 * f16 storage (issue #3): Tensor.fromArray/read with dtype 'f16', the cast op (f32 <-> f16, the
 * integer-arithmetic kernel on WebGPU) and matmul/linear with an f16 B operand (both matmul
 * kernels: register-tiled and subgroup), on the CPU device and WebGPU.
 *
 * - Encoding against a hand-checked table: exact values, ties to even (normal, subnormal, the
 *   subnormal -> normal carry), overflow to infinity from 65520 on, underflow below 2^-25, -0, NaN.
 * - Every one of the 65536 bit patterns decodes (cast f16 -> f32, bit-exact incl. NaN payloads) and
 *   re-encodes (cast f32 -> f16) to itself; random values of every magnitude match the host encoder.
 * - linear / matmul with f16 weights equal the same products with the f16 values as f32 weights
 *   (same sums in the same order: tight tolerance), at odd sizes (M=37, K=50, N=19: scalar loads)
 *   and vec4 sizes, with the subgroup and the portable kernels; x still gets its gradient.
 * - Clear errors: f16 tensors never take gradients, never bind to other kernels, and need the
 *   device's shader-f16 feature for matmul.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { floatToHalfBits, halfBitsToFloat32 } from '../../src/kernels/cast/half.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { randomNormal } from '../helpers/gradcheck.js';

/** [input, f16 bits, decoded value], checked by hand (value = (1 + frac/1024) * 2^(exp-15), subnormals frac * 2^-24). */
const TABLE: [number, number, number][] = [
  [0, 0x0000, 0],
  [-0, 0x8000, -0],
  [1, 0x3c00, 1],
  [-2, 0xc000, -2],
  [0.5, 0x3800, 0.5],
  [0.1, 0x2e66, 0.0999755859375],
  [1 / 3, 0x3555, 0.333251953125],
  [65504, 0x7bff, 65504], // largest finite
  [-65504, 0xfbff, -65504],
  [65519, 0x7bff, 65504], // below the halfway point 65520
  [65520, 0x7c00, Infinity], // halfway: ties to even = infinity
  [1e6, 0x7c00, Infinity],
  [-1e6, 0xfc00, -Infinity],
  [Infinity, 0x7c00, Infinity],
  [-Infinity, 0xfc00, -Infinity],
  [2049, 0x6800, 2048], // ulp 2: tie between 2048 (even) and 2050
  [2051, 0x6802, 2052], // tie between 2050 and 2052 (even)
  [1 + 2 ** -11, 0x3c00, 1], // tie between 1 (even) and 1 + 2^-10
  [1 + 3 * 2 ** -11, 0x3c02, 1 + 2 ** -9], // tie between 0x3c01 and 0x3c02 (even)
  [1 + 2 ** -11 + 2 ** -20, 0x3c01, 1 + 2 ** -10], // just above the tie
  [2 ** -14, 0x0400, 2 ** -14], // smallest normal
  [1023 * 2 ** -24, 0x03ff, 1023 * 2 ** -24], // largest subnormal
  [1023.5 * 2 ** -24, 0x0400, 2 ** -14], // subnormal tie rounds up into the normals (1024 is even)
  [2 ** -24, 0x0001, 2 ** -24], // smallest subnormal
  [1.5 * 2 ** -25, 0x0001, 2 ** -24],
  [3 * 2 ** -25, 0x0002, 2 ** -23], // 1.5 units: tie to even (2)
  [2 ** -25, 0x0000, 0], // 0.5 units: tie to even (0)
  [1e-8, 0x0000, 0],
  [-1e-9, 0x8000, -0],
  [4e-8, 0x0001, 2 ** -24],
];

const same = (a: number, b: number): boolean => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

function expectSameValues(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  expect(actual.length, label).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length && bad.length < 5; i++) {
    if (!same(actual[i]!, expected[i]!)) bad.push(`[${i}] ${actual[i]} != ${expected[i]}`);
  }
  expect(bad, label).toEqual([]);
}

/** The raw 16-bit patterns of an f16 tensor. */
async function halfBits(t: E.Tensor): Promise<Uint16Array> {
  return new Uint16Array(await t.device.read(t.storage, t.size * 2), 0, t.size);
}

function hex(bits: ArrayLike<number>): string[] {
  return Array.from(bits, (b) => `0x${b.toString(16).padStart(4, '0')}`);
}

/** Every f16 bit pattern (0 .. 65535). */
const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);
const isNanBits = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('host f16 helpers', () => {
  it('encode and decode the hand-checked table', () => {
    expect(hex(TABLE.map(([v]) => floatToHalfBits(v)))).toEqual(hex(TABLE.map(([, h]) => h)));
    expectSameValues(halfBitsToFloat32(Uint16Array.from(TABLE.map(([, h]) => h))), TABLE.map(([, , d]) => d), 'decode');
    expect(floatToHalfBits(NaN)).toBe(0x7e00);
  });
});

describe.each(await testDevices())('f16 storage and cast on %s', (_name, device) => {
  it('fromArray rounds to f16 and read() decodes; odd lengths', async () => {
    const t = E.Tensor.fromArray([...TABLE.map(([v]) => v), NaN], [TABLE.length + 1], { device, dtype: 'f16' });
    expect(t.dtype).toBe('f16');
    expect(hex(await halfBits(t))).toEqual(hex([...TABLE.map(([, h]) => h), 0x7e00]));
    expectSameValues(await t.read(), [...TABLE.map(([, , d]) => d), NaN], 'read');
    t.dispose();
  });

  it('cast f32 -> f16 gives the table bits; f16 -> f32 the decoded values', async () => {
    const x = E.Tensor.fromArray(TABLE.map(([v]) => v), [TABLE.length], { device });
    const h = E.cast(x, 'f16');
    expect(h.dtype).toBe('f16');
    expect(hex(await halfBits(h))).toEqual(hex(TABLE.map(([, b]) => b)));
    const back = E.cast(h, 'f32');
    expect(back.dtype).toBe('f32');
    expectSameValues(await back.read(), TABLE.map(([, , d]) => d), 'cast back');
    for (const t of [x, h, back]) t.dispose();
  });

  it('all 65536 bit patterns: f16 -> f32 is bit-exact, f32 -> f16 gives them back', async () => {
    const h = E.Tensor.empty([65536], 'f16', device);
    device.write(h.storage, ALL);
    const f = E.cast(h, 'f32');
    const got = new Uint32Array(((await f.read()) as Float32Array).buffer);
    const want = new Uint32Array(halfBitsToFloat32(ALL).buffer);
    const bad = [...got.keys()].filter((i) => got[i] !== want[i]).slice(0, 5);
    expect(bad.map((i) => `0x${i.toString(16)}: ${got[i]!.toString(16)} != ${want[i]!.toString(16)}`)).toEqual([]);
    const again = await halfBits(E.cast(f, 'f16'));
    const wrong = [...ALL].filter((b) => again[b] !== (isNanBits(b) ? 0x7e00 : b)).slice(0, 5);
    expect(hex(wrong)).toEqual([]);
    for (const t of [h, f]) t.dispose();
  });

  it('cast f32 -> f16 of random values of every magnitude and of exact ties matches the host encoder', async () => {
    const n = 4001; // odd: the padding half
    const values = new Float32Array(n);
    const words = new Uint32Array(values.buffer);
    let s = 12345;
    const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < n; i++) {
      // Exponents 2^-30 .. 2^17 (zero, subnormal, normal and overflowing halves), both signs;
      // every third value is an exact tie (the dropped mantissa bits are 1000...0).
      const exp = Math.floor(rand() * 48) + 97;
      let mant = Math.floor(rand() * 2 ** 23);
      if (i % 3 === 0) mant = (mant & ~0x1fff) | 0x1000;
      words[i] = ((rand() < 0.5 ? 1 : 0) << 31) | (exp << 23) | mant;
    }
    const x = E.Tensor.fromArray(values, [n], { device });
    const h = E.cast(x, 'f16');
    expect(hex(await halfBits(h))).toEqual(hex(Array.from(values, (v) => floatToHalfBits(v))));
    for (const t of [x, h]) t.dispose();
  });

  it('f16 tensors take half the bytes (rounded up to 4)', () => {
    const before = device.stats().liveBytes;
    const t = E.Tensor.fromArray(new Float32Array(7), [7], { device, dtype: 'f16' });
    expect(device.stats().liveBytes - before).toBe(16);
    t.dispose();
    expect(E.Tensor.zeros([3], { device, dtype: 'f16' }).dtype).toBe('f16');
  });
});

/** Host triple loop: x [M, K] · w [N, K]ᵀ + bias. */
function linearNaive(x: Float32Array, w: Float32Array, bias: Float32Array, M: number, K: number, N: number): Float32Array {
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k]! * w[n * K + k]!;
      out[m * N + n] = s + bias[n]!;
    }
  }
  return out;
}

describe.each(await testDevices())('matmul and linear with f16 weights on %s', (_name, device) => {
  /** Rounds through f16 on the host: the values an f16 tensor holds. */
  const rounded = (v: Float32Array) => halfBitsToFloat32(Uint16Array.from(v, (x) => floatToHalfBits(x)));
  const modes = device.kind === 'webgpu' && E.useSubgroupKernels(device) ? (['auto', 'portable'] as const) : (['portable'] as const);

  for (const mode of modes) {
    it(`linear: f16 weight == its values as an f32 weight (${mode} kernels), odd and vec4 sizes, dX`, async () => {
      E.kernelVariants.mode = mode;
      const keysBefore = new Set(device instanceof E.WebGpuDevice ? device.pipelineKeys() : []);
      try {
        for (const [M, K, N] of [[37, 50, 19], [32, 64, 48]] as const) {
          const x = randomNormal(M * K, M + K);
          const w = randomNormal(N * K, N);
          const bias = randomNormal(N, 3);
          const X = E.Tensor.fromArray(x, [M, K], { device, requiresGrad: true });
          const W16 = E.Tensor.fromArray(w, [N, K], { device, dtype: 'f16' });
          const W32 = E.Tensor.fromArray(rounded(w), [N, K], { device });
          const B = E.Tensor.fromArray(bias, [N], { device });
          const y16 = E.linear(X, W16, B);
          const y32 = E.noGrad(() => E.linear(X, W32, B));
          const got = await y16.read();
          // Same sums in the same order over identical (widened) values.
          expectClose(got, await y32.read(), 1e-6, 1e-6, `linear ${M}x${K}x${N} f16 vs f32`);
          expectClose(got, linearNaive(x, rounded(w), bias, M, K, N), 1e-4, 1e-4, `linear ${M}x${K}x${N} vs host`);
          // dX = dY · W flows through the f16 weight (read untransposed); with dY = 1,
          // dX[m, k] = sum_n W[n, k].
          E.backward(E.sum(y16));
          const colSums = new Float32Array(K);
          const wr = rounded(w);
          for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) colSums[k]! += wr[n * K + k]!;
          const want = new Float32Array(M * K);
          for (let m = 0; m < M; m++) want.set(colSums, m * K);
          expectClose(await X.grad!.read(), want, 1e-5, 1e-5, 'dX');
          expect(W16.grad).toBeNull();
          for (const t of [X, W16, W32, B, y16, y32]) t.dispose();
        }
        if (device instanceof E.WebGpuDevice) {
          // The kernels this test compiled (a kernel that an earlier test compiled is not listed).
          const keys = device.pipelineKeys().filter((k) => k.startsWith('matmul:f32:bf16:') && !keysBefore.has(k));
          expect(keys.length).toBeGreaterThan(0);
          expect(keys.every((k) => k.includes(mode === 'auto' ? ':sg8:' : ':wg8x8'))).toBe(true);
        }
      } finally {
        E.kernelVariants.mode = 'auto';
      }
    });

    it(`matmul with an f16 b read untransposed (${mode} kernels), odd and vec4 sizes`, async () => {
      E.kernelVariants.mode = mode;
      try {
        for (const [M, K, N] of [[37, 50, 19], [32, 64, 48]] as const) {
          const a = randomNormal(M * K, 11);
          const b = randomNormal(K * N, 12);
          const A = E.Tensor.fromArray(a, [M, K], { device });
          const B16 = E.Tensor.fromArray(b, [K, N], { device, dtype: 'f16' });
          const B32 = E.Tensor.fromArray(rounded(b), [K, N], { device });
          const y16 = E.matmul(A, B16);
          const y32 = E.matmul(A, B32);
          expectClose(await y16.read(), await y32.read(), 1e-6, 1e-6, `matmul ${M}x${K}x${N} f16 vs f32`);
          for (const t of [A, B16, B32, y16, y32]) t.dispose();
        }
      } finally {
        E.kernelVariants.mode = 'auto';
      }
    });

    it(`matmul with a transposed a and an f16 b: dA flows through the f16 b (${mode} kernels)`, async () => {
      E.kernelVariants.mode = mode;
      try {
        // a is stored [batch, K, M] and read transposed; dA = (dC·Bᵀ)ᵀ with dC = seeded weights.
        for (const [batch, M, K, N] of [[[], 37, 50, 19], [[2], 8, 12, 16]] as const) {
          const B = batch.reduce((x, y) => x * y, 1);
          const a = randomNormal(B * K * M, 21);
          const b = randomNormal(K * N, 22);
          const g = randomNormal(B * M * N, 23);
          const run = async (dtype: 'f16' | 'f32') => {
            const A = E.Tensor.fromArray(a, [...batch, K, M], { device, requiresGrad: true });
            const Bt = E.Tensor.fromArray(dtype === 'f16' ? b : rounded(b), [K, N], { device, dtype });
            const G = E.Tensor.fromArray(g, [...batch, M, N], { device });
            E.backward(E.sum(E.mul(E.matmul(A, Bt, { transA: true }), G)));
            const dA = (await A.grad!.read()) as Float32Array;
            for (const t of [A, Bt, G]) t.dispose();
            return dA;
          };
          const d16 = await run('f16');
          // Host: dA[k, m] = sum_n B[k, n] * G[m, n] per batch.
          const br = rounded(b);
          const want = new Float32Array(B * K * M);
          for (let t = 0; t < B; t++) {
            for (let k = 0; k < K; k++) {
              for (let m = 0; m < M; m++) {
                let acc = 0;
                for (let n = 0; n < N; n++) acc += br[k * N + n]! * g[t * M * N + m * N + n]!;
                want[t * K * M + k * M + m] = acc;
              }
            }
          }
          expectClose(d16, want, 1e-4, 1e-4, `dA [${batch}] ${K}x${M} (f16 b)`);
          expectClose(d16, await run('f32'), 1e-5, 1e-5, `dA [${batch}] f16 vs f32 b`);
        }
      } finally {
        E.kernelVariants.mode = 'auto';
      }
    });
  }
});

describe.each(await testDevices())('f16 errors on %s', (_name, device) => {
  it('f16 tensors take no gradient', () => {
    expect(() => E.Tensor.fromArray([1, 2], [2], { device, dtype: 'f16', requiresGrad: true })).toThrow(/f16 .*cannot require a gradient/);
    const w = E.Tensor.fromArray([1, 2, 3, 4], [2, 2], { device, dtype: 'f16' });
    expect(() => E.asParameter(w)).toThrow(/stored as f16, which is inference-only/);
    const x = E.Tensor.fromArray([1, 2], [1, 2], { device });
    w.requiresGrad = true;
    expect(() => E.linear(x, w)).toThrow(/linear: input Tensor#\d+\(\[2, 2\], f16, grad\) is f16 and requires a gradient/);
    w.requiresGrad = false;
    const g = E.Tensor.fromArray([1, 2], [2], { device, requiresGrad: true });
    expect(() => E.cast(g, 'f16')).toThrow(/cast: .* requires a gradient, but nothing differentiates through f16/);
    const h = E.noGrad(() => E.cast(g, 'f16'));
    expect(h.dtype).toBe('f16');
    for (const t of [w, x, g, h]) t.dispose();
  });

  it('other kernels refuse f16 tensors, naming the binding', () => {
    const h = E.Tensor.fromArray([1, 2, 3], [3], { device, dtype: 'f16' });
    const f = E.Tensor.fromArray([1, 2, 3], [3], { device });
    expect(() => E.add(h, f)).toThrow('add: input [3] has dtype f16, expected f32');
    // Ops that check no dtype (movement: 32-bit word copies) are stopped at the launch.
    expect(() => E.permute(h.view([1, 3]), [1, 0])).toThrow(/binding '\w+' takes u32, got an f16 tensor \[1, 3\]: f16 tensors feed only matmul\/linear weights and cast/);
    expect(() => E.matmul(h.view([1, 3]), f.view([3, 1]))).toThrow(/matmul: a \[1, 3\] has dtype f16, expected f32/);
    expect(() => E.cast(E.Tensor.fromArray(new Int32Array(2), [2], { device }), 'f16')).toThrow(/only f32 <-> f16/);
    for (const t of [h, f]) t.dispose();
  });

  it('a device without shader-f16 refuses f16 matmuls, naming the feature', () => {
    // The device as an adapter without the feature would expose it (SwiftShader).
    const plain = Object.create(device, { shaderF16: { value: false }, description: { value: 'test adapter without f16' } }) as E.Device;
    const x = E.Tensor.fromArray([1, 2], [1, 2], { device: plain });
    const w = E.Tensor.fromArray([1, 2, 3, 4], [2, 2], { device: plain, dtype: 'f16' });
    expect(() => E.linear(x, w)).toThrow("linear: f16 weights need the WebGPU 'shader-f16' feature, which this adapter (test adapter without f16) does not offer");
    for (const t of [x, w]) t.dispose();
  });
});
