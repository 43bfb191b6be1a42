// Pillow-exact resizing. Pillow is not installed on this machine, so the expected pixels are the ones
// Pillow's own test suite asserts (Tests/test_image_resample.py, TestImagingCoreResampleAccuracy and
// TestCoreResampleConsistency: values, not code), plus hand-computed fixed-point cases.
import { describe, expect, it } from 'vitest';
import { type Image, type PilFilter, pilCoefficients, resizeBilinearPlanes, resizePil } from '../../src/models/image/index.js';

/** Pillow's make_case: two `color` quadrants (top-left, bottom-right), the others 255 - color. */
function makeCase(w: number, h: number, color: number, channels: 1 | 3): Image {
  const data = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inA = x <= w / 2 - 1 && y <= h / 2 - 1;
      const inB = x >= w / 2 && y >= h / 2;
      for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = inA || inB ? color : 255 - color;
    }
  }
  return { width: w, height: h, channels, data };
}

/** Pillow's make_sample: the hex data is the top-left quarter; the rest follows by symmetry. */
function makeSample(hex: string, w: number, h: number): number[] {
  const values = hex.replace(/ /g, '').match(/../g)!.map((v) => parseInt(v, 16));
  const out = new Array<number>(w * h).fill(-1);
  const qw = w / 2;
  for (let y = 0; y < h / 2; y++) {
    for (let x = 0; x < qw; x++) {
      const v = values[y * qw + x]!;
      out[y * w + x] = v;
      out[(h - 1 - y) * w + (w - 1 - x)] = v;
      out[(h - 1 - y) * w + x] = 255 - v;
      out[y * w + (w - 1 - x)] = 255 - v;
    }
  }
  return out;
}

// [filter, input size, output size, top-left quarter of the expected output]
const PILLOW_ACCURACY: Array<[PilFilter, number, number, string]> = [
  ['box', 8, 4, 'e1 e1 e1 e1'],
  ['bilinear', 8, 4, 'e1 c9 c9 b7'],
  ['hamming', 8, 4, 'e1 da da d3'],
  ['bicubic', 12, 6, 'e1 e3 d4 e3 e5 d6 d4 d6 c9'],
  ['lanczos', 16, 8, 'e1 e0 e4 d7 e0 df e3 d6 e4 e3 e7 da d7 d6 d9 ce'],
  ['box', 2, 4, 'e1 e1 e1 e1'],
  ['bilinear', 2, 4, 'e1 b0 b0 98'],
  ['hamming', 2, 4, 'e1 d2 d2 c5'],
  ['bicubic', 4, 8, 'e1 e5 ee b9 e5 e9 f3 bc ee f3 fd c1 b9 bc c1 a2'],
  [
    'lanczos',
    6,
    12,
    'e1 e0 db ed f5 b8 e0 df da ec f3 b7 db db d6 e7 ee b5 ed ec e6 fb ff bf f5 f4 ee ff ff c4 b8 b7 b4 bf c4 a0',
  ],
];

