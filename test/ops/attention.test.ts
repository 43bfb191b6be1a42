import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';

const NEG_INF = -Infinity;
const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/**
 * Independent attention on host arrays (float64): q [G, Lq, D], k [G, Lk, D], v [G, Lk, Dv] with
 * G flattened groups, mask(g, i, j) additive. Returns [G, Lq, Dv].
 */
function naiveAttention(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  g: number, lq: number, lk: number, d: number, dv: number,
  mask: (g: number, i: number, j: number) => number, scale = 1 / Math.sqrt(d),
): Float64Array {
  const out = new Float64Array(g * lq * dv);
  for (let b = 0; b < g; b++) {
    for (let i = 0; i < lq; i++) {
      const s = new Float64Array(lk);
      for (let j = 0; j < lk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(b * lq + i) * d + c]! * k[(b * lk + j) * d + c]!;
        s[j] = dot * scale + mask(b, i, j);
      }
      const m = Math.max(...s);
      let z = 0;
      for (let j = 0; j < lk; j++) z += (s[j] = Math.exp(s[j]! - m));
      for (let c = 0; c < dv; c++) {
        let acc = 0;
        for (let j = 0; j < lk; j++) acc += (s[j]! / z) * v[(b * lk + j) * dv + c]!;
        out[(b * lq + i) * dv + c] = acc;
      }
    }
  }
  return out;
}

/** x [rows, in] · W[rowStart: rowStart+out]ᵀ + bias (float64). */
function naiveLinear(x: ArrayLike<number>, rows: number, inF: number, w: ArrayLike<number>, b: ArrayLike<number> | null, rowStart: number, outF: number): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[rowStart + o]! : 0;
      for (let i = 0; i < inF; i++) acc += x[r * inF + i]! * w[(rowStart + o) * inF + i]!;
      y[r * outF + o] = acc;
    }
  }
  return y;
}

/** torch.nn.MultiheadAttention (seq-first) on host arrays. */
function naiveMha(
  query: Float32Array, key: Float32Array, value: Float32Array, lq: number, lk: number, batch: number, embed: number, heads: number,
  wIn: Float32Array, bIn: Float32Array, wOut: Float32Array, bOut: Float32Array,
  mask: (bh: number, i: number, j: number) => number,
): Float64Array {
  const hd = embed / heads;
  const q = naiveLinear(query, lq * batch, embed, wIn, bIn, 0, embed);
  const k = naiveLinear(key, lk * batch, embed, wIn, bIn, embed, embed);
  const v = naiveLinear(value, lk * batch, embed, wIn, bIn, 2 * embed, embed);
  // [L, B, H, hd] -> [B*H, L, hd]
  const split = (x: Float64Array, len: number) => {
    const out = new Float64Array(x.length);
    for (let l = 0; l < len; l++)
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++)
          for (let c = 0; c < hd; c++) out[((b * heads + h) * len + l) * hd + c] = x[((l * batch + b) * heads + h) * hd + c]!;
    return out;
  };
  const attn = naiveAttention(split(q, lq), split(k, lk), split(v, lk), batch * heads, lq, lk, hd, hd, mask);
  const merged = new Float64Array(lq * batch * embed);
  for (let l = 0; l < lq; l++)
    for (let b = 0; b < batch; b++)
      for (let h = 0; h < heads; h++)
        for (let c = 0; c < hd; c++) merged[((l * batch + b) * heads + h) * hd + c] = attn[((b * heads + h) * lq + l) * hd + c]!;
  return naiveLinear(merged, lq * batch, embed, wOut, bOut, 0, embed);
}

/** [L, B, E] <-> [B, L, E]. */
function swap01(x: ArrayLike<number>, a: number, b: number, e: number): Float32Array {
  const out = new Float32Array(a * b * e);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let c = 0; c < e; c++) out[(j * a + i) * e + c] = x[(i * b + j) * e + c]!;
  return out;
}

