/**
 * CRIS model: config parsing and its consistency checks, the full RN50/RN101 architectures
 * (parameter counts of docs/architectures.md §3.9 / weights/manifest.json and every key and shape
 * of the published tables, built without allocating real memory), weight loading (the three
 * checkpoint layouts give the same model, `module.` keys, strict errors, OpenAI CLIP backbone
 * files with CRIS's float16 round trip), the fixed encodings (linspace, 2-D / 1-D sine, the
 * attention-pool position resize) and forward behaviour beyond the golden data (padding mask,
 * rectangular inputs, train vs eval, input errors, post-processing helpers).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import {
  CRIS_R101_CONFIG_JSON,
  CRIS_R50_CONFIG_JSON,
  Cris,
  crisConfigFor,
  crisLoss,
  crisMask,
  crisProbabilities,
  float16RoundTripNames,
  linspaceF32,
  paddingMask,
  parseCrisConfig,
  positionEncoding1d,
  positionEncoding2d,
  roundToFloat16,
} from '../../src/models/cris/index.js';
import { argmaxPositions } from '../../src/models/clip/openai-clip.js';
import { expectClose } from '../helpers/allclose.js';
import { randomNormal } from '../helpers/gradcheck.js';
import { testDevices } from '../helpers/devices.js';

const fixtures = new URL('../fixtures/cris_tiny/', import.meta.url).pathname;
const manifest = JSON.parse(readFileSync(`${fixtures}manifest.json`, 'utf8'));
const tinyConfig = manifest.config as Record<string, unknown>;
const readCk = (name: string, options: E.ReadCheckpointOptions = {}) => E.readCheckpoint(readFileSync(`${fixtures}${name}`), name, options);
const weightsManifest = JSON.parse(readFileSync(new URL('../../weights/manifest.json', import.meta.url), 'utf8'));
const expectedEntry = (name: string) => {
  const entry = (weightsManifest.checkpoints as { name: string; expectedParameters: number; expectedTensors: number }[]).find((m) => m.name === name);
  if (!entry) throw new Error(`weights/manifest.json has no checkpoint '${name}'`);
  return entry;
};

/** The key tables of docs/architectures.md §3.9, written out independently of the model code. */
function publishedCrisKeys(blocks: number[], embed: number, v5: number): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  const bnKeys = (name: string, c: number) => {
    for (const s of ['weight', 'bias', 'running_mean', 'running_var']) keys.set(`${name}.${s}`, [c]);
    keys.set(`${name}.num_batches_tracked`, []);
  };
  const v = 'backbone.visual';
  keys.set(`${v}.conv1.weight`, [32, 3, 3, 3]);
  keys.set(`${v}.conv2.weight`, [32, 32, 3, 3]);
  keys.set(`${v}.conv3.weight`, [64, 32, 3, 3]);
  bnKeys(`${v}.bn1`, 32);
  bnKeys(`${v}.bn2`, 32);
  bnKeys(`${v}.bn3`, 64);
  const in0 = [64, 256, 512, 1024];
  for (let l = 1; l <= 4; l++) {
    const p = 64 * 2 ** (l - 1);
    for (let b = 0; b < blocks[l - 1]!; b++) {
      const at = `${v}.layer${l}.${b}`;
      keys.set(`${at}.conv1.weight`, [p, b === 0 ? in0[l - 1]! : 4 * p, 1, 1]);
      bnKeys(`${at}.bn1`, p);
      keys.set(`${at}.conv2.weight`, [p, p, 3, 3]);
      bnKeys(`${at}.bn2`, p);
      keys.set(`${at}.conv3.weight`, [4 * p, p, 1, 1]);
      bnKeys(`${at}.bn3`, 4 * p);
      if (b === 0) {
        keys.set(`${at}.downsample.0.weight`, [4 * p, in0[l - 1]!, 1, 1]);
        bnKeys(`${at}.downsample.1`, 4 * p);
      }
    }
  }
  keys.set(`${v}.attnpool.positional_embedding`, [50, 2048]);
  for (const q of ['q', 'k', 'v']) {
    keys.set(`${v}.attnpool.${q}_proj.weight`, [2048, 2048]);
    keys.set(`${v}.attnpool.${q}_proj.bias`, [2048]);
  }
  keys.set(`${v}.attnpool.c_proj.weight`, [embed, 2048]);
  keys.set(`${v}.attnpool.c_proj.bias`, [embed]);
  keys.set(`${v}.attnpool.connect.0.weight`, [embed, 2048, 1, 1]);
  bnKeys(`${v}.attnpool.connect.1`, embed);
  for (let i = 0; i < 12; i++) {
    const at = `backbone.transformer.resblocks.${i}`;
    keys.set(`${at}.attn.in_proj_weight`, [1536, 512]);
    keys.set(`${at}.attn.in_proj_bias`, [1536]);
    keys.set(`${at}.attn.out_proj.weight`, [512, 512]);
    keys.set(`${at}.attn.out_proj.bias`, [512]);
    for (const ln of ['ln_1', 'ln_2']) for (const s of ['weight', 'bias']) keys.set(`${at}.${ln}.${s}`, [512]);
    keys.set(`${at}.mlp.c_fc.weight`, [2048, 512]);
    keys.set(`${at}.mlp.c_fc.bias`, [2048]);
    keys.set(`${at}.mlp.c_proj.weight`, [512, 2048]);
    keys.set(`${at}.mlp.c_proj.bias`, [512]);
  }
  keys.set('backbone.token_embedding.weight', [49408, 512]);
  keys.set('backbone.positional_embedding', [77, 512]);
  keys.set('backbone.ln_final.weight', [512]);
  keys.set('backbone.ln_final.bias', [512]);
  keys.set('backbone.text_projection', [512, embed]);
  keys.set('backbone.logit_scale', []);
  const cbr = (name: string, shape: number[]) => {
    keys.set(`${name}.0.weight`, shape);
    bnKeys(`${name}.1`, shape[0]!);
  };
  keys.set('neck.txt_proj.0.weight', [1024, v5]);
  bnKeys('neck.txt_proj.1', 1024);
  cbr('neck.f1_v_proj', [1024, v5, 1, 1]);
  bnKeys('neck.norm_layer.0', 1024);
  cbr('neck.f2_v_proj', [512, 1024, 3, 3]);
  cbr('neck.f2_cat', [512, 1536, 1, 1]);
  cbr('neck.f3_v_proj', [256, 512, 3, 3]);
  cbr('neck.f3_cat', [512, 768, 1, 1]);
  cbr('neck.f4_proj5', [512, 1024, 3, 3]);
  cbr('neck.f4_proj4', [512, 512, 3, 3]);
  cbr('neck.f4_proj3', [512, 512, 3, 3]);
  cbr('neck.aggr', [512, 1536, 1, 1]);
  cbr('neck.coordconv.0.conv1', [512, 514, 3, 3]);
  cbr('neck.coordconv.1', [512, 512, 3, 3]);
  for (let j = 0; j < 3; j++) {
    const at = `decoder.layers.${j}`;
    for (const a of ['self_attn', 'multihead_attn']) {
      keys.set(`${at}.${a}.in_proj_weight`, [1536, 512]);
      keys.set(`${at}.${a}.in_proj_bias`, [1536]);
      keys.set(`${at}.${a}.out_proj.weight`, [512, 512]);
      keys.set(`${at}.${a}.out_proj.bias`, [512]);
    }
    for (const n of ['self_attn_norm', 'cross_attn_norm', 'norm1', 'norm2', 'norm3']) for (const s of ['weight', 'bias']) keys.set(`${at}.${n}.${s}`, [512]);
    keys.set(`${at}.ffn.0.weight`, [2048, 512]);
    keys.set(`${at}.ffn.0.bias`, [2048]);
    keys.set(`${at}.ffn.3.weight`, [2048]);
    keys.set(`${at}.ffn.3.bias`, [2048]);
    keys.set(`${at}.ffn.4.weight`, [512, 2048]);
    keys.set(`${at}.ffn.4.bias`, [512]);
  }
  keys.set('decoder.norm.weight', [512]);
  keys.set('decoder.norm.bias', [512]);
  cbr('proj.vis.1', [512, 512, 3, 3]);
  cbr('proj.vis.3', [256, 512, 3, 3]);
  keys.set('proj.vis.4.weight', [256, 256, 1, 1]);
  keys.set('proj.vis.4.bias', [256]);
  keys.set('proj.txt.weight', [2305, embed]);
  keys.set('proj.txt.bias', [2305]);
  return keys;
}

