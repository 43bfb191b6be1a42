/**
 * `webvlsm eval --checkpoint <file.safetensors> --data <dataset dir> [--data ...] [--split test]
 *  [--prompt-keys p0,p6] [--language] [--out <dir>] [--limit N] [--threshold t] [--batch-size N]
 *  [--k N] [--seed N] [--device cpu|webgpu] [--cris-config <name|json>] [--word-len N] [--input-size S]`:
 * evaluation of a segmenter checkpoint as the MedVLSM
 * study reports it (train/eval/evaluate.ts): Dice and IoU per image at its original resolution,
 * mean ± std per dataset and prompt type; with `--language`, the language-reliance report
 * (train/eval/language.ts: true / empty / shuffled / one-attribute-changed prompts).
 *
 * Prints the Markdown tables. With `--out`, writes there (each file atomically: a temporary file in
 * the folder, then a rename; the folder is created):
 *   report.md      the tables (and the rows of the overlay grid)
 *   scores.json    the whole result (stable JSON), scores.csv one row per image and prompt
 *   overlays.png   the k best and k worst cases of the richest prompt: image | truth | prediction
 *   language.md, language.json, language.csv   with --language
 * Every input is checked (datasets and their files, output folder) before the model loads.
 */
import { mkdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { CpuDevice, type Device } from '../../engine/index.js';
import { writeFileAtomic } from '../../engine/io/safetensors-lazy-node.js';
import { MedVlsmDataset, assertDatasetsReadable } from '../../train/data/dataset.js';
import { folderSource } from '../../train/data/source-node.js';
import { evaluateSegmenter } from '../../train/eval/evaluate.js';
import { languageReport } from '../../train/eval/language.js';
import { bestWorstOverlays } from '../../train/eval/overlays.js';
import { evalCsv, evalMarkdown, languageCsv, languageMarkdown, markdownTable, stableJson } from '../../train/eval/tables.js';
import type { Segmenter } from '../../train/segmenter.js';
import { openCliDevice } from '../gpu.js';
import type { LoadSegmenterOptions } from '../../train/checkpoint-node.js';
import { type CliIo, type Command, EXIT_OK, UsageError, parseCommandArgs } from './command.js';
import { parseInputSize, parseIntFlag, readCrisConfig } from './cris-options.js';

function parseNumber(flag: string, text: string | undefined, check: (n: number) => boolean, want: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || !check(n)) throw new UsageError(`eval: ${flag} must be ${want}, got '${text}'`);
  return n;
}

const isInt = (min: number) => (n: number) => Number.isInteger(n) && n >= min;