describe.each(await testDevices())('scaledDotProductAttention on %s', (_name, device) => {
  const t = (data: Float32Array, shape: number[]) => E.Tensor.fromArray(data, shape, { device });

  it('matches softmax(q kᵀ / sqrt(D)) v, with Lq != Lk and Dv != D', async () => {
    const [b, h, lq, lk, d, dv] = [2, 3, 5, 7, 4, 6];
    const q = randomNormal(b * h * lq * d, 1);
    const k = randomNormal(b * h * lk * d, 2);
    const v = randomNormal(b * h * lk * dv, 3);
    const out = E.scaledDotProductAttention(t(q, [b, h, lq, d]), t(k, [b, h, lk, d]), t(v, [b, h, lk, dv]));
    expect(out.shape).toEqual([b, h, lq, dv]);
    expectClose(await out.read(), naiveAttention(q, k, v, b * h, lq, lk, d, dv, () => 0), 1e-5, 1e-4, 'sdpa');
    const scaled = E.scaledDotProductAttention(t(q, [b, h, lq, d]), t(k, [b, h, lk, d]), t(v, [b, h, lk, dv]), { scale: 0.3 });
    expectClose(await scaled.read(), naiveAttention(q, k, v, b * h, lq, lk, d, dv, () => 0, 0.3), 1e-5, 1e-4, 'sdpa scale');
  });

  it('causal (top-left aligned) and additive masks with -inf, combined', async () => {
    const [g, lq, lk, d] = [3, 4, 6, 5];
    const q = randomNormal(g * lq * d, 4);
    const k = randomNormal(g * lk * d, 5);
    const v = randomNormal(g * lk * d, 6);
    const maskData = randomNormal(lq * lk, 7).map((x, i) => (i % 5 === 2 ? NEG_INF : x));
    const causal = (_g: number, i: number, j: number) => (j > i ? NEG_INF : 0);
    const outC = E.scaledDotProductAttention(t(q, [g, lq, d]), t(k, [g, lk, d]), t(v, [g, lk, d]), { causal: true });
    expectClose(await outC.read(), naiveAttention(q, k, v, g, lq, lk, d, d, causal), 1e-5, 1e-4, 'causal');
    const outM = E.scaledDotProductAttention(t(q, [g, lq, d]), t(k, [g, lk, d]), t(v, [g, lk, d]), { mask: t(maskData, [lq, lk]) });
    expectClose(await outM.read(), naiveAttention(q, k, v, g, lq, lk, d, d, (_g, i, j) => maskData[i * lk + j]!), 1e-5, 1e-4, 'mask');
    const both = E.scaledDotProductAttention(t(q, [g, lq, d]), t(k, [g, lk, d]), t(v, [g, lk, d]), { mask: t(maskData, [lq, lk]), causal: true });
    const want = naiveAttention(q, k, v, g, lq, lk, d, d, (b, i, j) => maskData[i * lk + j]! + causal(b, i, j));
    expectClose(await both.read(), want, 1e-5, 1e-4, 'mask+causal');
  });

  it('checks shapes', () => {
    const q = E.Tensor.zeros([2, 3, 4], { device });
    expect(() => E.scaledDotProductAttention(q, E.Tensor.zeros([2, 5, 3], { device }), E.Tensor.zeros([2, 5, 4], { device }))).toThrow(/differ in the last dim/);
    expect(() => E.scaledDotProductAttention(q, q, E.Tensor.zeros([2, 4, 4], { device }))).toThrow(/must have Lk = 3 rows/);
    expect(() => E.scaledDotProductAttention(q, q, q, { mask: E.Tensor.zeros([3, 4], { device }) })).toThrow(/mask \[3, 4\] does not broadcast/);
  });

  it('gradients: plain, causal, and a mask containing -inf', async () => {
    const shapes = [[2, 3, 4], [2, 5, 4], [2, 5, 3]];
    await gradcheck(device, ([q, k, v]) => E.scaledDotProductAttention(q!, k!, v!), shapes);
    await gradcheck(device, ([q, k, v]) => E.scaledDotProductAttention(q!, k!, v!, { causal: true }), shapes);
    const mask = new Float32Array([0, NEG_INF, 0.5, 0, NEG_INF, -1, 0, 0, NEG_INF, 0, 0.3, NEG_INF, 0, 0, 0]);
    await gradcheck(device, ([q, k, v, m]) => E.scaledDotProductAttention(q!, k!, v!, { mask: m! }), [...shapes, [3, 5]], {
      constant: [3],
      values: [undefined, undefined, undefined, mask],
    });
  });
});

