/**
 * CLIPSeg model: config parsing (HF defaults, clear errors), the full CIDAS/clipseg-rd64-refined
 * architecture (parameter count and every key/shape of the published checkpoint, built without
 * allocating real memory), strict weight loading by HF key names, and forward behaviour beyond the
 * golden data (batch of one not squeezed, one image against several prompts, the decoder-only
 * vision path, visual prompts, rectangular inputs, input errors).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { readSafetensorsFile } from '../../src/engine/io/safetensors-node.js';
import {
  CLIPSEG_RD64_REFINED_CONFIG_JSON,
  ClipSegForImageSegmentation,
  clipSegConfigFor,
  mapSource,
  parseClipSegConfig,
} from '../../src/models/clipseg/index.js';
import { expectClose } from '../helpers/allclose.js';
import { randomNormal } from '../helpers/gradcheck.js';
import { testDevices } from '../helpers/devices.js';

const fixtures = new URL('../fixtures/clipseg/', import.meta.url);
const tinyDir = (name: string) => new URL(`${name}/`, fixtures).pathname;
const readJson = async (path: string) => JSON.parse(await (await import('node:fs/promises')).readFile(path, 'utf8'));

/** §1.9 of docs/architectures.md, written out independently of the model code. */
function publishedRd64RefinedKeys(): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  const layer = (prefix: string, d: number, ff: number) => {
    for (const p of ['q', 'k', 'v', 'out']) {
      keys.set(`${prefix}.self_attn.${p}_proj.weight`, [d, d]);
      keys.set(`${prefix}.self_attn.${p}_proj.bias`, [d]);
    }
    for (const ln of ['layer_norm1', 'layer_norm2']) for (const s of ['weight', 'bias']) keys.set(`${prefix}.${ln}.${s}`, [d]);
    keys.set(`${prefix}.mlp.fc1.weight`, [ff, d]);
    keys.set(`${prefix}.mlp.fc1.bias`, [ff]);
    keys.set(`${prefix}.mlp.fc2.weight`, [d, ff]);
    keys.set(`${prefix}.mlp.fc2.bias`, [d]);
  };
  const ln = (name: string, d: number) => ['weight', 'bias'].forEach((s) => keys.set(`${name}.${s}`, [d]));
  keys.set('clip.text_model.embeddings.token_embedding.weight', [49408, 512]);
  keys.set('clip.text_model.embeddings.position_embedding.weight', [77, 512]);
  for (let i = 0; i < 12; i++) layer(`clip.text_model.encoder.layers.${i}`, 512, 2048);
  ln('clip.text_model.final_layer_norm', 512);
  keys.set('clip.vision_model.embeddings.class_embedding', [768]);
  keys.set('clip.vision_model.embeddings.patch_embedding.weight', [768, 3, 16, 16]);
  keys.set('clip.vision_model.embeddings.position_embedding.weight', [197, 768]);
  ln('clip.vision_model.pre_layrnorm', 768);
  for (let i = 0; i < 12; i++) layer(`clip.vision_model.encoder.layers.${i}`, 768, 3072);
  ln('clip.vision_model.post_layernorm', 768);
  keys.set('clip.visual_projection.weight', [512, 768]);
  keys.set('clip.text_projection.weight', [512, 512]);
  keys.set('clip.logit_scale', []);
  for (const f of ['film_mul', 'film_add']) {
    keys.set(`decoder.${f}.weight`, [64, 512]);
    keys.set(`decoder.${f}.bias`, [64]);
  }
  for (let j = 0; j < 3; j++) {
    keys.set(`decoder.reduces.${j}.weight`, [64, 768]);
    keys.set(`decoder.reduces.${j}.bias`, [64]);
    layer(`decoder.layers.${j}`, 64, 2048);
  }
  keys.set('decoder.transposed_convolution.0.weight', [64, 64, 3, 3]);
  keys.set('decoder.transposed_convolution.0.bias', [64]);
  keys.set('decoder.transposed_convolution.2.weight', [64, 32, 4, 4]);
  keys.set('decoder.transposed_convolution.2.bias', [32]);
  keys.set('decoder.transposed_convolution.4.weight', [32, 1, 4, 4]);
  keys.set('decoder.transposed_convolution.4.bias', [1]);
  return keys;
}

