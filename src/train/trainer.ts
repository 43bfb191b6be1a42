/**
 * The training loop of `webvlsm train` (Node): pooled datasets, seeded batches, accumulation,
 * clipping, AdamW, LR schedule, validation Dice per epoch, early stopping, logs, and checkpoints.
 *
 * Files in the run folder (config.output):
 *   model.safetensors   the best model so far by validation Dice (the last one without a val split),
 *                       a segmenter checkpoint (checkpoint.ts) that `webvlsm eval/segment` load;
 *   state.safetensors   the resume state (state.ts), written at every epoch end (and every
 *                       checkpoint_every_steps); `--resume` continues from it;
 *   config.json, log.jsonl, steps.csv, epochs.csv (run-log-node.ts).
 * Every file is replaced atomically, so a kill at any moment leaves a loadable model and a
 * resumable state; the work since the last state is redone on resume (never a finished epoch).
 * A NaN/Inf loss stops the run before the weights change, keeping the last good files.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Device, getDefaultDevice } from '../engine/index.js';
import { setInitSeed } from '../models/nn/init.js';
import { type LoadSegmenterOptions, loadShippedTokenizer, loadSegmenterFile, saveSegmenterFile, writeBytesAtomic } from './checkpoint-node.js';
import type { TrainConfig } from './config.js';
import { MedVlsmDataset, assertDatasetsReadable } from './data/dataset.js';
import { epochOrder } from './data/batching.js';
import type { PromptChoice } from './data/prompt.js';
import { folderSource } from './data/source-node.js';
import { AdamW } from './optim.js';
import { ProgressLine, RunLog, type StepRecord } from './run-log-node.js';
import { LrSchedule } from './schedule.js';
import type { Segmenter } from './segmenter.js';
import { createSegmenter } from './segmenters/index.js';
import { type TrainProgress, decodeTrainState, encodeTrainState } from './state.js';
import { NonFiniteLossError, clipGradients, forwardBackward } from './step.js';
import { validationScores } from './validate.js';

export interface TrainRunOptions {
  resume?: boolean;
  device?: Device;
  /** Where progress and messages go (default: stderr). */
  write?: (text: string) => void;
  tty?: boolean;
}

export interface TrainResult {
  status: 'finished' | 'early-stopped' | 'max-steps' | 'already-finished';
  steps: number;
  epochs: number;
  bestValDice: number | null;
  bestEpoch: number | null;
  modelPath: string;
}