describe('CRIS config', () => {
  it('parses the tiny golden config with build_model defaults', () => {
    const c = parseCrisConfig(tinyConfig);
    expect(c.clip).toMatchObject({ embedDim: 64, contextLength: 77, vocabSize: 1000, transformerWidth: 64, transformerHeads: 1, transformerLayers: 2 });
    expect(c.clip.vision).toEqual({ layers: [1, 1, 1, 1], width: 4, heads: 2, inputResolution: 128 });
    expect(c).toMatchObject({ wordLen: 17, wordDim: 64, visDim: 64, fpnIn: [32, 64, 64], fpnOut: [32, 64, 64], numLayers: 2, numHead: 4, dimFfn: 128 });
    expect(c).toMatchObject({ dropout: 0.1, inputSize: 416 });
  });

  it('gives the published configs their backbone sizes and the checkpoint word_len', () => {
    const r50 = crisConfigFor('cris-r50', { wordLen: 22 });
    expect(r50.wordLen).toBe(22);
    expect(r50.clip).toMatchObject({ embedDim: 1024, transformerHeads: 8, vision: { layers: [3, 4, 6, 3], heads: 32, width: 64, inputResolution: 224 } });
    expect(crisConfigFor('cris-r101').clip.vision.layers).toEqual([3, 4, 23, 3]);
  });

  it('rejects inconsistent configs naming the fields', () => {
    const ok = tinyConfig;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, clip: undefined }, /'clip' must be an object/],
      [{ ...ok, word_len: 0 }, /'word_len' must be a positive integer/],
      [{ ...ok, word_len: 78 }, /'word_len' \(78\) exceeds the CLIP context length 77/],
      [{ ...ok, fpn_in: [32, 64] }, /'fpn_in' must be a list of 3 positive integers/],
      [{ ...ok, fpn_in: [16, 64, 64] }, /'fpn_in'\[0\] \(16\) must be the layer2 width 8 \* vision_width = 32/],
      [{ ...ok, fpn_in: [32, 64, 32] }, /'fpn_in'\[2\] \(32\) must be the CLIP embed dim 64/],
      [{ ...ok, word_dim: 32 }, /'word_dim' \(32\) must be the CLIP embed dim 64/],
      [{ ...ok, vis_dim: 32 }, /'fpn_out'\[1\] \(64\) must equal 'vis_dim' \(32\)/],
      [{ ...ok, num_head: 5 }, /'num_head' \(5\) must divide 'vis_dim' \(64\)/],
      [{ ...ok, dropout: 1 }, /'dropout' must be a number in \[0, 1\)/],
      [{ ...ok, clip: { ...(ok.clip as object), image_resolution: 100 } }, /'clip.image_resolution' \(100\) must be a multiple of 32/],
    ];
    for (const [raw, message] of cases) expect(() => parseCrisConfig(raw), JSON.stringify(raw)).toThrow(message);
  });
});

