/**
 * Kill the training process at random points (issue 7): a tiny UNet run in a child process
 * (`node bin/webvlsm.mjs train`, the real CLI) is SIGKILLed at seeded pseudo-random moments (after N progress
 * lines on stderr plus a random delay, and once right after an epoch's closing message), then
 * continued with `--resume` until it finishes. After every kill:
 *   - model.safetensors and state.safetensors (when present) parse and load into a model;
 *   - epochs.csv holds every epoch whose closing message was printed before the kill, and the
 *     resume state already counts it (a finished epoch is never redone);
 * and at the end:
 *   - epochs.csv has every epoch once, steps.csv the steps 1..N without gaps or duplicates;
 *   - determinism: the weights, the optimizer state and the logs (but timings) equal those of an
 *     uninterrupted run of the same config on the same device, exactly.
 * With CI=true the children are asked for WebGPU (`--device webgpu`), else they pick the device as
 * the CLI does (WebGPU when an adapter exists); WEBVLSM_TRAIN_TEST_DEVICE=cpu|webgpu overrides both.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../src/models/nn/init.js';
import { decodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { createSegmenter } from '../../src/train/segmenters/index.js';
import { decodeTrainState } from '../../src/train/state.js';
import { writeSyntheticDataset } from '../../src/train/synthetic/write-node.js';
import { cpuDevice } from '../helpers/devices.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Room for every planned kill even on a fast machine (a run that ends before its kill point ends the loop).
const EPOCHS = 8;
const STEPS_PER_EPOCH = 4; // 8 samples, batch 2
/** The children's device: WEBVLSM_TRAIN_TEST_DEVICE (cpu|webgpu) when set, webgpu with CI=true, else the CLI's pick. */
const DEVICE_ARGS = process.env.WEBVLSM_TRAIN_TEST_DEVICE ? ['--device', process.env.WEBVLSM_TRAIN_TEST_DEVICE]
  : process.env.CI === 'true' ? ['--device', 'webgpu'] : [];

interface Launch {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stderr lines seen before the exit (or the kill). */
  lines: string[];
}

/** Closing message of an epoch: "epoch 2/4: train loss ...". */
const EPOCH_DONE = /^epoch (\d+)\/\d+: train loss/;

/**
 * Runs `webvlsm train` in a child; with `kill`, SIGKILLs it `delayMs` after the `afterLines`-th
 * training line (progress or epoch message) on stderr, or right after the `atEpochEnd`-th epoch's
 * closing message.
 */
function launch(config: string, resume: boolean, kill?: { afterLines: number; delayMs: number } | { atEpochEnd: number }): Promise<Launch> {
  const args = ['bin/webvlsm.mjs', 'train', '--config', config, ...DEVICE_ARGS, ...(resume ? ['--resume'] : [])];
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: string[] = [];
  let training = 0;
  let killing = false;
  const doKill = () => {
    if (!killing) {
      killing = true;
      child.kill('SIGKILL');
    }
  };
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (killing) return;
    lines.push(line);
    if (!kill) return;
    if ('atEpochEnd' in kill) {
      const m = EPOCH_DONE.exec(line);
      if (m && Number(m[1]) === kill.atEpochEnd) doKill();
      return;
    }
    if (/^epoch \d+\/\d+ /.test(line) && ++training === kill.afterLines) {
      if (kill.delayMs === 0) doKill();
      else setTimeout(doKill, kill.delayMs);
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, lines }));
  });
}

function writeConfig(dir: string, dataset: string, output: string): string {
  const path = join(dir, `${output}.json`);
  writeFileSync(path, JSON.stringify({
    model: { kind: 'unet', config: { base_channels: 4, depth: 2, image_size: 16 }, init_seed: 5 },
    data: { datasets: [dataset], prompt: 'random' },
    train: {
      epochs: EPOCHS, batch_size: 2, optimizer: { lr: 0.01 }, schedule: { kind: 'cosine', warmup: 0.1 },
      checkpoint_every_steps: 1, seed: 3,
    },
    output,
  }));
  return path;
}

function csvRows(path: string): string[][] {
  return readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
}

/** Checks the run folder after a kill; returns where the resume state stands (null without one). */
function checkAfterKill(out: string, finishedEpochs: number[], what: string): { epoch: number; step: number } | null {
  const modelPath = join(out, 'model.safetensors');
  if (existsSync(modelPath)) {
    const seg = decodeSegmenterCheckpoint(readFileSync(modelPath), modelPath, { device: cpuDevice });
    seg.module.dispose();
  }
  let stateEpoch = 0;
  let at: { epoch: number; step: number } | null = null;
  const statePath = join(out, 'state.safetensors');
  if (existsSync(statePath)) {
    const state = decodeTrainState(readFileSync(statePath), statePath);
    const seg = createSegmenter(state.kind, state.config, { device: cpuDevice, empty: true }, statePath);
    seg.module.loadStateDict(state.model);
    seg.module.dispose();
    stateEpoch = state.progress.epoch;
    at = { epoch: state.progress.epoch, step: state.progress.step };
    expect(state.progress.step, `${what}: state step`).toBeLessThanOrEqual(EPOCHS * STEPS_PER_EPOCH);
  } else {
    expect(finishedEpochs, `${what}: epochs finished but no state.safetensors`).toEqual([]);
  }
  if (finishedEpochs.length > 0) {
    const epochs = csvRows(join(out, 'epochs.csv')).map((r) => Number(r[0]) + 1);
    for (const e of finishedEpochs) expect(epochs, `${what}: epochs.csv lost finished epoch ${e}`).toContain(e);
    // No finished epoch is lost: the resume state already starts after it.
    expect(stateEpoch, `${what}: the state would redo finished epoch ${Math.max(...finishedEpochs)}`).toBeGreaterThanOrEqual(Math.max(...finishedEpochs));
  }
  return at;
}

