/**
 * The language-reliance report: how much a model's masks depend on what the prompt says. The same
 * model scores every sample four times, with
 *
 *   true      the sample's own prompt (one key; default the richest, the highest pN),
 *   empty     the empty prompt '',
 *   shuffled  the prompt of another image's sample (a seeded derangement; prompt-variants.ts),
 *   changed   the true prompt with one attribute word swapped (colour, size, shape or location);
 *             samples whose prompt states none are skipped and counted,
 *
 * and the report gives mean / std Dice and IoU per variant, overall and split into single- and
 * multi-object images where the entries list their objects (synthetic data), and
 *
 *   reliance = mean true Dice - mean shuffled Dice   (over the samples that have both),
 *   changed_drop = mean true Dice - mean changed Dice (over the samples that have both).
 *
 * A model that ignores the prompt has reliance 0; on multi-object images only the prompt tells
 * which object is meant, so a model that reads it scores well above its shuffled variant there.
 * Image-only segmenters (usesText false) score every variant the same by construction; they are
 * still computed, and the report says so in `note`.
 */
import type { MedVlsmDataset } from '../data/dataset.js';
import { rngFor } from '../data/random.js';
import { type MeanStd, type ScoreRecord, aggregateScores, meanStd } from '../metrics.js';
import type { Segmenter } from '../segmenter.js';
import {
  type ScoreItem,
  checkPositiveInt,
  checkThreshold,
  datasetPromptKeys,
  loadImageAndMask,
  objectClass,
  objectCount,
  scoreItems,
} from './evaluate.js';
import { type ChangeableAttribute, changeOneAttribute, shufflePartners } from './prompt-variants.js';

export type PromptVariant = 'true' | 'empty' | 'shuffled' | 'changed';
export const PROMPT_VARIANTS: readonly PromptVariant[] = ['true', 'empty', 'shuffled', 'changed'];

export interface LanguageOptions {
  split?: string;
  /** The true prompt's key (default: each dataset's richest, its highest pN). */
  promptKey?: string;
  batchSize?: number;
  threshold?: number;
  /** Only the first `limit` samples of the split of each dataset. */
  limit?: number;
  /** Seed of the shuffle and of the attribute changes (default 0). */
  seed?: number;
  onProgress?(done: number, total: number): void;
}

export interface LanguageRecord {
  dataset: string;
  split: string;
  index: number;
  img_name: string;
  variant: PromptVariant;
  prompt: string;
  dice: number;
  iou: number;
  objects?: number;
  /** shuffled: the sample whose prompt was used. */
  source_index?: number;
  /** changed: what was changed. */
  attribute?: ChangeableAttribute;
  from?: string;
  to?: string;
}

export interface ScoreSummary {
  n: number;
  dice: MeanStd;
  iou: MeanStd;
}

export interface VariantSummary extends ScoreSummary {
  variant: PromptVariant;
  /** Present when some images have a known object count. */
  single?: ScoreSummary;
  multi?: ScoreSummary;
}

export interface RelianceFigures {
  /** NaN when no sample has both variants. */
  overall: number;
  single?: number;
  multi?: number;
}

export interface LanguageReport {
  split: string;
  threshold: number;
  seed: number;
  segmenter: { kind: string; usesText: boolean };
  /** Set for image-only segmenters: all variants are equal by construction. */
  note: string | null;
  datasets: {
    name: string;
    prompt_key: string;
    samples: number;
    /** Samples left out because their entry lacks the prompt key. */
    skipped_no_key: number;
    /** Samples without a changed variant (no attribute word in the prompt). */
    changed_skipped: number;
    /** Shuffled prompts that come from the same image (only when unavoidable). */
    shuffled_same_image: number;
  }[];
  records: LanguageRecord[];
  /** Per variant over all datasets, in PROMPT_VARIANTS order. */
  variants: VariantSummary[];
  /** Per dataset and variant. */
  per_dataset: (VariantSummary & { dataset: string })[];
  /** true Dice - shuffled Dice. */
  reliance: RelianceFigures;
  /** true Dice - changed Dice. */
  changed_drop: RelianceFigures;
  changed_skipped: number;
}

export const IMAGE_ONLY_NOTE = 'image-only segmenter (usesText false): prompts are ignored, so every variant scores the same by construction';

/** The richest prompt key of a dataset's entries: the highest pN (else the last key). */
export function richestPromptKey(keys: readonly string[]): string | undefined {
  const numbered = keys.filter((k) => /^p\d+$/.test(k));
  return numbered.length > 0 ? numbered[numbered.length - 1] : keys[keys.length - 1];
}

