/**
 * Evaluation as the MedVLSM study reports it: every test image scored with each prompt type
 * separately (p0..pN), Dice and IoU per image at the image's ORIGINAL resolution (probabilities
 * resized back by predictProbabilities, then `p > threshold`), MONAI semantics (empty truth and
 * empty prediction score 1; metrics.ts), and the mean / std per dataset x prompt type.
 *
 * Choices (ours, documented):
 * - A prompt value that lists alternatives gets the alternative the dataset's seeded draw picks
 *   for (split, epoch 0, index) (MedVlsmDataset.promptFor), so reruns score the same text.
 * - Default prompt keys: every key the dataset's entries have (pN sorted by N, others after); an
 *   entry without one of them is skipped for that key and counted in `skipped`. Keys asked for
 *   explicitly must exist in at least one entry of each dataset.
 * - `limit`: the first N samples of the split of each dataset.
 * - When a mask's size differs from its image's, the binary prediction is resized to the mask's
 *   size with nearest-exact sampling (counted in `resized`).
 * - Image-only segmenters (usesText false) are run once per image; the scores are the same for
 *   every prompt key by construction and are copied.
 */
import type { Image } from '../../models/image/index.js';
import { type AnnotationEntry, sortedPromptKeys } from '../data/anns.js';
import type { MedVlsmDataset } from '../data/dataset.js';
import { type BinaryMask, maskFromValues, resizeMaskNearest } from '../data/mask.js';
import { type MeanStd, type ScoreRecord, type SegmentationScores, aggregateScores, scoreMasks } from '../metrics.js';
import { type Segmenter, predictProbabilities } from '../segmenter.js';

export interface EvalOptions {
  /** Split to score (default 'test'). */
  split?: string;
  /** Prompt keys, each scored separately (default: every key the entries have). */
  promptKeys?: readonly string[];
  /** Images per forward pass (default 8). */
  batchSize?: number;
  /** Probability threshold (default: the segmenter's). */
  threshold?: number;
  /** Score only the first `limit` samples of the split of each dataset. */
  limit?: number;
  /** Called after each batch with the predictions done and the total (samples x keys). */
  onProgress?(done: number, total: number): void;
}

/** One image scored with one prompt. */
export interface EvalRecord {
  dataset: string;
  split: string;
  index: number;
  img_name: string;
  mask_name: string;
  prompt_key: string;
  prompt: string;
  dice: number;
  iou: number;
  /** Foreground pixels of the truth and of the prediction (at the mask's resolution). */
  truth_pixels: number;
  predicted_pixels: number;
  /** Objects in the image (entries with an `objects` list: the synthetic datasets). */
  objects?: number;
}

export interface EvalGroup {
  dataset: string;
  prompt_key: string;
  n: number;
  dice: MeanStd;
  iou: MeanStd;
}

export interface EvalObjectGroup extends EvalGroup {
  objects: 'single' | 'multi';
}

export interface EvalResult {
  split: string;
  threshold: number;
  segmenter: { kind: string; usesText: boolean };
  datasets: { name: string; location: string; samples: number; prompt_keys: string[] }[];
  /** Every key scored, in first-seen order over the datasets. */
  prompt_keys: string[];
  records: EvalRecord[];
  /** Per dataset x prompt key (population std, ddof 0). */
  groups: EvalGroup[];
  /** Per dataset x prompt key x single / multi-object image, where the object count is known. */
  object_groups: EvalObjectGroup[];
  /** Samples left out for a key because their entry lacks it. */
  skipped: { dataset: string; prompt_key: string; count: number }[];
  /** Predictions resized to a mask whose size differs from its image's. */
  resized: number;
}

/** One (image, truth, prompt) to score. */
export interface ScoreItem {
  image: Image;
  mask: BinaryMask;
  prompt: string;
}

/** The number of objects of an entry's image (its `objects` list), or undefined. */
export function objectCount(entry: AnnotationEntry): number | undefined {
  const objects = entry.extra.objects;
  return Array.isArray(objects) ? objects.length : undefined;
}

/** 'single' (one object), 'multi' (more), or undefined when unknown. */
export function objectClass(objects: number | undefined): 'single' | 'multi' | undefined {
  if (objects === undefined) return undefined;
  return objects <= 1 ? 'single' : 'multi';
}

