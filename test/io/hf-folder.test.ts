import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { isPlainFileName, parseShardIndex, planHfFolder } from '../../src/engine/io/hf-folder.js';
import { loadHfFolder, readHfFolder, readHfWeights } from '../../src/engine/io/hf-folder-node.js';
import { serializeTensorData } from '../../src/engine/io/safetensors-lazy.js';
import { CheckpointError, type TensorData, tensorsBitEqual } from '../../src/engine/io/tensor-data.js';
import { CRIS_TINY_DIR, crisTiny } from './helpers/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'webvlsm-hf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CONFIG = { model_type: 'clipseg', projection_dim: 512, reduce_dim: 64 };
const REFERENCE = 'proj_legacy_format.reference.safetensors';

let counter = 0;
/** A fresh folder holding `files` (name -> fixture file name, JSON value, or bytes). */
function folder(files: Record<string, string | object | Uint8Array>): string {
  const dir = join(root, `m${counter++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    if (content instanceof Uint8Array) writeFileSync(join(dir, name), content);
    else if (typeof content === 'string') copyFileSync(CRIS_TINY_DIR + content, join(dir, name));
    else writeFileSync(join(dir, name), JSON.stringify(content));
  }
  return dir;
}

function expectBitEqual(a: Map<string, TensorData>, b: Map<string, TensorData>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, t] of a) expect(tensorsBitEqual(t, b.get(k)!), k).toBe(true);
}

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    return (err as Error).message;
  }
  throw new Error('expected a CheckpointError');
}

describe('readHfFolder', () => {
  it('finds config, safetensors weights and tokenizer files', async () => {
    const dir = folder({
      'config.json': CONFIG,
      'model.safetensors': REFERENCE,
      'vocab.json': { '<|endoftext|>': 0 },
      'merges.txt': new TextEncoder().encode('#version: 0.2\n'),
      'preprocessor_config.json': { size: 352 },
    });
    const f = await readHfFolder(dir);
    expect(f.dir).toBe(dir);
    expect(f.config).toEqual(CONFIG);
    expect(f.configPath).toBe(join(dir, 'config.json'));
    expect(f.weights).toEqual({ format: 'safetensors', files: [join(dir, 'model.safetensors')] });
    expect(f.tokenizer).toEqual({ vocabJson: join(dir, 'vocab.json'), mergesTxt: join(dir, 'merges.txt') });
    expect(f.preprocessorPath).toBe(join(dir, 'preprocessor_config.json'));
    expect(f.notes).toEqual([]);
    const ckpt = await readHfWeights(f);
    expect(ckpt.format).toBe('safetensors');
    expectBitEqual(ckpt.tensors, readCheckpoint(crisTiny(REFERENCE), 'ref').tensors);
  });

  it('reads pytorch_model.bin, and prefers model.safetensors when both exist', async () => {
    const bin = await loadHfFolder(folder({ 'config.json': CONFIG, 'pytorch_model.bin': 'weights.pth', 'tokenizer.json': {} }));
    expect(bin.folder.weights.format).toBe('torch');
    expect(bin.folder.tokenizer.tokenizerJson).toMatch(/tokenizer\.json$/);
    expect(bin.checkpoint.format).toBe('torch-zip');
    expectBitEqual(bin.checkpoint.tensors, readCheckpoint(crisTiny('weights.safetensors'), 'ref').tensors);
    const both = await readHfFolder(folder({ 'config.json': CONFIG, 'pytorch_model.bin': 'weights.pth', 'model.safetensors': 'weights.safetensors' }));
    expect(both.weights.files[0]).toMatch(/model\.safetensors$/);
    expect(both.notes).toEqual(['using model.safetensors; also present: pytorch_model.bin']);
  });

  it('reads an open_clip folder (BiomedCLIP layout)', async () => {
    const f = await readHfFolder(folder({ 'open_clip_config.json': { model_cfg: {} }, 'open_clip_pytorch_model.bin': 'weights.pth', 'vocab.txt': new Uint8Array(1) }));
    expect(f.configPath).toMatch(/open_clip_config\.json$/);
    expect(f.weights.format).toBe('torch');
    expect(Object.keys(f.tokenizer)).toEqual(['vocabTxt']);
  });

  it('merges sharded safetensors through model.safetensors.index.json', async () => {
    const all = readCheckpoint(crisTiny(REFERENCE), 'ref').tensors;
    const keys = [...all.keys()];
    const first = new Map(keys.slice(0, 5).map((k) => [k, all.get(k)!]));
    const second = new Map(keys.slice(5).map((k) => [k, all.get(k)!]));
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const index = { metadata: { total_size: 1 }, weight_map: Object.fromEntries(keys.map((k, i) => [k, names[i < 5 ? 0 : 1]])) };
    const dir = folder({
      'config.json': CONFIG,
      'model.safetensors.index.json': index,
      [names[0]!]: serializeTensorData(first),
      [names[1]!]: serializeTensorData(second),
    });
    const f = await readHfFolder(dir);
    expect(f.weights.files).toEqual(names.map((n) => join(dir, n)));
    expect(f.weights.index?.weightMap.size).toBe(16);
    const ckpt = await readHfWeights(f);
    expectBitEqual(ckpt.tensors, all);
    expect(ckpt.report.at(-1)).toBe(`merged 2 shards listed in ${join(dir, 'model.safetensors.index.json')}`);

    // A listed tensor that is not in its shard, a shard that is not there, a name outside the folder.
    const moved = { ...index, weight_map: { ...index.weight_map, [keys[0]!]: names[1] } };
    const bad = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': moved, [names[0]!]: serializeTensorData(first), [names[1]!]: serializeTensorData(second) });
    expect(await errorOf(readHfWeights(await readHfFolder(bad)))).toMatch(/index\.json: 1 listed tensors are not in their shard: 'vis\.1\.0\.weight' \(model-00002-of-00002\.safetensors\)/);
    const lost = folder({ 'config.json': CONFIG, 'model.safetensors.index.json': index, [names[0]!]: serializeTensorData(first) });
    expect(await errorOf(readHfFolder(lost))).toMatch(/index\.json: shard file model-00002-of-00002\.safetensors not found in /);
    const escape = { weight_map: { a: '../model.safetensors' } };
    expect(await errorOf(readHfFolder(folder({ 'config.json': CONFIG, 'model.safetensors.index.json': escape })))).toMatch(
      /tensor 'a' maps to "\.\.\/model\.safetensors", not a file name in the same folder/,
    );
  });

  it('names the path and the cause for a missing folder, config or weights', async () => {
    const missing = join(root, 'nope');
    expect(await errorOf(readHfFolder(missing))).toBe(`${missing}: cannot read the model folder (no such folder)`);
    const file = join(root, 'plain.txt');
    writeFileSync(file, 'x');
    expect(await errorOf(readHfFolder(file))).toMatch(/plain\.txt: not a folder/);
    const noConfig = folder({ 'model.safetensors': REFERENCE });
    expect(await errorOf(readHfFolder(noConfig))).toBe(`${noConfig}: no config.json or open_clip_config.json in the model folder (it holds model.safetensors)`);
    const noWeights = folder({ 'config.json': CONFIG, 'README.md': new Uint8Array(1) });
    expect(await errorOf(readHfFolder(noWeights))).toMatch(/: no weights in the model folder: expected one of model\.safetensors, .*pytorch_model\.bin.* \(it holds README\.md, config\.json\)$/);
    const badJson = folder({ 'config.json': new TextEncoder().encode('{"a": '), 'model.safetensors': REFERENCE });
    expect(await errorOf(readHfFolder(badJson))).toMatch(new RegExp(`^${join(badJson, 'config.json')}: not valid JSON`));
    const corrupt = folder({ 'config.json': CONFIG, 'model.safetensors': new Uint8Array(3) });
    expect(await errorOf(readHfWeights(await readHfFolder(corrupt)))).toMatch(/model\.safetensors: not a checkpoint this reader knows/);
  });
});

describe('folder roles and the shard index (browser-safe part)', () => {
  it('plans roles from a listing', () => {
    const plan = planHfFolder(['pytorch_model.bin', 'config.json', 'merges.txt', 'vocab.json', 'special_tokens_map.json']);
    expect(plan.config).toBe('config.json');
    expect(plan.weights?.file).toBe('pytorch_model.bin');
    expect(plan.tokenizer).toEqual({ vocabJson: 'vocab.json', mergesTxt: 'merges.txt', specialTokensMapJson: 'special_tokens_map.json' });
    expect(planHfFolder([]).weights).toBeNull();
  });

  it('validates index files', () => {
    expect(() => parseShardIndex('[]', 'i.json')).toThrow(/^i\.json: not a JSON object$/);
    expect(() => parseShardIndex('{}', 'i.json')).toThrow(/no "weight_map" object/);
    expect(() => parseShardIndex('{"weight_map": {}}', 'i.json')).toThrow(/lists no tensors/);
    expect(() => parseShardIndex('{"weight_map": {"a": 3}}', 'i.json')).toThrow(/tensor 'a' maps to 3/);
    expect(['a.bin', '..', '.', 'a/b', 'a\\b', ''].map(isPlainFileName)).toEqual([true, false, false, false, false, false]);
  });
});
