/**
 * `webvlsm segment` end to end, in-process through main(): a tiny Hugging Face-style CLIPSeg folder
 * (test/helpers/clipseg-folder.ts, from the golden clipseg_tiny_plain model, with a 48x48
 * preprocessor_config.json so each run takes a second) and generated PNG images. Checks the mask /
 * label-map / overlay files against the API's own result, warnings for empty and over-long
 * prompts, usage errors (exit 2), failures (exit 1) for a missing model folder, a config without
 * required keys, a non-image file, an unreadable image and a missing output folder, and that no
 * output or temporary file is left behind by a failed run. One run goes through the binary.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/commands/command.js';
import { COMMANDS, main } from '../../src/cli/webvlsm.js';
import { CpuDevice } from '../../src/engine/index.js';
import { CLIPSeg } from '../../src/models/clipseg/api.js';
import { type Image, decodePng, encodePng } from '../../src/models/image/index.js';
import { makeTinyClipSegFolder } from '../helpers/clipseg-folder.js';
import { webgpuDevice } from '../helpers/devices.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-segment-'));
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

const modelDir = makeTinyClipSegFolder(join(tmp, 'model'), { size: 48 });
const image = gradient(64, 40);
const imagePath = join(tmp, 'image.png');
writeFileSync(imagePath, encodePng(image));
const outDir = join(tmp, 'out');
mkdirSync(outDir);
const withDevice = (device: string, out: string, ...rest: string[]) => ['segment', '--model', modelDir, '--image', imagePath, '--out', out, '--device', device, ...rest];
const base = (out: string, ...rest: string[]) => withDevice('cpu', out, ...rest);
const leftovers = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

let api: CLIPSeg;
beforeAll(async () => {
  api = await CLIPSeg.fromPretrained(modelDir, { device: new CpuDevice() });
});
afterAll(() => api?.dispose());

describe('webvlsm segment', () => {
  it('writes the mask and overlay of one prompt, equal to the API result', async () => {
    const out = join(outDir, 'mask.png');
    const overlayPath = join(outDir, 'overlay.png');
    const r = await run(...base(out, '--prompt', 'a polyp', '--overlay', overlayPath, '--threshold', '0.4'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^model: .* on cpu/);
    expect(r.out).toContain(`image: ${imagePath} (64x40)\n`);
    expect(r.out).toMatch(/prompts\[0\] "a polyp": \d+ tokens, max p 0\.\d{4}, \d+\.\d\d% of pixels > 0\.4\n/);
    expect(r.out).toContain(`wrote ${out} (mask, 64x40)\n`);
    const mask = decodePng(new Uint8Array(readFileSync(out)));
    expect([mask.width, mask.height, mask.channels, mask.bitDepth]).toEqual([64, 40, 1, 8]);
    const expected = await api.segment(image, 'a polyp', { threshold: 0.4 });
    expect(mask.data).toEqual(expected.masks[0]!.data);
    const ov = decodePng(new Uint8Array(readFileSync(overlayPath)));
    expect([ov.width, ov.height, ov.channels]).toEqual([64, 40, 4]);
    // Unmasked pixels keep the image's colour.
    const i = expected.masks[0]!.data.indexOf(0);
    if (i >= 0) expect([...ov.data.subarray(i * 4, i * 4 + 3)]).toEqual([...image.data.subarray(i * 3, i * 3 + 3)]);
    expect(leftovers(outDir)).toEqual([]);
  });

  it('several prompts give a label map (0 = background, k = k-th prompt); empty and over-long prompts warn', async () => {
    const out = join(outDir, 'labels.png');
    const long = 'lesion '.repeat(90);
    const r = await run(...base(out, '--prompt', 'a polyp', '--prompt', '', '--prompt', long, '--overlay', join(outDir, 'labels-overlay.png')));
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^warning: prompts\[1\] "" is empty after text cleaning/m);
    expect(r.err).toMatch(/^warning: prompts\[2\] "lesion lesion .*" has \d+ tokens with BOS\/EOS, more than the context of 77: truncated/m);
    expect(r.out).toContain(`wrote ${out} (label map, 3 prompts, 64x40)\n`);
    expect(r.out).toMatch(/prompts\[2\] "lesion .*": label 3, 77 tokens/);
    const labels = decodePng(new Uint8Array(readFileSync(out)));
    const expected = await api.segment(image, ['a polyp', '', long]);
    expect(labels.data).toEqual(expected.labels.data);
    expect(Math.max(...labels.data)).toBeLessThanOrEqual(3);
  });

  it('--help, and the command is listed in webvlsm --help', async () => {
    const help = await run('segment', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: webvlsm segment --model <dir> --image <file> --prompt "\.\.\." \[--prompt \.\.\.\] --out <mask\.png>/);
    expect(help.out).toContain('--device <d>');
    expect((await run('--help')).out).toContain('  segment  ');
    expect(COMMANDS.map((c) => c.name)).toContain('segment');
  });

  it('usage errors exit 2 and name the problem', async () => {
    const out = join(outDir, 'never.png');
    const cases: [string[], RegExp][] = [
      [['segment', '--model', modelDir, '--image', imagePath, '--out', out], /^webvlsm segment: missing --prompt\n/],
      [['segment', '--prompt', 'x'], /^webvlsm segment: missing --model, --image, --out\n/],
      [base(out, '--prompt', 'x', '--threshold', '2'), /--threshold must be a number in \[0, 1\], got '2'/],
      [base(out, '--prompt', 'x', '--threshold', 'high'), /--threshold must be a number in \[0, 1\], got 'high'/],
      [withDevice('tpu', out, '--prompt', 'x'), /--device must be cpu or webgpu, got 'tpu'/],
      [base(join(outDir, 'mask.jpg'), '--prompt', 'x'), /--out must name a \.png file/],
      [base(imagePath, '--prompt', 'x'), /--out would overwrite the input image/],
      [base(out, '--prompt', 'x', '--overlay', out), /--out and --overlay name the same file/],
      [[...base(out, '--prompt', 'x'), 'extra'], /unexpected argument 'extra'/],
      [[...base(out, '--prompt', 'x'), '--frob'], /Unknown option '--frob'/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err, argv.join(' ')).toMatch(message);
      expect(r.err).toContain("run 'webvlsm segment --help' for usage");
    }
    expect(existsSync(out)).toBe(false);
  });

  it('failures exit 1 with the path and the cause, and leave no output behind', async () => {
    const out = join(outDir, 'failed.png');
    const notImage = join(tmp, 'notes.png');
    writeFileSync(notImage, 'these are notes, not pixels');
    const noVision = makeTinyClipSegFolder(join(tmp, 'no-vision'), { size: 48 });
    const config = JSON.parse(readFileSync(join(noVision, 'config.json'), 'utf8'));
    delete config.vision_config;
    writeFileSync(join(noVision, 'config.json'), JSON.stringify(config));
    const noConfig = makeTinyClipSegFolder(join(tmp, 'no-config'), { size: 48 });
    rmSync(join(noConfig, 'config.json'));
    const cases: [string[], RegExp][] = [
      [['segment', '--model', join(tmp, 'absent'), '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /absent: cannot read the model folder \(no such file or folder\)/],
      [['segment', '--model', noConfig, '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /no-config: no config\.json in the model folder/],
      [['segment', '--model', noVision, '--image', imagePath, '--out', out, '--device', 'cpu', '--prompt', 'x'], /no-vision\/config\.json: 'vision_config' is missing/],
      [['segment', '--model', modelDir, '--image', notImage, '--out', out, '--device', 'cpu', '--prompt', 'x'], /notes\.png: not a PNG or JPEG image \(the file starts with bytes 74 68 65 73/],
      [['segment', '--model', modelDir, '--image', join(tmp, 'missing.png'), '--out', out, '--device', 'cpu', '--prompt', 'x'], /missing\.png: cannot read the image \(no such file\)/],
      [['segment', '--model', modelDir, '--image', outDir, '--out', out, '--device', 'cpu', '--prompt', 'x'], /out: cannot read the image \(it is a folder, not a file\)/],
      [base(join(tmp, 'nowhere', 'mask.png'), '--prompt', 'x'), /nowhere\/mask\.png: cannot write the mask: its folder .*nowhere does not exist/],
      [base(out, '--prompt', 'x', '--overlay', join(tmp, 'nowhere', 'o.png')), /cannot write the overlay: its folder .*nowhere does not exist/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err, argv.join(' ')).toMatch(new RegExp(`^webvlsm segment: .*${message.source}`));
      expect(r.out).toBe('');
    }
    expect(existsSync(out)).toBe(false);
    expect(leftovers(outDir)).toEqual([]);
  });

  it('segments a 1x1 image', async () => {
    const one = join(tmp, 'one.png');
    writeFileSync(one, encodePng({ width: 1, height: 1, channels: 3, data: new Uint8Array([10, 200, 30]) }));
    const out = join(outDir, 'one-mask.png');
    const r = await run('segment', '--model', modelDir, '--image', one, '--out', out, '--device', 'cpu', '--prompt', 'dot');
    expect(r.code).toBe(0);
    const mask = decodePng(new Uint8Array(readFileSync(out)));
    expect([mask.width, mask.height]).toEqual([1, 1]);
    expect([0, 255]).toContain(mask.data[0]);
  });

  it('runs on WebGPU when asked (and an adapter exists)', async () => {
    if (!(await webgpuDevice())) return;
    const out = join(outDir, 'gpu-mask.png');
    const r = await run(...withDevice('webgpu', out, '--prompt', 'a polyp'));
    expect(r.code).toBe(0);
    expect(r.out).not.toMatch(/ on cpu/);
    const mask = decodePng(new Uint8Array(readFileSync(out)));
    expect([mask.width, mask.height]).toEqual([64, 40]);
  });

  it('the binary exits 0 on success and 1 on a missing model folder', async () => {
    const exec = promisify(execFile);
    const out = join(outDir, 'bin-mask.png');
    const ok = await exec(process.execPath, [join(ROOT, 'bin/webvlsm.mjs'), ...base(out, '--prompt', 'polyp')], { cwd: ROOT });
    expect(ok.stdout).toContain(`wrote ${out} (mask, 64x40)`);
    const failed = await exec(process.execPath, [join(ROOT, 'bin/webvlsm.mjs'), 'segment', '--model', join(tmp, 'absent'), '--image', imagePath, '--out', out, '--prompt', 'x', '--device', 'cpu'], { cwd: ROOT }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((failed as { code: number }).code).toBe(1);
    expect((failed as { stderr: string }).stderr).toMatch(/cannot read the model folder/);
  });
});
