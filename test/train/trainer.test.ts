/**
 * runTraining in-process on a tiny UNet (base 4, depth 2, 16 px) and a tiny synthetic dataset
 * (8 train / 4 val images, one sample each), on the CPU device:
 *   - a short run writes model/state/config/logs, its loss goes down, and --resume of a finished
 *     run does nothing; --resume with more epochs continues;
 *   - early stopping with patience 1 on a forced plateau (lr 0: validation Dice never improves),
 *     which --resume leaves stopped unless early_stop_patience is raised;
 *   - a diverging run (lr 10, weight decay 10) stops with NonFiniteLossError in epoch 2 and keeps
 *     epoch 1's model.safetensors and state.safetensors loadable and finite;
 *   - an existing run is never overwritten without --resume; --resume with another config is
 *     refused; every missing dataset file is reported at once, before any run file is written.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSegmenterCheckpoint, readCheckpointHeader } from '../../src/train/checkpoint.js';
import { type TrainConfig, parseTrainConfig } from '../../src/train/config.js';
import { DatasetFilesError } from '../../src/train/data/check.js';
import { decodeTrainState } from '../../src/train/state.js';
import { NonFiniteLossError } from '../../src/train/step.js';
import { writeSyntheticDataset } from '../../src/train/synthetic/write-node.js';
import { type TrainRunOptions, runTraining } from '../../src/train/trainer.js';
import { cpuDevice } from '../helpers/devices.js';

let dir: string;
let dataset: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webvlsm-trainer-'));
  dataset = join(dir, 'data');
  await writeSyntheticDataset(dataset, { size: 16, seed: 21, targets: 'one', images: { train: 8, val: 4, test: 0 } });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny UNet run in `dir/<output>`; `train` keys override the defaults below. */
function config(output: string, train: Record<string, unknown> = {}, data: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({
    model: { kind: 'unet', config: { base_channels: 4, depth: 2, image_size: 16 }, init_seed: 1 },
    data: { datasets: ['data'], prompt: 'p1', ...data },
    train: { epochs: 4, batch_size: 4, optimizer: { lr: 0.02 }, schedule: { kind: 'constant' }, ...train },
    output,
  }, `${output}.json`, (p) => join(dir, p));
}

/** Runs quietly on the CPU device; returns what it wrote to the progress stream too. */
async function run(c: TrainConfig, options: TrainRunOptions = {}) {
  let text = '';
  const result = await runTraining(c, { device: cpuDevice, tty: false, write: (t) => (text += t), ...options });
  return { result, text };
}

function csv(path: string): Record<string, string>[] {
  const [head, ...rows] = readFileSync(path, 'utf8').trim().split('\n');
  const keys = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [keys[i], v])));
}

function state(out: string) {
  const path = join(out, 'state.safetensors');
  return decodeTrainState(readFileSync(path), path);
}

async function modelWeights(out: string): Promise<Float32Array[]> {
  const path = join(out, 'model.safetensors');
  const seg = decodeSegmenterCheckpoint(readFileSync(path), path, { device: cpuDevice });
  const w = await Promise.all(seg.module.namedParameters().map(async ([, p]) => (await p.read()) as Float32Array));
  seg.module.dispose();
  return w;
}

