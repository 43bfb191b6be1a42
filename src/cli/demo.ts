/**
 * npm run demo: the README's main job, a small transfer-learning study (src/train/study-node.ts)
 * on the embedded defaults: the shipped tiny CLIPSeg pretrained on the synthetic source domain
 * (weights/demo) and a shifted synthetic target domain generated on the spot; no download.
 * Runs on WebGPU, or on the CPU device with a notice naming the driver install command (there it
 * shrinks the budget: the CPU reference kernels are far slower).
 *
 *   npm run demo -- [--out demo-output] [--steps N] [--batch-size N] [--checkpoint file]
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runStudy } from '../train/study-node.js';
import { pickDevice } from './gpu.js';

const DEFAULT_CHECKPOINT = fileURLToPath(new URL('../../weights/demo/clipseg-tiny-synthetic.safetensors', import.meta.url));

const { values } = parseArgs({
  options: { out: { type: 'string' }, steps: { type: 'string' }, 'batch-size': { type: 'string' }, checkpoint: { type: 'string' } },
});
const device = await pickDevice('npm run demo');
const onCpu = device.kind === 'cpu';
const steps = Number(values.steps ?? (onCpu ? 4 : 80));
const batchSize = Number(values['batch-size'] ?? (onCpu ? 8 : 32));
for (const [name, v] of [['--steps', steps], ['--batch-size', batchSize]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`demo: ${name} must be a positive integer`);
    process.exit(2);
  }
}
const out = values.out ?? 'demo-output';
console.log(`webvlsm demo: transfer-learning study on ${device.description}${onCpu ? ' (reduced budget on the CPU device)' : ''}`);
const figures = await runStudy({
  out,
  checkpoint: values.checkpoint ?? DEFAULT_CHECKPOINT,
  device,
  steps,
  batchSize,
  images: onCpu ? { train: 16, val: 6, test: 10 } : { train: 300, val: 20, test: 40 },
  write: (t) => process.stderr.write(t),
});
console.log(`\nDice on the target test split (true prompts): zero-shot ${figures.zeroShotDice.toFixed(3)}, ` +
  `finetuned ${figures.finetunedDice.toFixed(3)}; multi-object images: finetuned ${figures.finetunedMultiDice.toFixed(3)}, ` +
  `shuffled prompts ${figures.shuffledMultiDice.toFixed(3)}, UNet ${figures.unetMultiDice.toFixed(3)}`);
console.log(`report: ${out}/report.md (${Math.round(figures.seconds)} s)`);
process.exit(0);
