/**
 * Evaluation like the MedVLSM study (train/eval/): per-image Dice / IoU per prompt type with hand-made
 * fake segmenters whose outputs are known exactly (an oracle that reads the prompt, constant-empty
 * and constant-full models, a model that ignores the prompt), the language-reliance report, the
 * shuffle (a seeded derangement) and the one-attribute change, tables / JSON / CSV, the overlay
 * PNG and the training-curve SVG, and the `eval` command's argument checks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuDevice, Module, Tensor } from '../../src/engine/index.js';
import { type Image, decodePng, encodePng } from '../../src/models/image/index.js';
import { main } from '../../src/cli/webvlsm.js';
import type { CliIo } from '../../src/cli/commands/command.js';
import { type BinaryMask, MedVlsmDataset, maskToImage, memorySource, rngFor } from '../../src/train/data/index.js';
import { evaluateSegmenter } from '../../src/train/eval/evaluate.js';
import { languageReport } from '../../src/train/eval/language.js';
import { overlayGrid } from '../../src/train/eval/overlays.js';
import { ATTRIBUTE_VOCABULARY, changeOneAttribute, shufflePartners } from '../../src/train/eval/prompt-variants.js';
import { csvField, evalCsv, evalMarkdown, formatMeanStd, stableJson, toCsv } from '../../src/train/eval/tables.js';
import { trainingCurvesSvg } from '../../src/train/eval/curves.js';
import { scoreMasks } from '../../src/train/metrics.js';
import type { Segmenter } from '../../src/train/segmenter.js';
import { generateSyntheticDataset, syntheticSource } from '../../src/train/synthetic/index.js';

const cpu = new CpuDevice();

/** Steps 0..8 by 2, loss 1.0 .. 0.2, validation Dice at steps 4 and 8, epoch 0 then 1. */
const curvesFixture = [0, 2, 4, 6, 8].map((step, i) => ({
  step,
  epoch: step < 4 ? 0 : 1,
  loss: 1 - 0.2 * i,
  lr: 1e-4 * (1 - i / 5),
  ...(step >= 4 && step % 4 === 0 ? { val_dice: 0.3 + 0.1 * i } : {}),
}));
const SIZE = 32;

const keyOf = (image: Image) => Buffer.from(image.data).toString('base64');

/**
 * A fake segmenter: `rule(image, prompt)` says which mask the logits show (+10 inside, -10
 * elsewhere; null = nothing). `pixels` remembers the images so that `logits` can look them up.
 */
class FakeSegmenter implements Segmenter {
  readonly kind = 'unet' as const;
  readonly module = new Module();
  readonly threshold = 0.5;
  readonly inputSize: readonly [number, number] = [SIZE, SIZE];
  private last: Image[] = [];
  constructor(
    readonly usesText: boolean,
    private readonly rule: (image: Image, prompt: string) => BinaryMask | 'full' | null,
  ) {}
  pixels(images: readonly Image[]): Tensor {
    this.last = [...images];
    return Tensor.zeros([images.length, 1], { device: cpu });
  }
  logits(_pixels: Tensor, prompts: readonly string[]): Tensor {
    const [h, w] = this.inputSize;
    const out = new Float32Array(prompts.length * h * w).fill(-10);
    prompts.forEach((p, b) => {
      const m = this.rule(this.last[b]!, p);
      if (m === 'full') out.fill(10, b * h * w, (b + 1) * h * w);
      else if (m !== null) {
        if (m.width !== w || m.height !== h) throw new Error('fake: mask size differs from the input size');
        for (let i = 0; i < h * w; i++) if (m.data[i]) out[b * h * w + i] = 10;
      }
    });
    return Tensor.fromArray(out, [prompts.length, h, w], { device: cpu });
  }
  trainable(): [string, Tensor][] {
    return [];
  }
  describe() {
    return { kind: 'unet' as const, config: {} };
  }
}