describe('the full CRIS architectures (random weights, not allocated)', () => {
  it.each([
    ['cris-r50', CRIS_R50_CONFIG_JSON, [3, 4, 6, 3], 1024, 104_106_337, 42_742_785, 495],
    ['cris-r101', CRIS_R101_CONFIG_JSON, [3, 4, 23, 3], 512, 120_737_633, 40_514_049, 801],
  ] as const)('%s has the published parameter count and exactly the published keys and shapes', (name, json, blocks, embed, backbone, head, backboneKeys) => {
    // Allocated uninitialised on a private CPU device: the OS maps the ~600 MB lazily.
    const device = new E.CpuDevice();
    const model = new Cris(json, { device, empty: true });
    try {
      const entry = expectedEntry(name);
      expect(model.numParameters()).toBe(entry.expectedParameters);
      expect(model.backbone.numParameters()).toBe(backbone);
      expect(model.numParameters() - model.backbone.numParameters()).toBe(head);
      const actual = new Map([...model.stateDict()].map(([k, t]) => [k, [...t.shape]]));
      expect(actual.size).toBe(entry.expectedTensors);
      expect([...actual.keys()].filter((k) => k.startsWith('backbone.')).length).toBe(backboneKeys);
      const expected = publishedCrisKeys([...blocks], embed, embed);
      expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [k, shape] of expected) expect(actual.get(k), k).toEqual(shape);
      expect(model.stateDict().get('neck.txt_proj.1.num_batches_tracked')!.dtype).toBe('i32');
    } finally {
      model.dispose();
    }
    expect(device.stats().liveBuffers).toBe(0);
  });
});