describe('CLIPSeg config', () => {
  it('parses the tiny golden configs', async () => {
    const c = parseClipSegConfig(await readJson(`${tinyDir('clipseg_tiny_refined')}config.json`));
    expect(c.vision).toMatchObject({ hiddenSize: 64, numHiddenLayers: 4, imageSize: 64, patchSize: 16, hiddenAct: 'quick_gelu' });
    expect(c.text).toMatchObject({ vocabSize: 1000, hiddenSize: 64, maxPositionEmbeddings: 77, eosTokenId: 2 });
    expect(c).toMatchObject({ projectionDim: 32, extractLayers: [1, 2, 3], reduceDim: 16, decoderNumAttentionHeads: 2 });
    expect(c).toMatchObject({ decoderIntermediateSize: 2048, conditionalLayer: 0, useComplexTransposedConvolution: true });
  });

  it("fills absent keys with HF's defaults and lets *_config_dict win", () => {
    const c = parseClipSegConfig({ text_config: { hidden_size: 256 }, vision_config: {}, text_config_dict: { hidden_size: 128, num_attention_heads: 4 } });
    expect(c.text).toMatchObject({ vocabSize: 49408, hiddenSize: 128, numAttentionHeads: 4, numHiddenLayers: 12, layerNormEps: 1e-5 });
    expect(c.vision).toMatchObject({ hiddenSize: 768, patchSize: 32, imageSize: 224, numChannels: 3 });
    expect(c).toMatchObject({ projectionDim: 512, extractLayers: [3, 6, 9], reduceDim: 64, useComplexTransposedConvolution: false });
  });

  it('names the key of a missing tower or an invalid value', () => {
    const ok = { text_config: {}, vision_config: {} };
    const cases: [unknown, RegExp][] = [
      [[1, 2], /config.json: a CLIPSeg config must be a JSON object/],
      [{ text_config: {} }, /config.json: 'vision_config' is missing/],
      [{ vision_config: {} }, /config.json: 'text_config' is missing/],
      [{ ...ok, vision_config: 7 }, /'vision_config' must be an object, got 7/],
      [{ ...ok, model_type: 'clip' }, /'model_type' is 'clip', expected 'clipseg'/],
      [{ ...ok, text_config: { hidden_size: '64' } }, /config.json: text_config: 'hidden_size' must be an integer >= 1, got "64"/],
      [{ ...ok, vision_config: { num_attention_heads: 5 } }, /vision_config: 'num_attention_heads' \(5\) must divide hidden_size \(768\)/],
      [{ ...ok, vision_config: { hidden_act: 'swish' } }, /'hidden_act' is 'swish'; supported: 'quick_gelu'/],
      [{ ...ok, text_config: { layer_norm_eps: 0 } }, /'layer_norm_eps' must be a positive number/],
      [{ ...ok, extract_layers: [3, 12] }, /'extract_layers' \[3, 12\] names layer 12, but the vision tower has 12 layers/],
      [{ ...ok, extract_layers: [] }, /'extract_layers' must be a non-empty list/],
      [{ ...ok, reduce_dim: 30 }, /'decoder_num_attention_heads' \(4\) must divide reduce_dim \(30\)/],
      [{ ...ok, conditional_layer: 3 }, /'conditional_layer' \(3\) must be below the number of decoder layers \(3\)/],
      [{ ...ok, use_complex_transposed_convolution: 'yes' }, /'use_complex_transposed_convolution' must be true or false/],
    ];
    for (const [raw, message] of cases) expect(() => parseClipSegConfig(raw), JSON.stringify(raw)).toThrow(message);
  });
});

describe('the full CIDAS/clipseg-rd64-refined architecture', () => {
  it('has 150,747,746 parameters and exactly the published keys and shapes', () => {
    // Allocated uninitialised on a private CPU device: the OS maps the 603 MB lazily.
    const device = new E.CpuDevice();
    const model = new ClipSegForImageSegmentation(CLIPSEG_RD64_REFINED_CONFIG_JSON, { device, empty: true });
    try {
      expect(model.numParameters()).toBe(150_747_746);
      const actual = new Map([...model.stateDict()].map(([k, t]) => [k, [...t.shape]]));
      const expected = publishedRd64RefinedKeys();
      expect(expected.size).toBe(462);
      expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [k, shape] of expected) expect(actual.get(k), k).toEqual(shape);
      const decoder = model.namedParameters().filter(([n]) => n.startsWith('decoder.')).reduce((n, [, p]) => n + p.size, 0);
      expect(decoder).toBe(1_127_009);
    } finally {
      model.dispose();
    }
    expect(device.stats().liveBuffers).toBe(0);
  });

  it('builds the rd64 and rd16 decoders with their published sizes', () => {
    const device = new E.CpuDevice();
    for (const [name, size] of [['CIDAS/clipseg-rd64', 1_073_153], ['CIDAS/clipseg-rd16', 263_681]] as const) {
      const model = new ClipSegForImageSegmentation(clipSegConfigFor(name), { device, empty: true });
      const decoder = model.decoder.numParameters();
      const keys = [...model.decoder.stateDict().keys()].filter((k) => k.startsWith('transposed_convolution'));
      model.dispose();
      expect(decoder, name).toBe(size);
      expect(keys).toEqual(['transposed_convolution.weight', 'transposed_convolution.bias']);
    }
  });
});