/** One image per sample (targets 'one'), so an image identifies its sample. */
const synthetic = generateSyntheticDataset({ size: SIZE, seed: 3, images: { train: 0, val: 0, test: 8 }, targets: 'one' });
const entries = synthetic.splits.test!.entries;

let dataset: MedVlsmDataset;
/** Per image: its truth and its prompts by key. */
const truthOf = new Map<string, { mask: BinaryMask; prompts: Record<string, string> }>();

beforeAll(async () => {
  dataset = await MedVlsmDataset.open(syntheticSource(synthetic), { name: 'synth', splits: ['test'] });
  for (let i = 0; i < entries.length; i++) {
    const image = await dataset.loadImage(entries[i]!.img_name);
    truthOf.set(keyOf(image), { mask: await dataset.loadMask(entries[i]!.mask_name), prompts: entries[i]!.prompts as Record<string, string> });
  }
});

/** Truth for any of the image's own prompts (keys given: only those), else nothing. */
const oracle = (keys?: string[]) =>
  new FakeSegmenter(true, (image, prompt) => {
    const t = truthOf.get(keyOf(image))!;
    const ok = Object.entries(t.prompts).some(([k, v]) => v === prompt && (keys === undefined || keys.includes(k)));
    return ok ? t.mask : null;
  });

/** A fixed square whatever the prompt. */
const square: BinaryMask = { width: SIZE, height: SIZE, data: new Uint8Array(SIZE * SIZE).map((_, i) => (i % SIZE < 16 && i < 16 * SIZE ? 1 : 0)) };
const promptBlind = (usesText: boolean) => new FakeSegmenter(usesText, () => square);