describe('CRIS weight loading', () => {
  const device = new E.CpuDevice();
  const state = (m: Cris) => Promise.all([...m.stateDict()].map(async ([k, t]) => [k, Array.from(await t.read())] as const));

  it('loads weights.pth, the train.py checkpoint and safetensors to the same model', async () => {
    const results = [];
    for (const file of ['weights.pth', 'checkpoint_train_format.pth', 'weights.safetensors']) {
      const { model, report } = Cris.fromCheckpoint(readFileSync(`${fixtures}${file}`), file, tinyConfig, { device });
      expect(report.loaded.length, file).toBe(302);
      expect(model.training).toBe(false);
      expect(model.numParameters()).toBe(manifest.num_parameters);
      results.push(await state(model));
      model.dispose();
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(device.stats().liveBuffers).toBe(0);
  });

  it('accepts keys that still carry module., and fails strictly on missing, unexpected and misshapen keys', () => {
    const raw = readCk('checkpoint_train_format.pth', { stripPrefixes: [] });
    expect([...raw.tensors.keys()].every((k) => k.startsWith('module.'))).toBe(true);
    const model = new Cris(tinyConfig, { device, empty: true });
    try {
      expect(model.loadWeights(raw.tensors).loaded.length).toBe(302);
      const bare = readCk('weights.pth').tensors;
      const missing = new Map(bare);
      missing.delete('neck.aggr.0.weight');
      expect(() => model.loadWeights(missing)).toThrow(/missing: 'neck.aggr.0.weight' \[64, 192, 1, 1\]/);
      const extra = new Map(bare).set('proj.extra', bare.get('proj.txt.bias')!);
      expect(() => model.loadWeights(extra)).toThrow(/unexpected: 'proj.extra'/);
      const misshapen = new Map(bare).set('proj.txt.bias', bare.get('neck.aggr.1.bias')!);
      expect(() => model.loadWeights(misshapen)).toThrow(/shape: 'proj.txt.bias' is \[64\] in the checkpoint, \[289\] in the model/);
    } finally {
      model.dispose();
    }
  });

  it('rounds exactly the tensors CRIS casts to float16 (the tiny backbone is float16-exact there and only there)', () => {
    const model = new Cris(tinyConfig, { device, empty: true });
    try {
      const names = float16RoundTripNames(model.backbone);
      expect(names.size).toBe(45);
      for (const n of ['text_projection', 'visual.conv1.weight', 'visual.layer1.0.downsample.0.weight', 'visual.attnpool.c_proj.bias',
        'visual.attnpool.connect.0.weight', 'transformer.resblocks.1.attn.in_proj_bias', 'transformer.resblocks.0.attn.out_proj.weight']) {
        expect(names.has(n), n).toBe(true);
      }
      const exact = (d: Float32Array) => d.every((v) => roundToFloat16(v) === v);
      for (const [k, t] of readCk('weights.safetensors').tensors) {
        if (!k.startsWith('backbone.') || t.dtype !== 'f32') continue;
        expect(exact(t.data as Float32Array), k).toBe(names.has(k.slice('backbone.'.length)));
      }
    } finally {
      model.dispose();
    }
  });

  it('rounds to float16 like the hardware format (ties to even, subnormals, overflow)', () => {
    expect(roundToFloat16(1 / 3)).toBe(0.333251953125);
    expect(roundToFloat16(-1 / 3)).toBe(-0.333251953125);
    expect(roundToFloat16(1 + 2 ** -11)).toBe(1); // tie -> even
    expect(roundToFloat16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundToFloat16(65504)).toBe(65504);
    expect(roundToFloat16(65519)).toBe(65504);
    expect(roundToFloat16(65520)).toBe(Infinity);
    expect(roundToFloat16(2 ** -24)).toBe(2 ** -24);
    expect(roundToFloat16(2 ** -26)).toBe(0);
    expect(roundToFloat16(3 * 2 ** -26)).toBe(2 ** -24);
    expect(roundToFloat16(0.1)).toBe(0.0999755859375);
    expect(roundToFloat16(-0)).toBe(-0);
  });

  it('loads an OpenAI CLIP ResNet state dict into the backbone (scalars dropped, connect kept, float16 round trip)', async () => {
    const bare = readCk('weights.safetensors').tensors;
    const clip = new Map<string, E.TensorData>();
    for (const [k, t] of bare) {
      if (k.startsWith('backbone.') && !k.startsWith('backbone.visual.attnpool.connect.')) clip.set(k.slice('backbone.'.length), t);
    }
    for (const s of ['input_resolution', 'context_length', 'vocab_size']) clip.set(s, { dtype: 'i64', shape: [], data: new BigInt64Array([77n]) });
    // One weight that is not float16-exact: CRIS's loader rounds it.
    const c1 = clip.get('visual.conv1.weight')!;
    const perturbed = Float32Array.from(c1.data as Float32Array, (v) => v + 1e-6);
    clip.set('visual.conv1.weight', { dtype: 'f32', shape: c1.shape, data: perturbed });
    const model = new Cris(tinyConfig, { device, empty: true });
    try {
      const report = model.loadClipBackbone(clip);
      expect(report.loaded.length).toBe(bare.size - [...bare.keys()].filter((k) => !k.startsWith('backbone.') || k.includes('attnpool.connect.')).length);
      expect(report.missing.map((m) => m.name).sort()).toEqual([...bare.keys()].filter((k) => k.includes('attnpool.connect.')).map((k) => k.slice(9)).sort());
      expect(report.roundedThroughFloat16).toContain('visual.conv1.weight');
      expectClose(await model.backbone.visual.conv1.weight.read(), Float32Array.from(perturbed, roundToFloat16), 0, 0);
      expectClose(await model.backbone.visual.conv1.weight.read(), c1.data as Float32Array, 2e-3, 0);
      clip.delete('ln_final.weight');
      expect(() => model.loadClipBackbone(clip)).toThrow(/not a CLIP ResNet of this size .*nothing was loaded.*missing 'ln_final.weight'/);
    } finally {
      model.dispose();
    }
  });
});

describe('CRIS fixed encodings', () => {
  it('pools the text at the first largest id of each row (torch argmax)', () => {
    const tokens = { inputIds: new Int32Array([998, 5, 999, 0, 0, 998, 999, 7, 999, 0]), shape: [2, 5] };
    expect(argmaxPositions(tokens)).toEqual([2, 1]);
  });

  it('linspace in float32 as torch (both halves, one step)', () => {
    expect(Array.from(linspaceF32(-1, 1, 5))).toEqual([-1, -0.5, 0, 0.5, 1]);
    expect(Array.from(linspaceF32(-1, 1, 1))).toEqual([-1]);
    const six = linspaceF32(-1, 1, 6);
    expect(six[0]).toBe(-1);
    expect(six[5]).toBe(1);
    expect(six[2]).toBe(Math.fround(-1 + Math.fround(0.4 * 2)));
  });

  it('2-D and 1-D sine encodings match the formulas of §3.6', () => {
    const [c, h, w] = [16, 3, 5];
    const pe = positionEncoding2d(c, h, w);
    const expected = new Float32Array(h * w * c);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let k = 0; k < c / 4; k++) {
          const omega = Math.exp((-2 * k * Math.log(10000)) / (c / 2));
          const row = (y * w + x) * c;
          expected[row + 2 * k] = Math.sin(x * omega);
          expected[row + 2 * k + 1] = Math.cos(x * omega);
          expected[row + c / 2 + 2 * k] = Math.sin(y * omega);
          expected[row + c / 2 + 2 * k + 1] = Math.cos(y * omega);
        }
      }
    }
    expectClose(pe, expected, 1e-6, 0);
    const p1 = positionEncoding1d(8, 4);
    const e1 = new Float32Array(32);
    for (let p = 0; p < 4; p++) {
      for (let k = 0; k < 4; k++) {
        const nu = Math.exp((-2 * k * Math.log(10000)) / 8);
        e1[p * 8 + 2 * k] = Math.sin(p * nu);
        e1[p * 8 + 2 * k + 1] = Math.cos(p * nu);
      }
    }
    expectClose(p1, e1, 1e-6, 0);
    expect(() => positionEncoding2d(6, 2, 2)).toThrow(/multiple of 4/);
  });
});

