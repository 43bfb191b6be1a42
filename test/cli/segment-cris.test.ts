/**
 * `webvlsm segment --model-type cris` end to end, in-process through main(), with the tiny golden
 * CRIS (test/fixtures/cris_tiny/weights.pth) in a folder with its 1000-token vocabulary
 * (test/helpers/clipseg-folder.ts) and a config JSON at a 96x96 input. Checks the mask / label map
 * / overlay against the API's own result (threshold 0.35 by default), the published config
 * names, a golden manifest as --config, usage errors (exit 2: bad --model-type, --word-len,
 * --input-size, --config, CRIS-only flags with clipseg) and failures (exit 1: a config of another
 * variant, word_len beyond the context, a non-image file, a missing checkpoint). One run goes
 * through the binary.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/commands/command.js';
import { main } from '../../src/cli/webvlsm.js';
import { CpuDevice } from '../../src/engine/index.js';
import { CRIS } from '../../src/models/cris/api.js';
import { type Image, decodePng, encodePng } from '../../src/models/image/index.js';
import { truncatedClipVocab } from '../helpers/clipseg-folder.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/cris_tiny');
const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-segment-cris-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(argv, io);
  return { code, out, err };
}

function gradient(width: number, height: number): Image {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const x = i % width;
    const y = Math.floor(i / width);
    data.set([(x * 255) / (width - 1), (y * 255) / (height - 1), x > width / 2 ? 200 : 30], i * 3);
  }
  return { width, height, channels: 3, data };
}

const manifestConfig = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8')).config as Record<string, unknown>;
const modelDir = join(tmp, 'cris');
mkdirSync(modelDir);
copyFileSync(join(FIXTURE, 'weights.pth'), join(modelDir, 'weights.pth'));
const { vocabJson, mergesTxt } = truncatedClipVocab();
writeFileSync(join(modelDir, 'vocab.json'), vocabJson);
writeFileSync(join(modelDir, 'merges.txt'), mergesTxt);
const configPath = join(tmp, 'cris_tiny.json');
writeFileSync(configPath, JSON.stringify({ ...manifestConfig, input_size: 96 }));
const image = gradient(64, 40);
const imagePath = join(tmp, 'image.png');
writeFileSync(imagePath, encodePng(image));
const outDir = join(tmp, 'out');
mkdirSync(outDir);
const base = (out: string, ...rest: string[]) => [
  'segment', '--model-type', 'cris', '--model', modelDir, '--config', configPath, '--image', imagePath, '--out', out, '--device', 'cpu', ...rest,
];

describe('webvlsm segment --model-type cris', () => {
  it('writes the mask and overlay of one prompt, equal to the API result (threshold 0.35)', async () => {
    const out = join(outDir, 'mask.png');
    const ov = join(outDir, 'overlay.png');
    const r = await run(...base(out, '--prompt', 'the bright part', '--overlay', ov));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/model: CRIS .* on cpu/);
    expect(r.out).toContain(`wrote ${out} (mask, 64x40)`);
    expect(r.out).toMatch(/> 0\.35/);
    const mask = decodePng(new Uint8Array(readFileSync(out)));
    expect([mask.width, mask.height, mask.channels]).toEqual([64, 40, 1]);
    const model = await CRIS.fromPretrained(modelDir, { config: { ...manifestConfig, input_size: 96 }, device: new CpuDevice() });
    try {
      const want = await model.segment(image, 'the bright part');
      expect([...mask.data]).toEqual([...want.masks[0]!.data]);
    } finally {
      model.dispose();
    }
    const overlay = decodePng(new Uint8Array(readFileSync(ov)));
    expect([overlay.width, overlay.height]).toEqual([64, 40]);
  });

  it('several prompts give a label map; --threshold, --word-len and --input-size apply; a manifest works as --config', async () => {
    const out = join(outDir, 'labels.png');
    const r = await run(
      'segment', '--model-type', 'cris', '--model', join(modelDir, 'weights.pth'), '--config', join(FIXTURE, 'manifest.json'),
      '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'left', '--prompt', 'right', '--threshold', '0.2',
      '--word-len', '22', '--input-size', '128',
    );
    // The bare .pth next to no vocabulary uses the shipped CLIP vocabulary: too large for the tiny model.
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/49408 tokens, but the model's vocab_size is 1000/);
    const ok = await run(
      'segment', '--model-type', 'cris', '--model', modelDir, '--config', join(FIXTURE, 'manifest.json'), '--image', imagePath,
      '--out', out, '--device', 'cpu', '--prompt', 'left', '--prompt', 'right', '--threshold', '0.2', '--word-len', '22', '--input-size', '128',
    );
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(`wrote ${out} (label map, 2 prompts, 64x40)`);
    expect(ok.out).toMatch(/label 2, .*> 0\.2/);
    const labels = decodePng(new Uint8Array(readFileSync(out)));
    expect([labels.width, labels.height]).toEqual([64, 40]);
    expect(labels.data.every((v) => v <= 2)).toBe(true);
  });

  it('--help documents the CRIS options', async () => {
    const r = await run('segment', '--help');
    expect(r.code).toBe(0);
    for (const flag of ['--model-type', '--config', '--word-len', '--input-size']) expect(r.out).toContain(flag);
  });

  it('usage errors exit 2 and name the problem', async () => {
    const out = join(outDir, 'never.png');
    const cases: [string[], RegExp][] = [
      [['--model-type', 'sam'], /--model-type must be clipseg or cris/],
      [['--word-len', 'abc'], /--word-len must be an integer >= 2/],
      [['--word-len', '1'], /--word-len must be an integer >= 2/],
      [['--input-size', '100'], /--input-size must be a multiple of 32/],
    ];
    for (const [extra, message] of cases) {
      const r = await run(...base(out, '--prompt', 'x'), ...extra);
      expect(r.code, extra.join(' ')).toBe(2);
      expect(r.err).toMatch(message);
    }
    const badConfig = await run('segment', '--model-type', 'cris', '--model', modelDir, '--config', 'cris-r18', '--image', imagePath, '--out', out, '--prompt', 'x');
    expect(badConfig.code).toBe(2);
    expect(badConfig.err).toMatch(/--config must be cris-r50, cris-r101 or a \.json file/);
    const clipsegOnly = await run('segment', '--model', modelDir, '--word-len', '17', '--image', imagePath, '--out', out, '--prompt', 'x');
    expect(clipsegOnly.code).toBe(2);
    expect(clipsegOnly.err).toMatch(/--word-len only apply to --model-type cris/);
    expect(existsSync(out)).toBe(false);
  });

  it('failures exit 1 with the cause and leave no output behind', async () => {
    const out = join(outDir, 'fail.png');
    const notImage = join(tmp, 'notes.png');
    writeFileSync(notImage, 'this is text, not a PNG');
    const brokenJson = join(tmp, 'broken.json');
    writeFileSync(brokenJson, '{ "clip": ');
    const cases: [string[], RegExp][] = [
      [['segment', '--model-type', 'cris', '--model', modelDir, '--config', 'cris-r50', '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /does not match 'cris-r50'/],
      [[...base(out, '--prompt', 'x', '--word-len', '78')], /word_len' \(78\) exceeds the CLIP context length 77/],
      [['segment', '--model-type', 'cris', '--model', modelDir, '--config', configPath, '--image', notImage, '--out', out, '--device', 'cpu', '--prompt', 'x'], /notes\.png/],
      [['segment', '--model-type', 'cris', '--model', join(tmp, 'absent.pth'), '--config', configPath, '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /absent\.pth: cannot open the CRIS checkpoint \(no such file/],
      [['segment', '--model-type', 'cris', '--model', modelDir, '--config', brokenJson, '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /broken\.json: the CRIS config is not valid JSON/],
      [['segment', '--model-type', 'cris', '--model', modelDir, '--config', join(tmp, 'nope.json'), '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /nope\.json: cannot read the CRIS config \(no such file\)/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('the binary exits 0 on success and 1 on a config of another variant', async () => {
    const exec = promisify(execFile);
    const out = join(outDir, 'bin-mask.png');
    const ok = await exec(process.execPath, [join(ROOT, 'bin/webvlsm.mjs'), ...base(out, '--prompt', 'x')], { cwd: ROOT });
    expect(ok.stdout).toContain(`wrote ${out} (mask, 64x40)`);
    const failed = await exec(
      process.execPath,
      [join(ROOT, 'bin/webvlsm.mjs'), 'segment', '--model-type', 'cris', '--model', modelDir, '--config', 'cris-r101', '--image', imagePath, '--out', out, '--prompt', 'x', '--device', 'cpu'],
      { cwd: ROOT },
    ).catch((e: { code: number; stderr: string }) => e);
    expect((failed as { code: number }).code).toBe(1);
    expect((failed as { stderr: string }).stderr).toMatch(/does not match 'cris-r101'/);
  });
});
