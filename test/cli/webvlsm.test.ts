import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo, Command } from '../../src/cli/commands/command.js';
import { COMMANDS, main } from '../../src/cli/webvlsm.js';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { serializeSafetensors } from '../../src/engine/io/safetensors.js';
import { type TensorData, tensorsBitEqual } from '../../src/engine/io/tensor-data.js';
import { CRIS_TINY_DIR, crisTiny } from '../io/helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-cli-'));
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

const fixture = (name: string) => CRIS_TINY_DIR + name;

/** The state dict each fixture holds, read by the library (the reference for the CLI). */
function reference(name: string): Map<string, TensorData> {
  return readCheckpoint(crisTiny(name), name).tensors;
}

function expectBitEqual(actual: Map<string, TensorData>, expected: Map<string, TensorData>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [k, t] of expected) expect(tensorsBitEqual(actual.get(k)!, t), k).toBe(true);
}

function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.tmp'));
}

describe('webvlsm inspect', () => {
  const cases: [string, number, string][] = [
    ['weights.pth', 302, 'torch-zip'],
    ['weights.safetensors', 302, 'safetensors'],
    ['checkpoint_train_format.pth', 302, 'torch-zip'],
    ['proj_legacy_format.pth', 16, 'torch-legacy'],
    ['proj_legacy_format.reference.safetensors', 16, 'safetensors'],
  ];

  it.each(cases)('%s: format, key count and every key\'s dtype and shape', async (name, count, format) => {
    const r = await run('inspect', fixture(name));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`format: ${format}\n`);
    expect(r.out).toContain(`tensors: ${count}\n`);
    expect(r.out).toContain(`keys (${count}):\n`);
    const ref = reference(name);
    expect(ref.size).toBe(count);
    const lines = r.out.split('\n');
    for (const [k, t] of ref) {
      const line = lines.find((l) => l.trimStart().startsWith(`${k} `));
      expect(line, k).toBeDefined();
      expect(line!.trim().split(/\s+/).slice(1).join(' ')).toBe(`${t.dtype} [${t.shape.join(', ')}]`);
    }
  });

  it('--json gives the same facts; parameter counts match the fixture manifest', async () => {
    const r = await run('inspect', fixture('checkpoint_train_format.pth'), '--json');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.format).toBe('torch-zip');
    expect(json.tensors).toBe(302);
    expect(json.keys).toHaveLength(302);
    expect(json.parameters).toBe(718916); // shared/fixtures/golden/cris/cris_tiny/manifest.json num_parameters
    expect(json.byDtype.i64.tensors).toBe(35);
    expect(json.report).toEqual([
      "took entry 'state_dict' of the checkpoint dict (skipped epoch, cur_iou, best_iou, prec)",
      "stripped prefix 'module.' from 302 keys",
    ]);
    expect(json.metadata).toEqual({ epoch: 7, cur_iou: 0.25, best_iou: 0.5 });
    const ref = reference('checkpoint_train_format.pth');
    expect(json.keys[0]).toEqual({ name: [...ref.keys()][0], dtype: 'f32', shape: [...ref.values().next().value!.shape] });
  });

  it.each(['clipseg_tiny_refined', 'clipseg_tiny_plain'])('the %s golden weights: key count, shapes and parameter count', async (name) => {
    const dir = join(ROOT, 'test/fixtures/clipseg', name);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { num_parameters: number };
    const bytes = readFileSync(join(dir, 'weights.safetensors'));
    // The header, read here independently of the library: 8-byte length, then JSON.
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, { shape: number[] }>;
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    const r = await run('inspect', join(dir, 'weights.safetensors'), '--json');
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out) as { tensors: number; parameters: number; keys: { name: string; shape: number[] }[] };
    expect(json.tensors).toBe(names.length);
    expect(json.parameters).toBe(manifest.num_parameters);
    for (const k of json.keys) expect(k.shape, k.name).toEqual(header[k.name]!.shape);
  });

  it('inspects a Hugging Face model folder', async () => {
    const dir = join(tmp, 'hf');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'clipseg' }));
    copyFileSync(fixture('proj_legacy_format.reference.safetensors'), join(dir, 'model.safetensors'));
    const r = await run('inspect', dir);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`folder: ${dir}\n`);
    expect(r.out).toContain('(model_type clipseg)');
    expect(r.out).toContain('tensors: 16\n');
  });
});