/**
 * Binary predictions (`p > threshold`) at each item's MASK resolution (resized nearest-exact when
 * the mask's size differs from the image's), and how many had to be resized.
 */
export async function predictMasks(
  segmenter: Segmenter,
  items: readonly ScoreItem[],
  threshold: number,
  batchSize: number,
): Promise<{ masks: BinaryMask[]; resized: number }> {
  const maps = await predictProbabilities(
    segmenter,
    items.map((it) => it.image),
    items.map((it) => it.prompt),
    batchSize,
  );
  let resized = 0;
  const masks = items.map((it, i) => {
    const map = maps[i]!;
    const pred = maskFromValues(map.data, map.width, map.height, threshold);
    if (pred.width === it.mask.width && pred.height === it.mask.height) return pred;
    resized++;
    return resizeMaskNearest(pred, it.mask.width, it.mask.height);
  });
  return { masks, resized };
}

/** Predicts and scores items at their masks' resolution (see predictMasks). */
export async function scoreItems(
  segmenter: Segmenter,
  items: readonly ScoreItem[],
  threshold: number,
  batchSize: number,
): Promise<{ scores: SegmentationScores[]; resized: number }> {
  const { masks, resized } = await predictMasks(segmenter, items, threshold, batchSize);
  return { scores: masks.map((m, i) => scoreMasks(m, items[i]!.mask)), resized };
}

/** Keys of the entries: pN sorted by N, then any other key in first-seen order. */
export function datasetPromptKeys(entries: readonly AnnotationEntry[]): string[] {
  const seen = new Set<string>();
  for (const e of entries) for (const k of Object.keys(e.prompts)) seen.add(k);
  const numbered = sortedPromptKeys(seen);
  return [...numbered, ...[...seen].filter((k) => !numbered.includes(k))];
}

export function checkPositiveInt(what: string, value: number | undefined, min: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min)) {
    throw new Error(`${what} must be an integer >= ${min}, got ${value}`);
  }
}

export function checkThreshold(what: string, t: number): void {
  if (!(t >= 0 && t <= 1)) throw new Error(`${what}: threshold must be in [0, 1], got ${t}`);
}

/** The image (RGB) and binary truth mask of an entry, at their original resolution. */
export async function loadImageAndMask(
  dataset: MedVlsmDataset,
  entry: AnnotationEntry,
): Promise<{ image: Image; mask: BinaryMask }> {
  const [image, mask] = await Promise.all([dataset.loadImage(entry.imgName), dataset.loadMask(entry.maskName)]);
  return { image, mask };
}