describe.each(await testDevices())('CRIS model on %s', (_name, device) => {
  let model: Cris;
  let live = 0;
  beforeAll(() => {
    live = device.stats().liveBuffers;
    model = Cris.fromCheckpoint(readFileSync(`${fixtures}weights.pth`), 'weights.pth', tinyConfig, { device }).model;
  });
  afterAll(() => {
    model.dispose();
    expect(device.stats().liveBuffers).toBe(live);
  });
  const pixels = (b: number, h: number, w: number, seed = 1) => E.Tensor.fromArray(randomNormal(b * 3 * h * w, seed), [b, 3, h, w], { device });
  const prompt = (rows: number[][]) => {
    const ids = new Int32Array(rows.length * 17);
    rows.forEach((r, i) => ids.set([998, ...r, 999], i * 17));
    return { inputIds: ids, shape: [rows.length, 17] as [number, number] };
  };

  it('resizes the attention-pool positions bicubically, exactly the identity at the stored grid', async () => {
    const pool = model.backbone.visual.attnpool;
    const pos = await pool.positionalEmbedding.read();
    const same = await E.scopeAsync(async () => pool.resizedPositions(4, 4).read());
    const expected = new Float32Array(128 * 16);
    for (let r = 0; r < 16; r++) for (let ch = 0; ch < 128; ch++) expected[ch * 16 + r] = pos[(r + 1) * 128 + ch]!;
    expectClose(same, expected, 1e-6, 0);
    const small = E.scope(() => pool.resizedPositions(3, 3));
    expect(small.shape).toEqual([128, 9]);
    small.dispose();
  });

  it('builds the padding mask from id 0, and a prompt is unaffected by the other rows of its batch', async () => {
    expect(Array.from(paddingMask(prompt([[5, 6]])))).toEqual([0, 0, 0, 0, ...new Array(13).fill(1)]);
    const a = await E.scopeAsync(async () => model.forward({ pixels: pixels(1, 64, 64, 3), tokens: prompt([[5, 6, 7]]) }).pred.read());
    const both = await E.scopeAsync(async () => {
      const two = E.concat([pixels(1, 64, 64, 3), pixels(1, 64, 64, 4)], 0);
      return model.forward({ pixels: two, tokens: prompt([[5, 6, 7], [9, 10, 11, 12, 13, 14]]) }).pred.read();
    });
    expectClose(both.subarray(0, a.length), a, 1e-5, 1e-4);
  });

  it('runs rectangular inputs and gives [B, 1, H/4, W/4] logits', () => {
    E.scope(() => {
      const out = model.forward({ pixels: pixels(1, 64, 96), tokens: prompt([[1, 2]]) }, { outputIntermediates: true });
      expect(out.pred.shape).toEqual([1, 1, 16, 24]);
      expect(out.intermediates!.visC5.shape).toEqual([1, 64, 2, 3]);
      expect(out.intermediates!.fqDecoder.shape).toEqual([1, 64, 24]);
      expect(out.intermediates!.wordFeatures.shape).toEqual([1, 17, 64]);
    });
  });

  it('applies dropout only in training mode', async () => {
    const run = () => E.scopeAsync(async () => model.forward({ pixels: pixels(1, 64, 64), tokens: prompt([[4]]) }).pred.read());
    const evalA = await run();
    expectClose(await run(), evalA, 0, 0);
    model.train();
    try {
      const trained = await run();
      expect(trained.some((v, i) => Math.abs(v - evalA[i]!) > 1e-4)).toBe(true);
    } finally {
      model.eval();
    }
  });

  it('rejects mismatched inputs clearly', () => {
    E.scope(() => {
      const px = pixels(1, 64, 64);
      const short = { inputIds: new Int32Array([998, 1, 999]), shape: [1, 3] };
      expect(() => model.forward({ pixels: px, tokens: short })).toThrow(/prompts have 3 tokens, the model's word_len is 17/);
      expect(() => model.forward({ pixels: px, tokens: prompt([[1], [2]]) })).toThrow(/2 prompts for 1 images/);
      const bad = prompt([[1000]]);
      expect(() => model.forward({ pixels: px, tokens: bad })).toThrow(/token id 1000 at \[0, 1\] is outside the vocabulary 0..999/);
      expect(() => model.forward({ pixels: E.Tensor.zeros([1, 1, 64, 64], { device }), tokens: prompt([[1]]) })).toThrow(/must be \[B, 3, H, W\]/);
    });
  });

  it('post-processes and scores as CRIS: sigmoid + bicubic (align corners) resize, 0.35 threshold, nearest-resized BCE', async () => {
    await E.scopeAsync(async () => {
      const logits = E.Tensor.fromArray([-2, 0, 0.5, 3], [1, 1, 2, 2], { device });
      const probs = crisProbabilities(logits);
      expect(probs.shape).toEqual([1, 1, 8, 8]);
      const p = await probs.read();
      // align_corners: the corners keep their values.
      expectClose([p[0]!, p[7]!, p[56]!, p[63]!], [-2, 0, 0.5, 3].map((v) => 1 / (1 + Math.exp(-v))), 1e-6, 1e-5);
      expect(Array.from(await crisMask(E.sigmoid(logits)).read())).toEqual([0, 1, 1, 1]);
      const mask = E.Tensor.fromArray([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1], [1, 1, 4, 4], { device });
      const loss = await crisLoss(logits, mask).read();
      const small = E.Tensor.fromArray([1, 0, 0, 1], [1, 1, 2, 2], { device });
      expectClose(loss, await E.bceWithLogits(logits, small).read(), 1e-6, 1e-6);
    });
  });
});
