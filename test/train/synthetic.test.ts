/**
 * The synthetic dataset generator: deterministic from its seed, MedVLSM's layout, prompts p0..p6
 * built like the study's and consistent with the target masks as the loader reads them, several
 * objects per image that only the richer prompts tell apart, two modalities and a shifted variant.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toRgb } from '../../src/models/image/index.js';
import { MedVlsmDataset, estimateShape, maskAttributes, rngFor } from '../../src/train/data/index.js';
import { folderSource } from '../../src/train/data/source-node.js';
import {
  MODALITIES,
  attributeValues,
  generateImage,
  generateSyntheticDataset,
  resolveSpec,
  syntheticSource,
  withChangedAttribute,
} from '../../src/train/synthetic/index.js';
import { writeSyntheticDataset } from '../../src/train/synthetic/write-node.js';

const small = { images: { train: 24, val: 6, test: 6 } };

describe('synthetic dataset generator', () => {
  const endo = generateSyntheticDataset({ ...small, seed: 1 });

  it('is deterministic: the same spec gives byte-identical files, another seed other images', () => {
    const again = generateSyntheticDataset({ ...small, seed: 1 });
    expect([...again.files.keys()]).toEqual([...endo.files.keys()]);
    for (const [path, bytes] of endo.files) expect(Buffer.compare(again.files.get(path)!, bytes), path).toBe(0);
    const other = generateSyntheticDataset({ ...small, seed: 2 });
    expect(Buffer.compare(other.files.get('images/train_0000.png')!, endo.files.get('images/train_0000.png')!)).not.toBe(0);
    // Image i does not depend on how many images the split has.
    const a = generateImage({ seed: 1 }, 'train', 5);
    expect(Buffer.from(a.image.data).equals(Buffer.from(endo.splits.train!.images[5]!.image.data))).toBe(true);
  });

  it("writes MedVLSM's layout with one sample per object", () => {
    expect(endo.files.has('anns/train.json') && endo.files.has('anns/val.json') && endo.files.has('anns/test.json')).toBe(true);
    expect(endo.files.has('synthetic.json')).toBe(true);
    const split = endo.splits.train!;
    const objects = split.images.reduce((n, img) => n + img.objects.length, 0);
    expect(split.entries).toHaveLength(objects);
    for (const e of split.entries) {
      expect(endo.files.has(`images/${e.img_name}`)).toBe(true);
      expect(endo.files.has(`masks/${e.mask_name}`)).toBe(true);
      expect(Object.keys(e.prompts)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    }
    const counts = split.images.map((i) => i.objects.length);
    expect(Math.min(...counts)).toBe(1);
    expect(Math.max(...counts)).toBe(3);
  });

  it('builds prompts like the study: empty, class, + shape, + colour, + size, + count, + location', () => {
    for (const e of endo.splits.train!.entries) {
      const a = e.attributes as Record<string, string>;
      const p = e.prompts as Record<string, string>;
      expect(p.p0).toBe('');
      expect(p.p1).toBe('polyp');
      expect(p.p2).toBe(`${a.shape} ${p.p1}`);
      expect(p.p3).toBe(`${a.colour} ${p.p2}`);
      expect(p.p4).toBe(`${a.size} ${p.p3}`);
      expect(p.p5).toBe(`one ${p.p4}`);
      expect(p.p6).toBe(`${p.p5}, located in ${a.location} of the image`);
    }
  });

  it('measures size, count, location and shape on the target mask as the loader reads it', async () => {
    const d = await MedVlsmDataset.open(syntheticSource(endo), { prompt: { kind: 'key', key: 'p6' } });
    expect(await d.check()).toEqual([]);
    for (let i = 0; i < d.size('train'); i++) {
      const s = await d.loadSample('train', i);
      const a = s.entry.extra.attributes as Record<string, string | number>;
      const m = maskAttributes(s.mask);
      expect([m.size, m.count, m.location]).toEqual([a.size, 1, a.location]);
      expect(estimateShape(s.mask)!.shape).toBe(a.shape);
    }
  });

  it('on multi-object images only the richer prompts identify the target', () => {
    const byImage = new Map<string, Array<Record<string, string>>>();
    for (const e of endo.splits.train!.entries) {
      const list = byImage.get(e.img_name) ?? [];
      list.push(e.prompts as Record<string, string>);
      byImage.set(e.img_name, list);
    }
    const multi = [...byImage.values()].filter((l) => l.length > 1);
    expect(multi.length).toBeGreaterThan(byImage.size / 3);
    for (const prompts of multi) {
      // p6 names each object uniquely; p1 (the class) never does.
      expect(new Set(prompts.map((p) => p.p6)).size).toBe(prompts.length);
      expect(new Set(prompts.map((p) => p.p1)).size).toBe(1);
    }
    // Across the set some images need more than shape (p2) or colour (p3) to tell objects apart.
    const ambiguous = (key: string) => multi.filter((ps) => new Set(ps.map((p) => p[key])).size < ps.length).length;
    expect(ambiguous('p2')).toBeGreaterThan(0);
    expect(ambiguous('p2')).toBeGreaterThanOrEqual(ambiguous('p3'));
  });

  it('objects of an image never overlap and every attribute value occurs', () => {
    const seen = { shape: new Set<string>(), colour: new Set<string>(), size: new Set<string>(), location: new Set<string>() };
    for (const img of endo.splits.train!.images) {
      const union = new Uint8Array(64 * 64);
      for (const m of img.masks) m.data.forEach((v, i) => (union[i]! += v));
      expect(Math.max(...union)).toBe(1);
      for (const o of img.objects) for (const k of Object.keys(seen) as Array<keyof typeof seen>) seen[k].add(o[k]);
    }
    expect([...seen.shape].sort()).toEqual(['irregular', 'oval', 'round']);
    expect([...seen.colour].sort()).toEqual([...MODALITIES.endoscopy.colours].sort());
    expect([...seen.size].sort()).toEqual(['large', 'medium', 'small']);
    expect(seen.location.size).toBeGreaterThanOrEqual(7);
  });

  it('ultrasound: grey images, lesions in black, grey or white', () => {
    const us = generateSyntheticDataset({ modality: 'ultrasound', images: { train: 8, val: 0, test: 0 }, targets: 'one' });
    expect(Object.keys(us.splits)).toEqual(['train']);
    expect(us.files.has('anns/val.json')).toBe(false);
    const split = us.splits.train!;
    expect(split.entries).toHaveLength(8); // one target per image
    expect(split.images[0]!.image.channels).toBe(1);
    for (const e of split.entries) {
      expect(e.prompts.p1).toBe('lesion');
      expect(MODALITIES.ultrasound.colours).toContain((e.attributes as Record<string, string>).colour);
    }
  });

  it('the shifted variant changes the look, not the task', () => {
    const meanRgb = (shift: number) => {
      const d = generateSyntheticDataset({ shift, seed: 4, images: { train: 6, val: 0, test: 0 } });
      const sum = [0, 0, 0];
      let n = 0;
      for (const img of d.splits.train!.images) {
        const rgb = toRgb(img.image).data;
        for (let i = 0; i < rgb.length; i += 3) {
          for (let c = 0; c < 3; c++) sum[c] = sum[c]! + rgb[i + c]!;
          n++;
        }
      }
      return { mean: sum.map((s) => s / n), entries: d.splits.train!.entries };
    };
    const source = meanRgb(0);
    const target = meanRgb(1);
    // Pink mucosa (R >> G ~ B) -> orange (G well above B).
    expect(source.mean[1]! - source.mean[2]!).toBeLessThan(8);
    expect(target.mean[1]! - target.mean[2]!).toBeGreaterThan(20);
    for (const e of target.entries) expect(e.prompts.p1).toBe('polyp');
  });

  it('validates the spec', () => {
    expect(() => resolveSpec({ shift: 2 })).toThrow(/shift must be in \[0, 1\]/);
    expect(() => resolveSpec({ size: 8 })).toThrow(/size must be an integer >= 16/);
    expect(() => resolveSpec({ minObjects: 3, maxObjects: 2 })).toThrow(/minObjects <= maxObjects/);
    expect(() => resolveSpec({ modality: 'mri' as 'endoscopy' })).toThrow(/unknown modality "mri"/);
    expect(resolveSpec({ images: { train: 10 } }).images).toEqual({ train: 10, val: 50, test: 50 });
  });
});

describe('synthetic dataset written to a folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'webvlsm-synth-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes a folder the loader opens and checks', async () => {
    const spec = { modality: 'ultrasound' as const, shift: 1, seed: 9, images: { train: 5, val: 2, test: 2 } };
    const written = await writeSyntheticDataset(root, spec);
    expect(existsSync(join(root, 'synthetic.json'))).toBe(true);
    const d = await MedVlsmDataset.open(folderSource(root), { name: 'us-shifted' });
    expect(await d.check()).toEqual([]);
    const summary = d.summarize();
    expect(summary.splits.map((s) => [s.split, s.samples, s.images])).toEqual([
      ['train', written.splits.train!.entries.length, 5],
      ['val', written.splits.val!.entries.length, 2],
      ['test', written.splits.test!.entries.length, 2],
    ]);
    expect(summary.splits[0]!.promptKinds.map((k) => k.key)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    expect(summary.splits[0]!.extraKeys).toEqual(['attributes', 'objects', 'target']);
  });
});

describe('one attribute changed', () => {
  it('replaces exactly one attribute with another value of its kind', () => {
    const o = { shape: 'round', colour: 'red', size: 'small', location: 'top left', area_fraction: 0.02 } as const;
    const rng = rngFor(1);
    for (const attribute of ['shape', 'colour', 'size', 'location'] as const) {
      const seen = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const c = withChangedAttribute('endoscopy', o, attribute, rng);
        expect(c[attribute]).not.toBe(o[attribute]);
        expect(attributeValues('endoscopy', attribute)).toContain(c[attribute]);
        for (const k of ['shape', 'colour', 'size', 'location'] as const) if (k !== attribute) expect(c[k]).toBe(o[k]);
        seen.add(c[attribute]);
      }
      expect(seen.size).toBe(attributeValues('endoscopy', attribute).length - 1);
    }
  });
});
