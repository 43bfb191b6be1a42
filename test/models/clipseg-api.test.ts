/**
 * The CLIPSeg segmentation API (src/models/clipseg/api.ts) on the tiny golden model, packed as a
 * Hugging Face folder (test/helpers/clipseg-folder.ts: config.json, model.safetensors, a 1000-token
 * vocab.json/merges.txt, and mostly a 48x48 preprocessor_config.json so the forwards are quick):
 *
 * - loading: folder path, file map (the browser path: ArrayBuffer / Uint8Array / Blob), sharded
 *   safetensors, pytorch_model.bin (with `clipseg.` keys and an int64 position_ids buffer),
 *   tokenizer.json; clear errors for a missing folder, config.json, weights, config
 *   keys, weight keys, and a vocabulary that does not fit the model;
 * - segment(): one batch for several prompts equals one call per prompt and the model's own forward
 *   with clip.tokenize-style 77-token rows; maps at the original size (sigmoid of the logits when no
 *   resize is needed), masks and label maps consistent with the threshold;
 * - edge cases: empty prompts (BOS + EOS, allowed, warned), over-long prompts (truncated like
 *   clip.tokenize with a warning, or an error with truncate: false), non-image bytes, a 1x1 image
 *   and an 8000x8000 image (the forward always runs at the preprocessor size; only preprocessing
 *   and the resize back scale with the image, so the whole pipeline runs at that size too);
 * - dispose() frees every device buffer; WebGPU agrees with the CPU device.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { CLIPSeg } from '../../src/models/clipseg/api.js';
import { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { type Image, clipsegPreprocess, encodePng, sigmoid } from '../../src/models/image/index.js';
import { expectClose } from '../helpers/allclose.js';
import { makeTinyClipSegFolder, truncatedClipVocab } from '../helpers/clipseg-folder.js';
import { testDevices } from '../helpers/devices.js';
import { stateDictZip } from '../io/helpers/zip-writer.js';

const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-clipseg-api-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
const folder = (options: Parameters<typeof makeTinyClipSegFolder>[1] = { size: 48 }) => makeTinyClipSegFolder(join(tmp, `m${counter++}`), options);

/** A deterministic RGB test image with structure (gradients and a bright square). */
function testImage(width: number, height: number): Image {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const inside = x > width / 4 && x < (3 * width) / 4 && y > height / 3 && y < (2 * height) / 3;
      data[i] = inside ? 240 : (x * 255) / Math.max(1, width - 1);
      data[i + 1] = inside ? 60 : (y * 255) / Math.max(1, height - 1);
      data[i + 2] = (x + y) % 256;
    }
  }
  return { width, height, channels: 3, data };
}

const cpu = new E.CpuDevice();
let model: CLIPSeg;
let dir: string;
beforeAll(async () => {
  dir = folder();
  model = await CLIPSeg.fromPretrained(dir, { device: cpu });
});
afterAll(() => model.dispose());

