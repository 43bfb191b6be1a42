/**
 * The train config (src/train/config.ts) and the LR schedules (src/train/schedule.ts):
 *   parseTrainConfig: every default, paths resolved against the config file's folder (through the
 *     CLI's readTrainConfig too), and errors that name the file and the key;
 *   LrSchedule: linear warm-up + half-cosine values at given steps, constant with warm-up, and
 *     plateau reductions with torch's ReduceLROnPlateau(mode='max', threshold 1e-4 'rel') semantics,
 *     save/load of its state.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTrainConfig } from '../../src/cli/commands/train.js';
import { type ScheduleConfig, parseTrainConfig } from '../../src/train/config.js';
import { LrSchedule } from '../../src/train/schedule.js';

const minimal = () => ({
  model: { kind: 'unet', config: { base_channels: 4 } },
  data: { datasets: ['data/a'] },
  output: 'runs/x',
});

describe('parseTrainConfig', () => {
  it('fills every default', () => {
    const c = parseTrainConfig(minimal(), 'run.json');
    expect(c).toEqual({
      source: 'run.json',
      model: { kind: 'unet', config: { base_channels: 4 }, initSeed: 0 },
      data: { datasets: ['data/a'], prompt: { kind: 'random' }, valPrompt: null, trainSplit: 'train', valSplit: 'val' },
      train: {
        freeze: 'full',
        epochs: 10,
        batchSize: 16,
        accumulate: 1,
        loss: { kind: 'dice+bce', bceWeight: 1, diceReduction: 'sample' },
        optimizer: { lr: 1e-3, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
        schedule: { kind: 'plateau', warmup: 0, patience: 2, factor: 0.5, minLr: 0 },
        clipGradNorm: 1,
        earlyStopPatience: 0,
        checkpointEverySteps: 0,
        seed: 0,
      },
      output: 'runs/x',
    });
  });

  it('reads every key it documents', () => {
    const c = parseTrainConfig({
      model: { checkpoint: 'w/m.safetensors', init_seed: 4, threshold: 0.3 },
      data: { datasets: ['a', 'b'], prompt: 'p3', val_prompt: 'text:a polyp', train_split: 'tr', val_split: 'va', limit: 5 },
      train: {
        freeze: 'decoder-only', epochs: 3, max_steps: 7, batch_size: 2, accumulate: 4,
        loss: { kind: 'dice', bce_weight: 0.5, dice_reduction: 'batch' },
        optimizer: { lr: 2e-3, weight_decay: 0.05, betas: [0.8, 0.99], eps: 1e-6 },
        schedule: { kind: 'cosine', warmup: 0.1, patience: 1, factor: 0.2, min_lr: 1e-6 },
        clip_grad_norm: 0, early_stop_patience: 5, checkpoint_every_steps: 10, val_limit: 3, seed: 9,
      },
      output: 'out',
      comment: 'ignored',
    }, 'r.json');
    expect(c.model).toEqual({ checkpoint: 'w/m.safetensors', initSeed: 4, threshold: 0.3 });
    expect(c.data).toEqual({ datasets: ['a', 'b'], prompt: { kind: 'key', key: 'p3' }, valPrompt: { kind: 'override', text: 'a polyp' }, trainSplit: 'tr', valSplit: 'va', limit: 5 });
    expect(c.train).toMatchObject({
      freeze: 'decoder-only', epochs: 3, maxSteps: 7, batchSize: 2, accumulate: 4,
      loss: { kind: 'dice', bceWeight: 0.5, diceReduction: 'batch' },
      optimizer: { lr: 2e-3, weightDecay: 0.05, betas: [0.8, 0.99], eps: 1e-6 },
      schedule: { kind: 'cosine', warmup: 0.1, patience: 1, factor: 0.2, minLr: 1e-6 },
      clipGradNorm: 0, earlyStopPatience: 5, checkpointEverySteps: 10, valLimit: 3, seed: 9,
    });
  });

  it('CRIS.pytorch checkpoint options: word_len, cris_config, input_size (with a checkpoint only)', () => {
    const withCkpt = (model: Record<string, unknown>) => parseTrainConfig({ ...minimal(), model: { checkpoint: 'cris.pth', ...model } }, 'r.json');
    expect(withCkpt({ word_len: 22, cris_config: 'cris-r101', input_size: 320 }).model).toEqual({
      checkpoint: 'cris.pth', initSeed: 0, cris: { config: 'cris-r101', wordLen: 22, inputSize: 320 },
    });
    expect(withCkpt({ cris_config: { clip: {}, word_len: 17 } }).model.cris).toEqual({ config: { clip: {}, word_len: 17 } });
    expect(withCkpt({}).model.cris).toBeUndefined();
    expect(() => withCkpt({ word_len: 1 })).toThrow('r.json: model.word_len must be an integer in [2, Infinity], got 1');
    expect(() => withCkpt({ input_size: 100 })).toThrow('r.json: model.input_size must be a multiple of 32, got 100');
    expect(() => withCkpt({ cris_config: 'cris-r5' })).toThrow(/r\.json: model\.cris_config must be a published CRIS name \(cris-r50, cris-r101\) or a config object, got "cris-r5"/);
    expect(() => parseTrainConfig({ ...minimal(), model: { kind: 'cris', config: {}, word_len: 22 } }, 'r.json')).toThrow(
      'r.json: model.word_len applies to a CRIS.pytorch checkpoint only (a new CRIS model takes word_len and the rest in its config)',
    );
  });

  it('resolves relative paths (datasets, checkpoint, output) with the resolver', () => {
    const c = parseTrainConfig({ ...minimal(), model: { checkpoint: 'ck.safetensors' } }, 'run.json', (p) => `/base/${p}`);
    expect(c.data.datasets).toEqual(['/base/data/a']);
    expect(c.model.checkpoint).toBe('/base/ck.safetensors');
    expect(c.output).toBe('/base/runs/x');
  });

  describe('readTrainConfig (the CLI) resolves against the config file folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'webvlsm-config-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('relative paths land next to the file, absolute ones stay', async () => {
      const path = join(dir, 'run.json');
      writeFileSync(path, JSON.stringify({ ...minimal(), data: { datasets: ['data/a', '/abs/b'] } }));
      const c = await readTrainConfig(path);
      expect(c.data.datasets).toEqual([join(dir, 'data/a'), '/abs/b']);
      expect(c.output).toBe(join(dir, 'runs/x'));
      expect(c.source).toBe(path);
    });

    it('reports unreadable and non-JSON files by path', async () => {
      await expect(readTrainConfig(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: cannot read the train config/);
      writeFileSync(join(dir, 'bad.json'), '{ "model": ');
      await expect(readTrainConfig(join(dir, 'bad.json'))).rejects.toThrow(/bad\.json: not valid JSON/);
    });
  });

  it.each([
    ['an unknown top-level key', { ...minimal(), epochs: 3 }, /^run\.json: unknown key 'epochs' \(known: model, data, train, output, comment\)/],
    ['an unknown train key', { ...minimal(), train: { epoch: 3 } }, /^run\.json: train: unknown key 'epoch'/],
    ['an unknown optimizer key', { ...minimal(), train: { optimizer: { learning_rate: 1 } } }, /^run\.json: train\.optimizer: unknown key 'learning_rate'/],
    ['a bad freeze policy', { ...minimal(), train: { freeze: 'encoder' } }, /^run\.json: train\.freeze must be one of full, decoder-only, frozen-image, frozen-text, got "encoder"/],
    ['missing datasets', { ...minimal(), data: {} }, /^run\.json: data\.datasets must be a non-empty list of dataset folders/],
    ['empty datasets', { ...minimal(), data: { datasets: [] } }, /data\.datasets must be a non-empty list/],
    ['no data section', { model: minimal().model, output: 'o' }, /^run\.json\.data must be an object, got undefined/],
    ['a negative lr', { ...minimal(), train: { optimizer: { lr: -1e-3 } } }, /^run\.json: train\.optimizer\.lr must be a number in \[0, 10\], got -0\.001/],
    ['a string lr', { ...minimal(), train: { optimizer: { lr: '1e-3' } } }, /train\.optimizer\.lr must be a number in \[0, 10\], got "1e-3"/],
    ['a fractional batch size', { ...minimal(), train: { batch_size: 2.5 } }, /train\.batch_size must be an integer in \[1, 4096\], got 2\.5/],
    ['bad betas', { ...minimal(), train: { optimizer: { betas: [0.9] } } }, /train\.optimizer\.betas must be two numbers in \[0, 1\), got \[0\.9\]/],
    ['a bad prompt choice', { ...minimal(), data: { datasets: ['a'], prompt: 'p' } }, /data\.prompt prompt choice "p": expected a prompt key/],
    ['a bad schedule kind', { ...minimal(), train: { schedule: { kind: 'step' } } }, /train\.schedule\.kind must be one of constant, cosine, plateau, got "step"/],
    ['no model config nor checkpoint', { ...minimal(), model: { kind: 'unet' } }, /^run\.json: model\.config is required without a checkpoint/],
    ['a config without a kind', { ...minimal(), model: { config: {} } }, /^run\.json: model\.kind is required with a config/],
    ['no output', { model: minimal().model, data: minimal().data }, /^run\.json\.output must be the run folder/],
    ['a non-object', [1, 2], /^run\.json: a train config must be a JSON object/],
  ])('names the key for %s', (_what, raw, message) => {
    expect(() => parseTrainConfig(raw, 'run.json')).toThrow(message);
  });
});

const schedule = (over: Partial<ScheduleConfig>): ScheduleConfig => ({ kind: 'plateau', warmup: 0, patience: 2, factor: 0.5, minLr: 0, ...over });

describe('LrSchedule', () => {
  it('cosine: linear warm-up over warmup * total steps, then half a cosine down to min_lr', () => {
    // 100 steps, warm-up 0.1 -> 10 steps: lr(s) = base * (s + 1) / 10 for s < 10; then
    // lr(s) = min + (base - min) * (1 + cos(pi * (s - 10) / 90)) / 2.
    const s = new LrSchedule(schedule({ kind: 'cosine', warmup: 0.1, minLr: 1e-5 }), 1e-3, 100);
    expect(s.lrAt(0)).toBeCloseTo(1e-4, 12);
    expect(s.lrAt(4)).toBeCloseTo(5e-4, 12);
    expect(s.lrAt(9)).toBeCloseTo(1e-3, 12);
    expect(s.lrAt(10)).toBeCloseTo(1e-3, 12);
    expect(s.lrAt(25)).toBeCloseTo(1e-5 + (1e-3 - 1e-5) * (1 + Math.cos(Math.PI / 6)) / 2, 12);
    expect(s.lrAt(55)).toBeCloseTo((1e-3 + 1e-5) / 2, 12);
    expect(s.lrAt(100)).toBeCloseTo(1e-5, 12);
    expect(s.lrAt(150)).toBeCloseTo(1e-5, 12); // past the end: stays at min_lr
    // Validation does not touch a cosine schedule.
    expect(s.afterValidation(0.1)).toBe(false);
    expect(s.afterValidation(0.05)).toBe(false);
    expect(s.lrAt(55)).toBeCloseTo((1e-3 + 1e-5) / 2, 12);
  });

  it('constant: warm-up, then the base lr', () => {
    const s = new LrSchedule(schedule({ kind: 'constant', warmup: 0.5 }), 0.2, 8);
    const expected = [0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.2];
    [0, 1, 2, 3, 4, 7, 20].forEach((step, i) => expect(s.lrAt(step)).toBeCloseTo(expected[i]!, 12));
  });

  it('plateau: ReduceLROnPlateau(mode max, threshold 1e-4 rel, patience 2, factor 0.5, min_lr)', () => {
    const s = new LrSchedule(schedule({ kind: 'plateau', patience: 2, factor: 0.5, minLr: 3e-4 }), 1e-3, 1000);
    const reduced: boolean[] = [];
    const lrs: number[] = [];
    // torch: best = -inf; better when m > best * (1 + 1e-4); bad epochs > patience -> lr * factor, bad = 0.
    const metrics = [0.5, 0.6, 0.6, 0.6, 0.6, 0.60005, 0.7, 0.69, 0.69, 0.69, 0.69, 0.69, 0.69];
    for (const m of metrics) {
      reduced.push(s.afterValidation(m));
      lrs.push(s.lrAt(0));
    }
    //                     0.5    0.6    0.6(1) 0.6(2) 0.6(3)!  .60005(1) 0.7   .69(1) .69(2) .69(3)! .69(1) .69(2) .69(3): at min_lr
    expect(reduced).toEqual([false, false, false, false, true, false, false, false, false, true, false, false, false]);
    expect(lrs.map((v) => Number(v.toPrecision(6)))).toEqual([1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 5e-4, 5e-4, 3e-4, 3e-4, 3e-4, 3e-4]);
    // Non-finite metrics are ignored (no bad epoch counted).
    const t = new LrSchedule(schedule({ patience: 0 }), 1, 10);
    expect(t.afterValidation(0.5)).toBe(false);
    expect(t.afterValidation(NaN)).toBe(false);
    expect(t.saveState()).toEqual({ scale: 1, best: 0.5, badEpochs: 0 });
    expect(t.afterValidation(0.5)).toBe(true); // patience 0: the first epoch without improvement reduces
    expect(t.lrAt(3)).toBe(0.5);
  });

  it('saves and restores its state; rejects a corrupt one', () => {
    const a = new LrSchedule(schedule({ patience: 1 }), 1, 10);
    for (const m of [0.3, 0.2, 0.2]) a.afterValidation(m);
    const saved = a.saveState();
    expect(saved).toEqual({ scale: 0.5, best: 0.3, badEpochs: 0 });
    const b = new LrSchedule(schedule({ patience: 1 }), 1, 10);
    b.loadState(saved);
    expect(b.lrAt(0)).toBe(0.5);
    expect(b.afterValidation(0.2)).toBe(false);
    expect(b.afterValidation(0.2)).toBe(true);
    expect(b.lrAt(0)).toBe(0.25);
    expect(() => b.loadState({ scale: 0, best: null, badEpochs: 0 })).toThrow(/LrSchedule: invalid saved state/);
  });
});