describe('evaluateSegmenter', () => {
  it('an oracle scores Dice and IoU 1 for every image and prompt type', async () => {
    let calls = 0;
    const r = await evaluateSegmenter(oracle(), [dataset], { batchSize: 3, onProgress: () => void calls++ });
    expect(r.prompt_keys).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
    expect(r.records).toHaveLength(entries.length * 7);
    for (const rec of r.records) expect([rec.dice, rec.iou]).toEqual([1, 1]);
    expect(r.groups).toHaveLength(7);
    for (const g of r.groups) expect(g).toMatchObject({ dataset: 'synth', n: entries.length, dice: { mean: 1, std: 0 }, iou: { mean: 1, std: 0 } });
    expect(calls).toBe(3); // 8 samples in batches of 3
    // The records carry the object count; the object groups split single- from multi-object images.
    const objects = entries.map((e) => (e.objects as unknown[]).length);
    expect(r.records.filter((x) => x.prompt_key === 'p6').map((x) => x.objects)).toEqual(objects);
    const singles = objects.filter((n) => n === 1).length;
    expect(singles).toBeGreaterThan(0);
    expect(singles).toBeLessThan(objects.length);
    const p6 = r.object_groups.filter((g) => g.prompt_key === 'p6');
    expect(p6.find((g) => g.objects === 'single')!.n).toBe(singles);
    expect(p6.find((g) => g.objects === 'multi')!.n).toBe(objects.length - singles);
  });

  it('constant models get exactly the MONAI values (empty truth + empty prediction = 1)', async () => {
    // Hand-made: A 4x4 with an empty mask, B 4x4 with 3 foreground pixels, C an 8x8 image whose 4x4
    // mask has 4 pixels (the prediction is resized to the mask).
    const png = (img: Image) => encodePng(img);
    const grey = (w: number, h: number): Image => ({ width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3).fill(90) });
    const mask = (w: number, on: number[]) => maskToImage({ width: w, height: w, data: new Uint8Array(w * w).map((_, i) => (on.includes(i) ? 1 : 0)) });
    const files = {
      'images/a.png': png(grey(4, 4)),
      'images/b.png': png(grey(4, 4)),
      'images/c.png': png(grey(8, 8)),
      'masks/a.png': png(mask(4, [])),
      'masks/b.png': png(mask(4, [0, 1, 5])),
      'masks/c.png': png(mask(4, [0, 1, 2, 3])),
      'anns/test.json': new TextEncoder().encode(
        JSON.stringify(['a', 'b', 'c'].map((n) => ({ img_name: `${n}.png`, mask_name: `${n}.png`, prompts: { p0: '', p1: 'thing, "quoted"' } }))),
      ),
    };
    const hand = await MedVlsmDataset.open(memorySource(files, 'memory:hand'), { name: 'hand' });
    const constant = (full: boolean) => Object.assign(new FakeSegmenter(true, () => (full ? 'full' : null)), { inputSize: [4, 4] as const });
    const empty = await evaluateSegmenter(constant(false), [hand], { promptKeys: ['p1'] });
    expect(empty.records.map((r) => [r.dice, r.iou])).toEqual([[1, 1], [0, 0], [0, 0]]);
    const full = await evaluateSegmenter(constant(true), [hand], { promptKeys: ['p1'] });
    const [a, b, c] = full.records;
    expect([a!.dice, a!.iou]).toEqual([0, 0]);
    expect(b!.dice).toBeCloseTo((2 * 3) / (16 + 3), 12);
    expect(b!.iou).toBeCloseTo(3 / 16, 12);
    expect(c!.dice).toBeCloseTo((2 * 4) / (16 + 4), 12);
    expect(c!.iou).toBeCloseTo(4 / 16, 12);
    expect(full.resized).toBe(1);
    expect(full.groups[0]!.dice.mean).toBeCloseTo((0 + 6 / 19 + 0.4) / 3, 12);

    // Tables and CSV of these known values.
    const md = evalMarkdown(full);
    expect(md).toContain(`| hand | p1 | 3 | ${formatMeanStd(full.groups[0]!.dice)} |`);
    expect(formatMeanStd({ mean: 0.75, std: 0.25 })).toBe('0.7500 ± 0.2500');
    const csv = evalCsv(full).split('\r\n');
    expect(csv[0]).toBe('dataset,split,index,img_name,mask_name,prompt_key,prompt,dice,iou,truth_pixels,predicted_pixels,objects');
    expect(csv[2]).toBe(`hand,test,1,b.png,b.png,p1,"thing, ""quoted""",${6 / 19},0.1875,3,16,`);
    expect(csv).toHaveLength(5); // header, 3 rows, '' after the final CRLF
  });

  it('rejects a prompt key no entry has, naming the dataset and its keys', async () => {
    await expect(evaluateSegmenter(oracle(), [dataset], { promptKeys: ['p9'] })).rejects.toThrow(/synth\/test: no entry has prompt "p9" \(its prompt keys: p0, p1/);
  });

  it('scores image-only models once per image: every prompt type equal', async () => {
    const r = await evaluateSegmenter(promptBlind(false), [dataset], { limit: 3 });
    expect(r.records).toHaveLength(21);
    const p0 = r.records.filter((x) => x.prompt_key === 'p0').map((x) => x.dice);
    expect(r.records.filter((x) => x.prompt_key === 'p6').map((x) => x.dice)).toEqual(p0);
  });
});

