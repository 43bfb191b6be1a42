// Segmentation postprocessing: sigmoid, resize to the original size, thresholds, label maps, PNG output.
import { describe, expect, it } from 'vitest';
import {
  type Image,
  PALETTE,
  decodePng,
  labelMap,
  logitsToProbabilities,
  maskPng,
  overlay,
  overlayLabels,
  overlayPng,
  probabilityImage,
  sigmoid,
  thresholdMask,
} from '../../src/models/image/index.js';

describe('postprocess', () => {
  it('sigmoid is exact-ish and safe for large logits', () => {
    const s = sigmoid(new Float32Array([0, 2, -2, 100, -100, -1000]));
    expect(s[0]).toBe(0.5);
    expect(s[1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 7);
    expect(s[1]! + s[2]!).toBeCloseTo(1, 7);
    expect(s[3]).toBe(1);
    expect(s[4]).toBeGreaterThanOrEqual(0);
    expect(s[5]).toBe(0);
  });

  it('resizes logits bilinearly to the original size, then applies the sigmoid', () => {
    // Two prompts, 2x2 logits -> original 4x3 (width 4, height 3).
    const logits = new Float32Array([0, 4, -4, 0, 1, 1, 1, 1]);
    const maps = logitsToProbabilities(logits, 2, 2, 4, 3, 2);
    expect(maps.length).toBe(2);
    expect([maps[0]!.width, maps[0]!.height, maps[0]!.data.length]).toEqual([4, 3, 12]);
    // Row 0 (src y = -1/6 -> 0): x src = -0.25->0, 0.25, 0.75, 1.25->1: logits 0, 1, 3, 4.
    const row0 = Array.from(maps[0]!.data.subarray(0, 4));
    [0, 1, 3, 4].forEach((l, i) => expect(row0[i]).toBeCloseTo(1 / (1 + Math.exp(-l)), 6));
    // Middle row (src y = 0.5, halfway between the rows); at x src 0.25 the rows give 1 and -3 -> -1.
    expect(maps[0]!.data[4 + 1]).toBeCloseTo(1 / (1 + Math.exp(1)), 6);
    expect(maps[1]!.data.every((p) => Math.abs(p - 1 / (1 + Math.exp(-1))) < 1e-7)).toBe(true);
    // Same size: no interpolation.
    const same = logitsToProbabilities(new Float32Array([0, 1, 2, 3]), 2, 2, 2, 2);
    expect(Array.from(same[0]!.data)).toEqual(Array.from(sigmoid(new Float32Array([0, 1, 2, 3]))));
    expect(() => logitsToProbabilities(new Float32Array(5), 2, 2, 4, 4)).toThrow(/\[1, 2, 2\] expected/);
  });

  it('thresholds strictly and writes mask PNGs', () => {
    const map = { width: 3, height: 1, data: new Float32Array([0.2, 0.5, 0.95]) };
    expect(Array.from(thresholdMask(map).data)).toEqual([0, 0, 255]);
    expect(Array.from(thresholdMask(map, 0.1).data)).toEqual([255, 255, 255]);
    const png = decodePng(maskPng(map, 0.3));
    expect([png.width, png.height, png.channels, png.bitDepth]).toEqual([3, 1, 1, 8]);
    expect(Array.from(png.data)).toEqual([0, 255, 255]);
    expect(Array.from(probabilityImage(map).data)).toEqual([51, 128, 242]);
  });

  it('builds a label map for several prompts', () => {
    const a = { width: 4, height: 1, data: new Float32Array([0.1, 0.7, 0.6, 0.9]) };
    const b = { width: 4, height: 1, data: new Float32Array([0.2, 0.6, 0.8, 0.9]) };
    expect(Array.from(labelMap([a, b]).data)).toEqual([0, 1, 2, 1]);
    expect(() => labelMap([a, { width: 2, height: 2, data: new Float32Array(4) }])).toThrow(/differ in size/);
  });

  it('blends colour overlays and encodes them as RGBA PNG', () => {
    const image: Image = { width: 2, height: 1, channels: 3, data: new Uint8Array([100, 100, 100, 0, 0, 0]) };
    const mask: Image = { width: 2, height: 1, channels: 1, data: new Uint8Array([255, 0]) };
    const out = overlay(image, [{ mask, color: [255, 0, 0] }], 0.5);
    expect(Array.from(out.data)).toEqual([178, 50, 50, 255, 0, 0, 0, 255]);
    // Soft probability maps weight the blend; grey images keep alpha.
    const grey: Image = { width: 1, height: 1, channels: 2, data: new Uint8Array([200, 77]) };
    const soft = overlay(grey, [{ mask: { width: 1, height: 1, data: new Float32Array([0.5]) }, color: [0, 0, 0] }], 1);
    expect(Array.from(soft.data)).toEqual([100, 100, 100, 77]);
    const png = decodePng(overlayPng(image, [{ mask, color: [0, 255, 0] }]));
    expect([png.channels, png.width, png.height]).toEqual([4, 2, 1]);
    expect(Array.from(png.data)).toEqual([50, 178, 50, 255, 0, 0, 0, 255]);
    const labels: Image = { width: 2, height: 1, channels: 1, data: new Uint8Array([2, 0]) };
    const c = PALETTE[1]!;
    expect(Array.from(overlayLabels(image, labels, 1).data)).toEqual([c[0], c[1], c[2], 255, 0, 0, 0, 255]);
    expect(() => overlay(image, [{ mask: { ...mask, width: 1 }, color: [0, 0, 0] }])).toThrow(/mask is 1x1, the image 2x1/);
  });
});