const weights = await readSafetensorsFile(`${tinyDir('clipseg_tiny_refined')}weights.safetensors`);
const tinyConfig = parseClipSegConfig(await readJson(`${tinyDir('clipseg_tiny_refined')}config.json`));

describe.each(await testDevices())('CLIPSeg model on %s', (_name, device) => {
  let model: ClipSegForImageSegmentation;
  let live = 0;
  beforeAll(() => {
    live = device.stats().liveBuffers;
    model = new ClipSegForImageSegmentation(tinyConfig, { device, empty: true });
    model.loadWeights(weights);
  });
  afterAll(() => {
    model.dispose();
    expect(device.stats().liveBuffers).toBe(live);
  });
  const pixels = (b: number, h = 64, w = 64, seed = 1) => E.Tensor.fromArray(randomNormal(b * 3 * h * w, seed), [b, 3, h, w], { device });
  const prompt = (rows: number[][]) => {
    const t = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * t);
    const mask = new Int32Array(rows.length * t);
    rows.forEach((r, i) => r.forEach((id, j) => {
      ids[i * t + j] = id;
      mask[i * t + j] = 1;
    }));
    return { inputIds: ids, attentionMask: mask, shape: [rows.length, t] as [number, number] };
  };
  const cat = [998, 5, 17, 999];
  const dog = [998, 42, 7, 300, 999];

  it('keeps the batch dim of a single image: logits [1, H, W]', async () => {
    const out = E.scope(() => E.noGrad(() => model.forward({ pixelValues: pixels(1), tokens: prompt([cat]) })));
    expect(out.logits.shape).toEqual([1, 64, 64]);
    expect(out.intermediates).toBeNull();
    expect(out.decoderHiddenStates.map((t) => t.shape)).toEqual([[1, 17, 16], [1, 17, 16], [1, 17, 16]]);
    E.scope(() => [out.logits, out.conditionalEmbeddings, ...out.decoderHiddenStates].forEach((t) => t.dispose()));
  });

  it('decodes one image against several prompts like a repeated image batch, and the short vision path like the full one', async () => {
    await E.scopeAsync(async () => {
      const one = pixels(1, 64, 64, 7);
      const two = E.concat([one, one], 0);
      const tokens = prompt([cat, dog]);
      const broadcast = E.noGrad(() => model.forward({ pixelValues: one, tokens }));
      const repeated = E.noGrad(() => model.forward({ pixelValues: two, tokens }, { outputIntermediates: true }));
      expect(broadcast.logits.shape).toEqual([2, 64, 64]);
      expectClose(await broadcast.logits.read(), await repeated.logits.read(), 1e-5, 1e-4, 'logits');
      expect(repeated.intermediates!.visionHiddenStates).toHaveLength(5);
      // A given condition, the same as the text tower's, gives the same logits.
      const given = E.noGrad(() => model.forward({ pixelValues: two, conditionalEmbeddings: repeated.conditionalEmbeddings }));
      expectClose(await given.logits.read(), await repeated.logits.read(), 0, 0, 'logits from conditionalEmbeddings');
    });
  });

  it('conditions on a prompt image through visual_projection(post_layernorm(CLS))', async () => {
    await E.scopeAsync(async () => {
      const query = pixels(1, 64, 64, 3);
      const support = pixels(1, 96, 96, 4);
      const out = E.noGrad(() => model.forward({ pixelValues: query, conditionalPixelValues: support }));
      const ref = E.noGrad(() => model.forward({ pixelValues: support, tokens: prompt([cat]) }, { outputIntermediates: true }));
      expectClose(await out.conditionalEmbeddings.read(), await ref.intermediates!.visionProjected.read(), 0, 0, 'visual condition');
    });
  });

  it('segments rectangular inputs (patch multiples) at full resolution', async () => {
    await E.scopeAsync(async () => {
      const out = E.noGrad(() => model.forward({ pixelValues: pixels(1, 48, 80), tokens: prompt([dog]) }));
      expect(out.logits.shape).toEqual([1, 48, 80]);
      expect((await out.logits.read()).every(Number.isFinite)).toBe(true);
    });
  });

  it('pools the EOS token: trailing padding does not change the condition', async () => {
    await E.scopeAsync(async () => {
      const tight = E.noGrad(() => model.clip.textFeatures(prompt([cat])).features);
      const padded = prompt([[...cat, 0, 0, 0]]);
      padded.attentionMask.fill(0, 4);
      const loose = E.noGrad(() => model.clip.textFeatures(padded).features);
      expectClose(await loose.read(), await tight.read(), 1e-6, 1e-5, 'pooled condition');
    });
  });

  it('refuses bad inputs with clear errors', () => {
    E.scope(() => E.noGrad(() => {
      const tokens = prompt([cat]);
      expect(() => model.forward({ pixelValues: pixels(1, 50, 64), tokens })).toThrow(/image size 50x64 .* must be a positive multiple of the patch size 16/);
      expect(() => model.forward({ pixelValues: E.Tensor.zeros([1, 1, 64, 64], { device }), tokens })).toThrow(/must be \[B, 3, H, W\]/);
      expect(() => model.forward({ pixelValues: pixels(1) })).toThrow(/exactly one of tokens, conditionalPixelValues and conditionalEmbeddings/);
      const cond = E.Tensor.zeros([1, 32], { device });
      expect(() => model.forward({ pixelValues: pixels(1), tokens, conditionalEmbeddings: cond })).toThrow(/exactly one/);
      expect(() => model.forward({ pixelValues: pixels(2), tokens: prompt([cat, dog, cat]) })).toThrow(/2 images and 3 conditions/);
      const long = prompt([[998, ...new Array(76).fill(5), 999]]);
      expect(() => model.forward({ pixelValues: pixels(1), tokens: long })).toThrow(/78 tokens per row exceed max_position_embeddings 77/);
      expect(() => model.forward({ pixelValues: pixels(1), tokens: prompt([[998, 1000, 999]]) })).toThrow(/token id 1000 at \[0, 1\] is outside the vocabulary 0..999/);
      expect(() => model.forward({ pixelValues: pixels(1), tokens: { inputIds: [], shape: [1, 0] } })).toThrow(/must be \[B, T\] with B, T >= 1/);
      expect(() => model.forward({ pixelValues: pixels(1), tokens: { ...tokens, attentionMask: [1, 1, 2, 1] } })).toThrow(/attention mask value 2/);
    }));
  });

  it('loads strictly by HF key names (clipseg. alias, position_ids ignored)', () => {
    const host = new Map(weights.keys().map((k) => [k, weights.get(k, { as: 'f32' })] as const));
    const renamed = new Map([...host].map(([k, v]) => [k.replace(/^clip\./, 'clipseg.'), v] as const));
    renamed.set('clip.vision_model.embeddings.position_ids', { shape: [1, 17], data: new Int32Array(17), dtype: 'i32' });
    const report = model.loadWeights(mapSource(renamed));
    expect(report.loaded).toHaveLength(host.size);
    expect(report.ignored).toEqual(['clip.vision_model.embeddings.position_ids']);

    const missing = new Map(host);
    missing.delete('decoder.film_mul.bias');
    expect(() => model.loadWeights(mapSource(missing))).toThrow(/cannot load the CLIPSeg checkpoint: missing keys: 'decoder.film_mul.bias'/);
    const extra = new Map(host).set('decoder.reduce.weight', { shape: [16, 64], data: new Float32Array(1024), dtype: 'f32' });
    expect(() => model.loadWeights(mapSource(extra))).toThrow(/unexpected keys: 'decoder.reduce.weight'/);
    expect(model.loadWeights(mapSource(extra), { strict: false }).unexpected).toEqual(['decoder.reduce.weight']);
    const wrong = new Map(host).set('clip.logit_scale', { shape: [1], data: new Float32Array(1), dtype: 'f32' });
    expect(() => model.loadWeights(mapSource(wrong))).toThrow(/'clip.logit_scale' has shape \[1\], the model expects \[\]/);
    const twice = new Map(host).set('clipseg.logit_scale', host.get('clip.logit_scale')!);
    expect(() => model.loadWeights(mapSource(twice))).toThrow(/'clipseg.logit_scale' and 'clip.logit_scale' both name 'clip.logit_scale'/);
  });
});