describe('language reliance', () => {
  it('oracle: true 1, empty 0, changed 0, shuffled 1 only where the texts coincide', async () => {
    const rep = await languageReport(oracle(['p6']), [dataset], { seed: 5, batchSize: 4 });
    expect(rep.datasets[0]).toMatchObject({ prompt_key: 'p6', samples: entries.length, changed_skipped: 0, shuffled_same_image: 0 });
    const of = (v: string) => rep.records.filter((r) => r.variant === v);
    expect(of('true').map((r) => r.dice)).toEqual(entries.map(() => 1));
    expect(of('empty').map((r) => r.dice)).toEqual(entries.map(() => 0));
    expect(of('changed').map((r) => r.dice)).toEqual(entries.map(() => 0));
    const shuffled = of('shuffled');
    const expected: number[] = shuffled.map((r) => {
      expect(r.prompt).toBe(entries[r.source_index!]!.prompts.p6);
      return r.prompt === entries[r.index]!.prompts.p6 ? 1 : 0;
    });
    expect(shuffled.map((r) => r.dice)).toEqual(expected);
    const meanShuffled = expected.reduce((a, b) => a + b, 0) / expected.length;
    expect(rep.reliance.overall).toBeCloseTo(1 - meanShuffled, 12);
    expect(rep.changed_drop.overall).toBe(1);
    expect(rep.variants.map((v) => [v.variant, v.n])).toEqual(['true', 'empty', 'shuffled', 'changed'].map((v) => [v, entries.length]));
    expect(rep.variants[0]!.single!.n + rep.variants[0]!.multi!.n).toBe(entries.length);
    expect(rep.note).toBeNull();
  });

  it('a prompt-ignoring model scores every variant the same: reliance 0', async () => {
    for (const usesText of [true, false]) {
      const rep = await languageReport(promptBlind(usesText), [dataset], { limit: 5 });
      const want: number[] = [];
      for (let i = 0; i < 5; i++) want.push(scoreMasks(square, await dataset.loadMask(entries[i]!.mask_name)).dice);
      for (const v of rep.variants) {
        expect(v.n).toBe(5);
        expect(rep.records.filter((r) => r.variant === v.variant).map((r) => r.dice)).toEqual(want);
      }
      expect(rep.reliance.overall).toBe(0);
      expect(rep.changed_drop.overall).toBe(0);
      expect(rep.note === null).toBe(usesText);
    }
  });

  it('the shuffle is a seeded derangement that pairs different images', () => {
    const names = ['a', 'a', 'a', 'b', 'c', 'c', 'd', 'e'];
    const plan = shufflePartners(names, 1, 'x');
    expect([...plan.partner].sort()).toEqual(names.map((_, i) => i));
    plan.partner.forEach((j, i) => expect(names[j]).not.toBe(names[i]));
    expect(plan.sameImage).toBe(0);
    expect(shufflePartners(names, 1, 'x')).toEqual(plan);
    const others = [2, 3, 4, 5].map((s) => shufflePartners(names, s, 'x').partner.join());
    expect(others.some((p) => p !== plan.partner.join())).toBe(true);
    // Impossible to avoid same-image pairs: still a derangement, and they are counted.
    const crowded = shufflePartners(['a', 'a', 'a', 'b'], 0);
    crowded.partner.forEach((j, i) => expect(j).not.toBe(i));
    expect(crowded.sameImage).toBeGreaterThan(0);
    expect(shufflePartners(['a'], 0).partner).toEqual([-1]);
  });

  it('the attribute change swaps exactly one word for another value of the same kind', async () => {
    for (const [i, e] of entries.entries()) {
      const entry = dataset.entries('test')[i]!;
      const text = e.prompts.p6 as string;
      const change = changeOneAttribute(text, entry, rngFor(0, i))!;
      const a = text.split(' ');
      const b = change.text.split(' ');
      expect(b).toHaveLength(a.length);
      expect(a.filter((w, k) => w !== b[k])).toHaveLength(1);
      expect((e.attributes as Record<string, string>)[change.attribute]).toBe(change.from);
      expect(ATTRIBUTE_VOCABULARY[change.attribute]).toContain(change.to);
    }
    // Without attributes: any vocabulary word; 'top left' becomes 'top right' or 'bottom left'.
    const loc = changeOneAttribute('lesion in the top left', null, () => 0.99)!;
    expect(loc.attribute).toBe('location');
    expect(['lesion in the top right', 'lesion in the bottom left']).toContain(loc.text);
    expect(changeOneAttribute('polyp', null, () => 0.5)).toBeNull();
    expect(changeOneAttribute('Small polyp', null, () => 0)!.text).toMatch(/^(Medium|Large) polyp$/);
  });
});