describe('resizePil reproduces Pillow', () => {
  for (const channels of [1, 3] as const) {
    it.each(PILLOW_ACCURACY)(`%s %i -> %i (${channels} channel(s))`, (filter, inSize, outSize, hex) => {
      const out = resizePil(makeCase(inSize, inSize, 0xe1, channels), outSize, outSize, filter);
      const expected = makeSample(hex, outSize, outSize);
      for (let c = 0; c < channels; c++) {
        const plane = Array.from({ length: outSize * outSize }, (_, i) => out.data[i * channels + c]);
        expect(plane).toEqual(expected);
      }
    });
  }

  it('keeps constant colours (Pillow test_box_filter_correct_range and resample consistency)', () => {
    const fill = (w: number, h: number, px: number[]): Image => {
      const data = new Uint8Array(w * h * px.length);
      for (let i = 0; i < data.length; i++) data[i] = px[i % px.length]!;
      return { width: w, height: h, channels: px.length as 1 | 3, data };
    };
    const box = resizePil(fill(8, 8, [0x16, 0x88, 0xff]), 100, 100, 'box');
    expect(box.data.every((v, i) => v === [0x16, 0x88, 0xff][i % 3])).toBe(true);
    const lanczos = resizePil(fill(512, 9, [0, 64, 255]), 9, 512, 'lanczos');
    expect(lanczos.data.every((v, i) => v === [0, 64, 255][i % 3])).toBe(true);
    const grey = resizePil(fill(512, 9, [12]), 9, 512, 'lanczos');
    expect(grey.data.every((v) => v === 12)).toBe(true);
  });

  it('matches hand-computed fixed-point bilinear weights', () => {
    // 4 -> 2: scale 2, support 2. Output 0: center 1, inputs 0..2, tri = 0.75, 0.75, 0.25 -> 3/7, 3/7, 1/7.
    const k = pilCoefficients(4, 2, 'bilinear');
    expect(k.ksize).toBe(5);
    expect(Array.from(k.bounds)).toEqual([0, 3, 1, 3]);
    expect(Array.from(k.weights.subarray(0, 3))).toEqual([1797559, 1797559, 599186]);
    expect(Array.from(k.weights.subarray(5, 8))).toEqual([599186, 1797559, 1797559]);
    // Row [0, 100, 200, 255]: (100 * 1797559 + 200 * 599186 + 2^21) >> 22 = 71 and
    // (100 * 599186 + 200 * 1797559 + 255 * 1797559 + 2^21) >> 22 = 209.
    const row = resizePil({ width: 4, height: 1, channels: 1, data: new Uint8Array([0, 100, 200, 255]) }, 2, 1);
    expect(Array.from(row.data)).toEqual([71, 209]);
    // Upscale 2 -> 5 (support 1): centers 0.2, 0.6, 1.0, 1.4, 1.8.
    const up = resizePil({ width: 2, height: 1, channels: 1, data: new Uint8Array([10, 250]) }, 5, 1);
    // Weights (x - center + 0.5): out0 -> inputs 0..1 with tri(0.3)=0.7, tri(1.3)=0 -> 10; out1: 0.9, 0.1 ->
    // 34; out2: tri(-0.5)=0.5, tri(0.5)=0.5 -> 130; out3: 0.1, 0.9 -> 226; out4: -> 250.
    expect(Array.from(up.data)).toEqual([10, 34, 130, 226, 250]);
  });

  it('rounds each pass to uint8 (two passes, horizontal first)', () => {
    // A random 31x17 -> 11x7 resize against a plain two-pass evaluation of the same fixed-point weights.
    let seed = 3;
    const data = new Uint8Array(31 * 17 * 3).map(() => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % 256;
    });
    const img: Image = { width: 31, height: 17, channels: 3, data };
    const out = resizePil(img, 11, 7);
    const hx = pilCoefficients(31, 11, 'bilinear');
    const vy = pilCoefficients(17, 7, 'bilinear');
    const clip = (v: number) => Math.min(255, Math.max(0, Math.floor(v / 2 ** 22)));
    const tmp = new Uint8Array(11 * 17 * 3);
    for (let y = 0; y < 17; y++) {
      for (let x = 0; x < 11; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 2 ** 21;
          for (let t = 0; t < hx.bounds[2 * x + 1]!; t++) s += data[(y * 31 + hx.bounds[2 * x]! + t) * 3 + c]! * hx.weights[x * hx.ksize + t]!;
          tmp[(y * 11 + x) * 3 + c] = clip(s);
        }
      }
    }
    const expected: number[] = [];
    for (let y = 0; y < 7; y++) {
      for (let x = 0; x < 11; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 2 ** 21;
          for (let t = 0; t < vy.bounds[2 * y + 1]!; t++) s += tmp[((vy.bounds[2 * y]! + t) * 11 + x) * 3 + c]! * vy.weights[y * vy.ksize + t]!;
          expected.push(clip(s));
        }
      }
    }
    expect(Array.from(out.data)).toEqual(expected);
  });

  it('skips a pass whose size does not change and copies for the same size', () => {
    const img: Image = { width: 3, height: 2, channels: 1, data: new Uint8Array([1, 2, 3, 4, 5, 6]) };
    const same = resizePil(img, 3, 2);
    expect(Array.from(same.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(same.data).not.toBe(img.data);
    expect(resizePil(img, 3, 1).width).toBe(3);
    expect(() => resizePil(img, 0, 4)).toThrow(/cannot resize to 0x4/);
  });

  it('resizes a 1x1 image to 352x352 (constant) and 352x352 to 1x1 (mean-like)', () => {
    const one = resizePil({ width: 1, height: 1, channels: 3, data: new Uint8Array([9, 99, 199]) }, 352, 352);
    expect(one.data.every((v, i) => v === [9, 99, 199][i % 3])).toBe(true);
    const flat = new Uint8Array(352 * 352).fill(77);
    expect(Array.from(resizePil({ width: 352, height: 352, channels: 1, data: flat }, 1, 1).data)).toEqual([77]);
  });
});

describe('resizeBilinearPlanes (PyTorch bilinear, align_corners=False)', () => {
  it('matches hand-computed values', () => {
    // 1 x 2 -> 1 x 4: src = (o + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (i1 clamped).
    const out = resizeBilinearPlanes(new Float32Array([0, 8]), 1, 1, 2, 1, 4);
    expect(Array.from(out)).toEqual([0, 2, 6, 8]);
    // 2x2 -> 3x3 with align_corners=True samples the corners exactly.
    const ac = resizeBilinearPlanes(new Float32Array([0, 1, 2, 3]), 1, 2, 2, 3, 3, true);
    expect(Array.from(ac)).toEqual([0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3]);
    // Downscale 4 -> 2 (no antialias): src = 0.5, 2.5.
    const down = resizeBilinearPlanes(new Float32Array([0, 10, 20, 30]), 1, 1, 4, 1, 2);
    expect(Array.from(down)).toEqual([5, 25]);
  });
  it('handles several planes and checks sizes', () => {
    const out = resizeBilinearPlanes(new Float32Array([1, 1, 1, 1, 5, 5, 5, 5]), 2, 2, 2, 3, 5);
    expect(out.length).toBe(30);
    expect(out.subarray(0, 15).every((v) => v === 1)).toBe(true);
    expect(out.subarray(15).every((v) => v === 5)).toBe(true);
    expect(() => resizeBilinearPlanes(new Float32Array(3), 1, 2, 2, 4, 4)).toThrow(/\[1, 2, 2\] expected/);
  });
});
