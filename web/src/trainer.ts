/**
 * The page's finetuning loop: seeded batches of the train split, one `trainStep` (AdamW, the
 * chosen loss and freeze policy, gradient norm clipped at 1) per step, the validation Dice every
 * few steps (and before the first and after the last step), and a stop flag checked between steps.
 * It yields to the browser between steps so the page stays responsive and the plots update.
 */
import type { MedVlsmDataset } from '../../src/train/data/index.js';
import { AdamW } from '../../src/train/optim.js';
import type { FreezePolicy, Segmenter } from '../../src/train/segmenter.js';
import { trainStep } from '../../src/train/step.js';
import { validationScores } from '../../src/train/validate.js';

export interface TrainSettings {
  steps: number;
  batchSize: number;
  lr: number;
  freeze: FreezePolicy;
  loss: 'dice' | 'dice+bce';
  valEvery: number;
  /** Validation samples scored each time (the first N of the split). */
  valSamples: number;
}

export interface TrainCallbacks {
  onStep(step: number, loss: number, gradNorm: number): void;
  onValidation(step: number, meanDice: number): void;
  shouldStop(): boolean;
}

/** Checks the settings a person typed; errors name the field. */
export function checkSettings(s: TrainSettings): void {
  const positiveInt = (v: number, name: string) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a whole number >= 1, got ${v}`);
  };
  positiveInt(s.steps, 'steps');
  positiveInt(s.batchSize, 'batch');
  positiveInt(s.valEvery, 'validate every');
  if (!(s.lr > 0 && s.lr < 1)) throw new Error(`learning rate must be in (0, 1), got ${s.lr}`);
}

const yieldToBrowser = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** The split scored for validation: val, else test, else none. */
export function validationSplit(dataset: MedVlsmDataset): string | null {
  return ['val', 'test'].find((s) => dataset.hasSplit(s) && dataset.size(s) > 0) ?? null;
}

/** Runs the loop; resolves with the number of steps done and whether it was stopped. */
export async function finetune(
  seg: Segmenter,
  dataset: MedVlsmDataset,
  settings: TrainSettings,
  callbacks: TrainCallbacks,
): Promise<{ steps: number; stopped: boolean }> {
  checkSettings(settings);
  const valSplit = validationSplit(dataset);
  const valSamples = valSplit ? Array.from({ length: Math.min(settings.valSamples, dataset.size(valSplit)) }, (_, index) => ({ dataset, index })) : [];
  // The Node trainer's validation (train/validate.ts): mean Dice at each mask's own resolution, with
  // epoch 0's prompt draw every time so that the scores of different steps compare.
  const validate = async (step: number) => {
    if (!valSplit || valSamples.length === 0) return;
    callbacks.onValidation(step, (await validationScores(seg, valSamples, valSplit, dataset.prompt)).dice);
  };
  const optimizer = new AdamW(seg.trainable(settings.freeze), { lr: settings.lr, weightDecay: 0.01 });
  let step = 0;
  try {
    await validate(0);
    for (let epoch = 0; step < settings.steps; epoch++) {
      const batches = dataset.batches('train', { batchSize: settings.batchSize, epoch, dropLast: dataset.size('train') >= settings.batchSize });
      if (batches.length === 0) throw new Error(`${dataset.name}: the train split has no samples`);
      for (const batch of batches) {
        if (step >= settings.steps) break;
        if (callbacks.shouldStop()) return { steps: step, stopped: true };
        const samples = await Promise.all(batch.map((i) => dataset.loadSample('train', i, epoch)));
        const { loss, gradNorm } = await trainStep(
          seg,
          optimizer,
          { images: samples.map((s) => s.image), prompts: samples.map((s) => s.prompt.text), masks: samples.map((s) => s.mask) },
          { freeze: settings.freeze, loss: { kind: settings.loss }, clipGradNorm: 1 },
        );
        step++;
        callbacks.onStep(step, loss, gradNorm);
        if (step % settings.valEvery === 0 && step < settings.steps) await validate(step);
        await yieldToBrowser();
      }
    }
    await validate(step);
    return { steps: step, stopped: false };
  } finally {
    optimizer.dispose();
  }
}