describe('CLIPSeg.fromPretrained', () => {
  it('reads config, weights, tokenizer and preprocessing from a folder', () => {
    expect(model.config.vision.hiddenSize).toBe(64);
    expect(model.tokenizer.vocabSize).toBe(1000);
    expect(model.tokenizer.bosTokenId).toBe(998);
    expect(model.tokenizer.eosTokenId).toBe(999);
    expect(model.preprocessOptions.size).toEqual({ height: 48, width: 48 });
    expect(model.notes.join('\n')).toMatch(/weights: .*model\.safetensors \(202 tensors\)/);
    expect(model.notes.join('\n')).toMatch(/tokenizer: .*vocab\.json \+ merges\.txt/);
    expect(model.device).toBe(cpu);
  });

  it('loads the same model from a map of files (ArrayBuffer, Uint8Array, Blob), as in browsers', async () => {
    const bytes = (name: string) => readFileSync(join(dir, name));
    const weights = bytes('model.safetensors');
    const files = {
      'config.json': new Uint8Array(bytes('config.json')).buffer,
      'model.safetensors': new Blob([new Uint8Array(weights)]),
      'vocab.json': new Uint8Array(bytes('vocab.json')),
      'merges.txt': new Uint8Array(bytes('merges.txt')),
      'preprocessor_config.json': new Uint8Array(bytes('preprocessor_config.json')),
    };
    const fromMap = await CLIPSeg.fromPretrained(files, { device: cpu });
    try {
      const image = testImage(20, 16);
      const a = await fromMap.segment(image, 'a polyp');
      const b = await model.segment(image, 'a polyp');
      expect(a.logits.data).toEqual(b.logits.data);
    } finally {
      fromMap.dispose();
    }
    await expect(CLIPSeg.fromPretrained({ 'sub/config.json': new Uint8Array(2) })).rejects.toThrow(/'sub\/config.json' is not a plain file name/);
  });

  it('loads sharded safetensors (model.safetensors.index.json) and tokenizer.json', async () => {
    const d = folder();
    const st = await E.openSafetensors(new Uint8Array(readFileSync(join(d, 'model.safetensors'))));
    const all = await st.readAll();
    const keys = [...all.keys()];
    const shards = [keys.slice(0, 100), keys.slice(100)];
    const weightMap: Record<string, string> = {};
    shards.forEach((names, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(d, file), E.serializeTensorData(new Map(names.map((k) => [k, all.get(k)!]))));
      for (const k of names) weightMap[k] = file;
    });
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
    unlinkSync(join(d, 'model.safetensors'));
    const { vocabJson, mergesTxt } = truncatedClipVocab();
    const merges = mergesTxt.split('\n').slice(1).filter(Boolean);
    writeFileSync(join(d, 'tokenizer.json'), JSON.stringify({ model: { type: 'BPE', vocab: JSON.parse(vocabJson), merges } }));
    unlinkSync(join(d, 'vocab.json'));
    unlinkSync(join(d, 'merges.txt'));
    const sharded = await CLIPSeg.fromPretrained(d, { device: cpu });
    try {
      expect(sharded.notes.join('\n')).toMatch(/merged 2 shards/);
      expect(sharded.notes.join('\n')).toMatch(/tokenizer: .*tokenizer\.json/);
      const image = testImage(24, 24);
      expect((await sharded.segment(image, 'polyp')).logits.data).toEqual((await model.segment(image, 'polyp')).logits.data);
    } finally {
      sharded.dispose();
    }
  });

  it('loads pytorch_model.bin with the HF key rules (clipseg. prefix, int64 position_ids ignored)', async () => {
    const d = folder();
    const st = await E.openSafetensors(new Uint8Array(readFileSync(join(d, 'model.safetensors'))));
    const entries: Parameters<typeof stateDictZip>[0] = [];
    const storages: Record<string, Uint8Array> = {};
    let n = 0;
    for await (const [key, t] of st.tensors()) {
      const data = t.data as Float32Array;
      const name = key.replace(/^clip\./, 'clipseg.'); // the stale prefix of transformers' conversion script
      entries.push([name, { storageType: 'FloatStorage', key: String(n), numel: data.length, shape: [...t.shape] }]);
      storages[String(n++)] = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    }
    entries.push(['clipseg.text_model.embeddings.position_ids', { storageType: 'LongStorage', key: 'ids', numel: 77, shape: [1, 77] }]);
    storages.ids = new Uint8Array(new BigInt64Array(77).map((_, i) => BigInt(i)).buffer);
    writeFileSync(join(d, 'pytorch_model.bin'), stateDictZip(entries, storages));
    unlinkSync(join(d, 'model.safetensors'));
    const torch = await CLIPSeg.fromPretrained(d, { device: cpu });
    try {
      expect(torch.notes.join('\n')).toMatch(/weights: .*pytorch_model\.bin \(202 tensors\)\nweights: ignored 1 position_ids buffers/);
      const image = testImage(24, 20);
      expect((await torch.segment(image, 'polyp')).logits.data).toEqual((await model.segment(image, 'polyp')).logits.data);
    } finally {
      torch.dispose();
    }
  });

  it('names what is wrong: folder, config.json, config keys, weights, weight keys, vocabulary', async () => {
    await expect(CLIPSeg.fromPretrained(join(tmp, 'absent'))).rejects.toThrow(/absent: cannot read the model folder \(no such file or folder\)/);
    const noConfig = folder();
    unlinkSync(join(noConfig, 'config.json'));
    await expect(CLIPSeg.fromPretrained(noConfig)).rejects.toThrow(/no config\.json in the model folder \(it holds merges\.txt, model\.safetensors/);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const { vision_config: _, ...noVision } = config;
    await expect(CLIPSeg.fromPretrained(folder({ config: noVision }))).rejects.toThrow(/config\.json: 'vision_config' is missing/);
    const badKey = { ...config, text_config: { ...config.text_config, hidden_size: 'wide' } };
    await expect(CLIPSeg.fromPretrained(folder({ config: badKey }))).rejects.toThrow(/config\.json: text_config: 'hidden_size' must be an integer/);
    const noWeights = folder();
    unlinkSync(join(noWeights, 'model.safetensors'));
    await expect(CLIPSeg.fromPretrained(noWeights)).rejects.toThrow(/no CLIPSeg weights in the model folder: expected one of model\.safetensors, /);
    const missingKey = folder();
    const st = await E.openSafetensors(new Uint8Array(readFileSync(join(missingKey, 'model.safetensors'))));
    const tensors = await st.readAll();
    tensors.delete('decoder.film_mul.weight');
    writeFileSync(join(missingKey, 'model.safetensors'), E.serializeTensorData(tensors));
    await expect(CLIPSeg.fromPretrained(missingKey, { device: cpu })).rejects.toThrow(/decoder\.film_mul\.weight/);
    // No vocab files: the shipped 49,408-token CLIP vocabulary does not fit a 1000-token model.
    await expect(CLIPSeg.fromPretrained(folder({ size: 48, noTokenizer: true }))).rejects.toThrow(
      /the tokenizer \(the shipped CLIP vocabulary .*\) has 49408 tokens, but text_config\.vocab_size is 1000/,
    );
    expect(cpu.stats().liveBuffers).toBeGreaterThan(0); // only the shared model's parameters
  });
});

