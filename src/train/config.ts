/**
 * `webvlsm train --config <json>`: the run's settings, parsed and checked up front so that a typo
 * fails before any work (every error names the key). Paths are resolved against the config file's
 * folder. Snake_case keys, as in MedVLSM's YAML configs. Example:
 * {
 *   "model": { "kind": "clipseg", "config": { ...HF config.json... } }      // random init (init_seed)
 *        or { "checkpoint": "weights/demo/clipseg-tiny-synthetic.safetensors" },
 *        or { "checkpoint": "cris_r50_refcocog.pth", "word_len": 22 },            // CRIS.pytorch: also
 *           "cris_config" ('cris-r50' | 'cris-r101' | a config object) and "input_size" (multiple of 32)
 *   "data": { "datasets": ["data/kvasir"], "prompt": "random" },             // pooled; 'p3', 'empty', 'text:...'
 *   "train": { "freeze": "decoder-only", "epochs": 20, "batch_size": 32, "accumulate": 1,
 *              "loss": { "kind": "dice+bce", "bce_weight": 1 },
 *              "optimizer": { "lr": 2e-3, "weight_decay": 0.05 },
 *              "schedule": { "kind": "plateau", "patience": 2, "factor": 0.5 },   // or cosine + warmup
 *              "clip_grad_norm": 1, "early_stop_patience": 5, "seed": 0 },
 *   "output": "runs/kvasir-decoder"
 * }
 */
import { CRIS_CONFIGS } from '../models/cris/configs.js';
import { type PromptChoice, parsePromptChoice } from './data/prompt.js';
import { FREEZE_POLICIES, type FreezePolicy, type SegmenterKind } from './segmenter.js';
import type { LossConfig } from './step.js';

export interface ScheduleConfig {
  kind: 'constant' | 'cosine' | 'plateau';
  /** Linear warm-up over this fraction of all steps (cosine, constant). */
  warmup: number;
  /** Plateau: epochs without a better validation Dice before the LR is multiplied by factor. */
  patience: number;
  factor: number;
  minLr: number;
}

export interface TrainConfig {
  /** Where the config came from (errors, logs). */
  source: string;
  model: {
    kind?: SegmenterKind; config?: Record<string, unknown>; checkpoint?: string; initSeed: number; threshold?: number;
    /** For a CRIS.pytorch checkpoint, which stores neither its variant nor its word_len. */
    cris?: { config?: string | Record<string, unknown>; wordLen?: number; inputSize?: number };
  };
  data: { datasets: string[]; prompt: PromptChoice; valPrompt: PromptChoice | null; trainSplit: string; valSplit: string; limit?: number };
  train: {
    freeze: FreezePolicy;
    epochs: number;
    /** Stop after this many optimizer steps (default: epochs only). */
    maxSteps?: number;
    batchSize: number;
    accumulate: number;
    loss: LossConfig;
    optimizer: { lr: number; weightDecay: number; betas: [number, number]; eps: number };
    schedule: ScheduleConfig;
    clipGradNorm: number;
    /** Epochs without a better validation Dice before stopping (0: never). */
    earlyStopPatience: number;
    /** Also write the resume checkpoint every N steps (0: at epoch ends only). */
    checkpointEverySteps: number;
    /** Validation samples at most (default all). */
    valLimit?: number;
    seed: number;
  };
  output: string;
}

type Json = Record<string, unknown>;

