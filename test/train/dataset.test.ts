/**
 * MedVlsmDataset on an in-memory synthetic dataset: loading samples (RGB images, binarised masks at
 * original size), prompt choices, seeded batching that repeats and resumes, and the pre-training
 * check that reports missing, unreadable and 0/1-valued masks all together.
 */
import { describe, expect, it } from 'vitest';
import { encodePng } from '../../src/models/image/index.js';
import {
  DatasetFilesError,
  MedVlsmDataset,
  assertDatasetsReadable,
  binarizeMask,
  epochBatches,
  memorySource,
  parseAnnotations,
  parsePromptChoice,
  formatPromptChoice,
  resizeMaskNearest,
  AnnotationError,
} from '../../src/train/data/index.js';
import { generateSyntheticDataset, syntheticSource } from '../../src/train/synthetic/index.js';

const synth = generateSyntheticDataset({ seed: 3, images: { train: 12, val: 4, test: 4 } });

describe('MedVlsmDataset on a synthetic dataset in memory', () => {
  it('opens train/val/test and loads RGB images and 0/1 masks at original size', async () => {
    const d = await MedVlsmDataset.open(syntheticSource(synth), { name: 'synth', prompt: { kind: 'key', key: 'p6' } });
    expect(d.splitNames).toEqual(['train', 'val', 'test']);
    expect(d.size('train')).toBe(synth.splits.train!.entries.length);
    const s = await d.loadSample('train', 0);
    expect(s.image).toMatchObject({ width: 64, height: 64, channels: 3 });
    expect(s.mask.data.length).toBe(64 * 64);
    expect(new Set(s.mask.data)).toEqual(new Set([0, 1]));
    const entry = synth.splits.train!.entries[0]!;
    expect(s.prompt).toEqual({ text: entry.prompts.p6, key: 'p6', alternative: null });
    // The mask is the generator's target mask.
    const img = synth.splits.train!.images[0]!;
    expect([...s.mask.data]).toEqual([...img.masks[entry.target as number]!.data]);
  });

  it('fails clearly on a missing split or annotation folder', async () => {
    await expect(MedVlsmDataset.open(syntheticSource(synth), { splits: ['testA'] })).rejects.toThrow(/anns\/testA.json does not exist/);
    await expect(MedVlsmDataset.open(memorySource({}, 'empty'))).rejects.toThrow(/no annotation file found/);
    const bad = memorySource({ 'anns/test.json': new TextEncoder().encode('[{"img_name": 3}') }, 'bad');
    await expect(MedVlsmDataset.open(bad)).rejects.toThrow(/bad\/anns\/test.json: not valid JSON/);
  });

  it('validates annotation entries and lists every problem', () => {
    let error: unknown;
    try {
      parseAnnotations(
        [
          { img_name: 'a.png', mask_name: 'a.png', prompts: { p0: '', p1: ['x', 'y'] } },
          { img_name: '', mask_name: 'b.png', prompts: {} },
          { img_name: 'c.png', mask_name: '../c.png' },
          { img_name: 'd.png', mask_name: 'd.png', prompts: { p1: 3, p2: [] } },
          'e',
        ],
        'anns/x.json',
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AnnotationError);
    expect((error as AnnotationError).problems).toEqual([
      'entry 1: "img_name" must be a non-empty string',
      'entry 2: "mask_name" "../c.png" must be a relative path inside the folder',
      'entry 3: prompt "p1" must be a string or a non-empty list of strings',
      'entry 3: prompt "p2" must be a string or a non-empty list of strings',
      'entry 4: expected an object',
    ]);
    expect(() => parseAnnotations({ a: 1 }, 'f.json')).toThrow(/f.json: [\s\S]*expected a JSON list of entries, found object/);
    // Entries without prompts are accepted (prompts {}), extra keys kept.
    const [e] = parseAnnotations([{ img_name: 'a.png', mask_name: 'm/a.png', bbox: [1, 2] }], 'g.json');
    expect(e).toEqual({ imgName: 'a.png', maskName: 'm/a.png', prompts: {}, extra: { bbox: [1, 2] } });
  });

  it('parses prompt choices from text', () => {
    expect(parsePromptChoice('p3')).toEqual({ kind: 'key', key: 'p3' });
    expect(parsePromptChoice('random')).toEqual({ kind: 'random' });
    expect(parsePromptChoice('')).toEqual({ kind: 'empty' });
    expect(parsePromptChoice('empty')).toEqual({ kind: 'empty' });
    expect(parsePromptChoice('text:a red polyp')).toEqual({ kind: 'override', text: 'a red polyp' });
    expect(() => parsePromptChoice('polyp')).toThrow(/"text:<prompt>"/);
    for (const s of ['p10', 'random', 'empty', 'text:x y']) expect(formatPromptChoice(parsePromptChoice(s))).toBe(s);
  });

  it('batches: seeded shuffles per epoch, every index once, reproducible and resumable', async () => {
    const d = await MedVlsmDataset.open(syntheticSource(synth), { seed: 11 });
    const n = d.size('train');
    const e0 = d.batches('train', { batchSize: 4, epoch: 0 });
    expect(e0.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(e0.slice(0, -1).every((b) => b.length === 4)).toBe(true);
    expect(d.batches('train', { batchSize: 4, epoch: 0 })).toEqual(e0);
    expect(d.batches('train', { batchSize: 4, epoch: 1 })).not.toEqual(e0);
    expect(d.batches('train', { batchSize: 4, epoch: 0, shuffle: false }).flat()).toEqual(Array.from({ length: n }, (_, i) => i));
    const dropped = d.batches('train', { batchSize: 5, epoch: 0, dropLast: true });
    expect(dropped).toHaveLength(Math.floor(n / 5));
    // Resuming at batch k of epoch e sees the same samples with the same prompts.
    const all: string[] = [];
    for await (const batch of d.iterateBatches('train', { batchSize: 4, epoch: 2 })) all.push(...batch.map((s) => `${s.index}:${s.prompt.text}`));
    const again: string[] = [];
    for (const batch of d.batches('train', { batchSize: 4, epoch: 2 }).slice(1)) {
      for (const i of batch) again.push(`${i}:${d.promptFor('train', i, 2).text}`);
    }
    expect(again).toEqual(all.slice(4));
    expect(() => epochBatches(3, { batchSize: 0, seed: 0, epoch: 0 })).toThrow(/positive integer/);
  });

  it('caches decoded files when asked', async () => {
    let reads = 0;
    const inner = syntheticSource(synth);
    const counting = { location: 'counting', read: async (p: string) => (reads++, inner.read(p)) };
    const d = await MedVlsmDataset.open(counting, { cache: true, splits: ['val'] });
    const before = reads;
    await d.loadSample('val', 0);
    await d.loadSample('val', 0);
    expect(reads - before).toBe(2);
  });

  it('check() passes on a complete dataset', async () => {
    const d = await MedVlsmDataset.open(syntheticSource(synth));
    expect(await d.check()).toEqual([]);
    expect(await d.check({ level: 'exists' })).toEqual([]);
  });

  it('reports missing, unreadable and 0/1-valued masks of all splits together', async () => {
    const files = new Map(synth.files);
    const train = synth.splits.train!.entries;
    const test = synth.splits.test!.entries;
    files.delete(`images/${train[0]!.img_name}`);
    files.delete(`masks/${test[0]!.mask_name}`);
    files.set(`images/${train[2]!.img_name}`, new TextEncoder().encode('GIF89a not really'));
    files.set(`masks/${train[3]!.mask_name}`, Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    const labelMask = { width: 4, height: 4, channels: 1 as const, data: Uint8Array.from({ length: 16 }, (_, i) => (i % 3 === 0 ? 1 : 0)) };
    files.set(`masks/${train[4]!.mask_name}`, encodePng(labelMask));
    const d = await MedVlsmDataset.open(memorySource(files, 'broken'), { name: 'broken' });
    const error = await assertDatasetsReadable([d]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetFilesError);
    const got = (error as DatasetFilesError).problems.map((p) => `${p.kind} ${p.path} ${p.split}`);
    expect(got.sort()).toEqual(
      [
        `missing images/${train[0]!.img_name} train`,
        `unreadable images/${train[2]!.img_name} train`,
        `unreadable masks/${train[3]!.mask_name} train`,
        `mask-values masks/${train[4]!.mask_name} train`,
        `missing masks/${test[0]!.mask_name} test`,
      ].sort(),
    );
    const msg = (error as Error).message;
    expect(msg).toMatch(/5 problem\(s\)/);
    expect(msg).toMatch(/unsupported image format: this is a GIF image/);
    expect(msg).toMatch(/largest mask value is 1.*maskThreshold: 0/);
    // With maskThreshold 0 the 0/1 mask is accepted and read as foreground where 1.
    const lenient = await MedVlsmDataset.open(memorySource(files, 'broken'), { maskThreshold: 0 });
    expect((await lenient.check()).some((p) => p.kind === 'mask-values')).toBe(false);
    const m = await lenient.loadMask(train[4]!.mask_name);
    expect([...m.data]).toEqual([...labelMask.data]);
  });
});

describe('mask helpers', () => {
  it('binarises the first channel with > 127 by default', () => {
    const img = { width: 4, height: 1, channels: 3 as const, data: Uint8Array.from([0, 255, 255, 127, 0, 0, 128, 0, 0, 255, 9, 9]) };
    expect([...binarizeMask(img).data]).toEqual([0, 0, 1, 1]);
    expect([...binarizeMask(img, 0).data]).toEqual([0, 1, 1, 1]);
  });

  it('resizes with nearest-exact (pixel-centre) sampling', () => {
    const m = { width: 2, height: 1, data: Uint8Array.from([1, 0]) };
    expect([...resizeMaskNearest(m, 5, 1).data]).toEqual([1, 1, 0, 0, 0]); // src = floor((dst + 0.5) * 0.4)
    const big = { width: 4, height: 1, data: Uint8Array.from([0, 1, 1, 0]) };
    expect([...resizeMaskNearest(big, 2, 1).data]).toEqual([1, 0]); // samples 1, 3
    expect([...resizeMaskNearest(big, 3, 1).data]).toEqual([0, 1, 0]);
  });
});
