/**
 * `webvlsm train --config <run.json> [--resume] [--out <dir>] [--epochs N] [--max-steps N] [--device cpu|webgpu]`:
 * finetunes (or trains from scratch) a segmenter as described by the config (src/train/config.ts
 * documents every key). Progress goes to stderr; the run folder gets model.safetensors (best by
 * validation Dice), state.safetensors (for --resume), config.json and the logs.
 * Exit codes: 0 done, 1 failure (bad config or data, NaN loss: the last good checkpoint is kept).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type TrainConfig, parseTrainConfig } from '../../train/config.js';
import { runTraining } from '../../train/trainer.js';
import { openCliDevice } from '../gpu.js';
import { type CliIo, type Command, EXIT_OK, UsageError, parseCommandArgs } from './command.js';

function positiveInt(name: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`train: ${name} must be a positive integer, got '${String(value)}'`);
  return n;
}

export async function readTrainConfig(path: string): Promise<TrainConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read the train config (${(error as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const base = dirname(resolve(path));
  return parseTrainConfig(raw, path, (p) => resolve(base, p));
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'finetune or train a segmenter (CLIPSeg, UNet) on MedVLSM-layout datasets',
  help: [
    'usage: webvlsm train --config <run.json> [--resume] [--out <dir>] [--epochs N] [--max-steps N] [--device cpu|webgpu]',
    '',
    '  --config <file>   the run: model, datasets, prompt choice, freeze policy, loss, optimizer, schedule',
    '                    (keys documented in src/train/config.ts; paths relative to the file)',
    '  --resume          continue the run in the output folder from its state.safetensors',
    '  --out <dir>       override the config\'s output folder',
    '  --epochs N        override train.epochs (allowed on --resume: extends a run)',
    '  --max-steps N     override train.max_steps',
    '  --device <d>      cpu or webgpu (default: webgpu when an adapter exists, else cpu)',
    '',
    'Checkpoints and logs are written atomically; a killed run continues with --resume from its last',
    'finished epoch. A NaN/Inf loss stops the run and keeps the last good checkpoint.',
  ].join('\n'),
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs('train', args, {
      config: { type: 'string' },
      resume: { type: 'boolean' },
      out: { type: 'string' },
      epochs: { type: 'string' },
      'max-steps': { type: 'string' },
      device: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`train: unexpected argument '${positionals[0]}'`);
    if (typeof values.config !== 'string') throw new UsageError('train: --config <run.json> is required');
    const device = values.device as string | undefined;
    if (device !== undefined && device !== 'cpu' && device !== 'webgpu') throw new UsageError(`train: --device must be cpu or webgpu, got '${device}'`);
    const epochs = positiveInt('--epochs', values.epochs);
    const maxSteps = positiveInt('--max-steps', values['max-steps']);
    const config = await readTrainConfig(values.config);
    if (typeof values.out === 'string') config.output = resolve(values.out);
    if (epochs !== undefined) config.train.epochs = epochs;
    if (maxSteps !== undefined) config.train.maxSteps = maxSteps;
    const opened = await openCliDevice(device, io);
    try {
      io.err(`training on ${opened.device.description}; run folder ${config.output}\n`);
      const result = await runTraining(config, { device: opened.device, resume: values.resume === true, write: (t) => io.err(t) });
      io.out(`${JSON.stringify({ ...result })}\n`);
      return EXIT_OK;
    } finally {
      if (opened.owned) opened.device.destroy();
    }
  },
};
