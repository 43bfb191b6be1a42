/**
 * The CRIS segmentation API (src/models/cris/api.ts) and its preprocessing (preprocess.ts) on the
 * tiny golden CRIS (test/fixtures/cris_tiny: weights.pth, manifest `config`; 1000-token text tower
 * with BOS 998 / EOS 999, so a folder gets the truncated CLIP vocabulary of
 * test/helpers/clipseg-folder.ts). The network side is 96 (config option) to keep the CPU quick.
 *
 * - preprocess: letterbox geometry, OpenCV cubic weights, identity warp, border fill, and the
 *   inverse letterbox recovering a smooth field on a non-square image;
 * - API: folder / file / file map / bytes / train-format / safetensors loading give the same
 *   logits; results at the original size, probabilities in [0, 1], masks and labels consistent
 *   with the threshold (0.35 default); the inverse letterbox is checked exactly on an image whose
 *   letterbox is an integer shift (96x48 at 96: scale 1, offset 24); one batch for two prompts
 *   equals one call per prompt; the logits equal Cris.forward on crisPreprocess + CRIS tokens;
 * - errors: word_len beyond the checkpoint's positions, a config of another variant, a vocabulary
 *   larger than the model's, a folder without a checkpoint, non-image bytes, a disposed model;
 * - WebGPU (when an adapter exists) agrees with the CPU device and frees its buffers on dispose().
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { CRIS, checkCheckpointAgainstConfig, resolveCrisConfig } from '../../src/models/cris/api.js';
import { parseCrisConfig } from '../../src/models/cris/config.js';
import { crisConfigFor } from '../../src/models/cris/configs.js';
import { Cris } from '../../src/models/cris/model.js';
import { crisProbabilities } from '../../src/models/cris/postprocess.js';
import { crisPreprocess, cubicWeights, letterboxTransform, unletterbox, warpCubic } from '../../src/models/cris/preprocess.js';
import { CLIP_MEAN, CLIP_STD, type Image, encodePng } from '../../src/models/image/index.js';
import { expectClose } from '../helpers/allclose.js';
import { truncatedClipVocab } from '../helpers/clipseg-folder.js';
import { webgpuDevice } from '../helpers/devices.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/cris_tiny');
const CONFIG = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8')).config as Record<string, unknown>;
const S = 96;

const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-cris-api-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const { vocabJson, mergesTxt } = truncatedClipVocab();
const tokenizer = ClipTokenizer.fromHf(vocabJson, mergesTxt);

function makeFolder(name: string, weights = 'weights.pth'): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(FIXTURE, weights), join(dir, weights));
  writeFileSync(join(dir, 'vocab.json'), vocabJson);
  writeFileSync(join(dir, 'merges.txt'), mergesTxt);
  return dir;
}

function testImage(width: number, height: number): Image {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const inside = x > width / 4 && x < (3 * width) / 4 && y > height / 3 && y < (2 * height) / 3;
      data[i] = inside ? 240 : (x * 255) / Math.max(1, width - 1);
      data[i + 1] = inside ? 60 : (y * 255) / Math.max(1, height - 1);
      data[i + 2] = (x * 7 + y * 3) % 256;
    }
  }
  return { width, height, channels: 3, data };
}

describe('CRIS preprocessing', () => {
  it('letterbox geometry follows getTransformMat', () => {
    expect(letterboxTransform(64, 40, 96)).toEqual({ width: 64, height: 40, inputSize: 96, scale: 1.5, offsetX: 0, offsetY: 18 });
    const t = letterboxTransform(30, 90, 416);
    expect(t.scale).toBeCloseTo(416 / 90, 12);
    expect(t.offsetX).toBeCloseTo((416 - 30 * (416 / 90)) / 2, 12);
    expect(t.offsetY).toBeCloseTo(0, 12);
  });

  it('cubic weights are OpenCV interpolateCubic (A = -0.75)', () => {
    expect(cubicWeights(0)).toEqual([0, 1, 0, 0]);
    const w = cubicWeights(0.5);
    expectClose(Float32Array.from(w), Float32Array.from([-0.09375, 0.59375, 0.59375, -0.09375]), 1e-12);
    for (const t of [0.1, 0.37, 0.9]) expect(cubicWeights(t).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('a square image of the network size passes unchanged (identity warp), normalised with CLIP mean/std', () => {
    const img = testImage(S, S);
    const pre = crisPreprocess(img, { inputSize: S });
    expect(pre.shape).toEqual([1, 3, S, S]);
    const expected = new Float32Array(3 * S * S);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < S * S; i++) expected[c * S * S + i] = (Math.fround(img.data[i * 3 + c]! / 255) - Math.fround(CLIP_MEAN[c]!)) / Math.fround(CLIP_STD[c]!);
    }
    expectClose(pre.pixelValues, expected, 1e-6);
  });

  it('pads a non-square image with the CLIP mean border and keeps a constant image constant inside', () => {
    const img: Image = { width: 64, height: 40, channels: 3, data: new Uint8Array(64 * 40 * 3).fill(200) };
    const pre = crisPreprocess(img, { inputSize: S });
    const n = S * S;
    const border = [123, 117, 104];
    for (let c = 0; c < 3; c++) {
      const at = (x: number, y: number) => pre.pixelValues[c * n + y * S + x]!;
      const value = (v: number) => (Math.fround(v / 255) - Math.fround(CLIP_MEAN[c]!)) / Math.fround(CLIP_STD[c]!);
      expect(at(10, 2)).toBeCloseTo(value(border[c]!), 5); // above the image (offset 18)
      expect(at(50, 93)).toBeCloseTo(value(border[c]!), 5); // below it
      expect(at(48, 48)).toBeCloseTo(value(200), 5); // inside
    }
  });

  it('the inverse letterbox recovers a smooth field on a non-square image', () => {
    const [w, h] = [50, 30];
    const f = (x: number, y: number) => 0.5 + 0.3 * Math.sin(x / 9) * Math.cos(y / 7);
    for (const size of [96, 128]) {
      const t = letterboxTransform(w, h, size);
      // The field seen in network space: sample f at the original coordinates of each pixel.
      const net = new Float32Array(size * size);
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) net[y * size + x] = f((x - t.offsetX) / t.scale, (y - t.offsetY) / t.scale);
      const [map] = unletterbox(net, 1, t);
      expect([map!.width, map!.height]).toEqual([w, h]);
      // Interior pixels (the last row/column's taps reach past the S x S map: border 0 there).
      const got: number[] = [];
      const expected: number[] = [];
      for (let y = 0; y < h - 1; y++) {
        for (let x = 0; x < w - 1; x++) {
          got.push(map!.data[y * w + x]!);
          expected.push(f(x, y));
        }
      }
      expectClose(got, expected, 2e-3);
    }
  });

  it('warpCubic: a window fully outside gives the border value; probabilities are clamped to [0, 1]', () => {
    const planes = Float32Array.from([1, 1, 1, 1]);
    const out = warpCubic(planes, 1, 2, 2, 1, 3, { ax: 1, bx: 10, ay: 1, by: 0 }, [7]);
    expect([...out]).toEqual([7, 7, 7]);
    // A step 0 -> 1 overshoots with cubic weights; unletterbox clamps.
    const step = new Float32Array(32 * 32);
    for (let i = 0; i < step.length; i++) step[i] = i % 32 >= 16 ? 1 : 0;
    const [map] = unletterbox(step, 1, letterboxTransform(20, 20, 32));
    expect(Math.min(...map!.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...map!.data)).toBeLessThanOrEqual(1);
  });
});

describe('checkCheckpointAgainstConfig', () => {
  it('names the variant a checkpoint looks like, from shapes alone', () => {
    const t = (shape: number[]) => ({ dtype: 'f32' as const, shape, data: new Float32Array(0) });
    const r101 = new Map([
      ['backbone.visual.conv1.weight', t([32, 3, 3, 3])],
      ['backbone.text_projection', t([512, 512])],
      ...Array.from({ length: 23 }, (_, i): [string, ReturnType<typeof t>] => [`backbone.visual.layer3.${i}.conv1.weight`, t([256, 1024, 1, 1])]),
    ]);
    expect(() => checkCheckpointAgainstConfig(r101, crisConfigFor('cris-r50'), 'x.pth', "'cris-r50'")).toThrow(
      /x\.pth: the checkpoint does not match 'cris-r50' \(it looks like 'cris-r101'\): 'backbone.text_projection' is \[512, 512\], the config needs \[512, 1024\]; 23 blocks 'backbone.visual.layer3.\*', the config's clip.vision_layers\[2\] is 6/,
    );
    expect(() => checkCheckpointAgainstConfig(r101, crisConfigFor('cris-r101'), 'x.pth', "'cris-r101'")).not.toThrow();
  });
});

describe('CRIS API (tiny model, CPU, 96x96 input)', () => {
  const cpu = new E.CpuDevice();
  let model: CRIS;
  let dir: string;
  beforeAll(async () => {
    dir = makeFolder('folder');
    model = await CRIS.fromPretrained(dir, { config: CONFIG, inputSize: S, device: cpu });
  });
  afterAll(() => model.dispose());

  it('loads a folder with the checkpoint and its vocabulary', () => {
    expect(model.config.wordLen).toBe(17);
    expect(model.config.inputSize).toBe(S);
    expect(model.tokenizer.vocabSize).toBe(1000);
    expect(model.notes.join('\n')).toMatch(/weights\.pth/);
  });

  it('segments a non-square PNG: maps at the original size, p in [0, 1], masks/labels follow the threshold', async () => {
    const img = testImage(64, 40);
    const r = await model.segment(encodePng(img), ['a red square', 'the background']);
    expect([r.width, r.height]).toEqual([64, 40]);
    expect(r.threshold).toBe(0.35);
    expect(r.logits.shape).toEqual([2, S / 4, S / 4]);
    expect(r.letterbox).toEqual(letterboxTransform(64, 40, S));
    expect(r.probabilities).toHaveLength(2);
    expect(r.tokens.lengths.every((l) => l > 2 && l <= 17)).toBe(true);
    for (let k = 0; k < 2; k++) {
      const p = r.probabilities[k]!;
      expect([p.width, p.height, p.data.length]).toEqual([64, 40, 64 * 40]);
      expect(p.data.every((v) => v >= 0 && v <= 1)).toBe(true);
      const m = r.masks[k]!;
      expect([m.width, m.height, m.channels]).toEqual([64, 40, 1]);
      for (let i = 0; i < p.data.length; i++) expect(m.data[i]).toBe(p.data[i]! > 0.35 ? 255 : 0);
    }
    for (let i = 0; i < 64 * 40; i++) {
      const [a, b] = [r.probabilities[0]!.data[i]!, r.probabilities[1]!.data[i]!];
      const want = Math.max(a, b) > 0.35 ? (b > a ? 2 : 1) : 0;
      expect(r.labels.data[i]).toBe(want);
    }
    // Not a constant map (the model sees the image).
    const d = r.probabilities[0]!.data;
    expect(Math.max(...d) - Math.min(...d)).toBeGreaterThan(1e-4);
  });

  it('maps back through the inverse letterbox exactly when it is an integer shift (96x48: offset 24)', async () => {
    const img = testImage(96, 48);
    const r = await model.segment(img, 'a red square', { threshold: 0.5 });
    expect(r.letterbox).toMatchObject({ scale: 1, offsetX: 0, offsetY: 24 });
    const logits = E.Tensor.fromArray(r.logits.data, [1, 1, S / 4, S / 4], { device: cpu });
    const probs = (await crisProbabilities(logits, [S, S]).read()) as Float32Array;
    const expected = new Float32Array(96 * 48);
    for (let y = 0; y < 48; y++) for (let x = 0; x < 96; x++) expected[y * 96 + x] = Math.min(1, Math.max(0, probs[(y + 24) * S + x]!));
    expectClose(r.probabilities[0]!.data, expected, 1e-6);
    for (let i = 0; i < expected.length; i++) expect(r.masks[0]!.data[i]).toBe(expected[i]! > 0.5 ? 255 : 0);
  });

  it('equals Cris.forward on crisPreprocess + CRIS tokens; one batch equals one call per prompt', async () => {
    const img = testImage(40, 70);
    const prompts = ['left part', 'a red square in the middle'];
    const both = await model.segment(img, prompts);
    const pre = crisPreprocess(img, { inputSize: S });
    const tokens = tokenizer.tokenize(prompts, { contextLength: 17 });
    expect(tokens.inputIds[16]).toBe(0); // zero padding as CRIS
    const n = (S / 4) ** 2;
    for (let k = 0; k < 2; k++) {
      const one = await model.segment(img, prompts[k]!);
      expectClose(both.logits.data.subarray(k * n, (k + 1) * n), one.logits.data, 2e-5, 1e-4);
      expectClose(both.probabilities[k]!.data, one.probabilities[0]!.data, 2e-5);
      const row = { inputIds: tokens.inputIds.slice(k * 17, (k + 1) * 17), shape: [1, 17] as const };
      const ref = E.scope(() => model.model.forward({ pixels: E.Tensor.fromArray(pre.pixelValues, pre.shape, { device: cpu }), tokens: row }).pred);
      expectClose((await ref.read()) as Float32Array, one.logits.data, 1e-6);
      ref.dispose();
    }
  });

  it('truncates over-long prompts to word_len with a warning, or throws with truncate: false', async () => {
    const long = 'the large round red object in the very middle of the picture next to the small blue one on the left';
    const r = await model.segment(testImage(32, 32), [long, '']);
    expect(r.tokens.truncated).toEqual([true, false]);
    expect(r.tokens.lengths).toEqual([17, 2]);
    expect(r.warnings.join('\n')).toMatch(/more than word_len 17/);
    expect(r.warnings.join('\n')).toMatch(/empty/);
    await expect(model.segment(testImage(32, 32), long, { truncate: false })).rejects.toThrow(/context length 17/);
  });

  it('loads the same weights from a file path, a file map, bytes, the train-format checkpoint and safetensors', async () => {
    const img = testImage(48, 32);
    const want = (await model.segment(img, 'the square')).logits.data;
    const st = readFileSync(join(FIXTURE, 'weights.safetensors'));
    const sources: [string, Parameters<typeof CRIS.fromPretrained>[0], ClipTokenizer | undefined][] = [
      ['file path', join(dir, 'weights.pth'), tokenizer],
      ['file map', { 'weights.pth': new Uint8Array(readFileSync(join(FIXTURE, 'weights.pth'))), 'vocab.json': new TextEncoder().encode(vocabJson), 'merges.txt': new TextEncoder().encode(mergesTxt) }, undefined],
      ['bytes', st.buffer.slice(st.byteOffset, st.byteOffset + st.byteLength) as ArrayBuffer, tokenizer],
      ['train format', join(FIXTURE, 'checkpoint_train_format.pth'), tokenizer],
      ['safetensors folder', makeFolder('st', 'weights.safetensors'), undefined],
    ];
    for (const [what, source, tok] of sources) {
      const m = await CRIS.fromPretrained(source, { config: CONFIG, inputSize: S, device: cpu, tokenizer: tok });
      try {
        const got = (await m.segment(img, 'the square')).logits.data;
        expectClose(got, want, 1e-6, 1e-5, what);
      } finally {
        m.dispose();
      }
    }
  });

  it('handles a 1x1 image, a thin strip and a grey+alpha image', async () => {
    const grey: Image = { width: 7, height: 5, channels: 2, data: new Uint8Array(70).fill(128) };
    for (const img of [testImage(1, 1), testImage(3, 200), grey]) {
      const r = await model.segment(img, 'x');
      expect([r.width, r.height]).toEqual([img.width, img.height]);
      expect(r.probabilities[0]!.data.every((v) => v >= 0 && v <= 1 && Number.isFinite(v))).toBe(true);
    }
  });

  it('resolves published names, JSON and parsed configs with word_len / input size overrides', () => {
    expect(resolveCrisConfig('cris-r101', 22).wordLen).toBe(22);
    expect(resolveCrisConfig('cris-r50').inputSize).toBe(416);
    const parsed = parseCrisConfig(CONFIG);
    const again = resolveCrisConfig(parsed, 20, 64);
    expect([again.wordLen, again.inputSize, again.clip.vocabSize]).toEqual([20, 64, 1000]);
    expect(resolveCrisConfig(parsed)).toEqual(parsed);
    expect(() => resolveCrisConfig(parsed, undefined, 80)).toThrow(/input size 80 must be a multiple of 32/);
  });

  it('runs at the config input size (128, the second golden resolution) and with a 22-token word_len', async () => {
    const m = await CRIS.fromPretrained(dir, { config: { ...CONFIG, input_size: 128 }, wordLen: 22, device: cpu });
    try {
      expect(m.config.wordLen).toBe(22);
      const r = await m.segment(testImage(30, 50), 'a thing');
      expect(r.logits.shape).toEqual([1, 32, 32]);
      expect([r.width, r.height]).toEqual([30, 50]);
    } finally {
      m.dispose();
    }
  });

  it('rejects bad inputs with clear errors', async () => {
    await expect(CRIS.fromPretrained(dir, { config: CONFIG, wordLen: 78, device: cpu })).rejects.toThrow(/word_len' \(78\) exceeds the CLIP context length 77/);
    await expect(
      CRIS.fromPretrained(dir, { config: { ...CONFIG, clip: { ...(CONFIG.clip as object), context_length: 100 } }, wordLen: 90, device: cpu }),
    ).rejects.toThrow(/word_len 90 is longer than the checkpoint's 77 text positions/);
    await expect(CRIS.fromPretrained(dir, { config: 'cris-r50', device: cpu })).rejects.toThrow(/does not match 'cris-r50': 'backbone.visual.conv1.weight' is \[2, 3, 3, 3\], the config needs \[32, 3, 3, 3\]/);
    // Telltale shapes agree but another module does not: loadState's strict check names the keys.
    const otherNeck = CRIS.fromPretrained(dir, { config: { ...CONFIG, fpn_out: [16, 64, 64] }, device: cpu });
    await expect(otherNeck).rejects.toThrow(/does not match the given config \(wrong variant or config\?\): loadState/);
    await expect(otherNeck).rejects.toThrow(/'neck.f3_v_proj.0.weight' is \[32, 32, 3, 3\] in the checkpoint, \[16, 32, 3, 3\] in the model/);
    await expect(CRIS.fromPretrained(join(FIXTURE, 'weights.pth'), { config: CONFIG, device: cpu })).rejects.toThrow(/49408 tokens, but the model's vocab_size is 1000/);
    await expect(CRIS.fromPretrained(join(tmp, 'missing.pth'), { config: CONFIG, device: cpu })).rejects.toThrow(/no such file/);
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(CRIS.fromPretrained(empty, { config: CONFIG, device: cpu })).rejects.toThrow(/exactly one CRIS checkpoint.*found none/);
    await expect(CRIS.fromPretrained(dir, { config: 'cris-r18' as 'cris-r50', device: cpu })).rejects.toThrow(/unknown config 'cris-r18'/);
    await expect(CRIS.fromPretrained(dir, { config: CONFIG, inputSize: 100, device: cpu })).rejects.toThrow(/multiple of 32/);
    await expect(CRIS.fromPretrained(dir, undefined as never)).rejects.toThrow(/options.config is required/);
    await expect(model.segment(new TextEncoder().encode('not an image at all'), 'x')).rejects.toThrow(/image/);
    await expect(model.segment(testImage(8, 8), [])).rejects.toThrow(/at least one prompt/);
    await expect(model.segment(testImage(8, 8), 'x', { threshold: 2 })).rejects.toThrow(/threshold/);
  });

  it('segment() leaks no device buffer; dispose() frees them all and the model refuses to segment', async () => {
    const device = new E.CpuDevice();
    const m = await CRIS.fromPretrained(dir, { config: CONFIG, inputSize: S, device });
    const loaded = device.stats().liveBuffers;
    expect(loaded).toBeGreaterThan(0);
    await m.segment(testImage(20, 12), ['a', 'b']);
    await m.segment(testImage(12, 20), 'c');
    expect(device.stats().liveBuffers).toBe(loaded);
    m.dispose();
    expect(device.stats().liveBuffers).toBe(0);
    await expect(m.segment(testImage(8, 8), 'x')).rejects.toThrow(/disposed/);
  });

  it('WebGPU agrees with the CPU device (when an adapter exists)', async () => {
    const gpu = await webgpuDevice();
    if (!gpu) return;
    const img = testImage(50, 30);
    const want = await model.segment(img, ['a red square', 'the left side']);
    const before = gpu.stats().liveBuffers;
    const m = await CRIS.fromPretrained(dir, { config: CONFIG, inputSize: S, device: gpu });
    try {
      const got = await m.segment(img, ['a red square', 'the left side']);
      expectClose(got.logits.data, want.logits.data, 2e-4, 1e-3, 'logits');
      for (let k = 0; k < 2; k++) expectClose(got.probabilities[k]!.data, want.probabilities[k]!.data, 1e-4, 1e-3, 'probabilities');
    } finally {
      m.dispose();
    }
    expect(gpu.stats().liveBuffers).toBe(before);
  });
});