describe.each(await testDevices())('multiHeadAttention on %s', (_name, device) => {
  const t = (data: Float32Array, shape: number[], requiresGrad = false) => E.Tensor.fromArray(data, shape, { device, requiresGrad });
  const [lq, lk, batch, embed, heads] = [5, 4, 2, 12, 3];
  const wIn = randomNormal(3 * embed * embed, 21).map((x) => x * 0.3);
  const bIn = randomNormal(3 * embed, 22);
  const wOut = randomNormal(embed * embed, 23).map((x) => x * 0.3);
  const bOut = randomNormal(embed, 24);
  const query = randomNormal(lq * batch * embed, 25);
  const key = randomNormal(lk * batch * embed, 26);
  const value = randomNormal(lk * batch * embed, 27);
  const kpm = new Float32Array([0, 1, 0, 0, 0, 0, 1, 1]); // [B, Lk]: batch 0 ignores key 1, batch 1 keys 2-3
  const attn = randomNormal(lq * lk, 28).map((x, i) => (i % 7 === 3 ? NEG_INF : x * 0.5)); // never a full row

  it('cross-attention with keyPaddingMask and attnMask, seq-first and batch-first', async () => {
    const mask = (bh: number, i: number, j: number) => attn[i * lk + j]! + (kpm[Math.floor(bh / heads) * lk + j] ? NEG_INF : 0);
    const want = naiveMha(query, key, value, lq, lk, batch, embed, heads, wIn, bIn, wOut, bOut, mask);
    const params = {
      inProjWeight: t(wIn, [3 * embed, embed]), inProjBias: t(bIn, [3 * embed]),
      outProjWeight: t(wOut, [embed, embed]), outProjBias: t(bOut, [embed]),
      numHeads: heads, attnMask: t(attn, [lq, lk]), keyPaddingMask: t(kpm, [batch, lk]),
    };
    const out = E.multiHeadAttention(t(query, [lq, batch, embed]), t(key, [lk, batch, embed]), t(value, [lk, batch, embed]), params);
    expect(out.shape).toEqual([lq, batch, embed]);
    expectClose(await out.read(), want, 1e-4, 1e-4, 'mha');
    const bf = E.multiHeadAttention(
      t(swap01(query, lq, batch, embed), [batch, lq, embed]),
      t(swap01(key, lk, batch, embed), [batch, lk, embed]),
      t(swap01(value, lk, batch, embed), [batch, lk, embed]),
      { ...params, batchFirst: true },
    );
    expect(bf.shape).toEqual([batch, lq, embed]);
    expectClose(await bf.read(), swap01(want, lq, batch, embed), 1e-4, 1e-4, 'mha batchFirst');
  });

  it('self-attention: causal flag, per-head 3-D attnMask, no biases', async () => {
    const headMask = randomNormal(batch * heads * lq * lq, 29).map((x, i) => (i % 5 === 4 && i % lq !== 0 ? NEG_INF : x));
    const causal = (_bh: number, i: number, j: number) => (j > i ? NEG_INF : 0);
    const zeros = new Float32Array(3 * embed);
    const want = naiveMha(query, query, query, lq, lq, batch, embed, heads, wIn, zeros, wOut, zeros, (bh, i, j) => headMask[(bh * lq + i) * lq + j]! + causal(bh, i, j));
    const x = t(query, [lq, batch, embed]);
    const out = E.multiHeadAttention(x, x, x, {
      inProjWeight: t(wIn, [3 * embed, embed]), outProjWeight: t(wOut, [embed, embed]),
      numHeads: heads, attnMask: t(headMask, [batch * heads, lq, lq]), causal: true,
    });
    expectClose(await out.read(), want, 1e-4, 1e-4, 'mha self');
  });

  it('checks shapes', () => {
    const x = t(query, [lq, batch, embed]);
    const base = { inProjWeight: t(wIn, [3 * embed, embed]), outProjWeight: t(wOut, [embed, embed]), numHeads: heads };
    expect(() => E.multiHeadAttention(x, x, x, { ...base, numHeads: 5 })).toThrow(/not divisible by numHeads 5/);
    expect(() => E.multiHeadAttention(x, x, x, { ...base, attnMask: t(attn, [lq, lk]) })).toThrow(/attnMask \[5, 4\] must be \[5, 5\]/);
    expect(() => E.multiHeadAttention(x, t(key, [lk, batch, embed]), x, base)).toThrow(/key \[4, 2, 12\] and value \[5, 2, 12\]/);
  });

  it('frees every intermediate (called outside any scope)', () => {
    const before = device.stats().liveBuffers;
    const x = t(query, [lq, batch, embed], true);
    const k = t(key, [lk, batch, embed], true);
    const params = {
      inProjWeight: t(wIn, [3 * embed, embed], true), inProjBias: t(bIn, [3 * embed], true),
      outProjWeight: t(wOut, [embed, embed], true), outProjBias: t(bOut, [embed], true),
      numHeads: heads, attnMask: t(attn, [lq, lk]), keyPaddingMask: t(kpm, [batch, lk]), causal: true,
    };
    const out = E.multiHeadAttention(x, k, k, params);
    const seed = E.Tensor.ones(out.shape, { device });
    E.backward(out, seed);
    expect(params.inProjWeight.grad!.shape).toEqual([3 * embed, embed]);
    for (const v of [x, k, out, seed, ...Object.values(params)]) if (v instanceof E.Tensor) v.dispose();
    expect(device.stats().liveBuffers).toBe(before);
  });

  it('gradients with keyPaddingMask and attnMask', async () => {
    const [Lq, Lk, B, Em, H] = [3, 4, 2, 4, 2];
    const small = {
      kpm: new Float32Array([0, 0, 1, 0, 1, 0, 0, 1]),
      attn: new Float32Array([0, NEG_INF, 0.2, 0, -0.5, 0, NEG_INF, 0.1, 0, 0.3, 0, NEG_INF]),
    };
    await gradcheck(
      device,
      ([q, k, v, wi, bi, wo, bo, am, pm]) =>
        E.multiHeadAttention(q!, k!, v!, {
          inProjWeight: wi!, inProjBias: bi!, outProjWeight: wo!, outProjBias: bo!, numHeads: H, attnMask: am!, keyPaddingMask: pm!,
        }),
      [[Lq, B, Em], [Lk, B, Em], [Lk, B, Em], [3 * Em, Em], [3 * Em], [Em, Em], [Em], [Lq, Lk], [B, Lk]],
      { constant: [7, 8], values: [undefined, undefined, undefined, undefined, undefined, undefined, undefined, small.attn, small.kpm], samples: 6 },
    );
    // Self-attention (one tensor feeds q, k and v: gradients accumulate), causal, batch-first.
    await gradcheck(
      device,
      ([x, wi, wo]) => E.multiHeadAttention(x!, x!, x!, { inProjWeight: wi!, outProjWeight: wo!, numHeads: H, causal: true, batchFirst: true }),
      [[B, Lq, Em], [3 * Em, Em], [Em, Em]],
      { samples: 6 },
    );
  });
});
