/**
 * `webvlsm eval` end to end on a small synthetic dataset folder: with the checkpoint loader replaced
 * by a fake segmenter (createEvalCommand(loader)), so the command's outputs are checked
 * independently of the checkpoint format (every file written, the printed table, the overlay
 * grid); and once with a tiny random CLIPSeg checkpoint through the real loadSegmenterFile.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CpuDevice, Module, Tensor } from '../../src/engine/index.js';
import { decodePng } from '../../src/models/image/index.js';
import type { CliIo } from '../../src/cli/commands/command.js';
import { type SegmenterLoader, createEvalCommand } from '../../src/cli/commands/eval.js';
import { COMMANDS, main } from '../../src/cli/webvlsm.js';
import { loadShippedTokenizer, saveSegmenterFile } from '../../src/train/checkpoint-node.js';
import { rngFor } from '../../src/train/data/random.js';
import { ClipSegSegmenter } from '../../src/train/segmenters/clipseg.js';
import { writeSyntheticDataset } from '../../src/train/synthetic/write-node.js';

const loads: { path: string; device: unknown; cris: unknown }[] = [];

/** A model that predicts the left half of a 16 x 16 input, whatever the prompt. */
const fakeLoader: SegmenterLoader = async (path, options) => {
  loads.push({ path, device: options.device, cris: options.cris });
  const cpu = new CpuDevice();
  return {
    kind: 'unet',
    module: new Module(),
    usesText: false,
    threshold: 0.5,
    inputSize: [16, 16],
    pixels: (images) => Tensor.zeros([images.length, 1], { device: cpu }),
    logits: (_p, prompts) =>
      Tensor.fromArray(
        Float32Array.from({ length: prompts.length * 256 }, (_, i) => (i % 16 < 8 ? 5 : -5)),
        [prompts.length, 16, 16],
        { device: cpu },
      ),
    trainable: () => [],
    describe: () => ({ kind: 'unet', config: {} }),
  };
};

describe('webvlsm eval', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webvlsm-eval-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes report.md, scores.json/csv, overlays.png and language.* and prints the table', async () => {
    const data = join(dir, 'synth');
    await writeSyntheticDataset(data, { size: 32, seed: 2, images: { train: 0, val: 0, test: 3 }, targets: 'one' });
    const ckpt = join(dir, 'model.safetensors');
    writeFileSync(ckpt, 'fake');
    const out = join(dir, 'out');
    const io = { out: '', err: '' };
    const cli: CliIo = { out: (t) => void (io.out += t), err: (t) => void (io.err += t) };
    const code = await main(
      ['eval', '--checkpoint', ckpt, '--data', data, '--prompt-keys', 'p1,p6', '--language', '--out', out, '--k', '1', '--device', 'cpu'],
      cli,
      [...COMMANDS.filter((c) => c.name !== 'eval'), createEvalCommand(fakeLoader)],
    );
    expect(io.err).not.toMatch(/webvlsm eval:/);
    expect(code).toBe(0);
    expect(loads).toHaveLength(1);
    expect(loads[0]!.path).toBe(ckpt);
    expect(io.out).toContain('| dataset | prompt | n | Dice (mean ± std) | IoU (mean ± std) |');
    expect(io.out).toMatch(/\| synth \| p6 \| 3 \|/);
    expect(readdirSync(out).sort()).toEqual(['language.csv', 'language.json', 'language.md', 'overlays.png', 'report.md', 'scores.csv', 'scores.json']);
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8'));
    expect(scores.prompt_keys).toEqual(['p1', 'p6']);
    expect(scores.records).toHaveLength(6);
    expect(readFileSync(join(out, 'scores.csv'), 'utf8').split('\r\n')).toHaveLength(8);
    const lang = JSON.parse(readFileSync(join(out, 'language.json'), 'utf8'));
    expect(lang.reliance.overall).toBe(0);
    expect(lang.note).toMatch(/image-only/);
    // k = 1: one best and one worst row of 32 px images, enlarged to 128 px cells.
    const grid = decodePng(readFileSync(join(out, 'overlays.png')));
    expect([grid.width, grid.height]).toEqual([3 * 128 + 4, 2 * 128 + 2]);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/overlays\.png rows/);
  });

  it('hands --cris-config, --word-len and --input-size to the loader (CRIS.pytorch checkpoints); bad values are usage errors', async () => {
    const data = join(dir, 'synth-cris');
    await writeSyntheticDataset(data, { size: 32, seed: 3, images: { train: 0, val: 0, test: 1 }, targets: 'one' });
    const ckpt = join(dir, 'cris.pth');
    writeFileSync(ckpt, 'fake');
    const configJson = join(dir, 'cris-config.json');
    writeFileSync(configJson, JSON.stringify({ config: { clip: {}, word_len: 17 } }));
    const commands = [...COMMANDS.filter((c) => c.name !== 'eval'), createEvalCommand(fakeLoader)];
    const run = async (extra: string[]) => {
      const io = { out: '', err: '' };
      const cli: CliIo = { out: (t) => void (io.out += t), err: (t) => void (io.err += t) };
      const code = await main(['eval', '--checkpoint', ckpt, '--data', data, '--device', 'cpu', ...extra], cli, commands);
      return { code, err: io.err };
    };
    loads.length = 0;
    expect((await run(['--cris-config', 'cris-r101', '--word-len', '22', '--input-size', '320'])).code).toBe(0);
    expect((await run(['--cris-config', configJson])).code).toBe(0);
    expect(loads.map((l) => l.cris)).toEqual([
      { config: 'cris-r101', wordLen: 22, inputSize: 320 },
      { config: { clip: {}, word_len: 17 }, wordLen: undefined, inputSize: undefined },
    ]);
    for (const [flags, message] of [
      [['--word-len', '1'], /eval: --word-len must be an integer >= 2, got '1'/],
      [['--input-size', '100'], /eval: --input-size must be a multiple of 32, got 100/],
      [['--cris-config', 'cris-r5'], /eval: --cris-config must be cris-r50, cris-r101 or a \.json file, got 'cris-r5'/],
    ] as const) {
      const r = await run([...flags]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.err).toMatch(message);
    }
    expect(loads).toHaveLength(2);
  });
});