interface PooledSample {
  dataset: MedVlsmDataset;
  index: number;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

function digest(config: TrainConfig): string {
  const { model, data, train } = config;
  return JSON.stringify({ model: { ...model }, data, train: { ...train, epochs: undefined, maxSteps: undefined, earlyStopPatience: undefined } });
}

async function openDatasets(config: TrainConfig): Promise<MedVlsmDataset[]> {
  const sets: MedVlsmDataset[] = [];
  for (const path of config.data.datasets) {
    sets.push(await MedVlsmDataset.open(folderSource(path), { prompt: config.data.prompt, seed: config.train.seed, cache: true }));
  }
  for (const d of sets) {
    if (!d.hasSplit(config.data.trainSplit)) throw new Error(`${d.source.location}: no ${config.data.trainSplit} split (anns/${config.data.trainSplit}.json)`);
  }
  // Every missing or unreadable file of every dataset, reported at once before any work.
  await assertDatasetsReadable(sets, { prompt: config.data.prompt });
  return sets;
}

function pooled(sets: readonly MedVlsmDataset[], split: string, limit?: number): PooledSample[] {
  const out: PooledSample[] = [];
  for (const dataset of sets) {
    if (!dataset.hasSplit(split)) continue;
    const n = Math.min(dataset.size(split), limit ?? Infinity);
    for (let index = 0; index < n; index++) out.push({ dataset, index });
  }
  return out;
}

async function initialSegmenter(config: TrainConfig, device: Device): Promise<Segmenter> {
  if (config.model.checkpoint) {
    const cris = config.model.cris as LoadSegmenterOptions['cris'];
    return loadSegmenterFile(config.model.checkpoint, { device, ...(cris ? { cris } : {}) });
  }
  setInitSeed(config.model.initSeed);
  return createSegmenter(config.model.kind!, config.model.config!, { device, tokenizer: await loadShippedTokenizer() }, config.source);
}

export async function runTraining(config: TrainConfig, options: TrainRunOptions = {}): Promise<TrainResult> {
  const write = options.write ?? ((t: string) => process.stderr.write(t));
  const progressLine = new ProgressLine(write, options.tty ?? (process.stderr.isTTY ?? false));
  const device = options.device ?? getDefaultDevice();
  const out = config.output;
  const statePath = join(out, 'state.safetensors');
  const modelPath = join(out, 'model.safetensors');
  const t = config.train;
  await mkdir(out, { recursive: true });
  if (!options.resume && (await exists(statePath))) {
    throw new Error(`${out} already holds a run (state.safetensors): pass --resume to continue it, or choose another output folder`);
  }
  const sets = await openDatasets(config);
  const train = pooled(sets, config.data.trainSplit, config.data.limit);
  const val = pooled(sets, config.data.valSplit, t.valLimit);
  const valPrompt: PromptChoice = config.data.valPrompt ?? config.data.prompt;
  if (val.length === 0) progressLine.message(`note: no ${config.data.valSplit} split: no validation, model.safetensors is the last model`);
  const stepsPerEpoch = Math.ceil(Math.ceil(train.length / t.batchSize) / t.accumulate);
  const totalSteps = Math.min(t.maxSteps ?? Infinity, stepsPerEpoch * t.epochs);
  const schedule = new LrSchedule(t.schedule, t.optimizer.lr, totalSteps);

  let segmenter: Segmenter;
  let optimizer: AdamW;
  let progress: TrainProgress;
  if (options.resume && (await exists(statePath))) {
    const saved = decodeTrainState(await readFile(statePath), statePath);
    if (saved.progress.configDigest !== digest(config)) {
      throw new Error(`${statePath}: the run was started with another config (model, data or training settings differ); only epochs, max_steps and early_stop_patience may change on --resume`);
    }
    segmenter = createSegmenter(saved.kind, saved.config, { device, empty: true, tokenizer: await loadShippedTokenizer() }, statePath);
    segmenter.module.loadStateDict(saved.model);
    optimizer = new AdamW(segmenter.trainable(t.freeze), { lr: t.optimizer.lr, betas: t.optimizer.betas, eps: t.optimizer.eps, weightDecay: t.optimizer.weightDecay });
    optimizer.loadStateDict(saved.optimizer);
    schedule.loadState(saved.progress.schedule);
    progress = { ...saved.progress, finished: saved.progress.finished };
    progressLine.message(`resumed ${out} at epoch ${progress.epoch + 1}, step ${progress.step}`);
    // An early-stopped run stays stopped unless early_stop_patience was raised (or turned off).
    const stillStopped = progress.finished === 'early-stopped' && t.earlyStopPatience > 0 && progress.epochsSinceBest >= t.earlyStopPatience;
    if (progress.finished && (progress.epoch >= t.epochs || stillStopped)) {
      optimizer.dispose();
      segmenter.module.dispose();
      return { status: 'already-finished', steps: progress.step, epochs: progress.epoch, bestValDice: progress.bestValDice, bestEpoch: progress.bestEpoch, modelPath };
    }
    progress.finished = null;
  } else {
    segmenter = await initialSegmenter(config, device);
    optimizer = new AdamW(segmenter.trainable(t.freeze), { lr: t.optimizer.lr, betas: t.optimizer.betas, eps: t.optimizer.eps, weightDecay: t.optimizer.weightDecay });
    progress = { epoch: 0, batch: 0, step: 0, bestValDice: null, bestEpoch: null, epochsSinceBest: 0, schedule: schedule.saveState(), finished: null, configDigest: digest(config) };
    await writeBytesAtomic(join(out, 'config.json'), new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`));
  }
  const log = await RunLog.open(out, options.resume ? { step: progress.step, epoch: progress.epoch } : null);
  const saveState = async () => {
    progress.schedule = schedule.saveState();
    await writeBytesAtomic(statePath, await encodeTrainState(segmenter, optimizer, progress));
  };
  const trainedParams = optimizer.params;
  let status: TrainResult['status'] = 'finished';
  const started = performance.now();
  let stepsThisRun = 0;
  try {
    for (; progress.epoch < t.epochs; progress.epoch++, progress.batch = 0) {
      const epochStart = performance.now();
      const order = epochOrder(train.length, t.seed, progress.epoch, true, 'train');
      const batches: number[][] = [];
      for (let s = 0; s < order.length; s += t.batchSize) batches.push(order.slice(s, s + t.batchSize));
      // Steps of this epoch done before a resume count in its mean loss (the log was cut back to the state).
      const earlier = log.records.filter((r): r is StepRecord => r.type === 'step' && r.epoch === progress.epoch);
      let lossSum = earlier.reduce((a, r) => a + r.loss, 0);
      let lossCount = earlier.length;
      while (progress.batch < batches.length) {
        if (progress.step >= totalSteps) break;
        const stepStart = performance.now();
        const micro = batches.slice(progress.batch, progress.batch + t.accumulate);
        optimizer.zeroGrad();
        let stepLoss = 0;
        for (const indices of micro) {
          const samples = await Promise.all(indices.map((i) => train[i]!.dataset.loadSample(config.data.trainSplit, train[i]!.index, progress.epoch)));
          const loss = await forwardBackward(segmenter, {
            images: samples.map((s) => s.image), prompts: samples.map((s) => s.prompt.text), masks: samples.map((s) => s.mask),
          }, { freeze: t.freeze, loss: t.loss }, 1 / micro.length);
          if (!Number.isFinite(loss)) throw new NonFiniteLossError(loss, `at epoch ${progress.epoch + 1}, step ${progress.step + 1}`);
          stepLoss += loss / micro.length;
        }
        const lr = schedule.lrAt(progress.step);
        optimizer.lr = lr;
        const gradNorm = await clipGradients(trainedParams, t.clipGradNorm);
        if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(gradNorm, `(gradient norm) at epoch ${progress.epoch + 1}, step ${progress.step + 1}`);
        optimizer.step();
        optimizer.zeroGrad();
        progress.step++;
        progress.batch += micro.length;
        stepsThisRun++;
        lossSum += stepLoss;
        lossCount++;
        const ms = performance.now() - stepStart;
        await log.append({ type: 'step', step: progress.step, epoch: progress.epoch, loss: stepLoss, lr, grad_norm: gradNorm, ms: Math.round(ms) });
        const secPerStep = (performance.now() - started) / 1000 / stepsThisRun;
        progressLine.update({
          epoch: progress.epoch, epochs: t.epochs, batch: progress.batch, batches: batches.length, loss: stepLoss, lr, secPerStep,
          remainingSteps: totalSteps - progress.step,
        });
        if (t.checkpointEverySteps > 0 && progress.step % t.checkpointEverySteps === 0 && progress.batch < batches.length) await saveState();
      }
      const epochDone = progress.batch >= batches.length;
      if (!epochDone) {
        status = 'max-steps';
        break;
      }
      let valDice: number | null = null;
      let valIou: number | null = null;
      if (val.length > 0) {
        const scores = await validationScores(segmenter, val, config.data.valSplit, valPrompt);
        valDice = scores.dice;
        valIou = scores.iou;
        schedule.afterValidation(valDice);
      }
      const best = valDice === null || progress.bestValDice === null || valDice > progress.bestValDice;
      if (best) {
        progress.bestValDice = valDice;
        progress.bestEpoch = progress.epoch;
        progress.epochsSinceBest = 0;
        await saveSegmenterFile(modelPath, segmenter, { metadata: { 'webvlsm.epoch': String(progress.epoch + 1), 'webvlsm.val_dice': String(valDice) } });
      } else {
        progress.epochsSinceBest++;
      }
      const record = {
        type: 'epoch' as const, epoch: progress.epoch, step: progress.step, train_loss: lossCount ? lossSum / lossCount : NaN,
        val_dice: valDice, val_iou: valIou, lr: schedule.lrAt(progress.step), best, seconds: Math.round((performance.now() - epochStart) / 100) / 10,
      };
      await log.append(record);
      const stopEarly = t.earlyStopPatience > 0 && progress.epochsSinceBest >= t.earlyStopPatience;
      const stepsDone = progress.step >= totalSteps;
      if (stopEarly || stepsDone) status = stopEarly ? 'early-stopped' : progress.epoch + 1 < t.epochs ? 'max-steps' : 'finished';
      // The state of a finished epoch (epoch + 1, batch 0) is on disk before the epoch is announced:
      // an epoch reported done is never redone after a kill. After a kill between the log record and
      // the state, --resume redoes the epoch and RunLog.open drops the record the killed run wrote.
      progress.epoch++;
      progress.batch = 0;
      if (stopEarly || stepsDone) progress.finished = status;
      await saveState();
      progressLine.message(`epoch ${record.epoch + 1}/${t.epochs}: train loss ${record.train_loss.toFixed(4)}` +
        (valDice !== null ? `, val Dice ${valDice.toFixed(4)}, IoU ${valIou!.toFixed(4)}${best ? ' (best: saved model.safetensors)' : ''}` : ''));
      if (stopEarly || stepsDone) break;
      progress.epoch--;
    }
  } catch (error) {
    if (error instanceof NonFiniteLossError) {
      progressLine.message(`${error.message}. The last good checkpoints are kept: ${modelPath} and ${statePath} (resume with --resume after changing nothing, or start anew).`);
    }
    optimizer.dispose();
    segmenter.module.dispose();
    throw error;
  }
  if (progress.finished !== status) {
    progress.finished = status;
    await saveState();
  }
  if (status === 'early-stopped') progressLine.message(`early stop: no better validation Dice for ${t.earlyStopPatience} epochs (best ${progress.bestValDice?.toFixed(4)} at epoch ${(progress.bestEpoch ?? 0) + 1})`);
  if (val.length === 0 || !(await exists(modelPath))) await saveSegmenterFile(modelPath, segmenter);
  optimizer.dispose();
  segmenter.module.dispose();
  return { status, steps: progress.step, epochs: progress.epoch, bestValDice: progress.bestValDice, bestEpoch: progress.bestEpoch, modelPath };
}
