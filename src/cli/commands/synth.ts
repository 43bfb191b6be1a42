/**
 * `webvlsm synth --out <dir> [--modality endoscopy|ultrasound] [--shift 0..1] [--seed N] [--size px]
 *  [--train N] [--val N] [--test N] [--objects min-max] [--targets all|one]`:
 * writes the synthetic dataset (src/train/synthetic) in MedVLSM's layout. Deterministic: the same
 * options give byte-identical files. Refuses a folder that already holds anns/ (nothing is lost).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Modality } from '../../train/synthetic/generate.js';
import { writeSyntheticDataset } from '../../train/synthetic/write-node.js';
import { type CliIo, type Command, EXIT_OK, UsageError, parseCommandArgs } from './command.js';

function int(name: string, value: string | boolean | undefined, def: number, min = 0): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`synth: --${name} must be an integer >= ${min}, got '${String(value)}'`);
  return n;
}

export const synthCommand: Command = {
  name: 'synth',
  summary: 'write the synthetic dataset (MedVLSM layout, prompts p0..p6) to a folder',
  help: [
    'usage: webvlsm synth --out <dir> [--modality endoscopy|ultrasound] [--shift 0..1] [--seed N] [--size px]',
    '                     [--train N] [--val N] [--test N] [--objects min-max] [--targets all|one]',
    '',
    '  --shift s      0 = source domain (default), 1 = the shifted target domain',
    '  --size px      image side (default 64); --objects default 1-3 objects per image',
    '  --targets      all: one sample per object (default); one: one sample per image',
  ].join('\n'),
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs('synth', args, {
      out: { type: 'string' }, modality: { type: 'string' }, shift: { type: 'string' }, seed: { type: 'string' },
      size: { type: 'string' }, train: { type: 'string' }, val: { type: 'string' }, test: { type: 'string' },
      objects: { type: 'string' }, targets: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`synth: unexpected argument '${positionals[0]}'`);
    if (typeof values.out !== 'string') throw new UsageError('synth: --out <dir> is required');
    const shift = values.shift === undefined ? 0 : Number(values.shift);
    if (!(shift >= 0 && shift <= 1)) throw new UsageError(`synth: --shift must be in [0, 1], got '${String(values.shift)}'`);
    const objects = /^(\d+)-(\d+)$/.exec(String(values.objects ?? '1-3'));
    if (!objects) throw new UsageError(`synth: --objects must be min-max, e.g. 1-3, got '${String(values.objects)}'`);
    const targets = String(values.targets ?? 'all');
    if (targets !== 'all' && targets !== 'one') throw new UsageError(`synth: --targets must be all or one, got '${targets}'`);
    if (await stat(join(values.out, 'anns')).then(() => true, () => false)) {
      throw new Error(`${values.out} already holds a dataset (anns/); choose another folder`);
    }
    const dataset = await writeSyntheticDataset(values.out, {
      modality: (values.modality ?? 'endoscopy') as Modality,
      shift,
      seed: int('seed', values.seed, 0),
      size: int('size', values.size, 64, 16),
      minObjects: Number(objects[1]),
      maxObjects: Number(objects[2]),
      targets,
      images: { train: int('train', values.train, 200), val: int('val', values.val, 50), test: int('test', values.test, 50) },
    });
    const counts = Object.entries(dataset.splits).map(([s, v]) => `${s} ${v.images.length} images / ${v.entries.length} samples`).join(', ');
    io.out(`wrote ${values.out}: ${counts}\n`);
    return EXIT_OK;
  },
};