/** Scores `segmenter` on `split` of every dataset, once per prompt key. */
export async function evaluateSegmenter(
  segmenter: Segmenter,
  datasets: readonly MedVlsmDataset[],
  options: EvalOptions = {},
): Promise<EvalResult> {
  const split = options.split ?? 'test';
  const batchSize = options.batchSize ?? 8;
  const threshold = options.threshold ?? segmenter.threshold;
  checkPositiveInt('evaluateSegmenter: batchSize', batchSize, 1);
  checkPositiveInt('evaluateSegmenter: limit', options.limit, 0);
  checkThreshold('evaluateSegmenter', threshold);
  if (datasets.length === 0) throw new Error('evaluateSegmenter: no dataset given');

  // Plan every dataset first, so bad keys fail before any prediction.
  const plans = datasets.map((dataset) => {
    const all = dataset.entries(split);
    const entries = options.limit === undefined ? all : all.slice(0, options.limit);
    const have = datasetPromptKeys(all);
    let keys: string[];
    if (options.promptKeys !== undefined) {
      keys = [...options.promptKeys];
      const unknown = keys.filter((k) => !have.includes(k));
      if (unknown.length > 0) {
        throw new Error(
          `${dataset.name}/${split}: no entry has prompt ${unknown.map((k) => `"${k}"`).join(', ')} ` +
            `(its prompt keys: ${have.length > 0 ? have.join(', ') : 'none'})`,
        );
      }
    } else {
      keys = have;
    }
    return { dataset, entries, keys };
  });
  const total = plans.reduce((n, p) => n + p.entries.length * p.keys.length, 0);

  const records: EvalRecord[] = [];
  const skipped = new Map<string, { dataset: string; prompt_key: string; count: number }>();
  let resized = 0;
  let done = 0;
  for (const { dataset, entries, keys } of plans) {
    for (let start = 0; start < entries.length; start += batchSize) {
      const chunk = entries.slice(start, start + batchSize);
      const loaded = await Promise.all(chunk.map((e) => loadImageAndMask(dataset, e)));
      // One prediction per (sample, key); one per sample for image-only models.
      const items: ScoreItem[] = [];
      const pending: Omit<EvalRecord, 'dice' | 'iou' | 'truth_pixels' | 'predicted_pixels'>[] = [];
      const itemOf: number[] = [];
      chunk.forEach((entry, j) => {
        const index = start + j;
        const { image, mask } = loaded[j]!;
        const objects = objectCount(entry);
        let shared = -1;
        for (const key of keys) {
          if (!(key in entry.prompts)) {
            const id = `${dataset.name}\u0000${key}`;
            const s = skipped.get(id) ?? { dataset: dataset.name, prompt_key: key, count: 0 };
            s.count++;
            skipped.set(id, s);
            continue;
          }
          const prompt = dataset.promptFor(split, index, 0, { kind: 'key', key }).text;
          if (segmenter.usesText || shared < 0) {
            items.push({ image, mask, prompt });
            shared = items.length - 1;
          }
          itemOf.push(shared);
          pending.push({
            dataset: dataset.name,
            split,
            index,
            img_name: entry.imgName,
            mask_name: entry.maskName,
            prompt_key: key,
            prompt,
            ...(objects === undefined ? {} : { objects }),
          });
        }
      });
      const scored = await scoreItems(segmenter, items, threshold, batchSize);
      resized += scored.resized;
      pending.forEach((p, i) => {
        const s = scored.scores[itemOf[i]!]!;
        records.push({ ...p, dice: s.dice, iou: s.iou, truth_pixels: s.truth, predicted_pixels: s.predicted });
      });
      done += chunk.length * keys.length;
      options.onProgress?.(done, total);
    }
  }

  const promptKeys: string[] = [];
  for (const p of plans) for (const k of p.keys) if (!promptKeys.includes(k)) promptKeys.push(k);
  return {
    split,
    threshold,
    segmenter: { kind: segmenter.kind, usesText: segmenter.usesText },
    datasets: plans.map((p) => ({
      name: p.dataset.name,
      location: p.dataset.source.location,
      samples: p.entries.length,
      prompt_keys: p.keys,
    })),
    prompt_keys: promptKeys,
    records,
    ...groupRecords(records),
    skipped: [...skipped.values()],
    resized,
  };
}

/** Aggregates per dataset x prompt key, and per single / multi-object image where known. */
export function groupRecords(records: readonly EvalRecord[]): { groups: EvalGroup[]; object_groups: EvalObjectGroup[] } {
  const scoreRecords: ScoreRecord[] = records.map((r) => ({
    dice: r.dice,
    iou: r.iou,
    labels: { dataset: r.dataset, prompt_key: r.prompt_key },
  }));
  const groups = aggregateScores(scoreRecords, ['dataset', 'prompt_key']).map((g) => ({
    dataset: g.group.dataset!,
    prompt_key: g.group.prompt_key!,
    n: g.n,
    dice: g.dice,
    iou: g.iou,
  }));
  const known: ScoreRecord[] = [];
  for (const r of records) {
    const cls = objectClass(r.objects);
    if (cls !== undefined) known.push({ dice: r.dice, iou: r.iou, labels: { dataset: r.dataset, prompt_key: r.prompt_key, objects: cls } });
  }
  // Ordered like `groups` (dataset, prompt key), single before multi.
  const rank = (g: { group: Record<string, string> }) =>
    2 * groups.findIndex((x) => x.dataset === g.group.dataset && x.prompt_key === g.group.prompt_key) +
    (g.group.objects === 'single' ? 0 : 1);
  const objectGroups = aggregateScores(known, ['dataset', 'prompt_key', 'objects'])
    .sort((a, b) => rank(a) - rank(b))
    .map((g) => ({
      dataset: g.group.dataset!,
      prompt_key: g.group.prompt_key!,
      objects: g.group.objects as 'single' | 'multi',
      n: g.n,
      dice: g.dice,
      iou: g.iou,
    }));
  return { groups, object_groups: objectGroups };
}