describe('runTraining', () => {
  it('writes the run files, lowers the loss, and resumes only what is left', async () => {
    const c = config('basic', { epochs: 5 });
    const { result, text } = await run(c);
    expect(result).toMatchObject({ status: 'finished', steps: 10, epochs: 5, modelPath: join(dir, 'basic', 'model.safetensors') });
    for (const f of ['model.safetensors', 'state.safetensors', 'config.json', 'log.jsonl', 'steps.csv', 'epochs.csv']) {
      expect(existsSync(join(dir, 'basic', f)), f).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(dir, 'basic', 'config.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(c)));
    const steps = csv(join(dir, 'basic', 'steps.csv'));
    expect(steps.map((r) => Number(r.step))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(steps.every((r) => Number(r.lr) === 0.02 && Number(r.grad_norm) > 0)).toBe(true);
    const epochs = csv(join(dir, 'basic', 'epochs.csv'));
    expect(epochs.map((r) => Number(r.epoch))).toEqual([0, 1, 2, 3, 4]);
    const losses = epochs.map((r) => Number(r.train_loss));
    // Each epoch's train loss is the mean of its steps' losses.
    losses.forEach((l, e) => expect(l).toBeCloseTo((Number(steps[2 * e]!.loss) + Number(steps[2 * e + 1]!.loss)) / 2, 6));
    expect(losses[4]!).toBeLessThan(losses[0]! - 0.02);
    expect(text).toMatch(/epoch 5\/5: train loss \d\.\d{4}, val Dice/);
    expect(readFileSync(join(dir, 'basic', 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(15);

    const s = state(join(dir, 'basic'));
    expect(s.progress).toMatchObject({ epoch: 5, batch: 0, step: 10, finished: 'finished' });
    expect([...s.optimizer.values()].every((o) => o.step === 10)).toBe(true);
    const header = readCheckpointHeader(readFileSync(result.modelPath), 'model');
    expect(header.kind).toBe('unet');
    expect(header.metadata['webvlsm.epoch']).toBe(String((result.bestEpoch ?? -1) + 1));
    expect((await modelWeights(join(dir, 'basic'))).every((w) => w.every(Number.isFinite))).toBe(true);

    // --resume of a finished run: nothing to do, nothing rewritten.
    const again = await run(c, { resume: true });
    expect(again.result.status).toBe('already-finished');
    expect(csv(join(dir, 'basic', 'steps.csv'))).toEqual(steps);
    // --resume with more epochs continues from step 10.
    const more = await run({ ...c, train: { ...c.train, epochs: 6 } }, { resume: true });
    expect(more.result).toMatchObject({ status: 'finished', steps: 12, epochs: 6 });
    expect(csv(join(dir, 'basic', 'steps.csv')).map((r) => Number(r.step))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(csv(join(dir, 'basic', 'epochs.csv')).map((r) => Number(r.epoch))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('refuses to overwrite a run without --resume, and a --resume with another config', async () => {
    const c = config('basic', { epochs: 5 });
    const before = readFileSync(join(dir, 'basic', 'state.safetensors'));
    await expect(run(c)).rejects.toThrow(/basic already holds a run \(state\.safetensors\): pass --resume to continue it, or choose another output folder/);
    const other = config('basic', { epochs: 5, optimizer: { lr: 0.05 } });
    await expect(run(other, { resume: true })).rejects.toThrow(
      /basic\/state\.safetensors: the run was started with another config \(model, data or training settings differ\); only epochs, max_steps and early_stop_patience may change on --resume/,
    );
    await expect(run(config('basic', { epochs: 5 }, { prompt: 'p2' }), { resume: true })).rejects.toThrow(/started with another config/);
    expect(readFileSync(join(dir, 'basic', 'state.safetensors')).equals(before)).toBe(true);
  });

  it('stops early with patience 1 on a plateau (lr 0), and stays stopped on --resume unless the patience grows', async () => {
    const c = config('plateau', { epochs: 10, optimizer: { lr: 0 }, early_stop_patience: 1 });
    const { result, text } = await run(c);
    expect(result).toMatchObject({ status: 'early-stopped', epochs: 2, steps: 4, bestEpoch: 0 });
    expect(text).toMatch(/early stop: no better validation Dice for 1 epochs \(best \d\.\d{4} at epoch 1\)/);
    const epochs = csv(join(dir, 'plateau', 'epochs.csv'));
    expect(epochs.map((r) => [r.epoch, r.best])).toEqual([['0', 'true'], ['1', 'false']]);
    expect(epochs[0]!.val_dice).toBe(epochs[1]!.val_dice);
    expect(state(join(dir, 'plateau')).progress).toMatchObject({ epoch: 2, finished: 'early-stopped', epochsSinceBest: 1 });
    // lr 0 (with weight decay) leaves the weights as initialised: the state's are the best model's.
    const best = await modelWeights(join(dir, 'plateau'));
    const last = [...state(join(dir, 'plateau')).model.values()].map((t) => t.data);
    expect(last.map((d) => Array.from(d))).toEqual(best.map((d) => Array.from(d)));

    const again = await run(c, { resume: true });
    expect(again.result.status).toBe('already-finished');
    expect(csv(join(dir, 'plateau', 'epochs.csv'))).toHaveLength(2);
    const patient = await run({ ...c, train: { ...c.train, earlyStopPatience: 3 } }, { resume: true });
    expect(patient.result).toMatchObject({ status: 'early-stopped', epochs: 4, steps: 8 });
    expect(csv(join(dir, 'plateau', 'epochs.csv')).map((r) => Number(r.epoch))).toEqual([0, 1, 2, 3]);
  });

  it('stops on a non-finite loss and keeps the last good files loadable', async () => {
    // One step per epoch: epoch 1 ends (model and state saved), then the weights blow up in epoch 2.
    const c = config('diverge', { epochs: 3, batch_size: 8, optimizer: { lr: 10, weight_decay: 10 }, clip_grad_norm: 0 });
    let text = '';
    const error = await runTraining(c, { device: cpuDevice, write: (t) => (text += t) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteLossError);
    expect((error as Error).message).toMatch(/^training loss is (NaN|-?Infinity)( \(gradient norm\))? at epoch 2, step 2: stopped before updating the weights/);
    expect(text).toMatch(/The last good checkpoints are kept: .*diverge\/model\.safetensors and .*diverge\/state\.safetensors/);
    const out = join(dir, 'diverge');
    const weights = await modelWeights(out);
    expect(weights.every((w) => w.every(Number.isFinite))).toBe(true);
    expect(readCheckpointHeader(readFileSync(join(out, 'model.safetensors')), 'model').metadata['webvlsm.epoch']).toBe('1');
    const s = state(out);
    expect(s.progress).toMatchObject({ epoch: 1, batch: 0, step: 1, finished: null });
    expect([...s.model.values()].every((t) => Array.from(t.data).every(Number.isFinite))).toBe(true);
    expect(csv(join(out, 'steps.csv')).map((r) => r.step)).toEqual(['1']);
    expect(csv(join(out, 'epochs.csv')).map((r) => r.epoch)).toEqual(['0']);
  });

  it('reports every missing dataset file at once, before writing any run file', async () => {
    const broken = join(dir, 'broken-data');
    cpSync(dataset, broken, { recursive: true });
    const train = JSON.parse(readFileSync(join(broken, 'anns', 'train.json'), 'utf8')) as { img_name: string; mask_name: string }[];
    const val = JSON.parse(readFileSync(join(broken, 'anns', 'val.json'), 'utf8')) as { img_name: string; mask_name: string }[];
    const gone = [join('images', train[1]!.img_name), join('masks', train[3]!.mask_name), join('images', val[2]!.img_name)];
    for (const f of gone) rmSync(join(broken, f));
    const c = config('broken-run', {}, { datasets: ['broken-data'] });
    const error = await run(c).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatasetFilesError);
    const problems = (error as DatasetFilesError).problems;
    expect(problems.map((p) => p.path).sort()).toEqual([...gone].sort());
    for (const f of gone) expect((error as Error).message).toContain(f);
    expect((error as Error).message).toMatch(/dataset check failed before training: 3 problem\(s\)/);
    expect(existsSync(join(dir, 'broken-run', 'state.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'broken-run', 'config.json'))).toBe(false);
  });
});