describe('reports', () => {
  it('CSV follows RFC 4180; JSON is stable', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField(NaN)).toBe('');
    expect(toCsv(['x', 'y'], [[1, 'a,b']])).toBe('x,y\r\n1,"a,b"\r\n');
    expect(stableJson({ b: 1, a: { d: NaN, c: [2, 1] } })).toBe('{\n  "a": {\n    "c": [\n      2,\n      1\n    ],\n    "d": null\n  },\n  "b": 1\n}\n');
  });

  it('the overlay grid decodes with 128-px cells and 2-px white separators', () => {
    const image: Image = { width: 32, height: 32, channels: 3, data: new Uint8Array(32 * 32 * 3).fill(100) };
    const truth: BinaryMask = { width: 32, height: 32, data: new Uint8Array(32 * 32).fill(1) };
    const none: BinaryMask = { width: 32, height: 32, data: new Uint8Array(32 * 32) };
    const img = decodePng(overlayGrid([{ image, truth, prediction: none }, { image, truth: none, prediction: truth }]));
    expect([img.width, img.height, img.channels]).toEqual([3 * 128 + 4, 2 * 128 + 2, 3]);
    const px = (x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];
    expect(px(10, 10)).toEqual([100, 100, 100]); // image
    expect(px(128, 10)).toEqual([255, 255, 255]); // separator
    expect(px(140, 10)).toEqual([80, 140, 88]); // truth: 0.5 * 100 + 0.5 * (60, 180, 75)
    expect(px(280, 10)).toEqual([100, 100, 100]); // empty prediction
    expect(px(280, 129)).toEqual([255, 255, 255]); // row separator
    expect(px(280, 140)).toEqual([165, 63, 88]); // prediction: 0.5 * 100 + 0.5 * (230, 25, 75)
  });

  it('the curves SVG holds one polyline per series with the points in scale', () => {
    const svg = trainingCurvesSvg(curvesFixture, { title: 'run <1> & co' });
    expect(svg).toContain('run &lt;1&gt; &amp; co');
    const points = (series: string) => {
      const m = new RegExp(`data-series="${series}"[^>]*points="([^"]*)"`).exec(svg);
      return m![1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
    };
    const loss = points('loss');
    expect(loss).toHaveLength(5);
    // x linear in the step (0..8), y linear in the loss (1.0 .. 0.2).
    loss.forEach(([x, y], i) => {
      expect((x - loss[0]![0]) / (loss[4]![0] - loss[0]![0])).toBeCloseTo(i / 4, 2);
      expect((y - loss[0]![1]) / (loss[4]![1] - loss[0]![1])).toBeCloseTo(i / 4, 2);
    });
    expect(points('val_dice')).toHaveLength(2);
    expect(points('lr')).toHaveLength(5);
    expect(svg).toContain('validation Dice');
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2); // epoch 0 -> 1 in both panels
  });
});

describe('webvlsm eval: arguments', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webvlsm-eval-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = async (...args: string[]) => {
    const io = { out: '', err: '' };
    const cli: CliIo = { out: (t) => void (io.out += t), err: (t) => void (io.err += t) };
    return { code: await main(['eval', ...args], cli), ...io };
  };

  it('usage errors exit 2, a missing checkpoint exits 1 before anything loads', async () => {
    expect((await run()).err).toMatch(/missing --checkpoint, --data/);
    expect((await run('--checkpoint', 'x', '--data', dir, '--threshold', '2')).code).toBe(2);
    expect((await run('--checkpoint', 'x', '--data', 'a/d', '--data', 'b/d')).err).toMatch(/two --data folders are named 'd'/);
    const missing = await run('--checkpoint', join(dir, 'none.safetensors'), '--data', dir);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/none\.safetensors: the checkpoint does not exist/);
    expect((await run('--help')).out).toMatch(/--prompt-keys/);
  });
});