async function checkFile(path: string, what: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new Error(`${path}: the ${what} is not a file`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: the ${what} does not exist`);
    throw err;
  }
}

async function prepareOutFolder(dir: string): Promise<void> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error(`${dir}: --out must be a folder, but it is a file`);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dir, { recursive: true });
}

async function writeOut(path: string, content: string | Uint8Array): Promise<void> {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  await writeFileAtomic(path, async (h) => void (await h.write(bytes)));
}

/** Progress on stderr at every 10% (the CPU device is slow). */
function progress(io: CliIo, what: string): (done: number, total: number) => void {
  let shown = -1;
  return (done, total) => {
    const tenth = total === 0 ? 10 : Math.floor((10 * done) / total);
    if (tenth > shown) {
      shown = tenth;
      io.err(`${what}: ${done}/${total}\n`);
    }
  };
}

/** How the command loads a checkpoint (tests pass a fake). */
export type SegmenterLoader = (path: string, options: { device?: Device; cris?: LoadSegmenterOptions['cris'] }) => Promise<Segmenter>;

/** Loaded on first use, so the other commands do not depend on the checkpoint code. */
const loadCheckpoint: SegmenterLoader = async (path, options) => {
  const { loadSegmenterFile } = await import('../../train/checkpoint-node.js');
  return loadSegmenterFile(path, options);
};

/** The `eval` command with its checkpoint loader (the real one by default). */
export function createEvalCommand(load: SegmenterLoader = loadCheckpoint): Command {
  const command: Command = {
    name: 'eval',
    summary: 'score a segmenter checkpoint on MedVLSM-layout datasets (Dice/IoU per prompt type, language reliance)',
    help: [
      'usage: webvlsm eval --checkpoint <file.safetensors> --data <dir> [--data <dir> ...] [--split test]',
      '                    [--prompt-keys p0,p6] [--language] [--out <dir>] [--limit N] [--threshold t]',
      '                    [--batch-size N] [--k N] [--seed N] [--device cpu|webgpu]',
      '                    [--cris-config <name|json>] [--word-len N] [--input-size S]',
      '',
      '  --checkpoint <f>   a webvlsm segmenter checkpoint (.safetensors), an HF CLIPSeg folder, or a CRIS .pth',
      '  --data <dir>       a dataset folder in MedVLSM\'s layout (anns/<split>.json, images/, masks/);',
      '                     repeat for several (their folder names must differ)',
      '  --split <s>        the split to score (default test)',
      '  --prompt-keys <k>  comma-separated prompt keys, each scored separately (default: every key)',
      '  --language         also the language-reliance report: true, empty, shuffled and',
      '                     one-attribute-changed prompts (of the richest key)',
      '  --out <dir>        write report.md, scores.json, scores.csv, overlays.png (and language.*)',
      '  --limit <N>        only the first N samples of each dataset',
      '  --threshold <t>    probability threshold in [0, 1] (default: the checkpoint\'s)',
      '  --batch-size <N>   images per forward pass (default 8)',
      '  --k <N>            best and worst cases in overlays.png (default 4)',
      '  --seed <N>         seed of the shuffled and changed prompts (default 0)',
      '  --device <d>       cpu or webgpu (default: webgpu when an adapter exists, else cpu)',
      '',
      'CRIS.pytorch checkpoints only (they store neither the variant nor word_len):',
      '  --cris-config <c>  cris-r50 or cris-r101 (default: inferred from the weights), or a config .json',
      '  --word-len <N>     the word_len the checkpoint was trained with (default 17: RefCOCO/+; 22 RefCOCOg)',
      '  --input-size <S>   network side, a multiple of 32 (default: the config\'s, 416)',
      '',
      'Dice and IoU are computed per image at its original resolution with MONAI semantics (an empty',
      'truth and an empty prediction score 1); tables give mean ± std (population) and n.',
    ].join('\n'),
    async run(args: string[], io: CliIo): Promise<number> {
      const { values, positionals } = parseCommandArgs('eval', args, {
        checkpoint: { type: 'string' },
        data: { type: 'string', multiple: true },
        split: { type: 'string' },
        'prompt-keys': { type: 'string' },
        language: { type: 'boolean' },
        out: { type: 'string' },
        limit: { type: 'string' },
        threshold: { type: 'string' },
        'batch-size': { type: 'string' },
        k: { type: 'string' },
        seed: { type: 'string' },
        device: { type: 'string' },
        'cris-config': { type: 'string' },
        'word-len': { type: 'string' },
        'input-size': { type: 'string' },
      });
      if (values.help) {
        io.out(`${command.help}\n`);
        return EXIT_OK;
      }
      if (positionals.length > 0) throw new UsageError(`eval: unexpected argument '${positionals[0]}' (options take --name value)`);
      const dataDirs = (values.data as unknown as string[] | undefined) ?? [];
      const missing = typeof values.checkpoint === 'string' ? [] : ['--checkpoint'];
      if (dataDirs.length === 0) missing.push('--data');
      if (missing.length > 0) throw new UsageError(`eval: missing ${missing.join(', ')}`);
      const checkpoint = values.checkpoint as string;
      const split = (values.split as string | undefined) ?? 'test';
      const keysText = values['prompt-keys'] as string | undefined;
      const promptKeys = keysText?.split(',').map((k) => k.trim());
      if (promptKeys !== undefined && promptKeys.some((k) => k === '')) throw new UsageError(`eval: --prompt-keys must list keys such as p0,p6, got '${keysText}'`);
      const limit = parseNumber('--limit', values.limit as string | undefined, isInt(1), 'an integer >= 1');
      const threshold = parseNumber('--threshold', values.threshold as string | undefined, (t) => t >= 0 && t <= 1, 'a number in [0, 1]');
      const batchSize = parseNumber('--batch-size', values['batch-size'] as string | undefined, isInt(1), 'an integer >= 1') ?? 8;
      const k = parseNumber('--k', values.k as string | undefined, isInt(0), 'an integer >= 0') ?? 4;
      const seed = parseNumber('--seed', values.seed as string | undefined, isInt(0), 'an integer >= 0') ?? 0;
      const deviceName = values.device as string | undefined;
      if (deviceName !== undefined && deviceName !== 'cpu' && deviceName !== 'webgpu') {
        throw new UsageError(`eval: --device must be cpu or webgpu, got '${deviceName}'`);
      }
      const wordLen = parseIntFlag('eval', '--word-len', values['word-len'] as string | undefined, 2);
      const inputSize = parseInputSize('eval', values['input-size'] as string | undefined);
      const crisConfigText = values['cris-config'] as string | undefined;
      const crisConfig = crisConfigText === undefined ? undefined : await readCrisConfig('eval', '--cris-config', crisConfigText);
      const cris = { config: crisConfig, wordLen, inputSize };
      const names = dataDirs.map((d) => basename(resolve(d)));
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      if (twice !== undefined) throw new UsageError(`eval: two --data folders are named '${twice}'; their scores would mix`);
      const outDir = values.out as string | undefined;

      // Everything that can fail fast, before the model loads.
      await checkFile(checkpoint, 'checkpoint');
      const datasets: MedVlsmDataset[] = [];
      for (const dir of dataDirs) datasets.push(await MedVlsmDataset.open(folderSource(dir), { splits: [split] }));
      await assertDatasetsReadable(datasets, { splits: [split], level: 'exists', prompt: { kind: 'empty' } });
      if (outDir !== undefined) await prepareOutFolder(outDir);

      const { device, owned } = await openCliDevice(deviceName, io);
      let segmenter: Segmenter | null = null;
      try {
        const model = await load(checkpoint, { device, cris });
        segmenter = model;
        const common = { split, batchSize, threshold, limit };
        const result = await evaluateSegmenter(model, datasets, { ...common, promptKeys, onProgress: progress(io, 'eval') });
        const tables = evalMarkdown(result);
        const language = values.language
          ? await languageReport(model, datasets, { ...common, seed, onProgress: progress(io, 'language') })
          : null;
        const languageTables = language === null ? '' : languageMarkdown(language);
        const lines = [`model: ${model.kind} ${checkpoint} on ${device.description}`, '', tables];
        if (languageTables !== '') lines.push(languageTables);
        if (outDir !== undefined) {
          const grid = k > 0 ? await bestWorstOverlays(model, datasets, result, { k, batchSize, threshold: result.threshold }) : null;
          let report = `# webvlsm eval: ${checkpoint}\n\n${tables}`;
          if (grid !== null) {
            const rows = grid.rows.map((r, i) => [String(i + 1), i < Math.min(k, grid.rows.length) ? 'best' : 'worst', r.dataset, String(r.index), r.img_name, r.prompt_key, r.dice.toFixed(4)]);
            report += `\n### overlays.png rows (image | truth, green | prediction, red)\n\n${markdownTable(['row', 'kind', 'dataset', 'index', 'image', 'prompt', 'Dice'], rows, [0, 3, 6])}\n`;
            await writeOut(join(outDir, 'overlays.png'), grid.png);
          }
          if (languageTables !== '') report += `\n${languageTables}`;
          await writeOut(join(outDir, 'report.md'), report);
          await writeOut(join(outDir, 'scores.json'), stableJson({ checkpoint, ...result }));
          await writeOut(join(outDir, 'scores.csv'), evalCsv(result));
          if (language !== null) {
            await writeOut(join(outDir, 'language.md'), languageTables);
            await writeOut(join(outDir, 'language.json'), stableJson({ checkpoint, ...language }));
            await writeOut(join(outDir, 'language.csv'), languageCsv(language));
          }
          lines.push(`wrote ${outDir}: report.md, scores.json, scores.csv${grid !== null ? ', overlays.png' : ''}${language !== null ? ', language.md, language.json, language.csv' : ''}`);
        }
        io.out(`${lines.join('\n')}\n`);
        return EXIT_OK;
      } finally {
        segmenter?.module.dispose();
        if (owned) device.destroy();
      }
    },
  };
  return command;
}

export const evalCommand: Command = createEvalCommand();