describe('webvlsm eval with a real checkpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webvlsm-eval-ckpt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a tiny CLIPSeg checkpoint with loadSegmenterFile and scores it', async () => {
    const config = JSON.parse(readFileSync(new URL('../fixtures/clipseg/clipseg_tiny_plain/config.json', import.meta.url), 'utf8'));
    // The shipped CLIP tokenizer's ids need the full vocabulary; one or two layers per tower keep it fast.
    config.text_config = { ...config.text_config, vocab_size: 49408, num_hidden_layers: 1 };
    config.vision_config = { ...config.vision_config, num_hidden_layers: 2, image_size: 32, patch_size: 16 };
    config.extract_layers = [1];
    const segmenter = new ClipSegSegmenter(config, { tokenizer: await loadShippedTokenizer(), device: new CpuDevice(), rng: rngFor(7) });
    const ckpt = join(dir, 'tiny.safetensors');
    await saveSegmenterFile(ckpt, segmenter);
    segmenter.module.dispose();
    const data = join(dir, 'synth');
    await writeSyntheticDataset(data, { size: 32, seed: 4, images: { train: 0, val: 0, test: 2 }, targets: 'one' });
    const io = { out: '', err: '' };
    const cli: CliIo = { out: (t) => void (io.out += t), err: (t) => void (io.err += t) };
    const out = join(dir, 'out');
    const code = await main(['eval', '--checkpoint', ckpt, '--data', data, '--prompt-keys', 'p0,p6', '--out', out, '--k', '1', '--device', 'cpu'], cli);
    expect(io.err).not.toMatch(/webvlsm eval:/);
    expect(code).toBe(0);
    expect(io.out).toMatch(/model: clipseg /);
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8'));
    expect(scores.records).toHaveLength(4);
    for (const r of scores.records) {
      expect(r.dice).toBeGreaterThanOrEqual(0);
      expect(r.dice).toBeLessThanOrEqual(1);
      expect(r.truth_pixels).toBeGreaterThan(0);
    }
  });
});