describe('CLIPSeg.segment', () => {
  it('returns maps, masks and labels at the original size, consistent with the threshold', async () => {
    const image = testImage(37, 23);
    const r = await model.segment(image, ['a polyp', 'a red square'], { threshold: 0.6 });
    expect([r.width, r.height]).toEqual([37, 23]);
    expect(r.prompts).toEqual(['a polyp', 'a red square']);
    expect(r.logits.shape).toEqual([2, 48, 48]);
    expect(r.warnings).toEqual([]);
    for (let k = 0; k < 2; k++) {
      const p = r.probabilities[k]!;
      expect([p.width, p.height, p.data.length]).toEqual([37, 23, 37 * 23]);
      expect(r.masks[k]!.channels).toBe(1);
      for (let i = 0; i < p.data.length; i++) expect(r.masks[k]!.data[i]).toBe(p.data[i]! > 0.6 ? 255 : 0);
    }
    for (let i = 0; i < 37 * 23; i++) {
      const [a, b] = [r.probabilities[0]!.data[i]!, r.probabilities[1]!.data[i]!];
      const expected = Math.max(a, b) > 0.6 ? (b > a ? 2 : 1) : 0;
      expect(r.labels.data[i]).toBe(expected);
    }
  });

  it('at the model size the maps are exactly sigmoid(logits); encoded PNG bytes give the same result', async () => {
    const image = testImage(48, 48);
    const r = await model.segment(encodePng(image), 'polyp');
    expect(r.probabilities[0]!.data).toEqual(sigmoid(r.logits.data));
    expect((await model.segment(image, 'polyp')).logits.data).toEqual(r.logits.data);
  });

  it('runs several prompts in one batch: equal to one call per prompt and to the model forward on 77-token rows', async () => {
    const image = testImage(30, 30);
    const prompts = ['a polyp', 'a small round lesion in the upper left part of the image', ''];
    const batched = await model.segment(image, prompts);
    const plane = 48 * 48;
    for (let k = 0; k < prompts.length; k++) {
      const alone = await model.segment(image, prompts[k]!);
      expectClose(alone.logits.data, batched.logits.data.subarray(k * plane, (k + 1) * plane), 1e-5, 1e-4, `prompt ${k}`);
    }
    // The model's own forward with the image repeated and clip.tokenize rows (77, padding 0).
    const pre = clipsegPreprocess(image, model.preprocessOptions);
    const tokens = model.tokenizer.tokenize(prompts);
    const pixels = new Float32Array(prompts.length * pre.pixelValues.length);
    for (let k = 0; k < prompts.length; k++) pixels.set(pre.pixelValues, k * pre.pixelValues.length);
    const direct = await E.scopeAsync(async () => {
      const pixelValues = E.Tensor.fromArray(pixels, [prompts.length, 3, 48, 48], { device: cpu });
      return E.noGrad(() => model.model.forward({ pixelValues, tokens })).logits.read();
    });
    expectClose(batched.logits.data, direct, 1e-5, 1e-4, 'batched vs forward');
  });

  it('allows empty prompts (BOS + EOS) with a warning', async () => {
    const r = await model.segment(testImage(16, 16), ['', '   ', 'polyp']);
    const polyp = model.tokenizer.encode('polyp').length + 2;
    expect(r.tokens.lengths).toEqual([2, 2, polyp]);
    expect(r.warnings).toEqual([
      'prompts[0] "" is empty after text cleaning: it conditions on an empty text (BOS + EOS)',
      'prompts[1] "   " is empty after text cleaning: it conditions on an empty text (BOS + EOS)',
    ]);
    const plane = 48 * 48;
    expect(r.logits.data.subarray(0, plane)).toEqual(r.logits.data.subarray(plane, 2 * plane));
  });

  it('truncates over-long prompts like clip.tokenize, with a warning; truncate: false throws', async () => {
    const long = `${'polyp '.repeat(100)}end`;
    const r = await model.segment(testImage(16, 16), ['polyp', long]);
    const full = model.tokenizer.encode(long).length + 2;
    expect(full).toBeGreaterThan(200);
    expect(r.tokens.lengths).toEqual([model.tokenizer.encode('polyp').length + 2, 77]);
    expect(r.tokens.truncated).toEqual([false, true]);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^prompts\[1\] "polyp polyp .*\.\.\." has \d+ tokens with BOS\/EOS, more than the context of 77: truncated to BOS, its first 75 text tokens and EOS/);
    expect(r.warnings[0]).toContain(`has ${full} tokens`);
    // Truncation keeps BOS, the first 75 text tokens and EOS.
    const cut = model.tokenizer.tokenize([long]).inputIds;
    expect(Array.from(cut.subarray(1, 76))).toEqual(model.tokenizer.encode(long).slice(0, 75));
    expect([cut[0], cut[76]]).toEqual([998, 999]);
    await expect(model.segment(testImage(16, 16), ['polyp', long], { truncate: false })).rejects.toThrow(
      new RegExp(`prompt 1 "polyp polyp .*" has ${full} tokens \\(with BOS/EOS\\), more than the context length 77`),
    );
  });

  it('rejects non-image bytes, bad prompts and thresholds with clear errors', async () => {
    await expect(model.segment(new TextEncoder().encode('{"not": "an image"}'), 'x')).rejects.toThrow(/image: not a PNG or JPEG image \(the file starts with bytes 7b 22/);
    await expect(model.segment(new TextEncoder().encode('GIF89a....'), 'x')).rejects.toThrow(/unsupported image format: this is a GIF image/);
    await expect(model.segment(new Uint8Array(0), 'x')).rejects.toThrow(/empty file/);
    await expect(model.segment(new Blob([readFileSync(join(dir, 'config.json'))]), 'x')).rejects.toThrow(/not a PNG or JPEG/);
    await expect(model.segment({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }, 'x')).rejects.toThrow(/2x2x3 image has 5 bytes, expected 12/);
    await expect(model.segment(testImage(4, 4), [])).rejects.toThrow(/at least one prompt/);
    await expect(model.segment(testImage(4, 4), [7 as unknown as string])).rejects.toThrow(/prompt 0 must be a string/);
    await expect(model.segment(testImage(4, 4), 'x', { threshold: 1.5 })).rejects.toThrow(/threshold must be a number in \[0, 1\]/);
  });

  it('segments a 1x1 image and an RGBA ImageData-like object', async () => {
    const one = await model.segment({ width: 1, height: 1, channels: 3, data: new Uint8Array([200, 30, 40]) }, ['polyp', 'lesion']);
    expect([one.width, one.height, one.probabilities[0]!.data.length, one.labels.data.length]).toEqual([1, 1, 1, 1]);
    expect(one.probabilities[1]!.data[0]).toBeGreaterThan(0);
    const rgba = new Uint8ClampedArray(1 * 1 * 4).fill(255);
    rgba.set([200, 30, 40, 255]);
    const fromImageData = await model.segment({ width: 1, height: 1, data: rgba }, ['polyp', 'lesion']);
    expect(fromImageData.logits.data).toEqual(one.logits.data);
  });

  it('segments an 8000x8000 image: maps and masks at full size, the forward at the model size', async () => {
    const side = 8000;
    const data = new Uint8Array(side * side * 3);
    // Left half bright, right half dark: the resize back keeps the structure at full size.
    for (let y = 0; y < side; y++) data.fill(220, y * side * 3, y * side * 3 + (side / 2) * 3);
    const r = await model.segment({ width: side, height: side, channels: 3, data }, 'polyp');
    expect([r.width, r.height, r.logits.shape]).toEqual([side, side, [1, 48, 48]]);
    const p = r.probabilities[0]!.data;
    expect(p.length).toBe(side * side);
    for (const i of [0, 12_345_678, side * side - 1]) expect(r.masks[0]!.data[i]).toBe(p[i]! > 0.5 ? 255 : 0);
    // Bilinear upsampling from 48 to 8000: the corner pixels equal the corner logits.
    expect(p[0]).toBeCloseTo(sigmoid(r.logits.data.subarray(0, 1))[0]!, 6);
    expect(r.timings.forwardMs).toBeGreaterThan(0);
  });

  it('dispose() frees every buffer; a disposed model refuses to segment', async () => {
    const device = new E.CpuDevice();
    const m = await CLIPSeg.fromPretrained(dir, { device });
    await m.segment(testImage(8, 8), ['a', 'b']);
    expect(device.stats().liveBuffers).toBe(m.model.parameters().length);
    m.dispose();
    expect(device.stats().liveBuffers).toBe(0);
    await expect(m.segment(testImage(8, 8), 'a')).rejects.toThrow(/the model was disposed/);
  });

  it('uses the default preprocessing (352, ImageNet) without preprocessor_config.json', async () => {
    const m = await CLIPSeg.fromPretrained(folder({}), { device: cpu });
    try {
      expect(m.notes.join('\n')).toMatch(/preprocessing: defaults of the CIDAS hub models \(352 x 352/);
      const r = await m.segment(testImage(10, 10), 'polyp');
      expect(r.logits.shape).toEqual([1, 352, 352]);
    } finally {
      m.dispose();
    }
  });

  it('accepts a tokenizer in the options', async () => {
    const { vocabJson, mergesTxt } = truncatedClipVocab();
    const tokenizer = ClipTokenizer.fromHf(vocabJson, mergesTxt);
    const m = await CLIPSeg.fromPretrained(folder({ size: 48, noTokenizer: true }), { device: cpu, tokenizer });
    try {
      expect(m.tokenizer).toBe(tokenizer);
      expect(m.notes.join('\n')).toMatch(/tokenizer: the tokenizer passed in the options/);
    } finally {
      m.dispose();
    }
  });
});

describe.each((await testDevices()).filter(([name]) => name === 'webgpu'))('CLIPSeg.segment on %s', (_name, device) => {
  it('agrees with the CPU device', async () => {
    const live = device.stats().liveBuffers;
    const m = await CLIPSeg.fromPretrained(dir, { device });
    try {
      const image = testImage(40, 28);
      const prompts = ['a polyp', 'lesion', ''];
      const gpu = await m.segment(image, prompts);
      const ref = await model.segment(image, prompts);
      expectClose(gpu.logits.data, ref.logits.data, 1e-4, 1e-3, 'logits');
    } finally {
      m.dispose();
    }
    expect(device.stats().liveBuffers).toBe(live);
  });
});