describe('webvlsm convert', () => {
  it.each(['weights.pth', 'checkpoint_train_format.pth', 'proj_legacy_format.pth'])(
    '%s -> safetensors -> read back is bit-exact',
    async (name) => {
      const out = join(tmp, `${name}.safetensors`);
      const r = await run('convert', fixture(name), out);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^wrote ${out}: \\d+ tensors`));
      const back = readCheckpoint(new Uint8Array(readFileSync(out)), out);
      expect(back.format).toBe('safetensors');
      expectBitEqual(back.tensors, reference(name));
      expect(tempFiles(tmp)).toEqual([]);
    },
  );

  it('the converted files match the shared reference safetensors', () => {
    expectBitEqual(readCheckpoint(new Uint8Array(readFileSync(join(tmp, 'proj_legacy_format.pth.safetensors'))), 'a').tensors, reference('proj_legacy_format.reference.safetensors'));
    expectBitEqual(readCheckpoint(new Uint8Array(readFileSync(join(tmp, 'checkpoint_train_format.pth.safetensors'))), 'b').tensors, reference('weights.safetensors'));
    const meta = readCheckpoint(new Uint8Array(readFileSync(join(tmp, 'checkpoint_train_format.pth.safetensors'))), 'b').metadata;
    expect(meta).toEqual({ epoch: '7', cur_iou: '0.25', best_iou: '0.5', format: 'pt', 'webvlsm.source_format': 'torch-zip' });
  });

  it('--float32 widens f16 tensors', async () => {
    const input = join(tmp, 'half.safetensors');
    writeFileSync(input, serializeSafetensors({ h: { dtype: 'F16', shape: [2], data: [0.5, -3] } }));
    const out = join(tmp, 'half-f32.safetensors');
    expect((await run('convert', input, out, '--float32')).code).toBe(0);
    const t = readCheckpoint(new Uint8Array(readFileSync(out)), out).tensors.get('h')!;
    expect(t.dtype).toBe('f32');
    expect(Array.from(t.data as Float32Array)).toEqual([0.5, -3]);
  });

  it('never overwrites the input, even through a link; replaces an output only with --force', async () => {
    const input = join(tmp, 'in.safetensors');
    copyFileSync(fixture('proj_legacy_format.reference.safetensors'), input);
    const before = readFileSync(input);
    const same = await run('convert', input, input);
    expect(same.code).toBe(1);
    expect(same.err).toBe(`webvlsm convert: ${input}: refusing to overwrite the input file ${input}; choose another output path\n`);
    const hard = join(tmp, 'hard.safetensors');
    linkSync(input, hard);
    const sym = join(tmp, 'sym.safetensors');
    symlinkSync(input, sym);
    for (const alias of [hard, sym]) {
      const r = await run('convert', input, alias, '--force');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/refusing to overwrite the input file/);
    }
    expect(readFileSync(input).equals(before)).toBe(true);
    const out = join(tmp, 'exists.safetensors');
    writeFileSync(out, 'old');
    const refused = await run('convert', input, out);
    expect(refused.code).toBe(1);
    expect(refused.err).toBe(`webvlsm convert: ${out}: already exists; pass --force to replace it\n`);
    expect(readFileSync(out, 'utf8')).toBe('old');
    expect((await run('convert', input, out, '--force')).code).toBe(0);
    expect(readFileSync(out).equals(before)).toBe(false); // new header metadata, same tensors
    expectBitEqual(readCheckpoint(new Uint8Array(readFileSync(out)), out).tensors, reference('proj_legacy_format.reference.safetensors'));
  });

  it('usage errors exit 2; unreadable and corrupt inputs exit 1 and leave no output', async () => {
    const out = join(tmp, 'never.safetensors');
    const wrongExt = await run('convert', fixture('weights.pth'), join(tmp, 'x.pth'));
    expect(wrongExt.code).toBe(2);
    expect(wrongExt.err).toMatch(/^webvlsm convert: the output must be a \.safetensors file/);
    expect((await run('convert', fixture('weights.pth'))).code).toBe(2);
    const missing = await run('convert', join(tmp, 'missing.pth'), out);
    expect(missing.code).toBe(1);
    expect(missing.err).toBe(`webvlsm convert: ${join(tmp, 'missing.pth')}: no such file or folder\n`);
    const corrupt = join(tmp, 'corrupt.pth');
    const bytes = crisTiny('weights.pth');
    writeFileSync(corrupt, bytes.subarray(0, bytes.length >> 1));
    const bad = await run('convert', corrupt, out);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(new RegExp(`^webvlsm convert: ${corrupt}: .*(truncated|corrupt)`));
    expect(existsSync(out)).toBe(false);
    expect(tempFiles(tmp)).toEqual([]);
  });
});

describe('webvlsm dispatcher', () => {
  it('--help, help <command>, <command> --help and --version exit 0', async () => {
    const help = await run('--help');
    expect(help.code).toBe(0);
    for (const c of COMMANDS) expect(help.out).toContain(`  ${c.name}  `);
    expect((await run('help', 'convert')).out).toMatch(/^usage: webvlsm convert <in> <out\.safetensors>/);
    expect((await run('inspect', '--help')).out).toMatch(/^usage: webvlsm inspect <file\|folder>/);
    expect((await run('--version')).out).toMatch(/^webvlsm \d+\.\d+\.\d+\n$/);
  });

  it('no command, an unknown command or option exit 2 with the usage', async () => {
    const none = await run();
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/^usage: webvlsm <command>/);
    const unknown = await run('segmnet', 'x');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/^webvlsm: unknown command 'segmnet'\n\nusage: webvlsm <command>/);
    expect((await run('--frob')).err).toMatch(/^webvlsm: unknown option '--frob'/);
    const badOption = await run('inspect', fixture('weights.pth'), '--frob');
    expect(badOption.code).toBe(2);
    expect(badOption.err).toMatch(/^webvlsm inspect: Unknown option '--frob'.*\nrun 'webvlsm inspect --help' for usage\n$/s);
  });

  it('missing and corrupt files exit 1 with the path and the cause', async () => {
    const missing = await run('inspect', join(tmp, 'nope.pth'));
    expect(missing).toEqual({ code: 1, out: '', err: `webvlsm inspect: ${join(tmp, 'nope.pth')}: no such file or folder\n` });
    const html = join(tmp, 'page.safetensors');
    writeFileSync(html, '<!DOCTYPE html><html>404</html>');
    expect((await run('inspect', html)).err).toMatch(/page\.safetensors: not a checkpoint this reader knows: it looks like an HTML\/XML page/);
    const flipped = crisTiny('weights.safetensors').slice();
    flipped[8] = 0x5b; // '[' instead of '{'
    const path = join(tmp, 'flipped.safetensors');
    writeFileSync(path, flipped);
    const r = await run('inspect', path);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^webvlsm inspect: .*flipped\.safetensors: /);
  });

  it('takes extra commands (how `segment` will plug in)', async () => {
    const echo: Command = {
      name: 'echo',
      summary: 'prints its arguments',
      help: 'usage: webvlsm echo <words>',
      async run(args, io) {
        io.out(`${args.join(' ')}\n`);
        return 0;
      },
    };
    let out = '';
    const io: CliIo = { out: (t) => void (out += t), err: () => undefined };
    expect(await main(['echo', 'a', 'b'], io, [...COMMANDS, echo])).toBe(0);
    expect(out).toBe('a b\n');
  });
});

describe('the webvlsm binary', () => {
  const exec = promisify(execFile);

  async function bin(...args: string[]): Promise<Run> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [join(ROOT, 'bin/webvlsm.mjs'), ...args], { cwd: ROOT });
      return { code: 0, out: stdout, err: stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout, err: e.stderr };
    }
  }

  it('exits 0 / 1 / 2 with the messages of main()', async () => {
    const help = await bin('--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^usage: webvlsm <command>/);
    const inspect = await bin('inspect', 'test/fixtures/cris_tiny/proj_legacy_format.pth');
    expect(inspect.code).toBe(0);
    expect(inspect.out).toContain('tensors: 16\n');
    const missing = await bin('inspect', 'no/such/file.pth');
    expect(missing).toEqual({ code: 1, out: '', err: 'webvlsm inspect: no/such/file.pth: no such file or folder\n' });
    expect((await bin('frobnicate')).code).toBe(2);
  });

  it('package.json names it as the bin, so `npx webvlsm` runs it from the repository', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin).toEqual({ webvlsm: 'bin/webvlsm.mjs' });
    const npx = await exec('npx', ['--offline', 'webvlsm', '--version'], { cwd: ROOT }).catch((e: { stdout: string }) => e);
    expect(npx.stdout).toBe(`webvlsm ${pkg.version}\n`);
  });
});

describe('weights/manifest.json', () => {
  it('is well-formed: unique names, known formats, sha256 only as 64 hex digits', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'weights/manifest.json'), 'utf8'));
    const names = manifest.checkpoints.map((c: { name: string }) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of manifest.checkpoints) {
      expect(['safetensors', 'torch-zip', 'torch-legacy', 'torchscript'], c.name).toContain(c.format);
      expect(typeof c.file, c.name).toBe('string');
      expect(c.sha256 === null || /^[0-9a-f]{64}$/.test(c.sha256), c.name).toBe(true);
      expect(c.expectedParameters === null || Number.isSafeInteger(c.expectedParameters), c.name).toBe(true);
      expect(typeof c.download, c.name).toBe('string');
      // OpenAI publishes the sha256 as a component of the download URL.
      if (c.sha256) expect(c.source.url, c.name).toContain(`/${c.sha256}/`);
    }
  });
});