describe('SIGKILL at random points, then --resume', () => {
  let dir: string;
  let dataset: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'webvlsm-kill-'));
    dataset = join(dir, 'data');
    await writeSyntheticDataset(dataset, { size: 16, seed: 11, targets: 'one', images: { train: 8, val: 4, test: 0 } });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('never corrupts a checkpoint, loses no finished epoch, and ends with the uninterrupted run\'s weights', async () => {
    const reference = join(dir, 'reference');
    const killed = join(dir, 'killed');
    const ref = await launch(writeConfig(dir, dataset, 'reference'), false);
    expect(ref.code, ref.lines.join('\n')).toBe(0);

    const config = writeConfig(dir, dataset, 'killed');
    const rng = createRng(2024);
    // Kills at seeded random moments, plus one right after an epoch's closing message (the
    // moment between the epoch's log record and its resume state).
    const random = () => ({ afterLines: 1 + Math.floor(rng() * 5), delayMs: Math.floor(rng() * 200) });
    const kills: ({ afterLines: number; delayMs: number } | { atEpochEnd: number })[] = [random(), { atEpochEnd: 2 }, random(), random()];
    const finished: number[] = [];
    const where: string[] = [];
    let launches = 0;
    let killsDone = 0;
    for (;;) {
      let kill = kills[killsDone];
      if (kill && 'atEpochEnd' in kill && finished.includes(kill.atEpochEnd)) {
        const next = Math.max(...finished) + 1;
        // The last epoch's end is also the run's end: kill at a random moment instead.
        kill = next < EPOCHS ? { atEpochEnd: next } : random();
      }
      const r = await launch(config, launches > 0, kill);
      launches++;
      for (const line of r.lines) {
        const m = EPOCH_DONE.exec(line);
        if (m && !finished.includes(Number(m[1]))) finished.push(Number(m[1]));
      }
      if (r.signal === 'SIGKILL') {
        killsDone++;
        const at = checkAfterKill(killed, finished, `after kill ${killsDone} (${JSON.stringify(kill)})`);
        const lastLine = r.lines.filter((l) => l.startsWith('epoch ')).pop() ?? '(no training line yet)';
        where.push(`kill ${killsDone} after "${lastLine.slice(0, 40)}": state ${at ? `epoch ${at.epoch}, step ${at.step}` : 'none'}`);
        continue;
      }
      // Not killed (the run ended before the kill point): it must have finished cleanly.
      expect(r.code, r.lines.join('\n')).toBe(0);
      break;
    }
    expect(killsDone).toBeGreaterThanOrEqual(3);
    console.log(`resume-kill: ${launches} launches, ${killsDone} kills\n  ${where.join('\n  ')}`);

    // Every epoch and step exactly once, in order.
    const epochs = csvRows(join(killed, 'epochs.csv'));
    expect(epochs.map((r) => Number(r[0]))).toEqual(Array.from({ length: EPOCHS }, (_, i) => i));
    const steps = csvRows(join(killed, 'steps.csv'));
    expect(steps.map((r) => Number(r[0]))).toEqual(Array.from({ length: EPOCHS * STEPS_PER_EPOCH }, (_, i) => i + 1));
    const jsonl = readFileSync(join(killed, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number });
    expect(jsonl.filter((r) => r.type === 'step').map((r) => r.step)).toEqual(steps.map((r) => Number(r[0])));

    // The same numbers as the uninterrupted run (timings aside: steps.csv 'ms', epochs.csv 'seconds').
    const dropLast = (rows: string[][]) => rows.map((r) => r.slice(0, -1));
    expect(dropLast(steps)).toEqual(dropLast(csvRows(join(reference, 'steps.csv'))));
    expect(dropLast(epochs)).toEqual(dropLast(csvRows(join(reference, 'epochs.csv'))));
    const a = decodeTrainState(readFileSync(join(killed, 'state.safetensors')), 'killed');
    const b = decodeTrainState(readFileSync(join(reference, 'state.safetensors')), 'reference');
    expect(a.progress).toEqual({ ...b.progress });
    expect(a.progress.finished).toBe('finished');
    for (const [name, t] of b.model) expect(Array.from(a.model.get(name)!.data), `weights ${name}`).toEqual(Array.from(t.data));
    for (const [name, s] of b.optimizer) {
      const k = a.optimizer.get(name)!;
      expect(k.step).toBe(s.step);
      expect(Array.from(k.expAvg as Float32Array), `exp_avg ${name}`).toEqual(Array.from(s.expAvg as Float32Array));
      expect(Array.from(k.expAvgSq as Float32Array), `exp_avg_sq ${name}`).toEqual(Array.from(s.expAvgSq as Float32Array));
    }
    // The best model file too (same epoch, same bytes apart from nothing: metadata and weights).
    expect(readFileSync(join(killed, 'model.safetensors')).equals(readFileSync(join(reference, 'model.safetensors')))).toBe(true);
    const leftovers = readdirSync(killed).filter((f) => f.endsWith('.tmp'));
    console.log(`resume-kill: temporary files left by killed writes: ${leftovers.length ? leftovers.join(', ') : 'none'}`);
  }, 600_000);
});
