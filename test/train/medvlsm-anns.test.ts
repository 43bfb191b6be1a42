/**
 * The loader on the 12 real MedVLSM annotation files (test splits of 11 datasets + Kvasir-SEG val),
 * copied in MedVLSM's layout under test/fixtures/medvlsm-anns-files/<dataset>/anns/<split>.json.
 * Expected counts come from manifest.json, computed from the same files with Python's json module
 * (independently of this loader). The images and masks are not there (their licenses are the
 * datasets' own), which also exercises the all-at-once missing-file report.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DatasetFilesError,
  MedVlsmDataset,
  assertDatasetsReadable,
  formatSummary,
  randomPromptKeys,
} from '../../src/train/data/index.js';
import { folderSource } from '../../src/train/data/source-node.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/medvlsm-anns-files');

interface KindManifest {
  entries: number;
  withAlternatives: number;
  maxAlternatives: number;
  empty: number;
}
interface FileManifest {
  samples: number;
  images: number;
  masks: number;
  extraKeys: string[];
  promptKinds: Record<string, KindManifest>;
}
const manifest = JSON.parse(readFileSync(join(ROOT, 'manifest.json'), 'utf8')) as { files: Record<string, FileManifest> };
const DATASETS = [...new Set(Object.keys(manifest.files).map((k) => k.split('/')[0]!))];

async function open(name: string, options = {}) {
  return MedVlsmDataset.open(folderSource(join(ROOT, name)), options);
}

describe('MedVLSM annotation files (11 datasets, 12 files)', () => {
  it('covers the 11 datasets of the study', () => {
    expect(DATASETS).toHaveLength(11);
    expect(Object.keys(manifest.files)).toHaveLength(12);
  });

  it.each(DATASETS)('%s: splits, sample counts and prompt kinds match the manifest', async (name) => {
    const dataset = await open(name);
    const summary = dataset.summarize();
    expect(summary.name).toBe(name);
    const expectedSplits = Object.keys(manifest.files).filter((k) => k.startsWith(`${name}/`)).map((k) => k.split('/')[1]);
    // Default split order is train, val, test (whichever exist).
    expect(summary.splits.map((s) => s.split)).toEqual(['val', 'test'].filter((s) => expectedSplits.includes(s)));
    for (const s of summary.splits) {
      const m = manifest.files[`${name}/${s.split}`]!;
      expect(s.samples).toBe(m.samples);
      expect(s.images).toBe(m.images);
      expect(s.masks).toBe(m.masks);
      expect(s.extraKeys).toEqual(m.extraKeys);
      expect(s.promptKinds.map((k) => k.key)).toEqual(Object.keys(m.promptKinds));
      for (const k of s.promptKinds) {
        const e = m.promptKinds[k.key]!;
        expect({ key: k.key, entries: k.entries, withAlternatives: k.withAlternatives, maxAlternatives: k.maxAlternatives, empty: k.empty })
          .toEqual({ key: k.key, ...e });
      }
      // p0 is the empty prompt everywhere.
      expect(s.promptKinds[0]).toMatchObject({ key: 'p0', empty: s.samples, distinctTexts: 1 });
    }
    expect(formatSummary(summary)).toContain(`| p0 | ${summary.splits[0]!.samples} |`);
  });

  it('reports the prompt kinds of the study: P0..P9 (polyps, ISIC, DFU), P0..P7 (CAMUS), P0..P6 (BUSI, CheXlocalize)', async () => {
    const kinds: Record<string, number> = {};
    for (const name of DATASETS) {
      const s = (await open(name)).summarize();
      kinds[name] = s.splits[0]!.promptKinds.length;
    }
    expect(kinds).toEqual({
      bkai_polyp: 10, busi: 7, camus: 8, chexlocalize: 7, clinicdb_polyp: 10, colondb_polyp: 10,
      cvc300_polyp: 10, dfu: 10, etis_polyp: 10, isic: 10, kvasir_polyp: 10,
    });
  });

  it('keeps extra keys (bbox, sentences, ...) out of the way but available', async () => {
    const d = await open('kvasir_polyp', { splits: ['test'] });
    const e = d.entries('test')[0]!;
    expect(e.imgName).toBe('cju2rqo702wpx0855fn7d5cxh.jpg');
    expect(Object.keys(e.extra).sort()).toEqual(['bbox', 'cat', 'segment_id', 'sentences', 'sentences_num']);
    expect(e.prompts.p6).toBe('one small pink circle polyp, located in right of the image');
    // CAMUS masks live in sub-folders.
    const camus = await open('camus');
    expect(camus.entries('test')[0]!.maskName).toBe('mask_1/patient0001_2CH_ED_gt.png');
  });

  it('"random" draws p1..pN uniformly (never p0), per sample and epoch, reproducibly', async () => {
    const d = await open('kvasir_polyp', { prompt: { kind: 'random' }, seed: 7 });
    expect(randomPromptKeys(d.entries('test')[0]!)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9']);
    const counts: Record<string, number> = {};
    for (let epoch = 0; epoch < 20; epoch++) {
      for (let i = 0; i < 100; i++) {
        const p = d.promptFor('test', i, epoch);
        counts[p.key] = (counts[p.key] ?? 0) + 1;
        const value = d.entries('test')[i]!.prompts[p.key]!;
        expect(typeof value === 'string' ? value : value[p.alternative!]).toBe(p.text);
      }
    }
    expect(Object.keys(counts).sort()).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9']);
    for (const n of Object.values(counts)) expect(Math.abs(n - 2000 / 9)).toBeLessThan(60); // 4 sigma
    // Same seed -> same draws; another epoch or seed -> different ones.
    const again = await open('kvasir_polyp', { prompt: { kind: 'random' }, seed: 7 });
    const draws = (ds: MedVlsmDataset, epoch: number) => Array.from({ length: 100 }, (_, i) => ds.promptFor('test', i, epoch).text);
    expect(draws(again, 3)).toEqual(draws(d, 3));
    expect(draws(d, 4)).not.toEqual(draws(d, 3));
    const other = await open('kvasir_polyp', { prompt: { kind: 'random' }, seed: 8 });
    expect(draws(other, 3)).not.toEqual(draws(d, 3));
  });

  it('a fixed key draws among its alternatives; override and empty give fixed texts', async () => {
    const d = await open('busi', { prompt: { kind: 'key', key: 'p3' } });
    const alternatives = new Set<number | null>();
    for (let epoch = 0; epoch < 10; epoch++) alternatives.add(d.promptFor('test', 0, epoch).alternative);
    expect(alternatives).toEqual(new Set([0, 1]));
    expect(d.promptFor('test', 0, 0, { kind: 'override', text: 'a tumour' })).toEqual({ text: 'a tumour', key: 'override', alternative: null });
    expect(d.promptFor('test', 0, 0, { kind: 'empty' })).toEqual({ text: '', key: 'empty', alternative: null });
    expect(() => d.promptFor('test', 0, 0, { kind: 'key', key: 'p9' })).toThrow(/has no prompt "p9" \(it has p0, p1/);
  });

  it('reports every missing file of several datasets in ONE error, plus prompt problems', async () => {
    const busi = await open('busi', { prompt: { kind: 'key', key: 'p9' } });
    const camus = await open('camus');
    let error: unknown;
    try {
      await assertDatasetsReadable([busi, camus]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DatasetFilesError);
    const problems = (error as DatasetFilesError).problems;
    const missing = problems.filter((p) => p.kind === 'missing');
    // BUSI: 78 images + 78 masks; CAMUS: 200 distinct images + 600 masks (images shared by 3 masks).
    expect(missing.filter((p) => p.dataset === 'busi')).toHaveLength(156);
    expect(missing.filter((p) => p.dataset === 'camus')).toHaveLength(800);
    const prompt = problems.filter((p) => p.kind === 'prompt');
    expect(prompt).toHaveLength(1);
    expect(prompt[0]!.detail).toMatch(/^78 of 78 entries: has no prompt "p9"/);
    const message = (error as Error).message;
    expect(message).toMatch(/957 problem\(s\) \(1 prompt, 956 missing\)/);
    expect(message).toContain('busi/images/102_malignant.png (test entry 0): missing');
    expect(message).toMatch(/and 857 more/);
  });
});