class Reader {
  constructor(readonly obj: Json, readonly where: string, readonly known: readonly string[]) {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) throw new Error(`${where}: unknown key '${key}' (known: ${known.join(', ')})`);
    }
  }
  fail(key: string, what: string): never {
    throw new Error(`${this.where}.${key} ${what}`);
  }
  num(key: string, def: number, min = -Infinity, max = Infinity, integer = false): number {
    const v = this.obj[key] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      this.fail(key, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return v;
  }
  optNum(key: string, min: number, integer = false): number | undefined {
    return this.obj[key] === undefined ? undefined : this.num(key, 0, min, Infinity, integer);
  }
  str<T extends string>(key: string, def: T, allowed?: readonly T[]): T {
    const v = this.obj[key] ?? def;
    if (typeof v !== 'string' || (allowed && !allowed.includes(v as T))) {
      this.fail(key, `must be ${allowed ? `one of ${allowed.join(', ')}` : 'a string'}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  }
  child(key: string, required = false): Reader['obj'] {
    const v = this.obj[key];
    if (v === undefined && !required) return {};
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(key, `must be an object, got ${JSON.stringify(v)?.slice(0, 60)}`);
    return v as Json;
  }
}

function prompt(r: Reader, key: string, def: string): PromptChoice {
  const v = r.obj[key] ?? def;
  if (typeof v !== 'string') r.fail(key, `must be a string ('random', 'p3', 'empty' or 'text:<prompt>'), got ${JSON.stringify(v)}`);
  try {
    return parsePromptChoice(v);
  } catch (error) {
    return r.fail(key, (error as Error).message);
  }
}

/** model.word_len / cris_config / input_size: how to read a CRIS.pytorch checkpoint (none: undefined). */
function crisCheckpointOptions(m: Reader, hasCheckpoint: boolean): TrainConfig['model']['cris'] {
  const given = ['word_len', 'cris_config', 'input_size'].filter((k) => m.obj[k] !== undefined);
  if (given.length === 0) return undefined;
  if (!hasCheckpoint) m.fail(given[0]!, 'applies to a CRIS.pytorch checkpoint only (a new CRIS model takes word_len and the rest in its config)');
  const wordLen = m.optNum('word_len', 2, true);
  const inputSize = m.optNum('input_size', 32, true);
  if (inputSize !== undefined && inputSize % 32 !== 0) m.fail('input_size', `must be a multiple of 32, got ${inputSize}`);
  const config = m.obj['cris_config'];
  const named = typeof config === 'string' && Object.hasOwn(CRIS_CONFIGS, config);
  if (config !== undefined && !named && (config === null || typeof config !== 'object' || Array.isArray(config))) {
    m.fail('cris_config', `must be a published CRIS name (${Object.keys(CRIS_CONFIGS).join(', ')}) or a config object, got ${JSON.stringify(config)?.slice(0, 60)}`);
  }
  return {
    ...(config !== undefined ? { config: config as string | Record<string, unknown> } : {}),
    ...(wordLen !== undefined ? { wordLen } : {}),
    ...(inputSize !== undefined ? { inputSize } : {}),
  };
}

/** Parses a train config object; relative paths are resolved with `resolvePath`. */
export function parseTrainConfig(raw: unknown, source: string, resolvePath: (p: string) => string = (p) => p): TrainConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${source}: a train config must be a JSON object`);
  const top = new Reader(raw as Json, source, ['model', 'data', 'train', 'output', 'comment']);
  const m = new Reader(top.child('model', true), `${source}: model`, ['kind', 'config', 'checkpoint', 'init_seed', 'threshold', 'word_len', 'cris_config', 'input_size']);
  const checkpoint = m.obj['checkpoint'];
  if (checkpoint !== undefined && typeof checkpoint !== 'string') m.fail('checkpoint', 'must be a path string');
  if (checkpoint === undefined && m.obj['config'] === undefined) m.fail('config', 'is required without a checkpoint (the model config JSON, e.g. an HF config.json object)');
  const kind = m.obj['kind'] === undefined ? undefined : m.str<SegmenterKind>('kind', 'clipseg', ['clipseg', 'cris', 'unet']);
  if (checkpoint === undefined && kind === undefined) m.fail('kind', "is required with a config ('clipseg', 'cris' or 'unet')");
  const d = new Reader(top.child('data', true), `${source}: data`, ['datasets', 'prompt', 'val_prompt', 'train_split', 'val_split', 'limit']);
  const sets = d.obj['datasets'];
  if (!Array.isArray(sets) || sets.length === 0 || !sets.every((s) => typeof s === 'string')) d.fail('datasets', 'must be a non-empty list of dataset folders');
  const t = new Reader(top.child('train'), `${source}: train`, [
    'freeze', 'epochs', 'max_steps', 'batch_size', 'accumulate', 'loss', 'optimizer', 'schedule', 'clip_grad_norm',
    'early_stop_patience', 'checkpoint_every_steps', 'val_limit', 'seed',
  ]);
  const l = new Reader(t.child('loss'), `${source}: train.loss`, ['kind', 'bce_weight', 'dice_reduction']);
  const o = new Reader(t.child('optimizer'), `${source}: train.optimizer`, ['lr', 'weight_decay', 'betas', 'eps']);
  const betas = o.obj['betas'] ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)) o.fail('betas', `must be two numbers in [0, 1), got ${JSON.stringify(betas)}`);
  const s = new Reader(t.child('schedule'), `${source}: train.schedule`, ['kind', 'warmup', 'patience', 'factor', 'min_lr']);
  const outputValue = top.obj['output'];
  if (typeof outputValue !== 'string' || outputValue === '') top.fail('output', 'must be the run folder (a path string)');
  const output = outputValue as string;
  const limit = d.optNum('limit', 1, true);
  const maxSteps = t.optNum('max_steps', 1, true);
  const valLimit = t.optNum('val_limit', 1, true);
  const threshold = m.optNum('threshold', 0);
  const cris = crisCheckpointOptions(m, typeof checkpoint === 'string');
  return {
    source,
    model: {
      ...(kind ? { kind } : {}),
      ...(m.obj['config'] !== undefined ? { config: m.child('config', true) } : {}),
      ...(typeof checkpoint === 'string' ? { checkpoint: resolvePath(checkpoint) } : {}),
      initSeed: m.num('init_seed', 0, 0, 2 ** 31, true),
      ...(threshold !== undefined ? { threshold } : {}),
      ...(cris ? { cris } : {}),
    },
    data: {
      datasets: (sets as string[]).map(resolvePath),
      prompt: prompt(d, 'prompt', 'random'),
      valPrompt: d.obj['val_prompt'] === undefined ? null : prompt(d, 'val_prompt', 'random'),
      trainSplit: d.str('train_split', 'train'),
      valSplit: d.str('val_split', 'val'),
      ...(limit !== undefined ? { limit } : {}),
    },
    train: {
      freeze: t.str<FreezePolicy>('freeze', 'full', FREEZE_POLICIES),
      epochs: t.num('epochs', 10, 1, 1e6, true),
      ...(maxSteps !== undefined ? { maxSteps } : {}),
      batchSize: t.num('batch_size', 16, 1, 4096, true),
      accumulate: t.num('accumulate', 1, 1, 1024, true),
      loss: {
        kind: l.str<'dice' | 'dice+bce'>('kind', 'dice+bce', ['dice', 'dice+bce']),
        bceWeight: l.num('bce_weight', 1, 0),
        diceReduction: l.str<'sample' | 'batch'>('dice_reduction', 'sample', ['sample', 'batch']),
      },
      optimizer: {
        lr: o.num('lr', 1e-3, 0, 10),
        weightDecay: o.num('weight_decay', 0.01, 0, 10),
        betas: betas as [number, number],
        eps: o.num('eps', 1e-8, 0, 1),
      },
      schedule: {
        kind: s.str<ScheduleConfig['kind']>('kind', 'plateau', ['constant', 'cosine', 'plateau']),
        warmup: s.num('warmup', 0, 0, 0.9),
        patience: s.num('patience', 2, 0, 1e6, true),
        factor: s.num('factor', 0.5, 0, 1),
        minLr: s.num('min_lr', 0, 0),
      },
      clipGradNorm: t.num('clip_grad_norm', 1, 0),
      earlyStopPatience: t.num('early_stop_patience', 0, 0, 1e6, true),
      checkpointEverySteps: t.num('checkpoint_every_steps', 0, 0, 1e9, true),
      ...(valLimit !== undefined ? { valLimit } : {}),
      seed: t.num('seed', 0, 0, 2 ** 31, true),
    },
    output: resolvePath(output),
  };
}
