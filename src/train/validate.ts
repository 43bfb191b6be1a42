/**
 * Validation during training: mean Dice and IoU of the model on the pooled validation samples at
 * their original resolution (eval/evaluate.ts's scoring, MONAI semantics), with the run's
 * validation prompt choice drawn for epoch 0 so that every epoch sees the same prompts.
 */
import type { MedVlsmDataset } from './data/dataset.js';
import type { PromptChoice } from './data/prompt.js';
import { type ScoreItem, scoreItems } from './eval/evaluate.js';
import type { Segmenter } from './segmenter.js';

export async function validationScores(
  segmenter: Segmenter,
  samples: readonly { dataset: MedVlsmDataset; index: number }[],
  split: string,
  prompt: PromptChoice,
  batchSize = 16,
): Promise<{ dice: number; iou: number; n: number }> {
  const items: ScoreItem[] = [];
  for (const { dataset, index } of samples) {
    const s = await dataset.loadSample(split, index, 0, prompt);
    items.push({ image: s.image, mask: s.mask, prompt: s.prompt.text });
  }
  const { scores } = await scoreItems(segmenter, items, segmenter.threshold, batchSize);
  const mean = (f: (s: (typeof scores)[number]) => number) => scores.reduce((a, s) => a + f(s), 0) / Math.max(1, scores.length);
  return { dice: mean((s) => s.dice), iou: mean((s) => s.iou), n: scores.length };
}
