/**
 * Segmentation metrics as the MedVLSM study computes them: per-image Dice and IoU of a binary
 * prediction against the binary truth, at the truth's (original) resolution, with MONAI's
 * `compute_dice` / `compute_iou(..., ignore_empty=False)` semantics:
 *
 *   Dice = 2 |P n T| / (|P| + |T|),   IoU = |P n T| / |P u T|,
 *   both 1 when P and T are both empty, 0 when exactly one of them is empty.
 *
 * The study binarises the prediction with sigmoid(logit) > threshold (0.5 by default) and resizes
 * masks with nearest-exact sampling (data/mask.ts: maskFromValues, resizeMaskNearest).
 *
 * Aggregation: mean and standard deviation of the per-image scores per group (dataset, prompt
 * type, ...). `std` is the population standard deviation (ddof 0, numpy's default); pass ddof: 1
 * for the sample standard deviation (pandas' default).
 */
import type { BinaryMask } from './data/mask.js';

export interface SegmentationScores {
  dice: number;
  iou: number;
  /** |P n T|, |P|, |T| in pixels. */
  intersection: number;
  predicted: number;
  truth: number;
}

/** Scores of two equally long 0/1 (or zero/non-zero) pixel arrays. */
export function scorePixels(pred: ArrayLike<number>, truth: ArrayLike<number>): SegmentationScores {
  if (pred.length !== truth.length) {
    throw new Error(`scorePixels: prediction has ${pred.length} pixels, truth ${truth.length}`);
  }
  let inter = 0;
  let p = 0;
  let t = 0;
  for (let i = 0; i < pred.length; i++) {
    const a = pred[i] ? 1 : 0;
    const b = truth[i] ? 1 : 0;
    p += a;
    t += b;
    inter += a & b;
  }
  const sum = p + t;
  const union = sum - inter;
  return {
    dice: sum > 0 ? (2 * inter) / sum : 1,
    iou: union > 0 ? inter / union : 1,
    intersection: inter,
    predicted: p,
    truth: t,
  };
}

/** Scores of a predicted mask against the truth; both must have the truth's (original) size. */
export function scoreMasks(pred: BinaryMask, truth: BinaryMask): SegmentationScores {
  if (pred.width !== truth.width || pred.height !== truth.height) {
    throw new Error(
      `scoreMasks: prediction is ${pred.width}x${pred.height} but the truth is ${truth.width}x${truth.height}; ` +
        'metrics are computed at the original resolution: resize the prediction first',
    );
  }
  return scorePixels(pred.data, truth.data);
}

export function dice(pred: BinaryMask, truth: BinaryMask): number {
  return scoreMasks(pred, truth).dice;
}

export function iou(pred: BinaryMask, truth: BinaryMask): number {
  return scoreMasks(pred, truth).iou;
}

/** One image's scores and the labels it is grouped by. */
export interface ScoreRecord {
  dice: number;
  iou: number;
  /** e.g. { dataset: 'kvasir_polyp', prompt: 'p3' }. */
  labels: Readonly<Record<string, string>>;
}

export interface MeanStd {
  mean: number;
  std: number;
}

export interface GroupStats {
  /** Values of the grouping labels (empty for the overall group). */
  group: Record<string, string>;
  n: number;
  dice: MeanStd;
  iou: MeanStd;
}

/** Mean and standard deviation (NaN for an empty list; std 0 for one value with ddof 0). */
export function meanStd(values: readonly number[], ddof: 0 | 1 = 0): MeanStd {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN };
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  const std = n - ddof > 0 ? Math.sqrt(ss / (n - ddof)) : NaN;
  return { mean, std };
}

/**
 * Groups records by the given label keys (in first-seen order of their values) and returns the
 * mean and std of Dice and IoU per group. `by: []` gives one overall group.
 */
export function aggregateScores(
  records: readonly ScoreRecord[],
  by: readonly string[],
  options: { ddof?: 0 | 1 } = {},
): GroupStats[] {
  const groups = new Map<string, { group: Record<string, string>; dice: number[]; iou: number[] }>();
  for (const r of records) {
    const group: Record<string, string> = {};
    for (const key of by) {
      const v = r.labels[key];
      if (v === undefined) throw new Error(`aggregateScores: a record has no label "${key}"`);
      group[key] = v;
    }
    const id = JSON.stringify(by.map((k) => group[k]));
    let g = groups.get(id);
    if (g === undefined) {
      g = { group, dice: [], iou: [] };
      groups.set(id, g);
    }
    g.dice.push(r.dice);
    g.iou.push(r.iou);
  }
  const ddof = options.ddof ?? 0;
  return [...groups.values()].map((g) => ({
    group: g.group,
    n: g.dice.length,
    dice: meanStd(g.dice, ddof),
    iou: meanStd(g.iou, ddof),
  }));
}
