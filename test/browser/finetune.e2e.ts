/**
 * End-to-end tests of the browser app's Finetune tab (see segment.e2e.ts for the set-up): a
 * 10-step finetune in the page lowers the training loss, and the checkpoint it downloads loads in
 * Node (same predictions as the page) and in the CLI (`webvlsm eval`); datasets load from a zip and
 * from a folder; Stop ends a run between steps.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/models/image/index.js';
import { decodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { type Segmenter, predictProbabilities } from '../../src/train/segmenter.js';
import { generateSyntheticDataset } from '../../src/train/synthetic/index.js';
import { writeSyntheticDataset } from '../../src/train/synthetic/write-node.js';
import { ROOT, Session, artifact, cpu, maxAbsDiff, nodeCheckpoint, segmentIn, state, tempDir, testImage, tokenizer, waitForModel, waitForState } from './harness.js';

const session = new Session();
const work = tempDir('browser-finetune');
const imagePath = testImage(work);

beforeAll(() => session.start());
afterAll(() => session.stop());

/** Checkpoint keys whose values differ between two segmenters of the same config. */
async function changedKeys(a: Segmenter, b: Segmenter): Promise<string[]> {
  const other = b.module.stateDict();
  const changed: string[] = [];
  for (const [key, t] of a.module.stateDict()) {
    if (maxAbsDiff((await t.read()) as Float32Array, (await other.get(key)!.read()) as Float32Array) > 0) changed.push(key);
  }
  return changed;
}

describe('finetuning', () => {
  it('10 steps on the synthetic dataset lower the loss; the downloaded checkpoint loads in Node and the CLI', async ({ skip }) => {
    session.needGpu(skip);
    const page = session.page;
    const start = await nodeCheckpoint(work);
    const before = (await state(page)).errors.length;
    await page.setInputFiles('#model-files-input', start);
    await waitForModel(page, before);
    await page.click('#tab-finetune');
    await page.fill('#synthetic-images', '6');
    await page.fill('#synthetic-size', '32');
    await page.click('#generate-synthetic');
    const withData = await waitForState(page, 's.finetune.dataset !== null', { errorsBefore: before });
    expect(withData.finetune.dataset!.splits).toEqual({ train: 4, val: 2 });
    // Full-batch steps (4 of 4 train samples): the loss of one set of images goes down.
    await page.fill('#train-steps', '10');
    await page.fill('#train-batch', '4');
    await page.fill('#train-lr', '0.003');
    await page.selectOption('#train-freeze', 'decoder-only');
    await page.click('#train-start');
    const done = await waitForState(page, "s.finetune.status !== 'running' && s.finetune.status !== 'idle'", { errorsBefore: before, timeout: 600_000 });
    expect(done.finetune.status, done.finetune.message).toBe('done');
    const losses = done.finetune.losses;
    expect(losses).toHaveLength(10);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[9]!, `losses ${losses.map((l) => l.toFixed(4)).join(' ')}`).toBeLessThan(losses[0]!);
    expect(done.finetune.valDice.map(([step]) => step)).toEqual([0, 5, 10]);
    await page.screenshot({ path: artifact('browser-finetune.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-checkpoint')]);
    expect(download.suggestedFilename()).toBe('webvlsm-finetuned-10steps.safetensors');
    const saved = join(work, download.suggestedFilename());
    await download.saveAs(saved);

    // Node: the finetuned weights load; only the decoder changed; they predict what the page predicts.
    const tuned = decodeSegmenterCheckpoint(new Uint8Array(readFileSync(saved)), saved, { device: cpu, tokenizer });
    const original = decodeSegmenterCheckpoint(new Uint8Array(readFileSync(start)), start, { device: cpu, tokenizer });
    const changed = await changedKeys(tuned, original);
    original.module.dispose();
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.filter((k) => !k.startsWith('decoder.'))).toEqual([]);
    await page.click('#tab-segment');
    await page.setInputFiles('#image-input', imagePath);
    const s = await segmentIn(page, ['a polyp']);
    expect(s.model!.name).toBe('tiny-segmenter.safetensors (finetuned)');
    const [node] = await predictProbabilities(tuned, [decodeImage(new Uint8Array(readFileSync(imagePath)), imagePath)], ['a polyp']);
    tuned.module.dispose();
    expect(maxAbsDiff(s.segmentation!.probabilities[0]!, node!.data)).toBeLessThan(1e-4);

    // The CLI evaluates the downloaded checkpoint on a small synthetic dataset.
    const data = join(work, 'synthetic-eval');
    await writeSyntheticDataset(data, { size: 32, seed: 5, images: { train: 0, val: 0, test: 2 }, targets: 'one' });
    const cli = await promisify(execFile)(process.execPath, [join(ROOT, 'bin/webvlsm.mjs'), 'eval', '--checkpoint', saved, '--data', data, '--device', 'cpu'], {
      cwd: ROOT,
    });
    expect(cli.stdout).toContain(`model: clipseg ${saved}`);
  });

  it('datasets load from a zip (fflate) and from a folder; Stop ends a run between steps', async ({ skip }) => {
    session.needGpu(skip);
    const page = session.page;
    if ((await state(page)).model?.kind !== 'segmenter') {
      await page.setInputFiles('#model-files-input', await nodeCheckpoint(work));
      await waitForModel(page, (await state(page)).errors.length);
    }
    await page.click('#tab-finetune');
    const before = (await state(page)).errors.length;
    // A zip whose dataset sits one folder down, as zipping a folder gives.
    const generated = generateSyntheticDataset({ size: 32, seed: 9, images: { train: 3, val: 1, test: 0 }, targets: 'one' });
    const entries = Object.fromEntries([...generated.files].map(([path, bytes]) => [`mini/${path}`, bytes]));
    await page.setInputFiles('#dataset-zip-input', { name: 'mini.zip', mimeType: 'application/zip', buffer: Buffer.from(zipSync(entries)) });
    let s = await waitForState(page, "s.finetune.dataset !== null && s.finetune.dataset.name === 'mini'", { errorsBefore: before });
    expect(s.finetune.dataset!.splits).toEqual({ train: 3, val: 1 });

    const folder = join(work, 'folder-dataset');
    await writeSyntheticDataset(folder, { size: 32, seed: 11, images: { train: 5, val: 0, test: 2 }, targets: 'one' });
    await page.setInputFiles('#dataset-folder-input', folder);
    s = await waitForState(page, "s.finetune.dataset !== null && s.finetune.dataset.name === 'folder-dataset'", { errorsBefore: before });
    expect(s.finetune.dataset!.splits).toEqual({ train: 5, test: 2 });
    expect(await page.textContent('#dataset-status')).toContain('validation Dice on test');

    await page.fill('#train-steps', '1000');
    await page.fill('#train-batch', '1');
    await page.click('#train-start');
    await waitForState(page, 's.finetune.losses.length >= 2', { errorsBefore: before });
    await page.click('#train-stop');
    s = await waitForState(page, "s.finetune.status !== 'running'", { errorsBefore: before });
    expect(s.finetune.status).toBe('stopped');
    expect(s.finetune.losses.length).toBeLessThan(10);
    expect(s.finetune.message).toMatch(/^Stopped after \d+ steps/);
  });
});
