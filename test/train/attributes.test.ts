/**
 * Prompt attributes measured on masks (size class, components, 3x3 location, shape, colour), the
 * p0..p6 prompt builder, and the prompt tool on a dataset folder.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodePng } from '../../src/models/image/index.js';
import {
  DatasetFilesError,
  MedVlsmDataset,
  SIZE_THRESHOLDS,
  buildPrompts,
  connectedComponents,
  countWord,
  estimateColour,
  estimateShape,
  gridLocation,
  maskAttributes,
  maskFromValues,
  maskToImage,
  sizeClass,
} from '../../src/train/data/index.js';
import { writePromptAnnotations } from '../../src/train/data/prompt-tool-node.js';
import { folderSource } from '../../src/train/data/source-node.js';
import { insideShape, rasterizeShape } from '../../src/train/synthetic/index.js';

function mask(...rows: string[]) {
  const values = rows.join('').split('').map((c) => (c === '#' ? 1 : 0));
  return maskFromValues(values, rows[0]!.length, rows.length, 0.5);
}

describe('mask attributes', () => {
  it('size classes: small < 5% <= medium < 15% <= large', () => {
    expect(SIZE_THRESHOLDS).toEqual({ medium: 0.05, large: 0.15 });
    expect(sizeClass(0)).toBe('small');
    expect(sizeClass(0.0499)).toBe('small');
    expect(sizeClass(0.05)).toBe('medium');
    expect(sizeClass(0.1499)).toBe('medium');
    expect(sizeClass(0.15)).toBe('large');
    expect(sizeClass(0.1, { medium: 0.2, large: 0.5 })).toBe('small');
  });

  it('components with 8-connectivity (default) and 4-connectivity', () => {
    const m = mask(
      '#.....',
      '.#..##',
      '......',
      '##....',
    );
    expect(connectedComponents(m).components.map((c) => c.area)).toEqual([2, 2, 2]);
    const four = connectedComponents(m, 4).components;
    expect(four.map((c) => c.area)).toEqual([2, 2, 1, 1]);
    const c = connectedComponents(m).components.find((k) => k.x0 === 4)!;
    expect(c).toMatchObject({ cx: 5, cy: 1.5, x0: 4, x1: 5, y0: 1, y1: 1 });
  });

  it('3x3 grid locations in the study words', () => {
    expect(gridLocation(1, 1, 90, 90)).toBe('top left');
    expect(gridLocation(45, 10, 90, 90)).toBe('top');
    expect(gridLocation(89, 29.9, 90, 90)).toBe('top right');
    expect(gridLocation(29.9, 45, 90, 90)).toBe('left');
    expect(gridLocation(30, 30, 90, 90)).toBe('center');
    expect(gridLocation(60, 45, 90, 90)).toBe('right');
    expect(gridLocation(0, 89, 90, 90)).toBe('bottom left');
    expect(gridLocation(45, 60, 90, 90)).toBe('bottom');
    expect(gridLocation(90, 90, 90, 90)).toBe('bottom right');
  });

  it('maskAttributes: area, size, count, per-component and overall location', () => {
    // 6x6 image; a 2x2 blob top left (4 px = 11%) and one pixel bottom right.
    const m = mask(
      '##....',
      '##....',
      '......',
      '......',
      '......',
      '.....#',
    );
    const a = maskAttributes(m);
    expect(a.area).toBe(5);
    expect(a.count).toBe(2);
    expect(a.size).toBe('medium'); // 5 / 36 = 13.9%
    expect(a.components.map((c) => [c.area, c.location, c.size])).toEqual([
      [4, 'top left', 'medium'], // 11.1%
      [1, 'bottom right', 'small'], // 2.8%
    ]);
    // Overall centroid ((4 * 1 + 5.5) / 5, same for y) = (1.9, 1.9) -> top left.
    expect(a.location).toBe('top left');
    expect(maskAttributes(m, { minComponentArea: 2 }).count).toBe(1);
    const empty = maskAttributes(mask('...', '...'));
    expect(empty).toMatchObject({ area: 0, size: null, count: 0, location: null, components: [] });
  });

  it('estimateShape tells round, oval and irregular shapes apart', () => {
    const W = 64;
    const base = { cx: 32, cy: 32, r: 12, angle: 0.4, phase: 0.3, aspect: 1, lobes: 0, amp: 0 };
    const shapes = {
      round: { ...base, kind: 'round' as const },
      oval: { ...base, kind: 'oval' as const, aspect: 2 },
      irregular: { ...base, kind: 'irregular' as const, lobes: 5, amp: 0.35 },
    };
    for (const [kind, s] of Object.entries(shapes)) {
      const m = { width: W, height: W, data: rasterizeShape(s, W, W).mask };
      const e = estimateShape(m)!;
      expect(e.shape, `${kind}: solidity ${e.solidity}, elongation ${e.elongation}`).toBe(kind);
      expect(insideShape(s, 32, 32)).toBe(true);
    }
    expect(estimateShape(mask('..', '..'))).toBeNull();
  });

  it('estimateColour picks the nearest named colour under the mask', () => {
    const m = mask('#.', '..');
    const img = (rgb: number[]) => ({ width: 2, height: 2, channels: 3 as const, data: Uint8Array.from([...rgb, ...Array(9).fill(0)]) });
    expect(estimateColour(img([200, 45, 50]), m)).toBe('red');
    expect(estimateColour(img([240, 240, 240]), m)).toBe('white');
    expect(estimateColour(img([220, 150, 160]), m)).toBe('pink');
    expect(estimateColour({ width: 2, height: 2, channels: 1, data: Uint8Array.from([10, 200, 200, 200]) }, m)).toBe('black');
    expect(estimateColour(img([1, 2, 3]), mask('..', '..'))).toBeNull();
  });
});

describe('prompts p0..p6 like the study', () => {
  it('builds cumulative prompts', () => {
    expect(buildPrompts({ className: 'polyp', shape: 'round', colour: 'red', size: 'small', count: 1, locations: ['top left'] })).toEqual({
      p0: '',
      p1: 'polyp',
      p2: 'round polyp',
      p3: 'red round polyp',
      p4: 'small red round polyp',
      p5: 'one small red round polyp',
      p6: 'one small red round polyp, located in top left of the image',
    });
  });

  it('lists one location per component and omits unknown attributes', () => {
    const p = buildPrompts({ className: 'polyp', size: 'medium', count: 2, locations: ['right', 'center'] });
    expect(p.p2).toBe('polyp');
    expect(p.p5).toBe('two medium polyp');
    expect(p.p6).toBe('two medium polyp, located in right, center of the image');
  });

  it("writes 'no <class>' for an empty mask", () => {
    expect(buildPrompts({ className: 'polyp', size: null, count: 0, locations: [] })).toEqual({
      p0: '', p1: 'no polyp', p2: 'no polyp', p3: 'no polyp', p4: 'no polyp', p5: 'no polyp', p6: 'no polyp',
    });
  });

  it('counts in words up to twenty', () => {
    expect([1, 2, 3, 10, 19, 20, 21].map(countWord)).toEqual(['one', 'two', 'three', 'ten', 'nineteen', 'twenty', '21']);
  });
});

describe('prompt tool on a dataset folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'webvlsm-prompts-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  // Two 30x30 images: a red disc (29 px = 3.2%) in the top left; two white squares (center, bottom right).
  const W = 30;
  const discMask = maskFromValues(Array.from({ length: W * W }, (_, i) => Math.hypot((i % W) - 5, Math.floor(i / W) - 5) <= 3 ? 1 : 0), W, W);
  const squares = maskFromValues(
    Array.from({ length: W * W }, (_, i) => {
      const x = i % W;
      const y = Math.floor(i / W);
      return (x >= 12 && x < 18 && y >= 12 && y < 18) || (x >= 24 && y >= 24) ? 1 : 0;
    }),
    W,
    W,
  );
  const paint = (m: typeof discMask, rgb: number[]) => {
    const data = new Uint8Array(W * W * 3).fill(90);
    m.data.forEach((v, i) => v && data.set(rgb, 3 * i));
    return encodePng({ width: W, height: W, channels: 3, data });
  };
  mkdirSync(join(root, 'images'));
  mkdirSync(join(root, 'masks'));
  writeFileSync(join(root, 'images', 'a.jpg.png'), paint(discMask, [185, 40, 45]));
  writeFileSync(join(root, 'images', 'b.png'), paint(squares, [240, 238, 235]));
  writeFileSync(join(root, 'masks', 'a.jpg.png'), encodePng(maskToImage(discMask)));
  writeFileSync(join(root, 'masks', 'b.png'), encodePng(maskToImage(squares)));

  it('pairs images and masks by name and writes anns/<split>.json with measured prompts', async () => {
    const out = await writePromptAnnotations(root, { className: 'polyp', split: 'train' });
    expect(out.entries).toBe(2);
    const json = JSON.parse(readFileSync(join(root, 'anns', 'train.json'), 'utf8'));
    expect(json[0].img_name).toBe('a.jpg.png');
    expect(json[0].prompts.p6).toBe('one small red round polyp, located in top left of the image');
    // Two 6x6 squares: 72 px = 8% together (medium); squares count as round (convex, axis ratio 1).
    expect(json[1].prompts.p6).toBe('two medium white round polyp, located in center, bottom right of the image');
    expect(json[1].prompt_attributes).toMatchObject({ count: 2, size: 'medium', locations: ['center', 'bottom right'] });
    // The loader reads what the tool wrote.
    const d = await MedVlsmDataset.open(folderSource(root), { prompt: { kind: 'key', key: 'p6' } });
    expect(await d.check()).toEqual([]);
  });

  it('refuses to overwrite without overwrite: true; keeps other keys when rewriting', async () => {
    await expect(writePromptAnnotations(root, { className: 'lesion' })).rejects.toThrow(/exists; pass overwrite: true/);
    const file = join(root, 'anns', 'train.json');
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json[0].prompts.p9 = 'kept';
    json[0].bbox = [1, 2, 3, 4];
    writeFileSync(file, JSON.stringify(json));
    await writePromptAnnotations(root, { className: 'lesion', overwrite: true, colour: false, shape: false });
    const again = JSON.parse(readFileSync(file, 'utf8'));
    expect(again[0].prompts.p9).toBe('kept');
    expect(again[0].bbox).toEqual([1, 2, 3, 4]);
    expect(again[0].prompts.p6).toBe('one small lesion, located in top left of the image');
  });

  it('reports all missing masks at once', async () => {
    writeFileSync(
      join(root, 'anns', 'val.json'),
      JSON.stringify([{ img_name: 'x.png', mask_name: 'x.png' }, { img_name: 'b.png', mask_name: 'y.png' }]),
    );
    const error = await writePromptAnnotations(root, { className: 'polyp', split: 'val', out: 'anns/val2.json' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetFilesError);
    expect((error as DatasetFilesError).problems.map((p) => `${p.kind} ${p.path}`)).toEqual([
      'missing masks/x.png',
      'missing images/x.png',
      'missing masks/y.png',
    ]);
  });
});