export async function languageReport(
  segmenter: Segmenter,
  datasets: readonly MedVlsmDataset[],
  options: LanguageOptions = {},
): Promise<LanguageReport> {
  const split = options.split ?? 'test';
  const batchSize = options.batchSize ?? 8;
  const threshold = options.threshold ?? segmenter.threshold;
  const seed = options.seed ?? 0;
  checkPositiveInt('languageReport: batchSize', batchSize, 1);
  checkPositiveInt('languageReport: limit', options.limit, 0);
  checkThreshold('languageReport', threshold);
  if (datasets.length === 0) throw new Error('languageReport: no dataset given');

  const plans = datasets.map((dataset) => {
    const all = dataset.entries(split);
    const have = datasetPromptKeys(all);
    const key = options.promptKey ?? richestPromptKey(have);
    if (key === undefined || !have.includes(key)) {
      throw new Error(
        `${dataset.name}/${split}: no entry has prompt "${key ?? '(none)'}" ` + `(its prompt keys: ${have.length > 0 ? have.join(', ') : 'none'})`,
      );
    }
    const limited = options.limit === undefined ? all : all.slice(0, options.limit);
    const indices = limited.map((_, i) => i).filter((i) => key in limited[i]!.prompts);
    const prompts = indices.map((i) => dataset.promptFor(split, i, 0, { kind: 'key', key }).text);
    const shuffle = shufflePartners(indices.map((i) => limited[i]!.imgName), seed, `${dataset.name}/${split}`);
    return { dataset, key, entries: limited, indices, prompts, shuffle, skipped: limited.length - indices.length };
  });
  const total = plans.reduce((n, p) => n + p.indices.length, 0);

  const records: LanguageRecord[] = [];
  const info: LanguageReport['datasets'] = [];
  let done = 0;
  for (const plan of plans) {
    const { dataset, entries, indices, prompts, shuffle } = plan;
    let changedSkipped = 0;
    for (let start = 0; start < indices.length; start += batchSize) {
      const chunk = indices.slice(start, start + batchSize);
      const loaded = await Promise.all(chunk.map((i) => loadImageAndMask(dataset, entries[i]!)));
      const items: ScoreItem[] = [];
      const pending: Omit<LanguageRecord, 'dice' | 'iou'>[] = [];
      chunk.forEach((index, j) => {
        const k = start + j;
        const entry = entries[index]!;
        const { image, mask } = loaded[j]!;
        const objects = objectCount(entry);
        const base = { dataset: dataset.name, split, index, img_name: entry.imgName, ...(objects === undefined ? {} : { objects }) };
        const add = (variant: PromptVariant, prompt: string, extra: Partial<LanguageRecord> = {}) => {
          items.push({ image, mask, prompt });
          pending.push({ ...base, variant, prompt, ...extra });
        };
        add('true', prompts[k]!);
        add('empty', '');
        const partner = shuffle.partner[k]!;
        if (partner >= 0) add('shuffled', prompts[partner]!, { source_index: indices[partner]! });
        const change = changeOneAttribute(prompts[k]!, entry, rngFor(seed, 'language-change', dataset.name, split, index));
        if (change === null) changedSkipped++;
        else add('changed', change.text, { attribute: change.attribute, from: change.from, to: change.to });
      });
      const { scores } = await scoreItems(segmenter, items, threshold, batchSize);
      pending.forEach((p, i) => records.push({ ...p, dice: scores[i]!.dice, iou: scores[i]!.iou }));
      done += chunk.length;
      options.onProgress?.(done, total);
    }
    info.push({
      name: dataset.name,
      prompt_key: plan.key,
      samples: indices.length,
      skipped_no_key: plan.skipped,
      changed_skipped: changedSkipped,
      shuffled_same_image: shuffle.sameImage,
    });
  }

  return {
    split,
    threshold,
    seed,
    segmenter: { kind: segmenter.kind, usesText: segmenter.usesText },
    note: segmenter.usesText ? null : IMAGE_ONLY_NOTE,
    datasets: info,
    records,
    variants: summarizeVariants(records),
    per_dataset: datasets.flatMap((d) =>
      summarizeVariants(records.filter((r) => r.dataset === d.name)).map((v) => ({ dataset: d.name, ...v })),
    ),
    reliance: pairedDrop(records, 'shuffled'),
    changed_drop: pairedDrop(records, 'changed'),
    changed_skipped: info.reduce((n, d) => n + d.changed_skipped, 0),
  };
}

function summary(records: readonly LanguageRecord[]): ScoreSummary | undefined {
  if (records.length === 0) return undefined;
  const score: ScoreRecord[] = records.map((r) => ({ dice: r.dice, iou: r.iou, labels: {} }));
  const g = aggregateScores(score, [])[0]!;
  return { n: g.n, dice: g.dice, iou: g.iou };
}

/** Mean / std per variant (variants without records are left out), split by object count where known. */
export function summarizeVariants(records: readonly LanguageRecord[]): VariantSummary[] {
  const out: VariantSummary[] = [];
  for (const variant of PROMPT_VARIANTS) {
    const of = records.filter((r) => r.variant === variant);
    const all = summary(of);
    if (all === undefined) continue;
    const single = summary(of.filter((r) => objectClass(r.objects) === 'single'));
    const multi = summary(of.filter((r) => objectClass(r.objects) === 'multi'));
    out.push({ variant, ...all, ...(single ? { single } : {}), ...(multi ? { multi } : {}) });
  }
  return out;
}

/** Mean true Dice - mean `variant` Dice over the samples that have both, overall and by object count. */
export function pairedDrop(records: readonly LanguageRecord[], variant: PromptVariant): RelianceFigures {
  const id = (r: LanguageRecord) => `${r.dataset}\u0000${r.split}\u0000${r.index}`;
  const truth = new Map<string, LanguageRecord>();
  for (const r of records) if (r.variant === 'true') truth.set(id(r), r);
  const pairs: { t: number; v: number; cls: 'single' | 'multi' | undefined }[] = [];
  for (const r of records) {
    const t = r.variant === variant ? truth.get(id(r)) : undefined;
    if (t !== undefined) pairs.push({ t: t.dice, v: r.dice, cls: objectClass(r.objects) });
  }
  const drop = (ps: typeof pairs) => meanStd(ps.map((p) => p.t)).mean - meanStd(ps.map((p) => p.v)).mean;
  const out: RelianceFigures = { overall: drop(pairs) };
  const single = pairs.filter((p) => p.cls === 'single');
  const multi = pairs.filter((p) => p.cls === 'multi');
  if (single.length > 0) out.single = drop(single);
  if (multi.length > 0) out.multi = drop(multi);
  return out;
}
