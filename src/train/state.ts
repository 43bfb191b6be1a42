/**
 * Resume checkpoints: everything a run needs to continue exactly where it stopped, in ONE
 * safetensors file (written atomically, so it is always a whole earlier state):
 *   model.<name>          the module's state dict;
 *   adamw.exp_avg.<name>  / adamw.exp_avg_sq.<name>  the optimizer moments;
 *   __metadata__          webvlsm.format = "train-state-v1", webvlsm.kind / webvlsm.config (the model),
 *                         webvlsm.progress (JSON: TrainProgress, per-parameter AdamW step counts).
 * Data order and prompt draws are pure functions of (seed, epoch, index), so the counters are all
 * the data state there is.
 */
import { type TensorToWrite, parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.js';
import type { AdamW, SavedParamState } from './optim.js';
import type { ScheduleState } from './schedule.js';
import type { Segmenter, SegmenterKind } from './segmenter.js';

export const TRAIN_STATE_FORMAT = 'train-state-v1';

export interface TrainProgress {
  /** Next epoch to run (0-based) and the next batch index within it. */
  epoch: number;
  batch: number;
  /** Optimizer steps done. */
  step: number;
  bestValDice: number | null;
  bestEpoch: number | null;
  epochsSinceBest: number;
  schedule: ScheduleState;
  /** Set when the run ended (epochs done, max_steps, early stop): --resume has nothing left to do. */
  finished: string | null;
  /** Digest of the config's training-relevant parts: resuming with another config is refused. */
  configDigest: string;
}

export async function encodeTrainState(segmenter: Segmenter, optimizer: AdamW, progress: TrainProgress): Promise<Uint8Array> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const [name, t] of segmenter.module.stateDict()) {
    tensors[`model.${name}`] = { dtype: t.dtype === 'i32' ? 'I32' : 'F32', shape: t.shape, data: await t.read() };
  }
  const steps: Record<string, number> = {};
  for (const [name, s] of optimizer.stateDict()) {
    tensors[`adamw.exp_avg.${name}`] = { dtype: 'F32', shape: s.expAvg.shape, data: await s.expAvg.read() };
    tensors[`adamw.exp_avg_sq.${name}`] = { dtype: 'F32', shape: s.expAvgSq.shape, data: await s.expAvgSq.read() };
    steps[name] = s.step;
  }
  const { kind, config } = segmenter.describe();
  return serializeSafetensors(tensors, {
    'webvlsm.format': TRAIN_STATE_FORMAT,
    'webvlsm.kind': kind,
    'webvlsm.config': JSON.stringify(config),
    'webvlsm.progress': JSON.stringify({ ...progress, adamwSteps: steps }),
  });
}

export interface DecodedTrainState {
  kind: SegmenterKind;
  config: Record<string, unknown>;
  progress: TrainProgress;
  model: Map<string, { shape: readonly number[]; data: Float32Array | Int32Array }>;
  optimizer: Map<string, SavedParamState>;
}

export function decodeTrainState(bytes: Uint8Array, name: string): DecodedTrainState {
  const file = parseSafetensors(bytes, name);
  const meta = file.metadata;
  if (meta['webvlsm.format'] !== TRAIN_STATE_FORMAT) throw new Error(`${name}: not a webvlsm training state (format ${JSON.stringify(meta['webvlsm.format'])})`);
  let progress: TrainProgress & { adamwSteps: Record<string, number> };
  let config: Record<string, unknown>;
  try {
    progress = JSON.parse(meta['webvlsm.progress'] ?? '');
    config = JSON.parse(meta['webvlsm.config'] ?? '');
  } catch (error) {
    throw new Error(`${name}: corrupt training state metadata (${(error as Error).message})`);
  }
  const model = new Map<string, { shape: readonly number[]; data: Float32Array | Int32Array }>();
  const moments = new Map<string, { expAvg?: Float32Array; expAvgSq?: Float32Array }>();
  for (const key of file.keys()) {
    const t = file.get(key);
    if (key.startsWith('model.')) model.set(key.slice(6), { shape: t.shape, data: t.data });
    else {
      const m = /^adamw\.(exp_avg|exp_avg_sq)\.(.+)$/.exec(key);
      if (!m) throw new Error(`${name}: unexpected tensor '${key}'`);
      const entry = moments.get(m[2]!) ?? {};
      entry[m[1] === 'exp_avg' ? 'expAvg' : 'expAvgSq'] = t.data as Float32Array;
      moments.set(m[2]!, entry);
    }
  }
  const optimizer = new Map<string, SavedParamState>();
  for (const [param, m] of moments) {
    const step = progress.adamwSteps?.[param];
    if (!m.expAvg || !m.expAvgSq || step === undefined) throw new Error(`${name}: incomplete optimizer state for '${param}'`);
    optimizer.set(param, { step, expAvg: m.expAvg, expAvgSq: m.expAvgSq });
  }
  const { adamwSteps: _, ...rest } = progress;
  return { kind: meta['webvlsm.kind'] as SegmenterKind, config, progress: rest, model, optimizer };
}
