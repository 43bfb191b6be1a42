/**
 * Dice / IoU with MONAI's compute_dice / compute_iou(ignore_empty=False) semantics, on hand-computed
 * cases (including empty masks), and mean/std aggregation per group.
 */
import { describe, expect, it } from 'vitest';
import { maskFromValues } from '../../src/train/data/mask.js';
import { aggregateScores, dice, iou, meanStd, scoreMasks, scorePixels, type ScoreRecord } from '../../src/train/metrics.js';

/** A mask from rows of '#' (foreground) and '.' (background). */
function mask(...rows: string[]) {
  const values = rows.join('').split('').map((c) => (c === '#' ? 1 : 0));
  return maskFromValues(values, rows[0]!.length, rows.length, 0.5);
}

describe('per-image Dice and IoU', () => {
  it('partial overlap: |P| = 4, |T| = 6, |P n T| = 2 -> Dice 4/10, IoU 2/8', () => {
    const p = mask('##..', '##..', '....');
    const t = mask('.##.', '.##.', '.##.');
    const s = scoreMasks(p, t);
    // Overlap: row 0 col 1 and row 1 col 1. Union = 4 + 6 - 2 = 8.
    expect(s).toMatchObject({ intersection: 2, predicted: 4, truth: 6 });
    expect(s.dice).toBeCloseTo(0.4, 12);
    expect(s.iou).toBeCloseTo(0.25, 12);
  });

  it('perfect prediction scores 1 and 1', () => {
    const t = mask('.#.', '###', '.#.');
    expect(dice(t, t)).toBe(1);
    expect(iou(t, t)).toBe(1);
  });

  it('disjoint prediction scores 0 and 0', () => {
    expect(dice(mask('#..'), mask('..#'))).toBe(0);
    expect(iou(mask('#..'), mask('..#'))).toBe(0);
  });

  it('empty truth and empty prediction score 1 (MONAI ignore_empty=False)', () => {
    const e = mask('...', '...');
    expect(scoreMasks(e, e)).toMatchObject({ dice: 1, iou: 1 });
  });

  it('empty truth with a non-empty prediction scores 0', () => {
    expect(scoreMasks(mask('#..', '...'), mask('...', '...'))).toMatchObject({ dice: 0, iou: 0 });
  });

  it('non-empty truth with an empty prediction scores 0', () => {
    expect(scoreMasks(mask('...', '...'), mask('.#.', '...'))).toMatchObject({ dice: 0, iou: 0 });
  });

  it('one pixel of two predicted: Dice 2/3, IoU 1/2', () => {
    const s = scorePixels([1, 1, 0, 0], [1, 0, 0, 0]);
    expect(s.dice).toBeCloseTo(2 / 3, 12);
    expect(s.iou).toBeCloseTo(1 / 2, 12);
    // Dice = 2 IoU / (1 + IoU) always.
    expect(s.dice).toBeCloseTo((2 * s.iou) / (1 + s.iou), 12);
  });

  it('treats any non-zero value as foreground in scorePixels', () => {
    expect(scorePixels([255, 0, 7], [1, 0, 1]).dice).toBe(1);
  });

  it('requires the prediction at the truth resolution', () => {
    expect(() => scoreMasks(mask('##'), mask('#', '#'))).toThrow(/2x1 but the truth is 1x2.*resize the prediction/);
    expect(() => scorePixels([1], [1, 0])).toThrow(/1 pixels, truth 2/);
  });

  it('thresholds probabilities with > (0.5 itself is background, as sigmoid > 0.5)', () => {
    expect([...maskFromValues([0.2, 0.5, 0.51, 0.9], 2, 2).data]).toEqual([0, 0, 1, 1]);
    expect([...maskFromValues([-1, 0, 0.01, 3], 4, 1, 0).data]).toEqual([0, 0, 1, 1]);
  });
});

describe('aggregation per group', () => {
  it('mean and std (population by default, sample with ddof 1)', () => {
    expect(meanStd([1, 2, 3, 4])).toEqual({ mean: 2.5, std: Math.sqrt(1.25) });
    expect(meanStd([1, 2, 3, 4], 1).std).toBeCloseTo(Math.sqrt(5 / 3), 12);
    expect(meanStd([0.7])).toEqual({ mean: 0.7, std: 0 });
    expect(meanStd([0.7], 1).std).toBeNaN();
    expect(meanStd([]).mean).toBeNaN();
  });

  it('groups by dataset and prompt type, in first-seen order', () => {
    const r = (dataset: string, prompt: string, d: number, i: number): ScoreRecord => ({ dice: d, iou: i, labels: { dataset, prompt } });
    const records = [
      r('kvasir', 'p1', 1.0, 1.0),
      r('kvasir', 'p1', 0.5, 1 / 3),
      r('kvasir', 'p6', 0.8, 2 / 3),
      r('busi', 'p1', 0.0, 0.0),
      r('busi', 'p1', 1.0, 1.0),
    ];
    const both = aggregateScores(records, ['dataset', 'prompt']);
    expect(both.map((g) => [g.group, g.n])).toEqual([
      [{ dataset: 'kvasir', prompt: 'p1' }, 2],
      [{ dataset: 'kvasir', prompt: 'p6' }, 1],
      [{ dataset: 'busi', prompt: 'p1' }, 2],
    ]);
    expect(both[0]!.dice).toEqual({ mean: 0.75, std: 0.25 });
    expect(both[0]!.iou.mean).toBeCloseTo(2 / 3, 12);
    expect(both[0]!.iou.std).toBeCloseTo(1 / 3, 12);
    expect(both[2]!.dice).toEqual({ mean: 0.5, std: 0.5 });

    const byPrompt = aggregateScores(records, ['prompt']);
    expect(byPrompt.map((g) => [g.group.prompt, g.n, g.dice.mean])).toEqual([
      ['p1', 4, 0.625],
      ['p6', 1, 0.8],
    ]);
    const overall = aggregateScores(records, []);
    expect(overall).toHaveLength(1);
    expect(overall[0]!.n).toBe(5);
    expect(overall[0]!.dice.mean).toBeCloseTo(3.3 / 5, 12);
    expect(() => aggregateScores(records, ['model'])).toThrow(/no label "model"/);
  });
});
