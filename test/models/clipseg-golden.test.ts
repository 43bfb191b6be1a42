/**
 * The tiny CLIPSeg golden cases (HF transformers v4.30.2 reference data, test/fixtures/clipseg,
 * see test/fixtures/SOURCES.md) through the same runner as `npm run golden`, on each test device:
 * every recorded intermediate, the logits at both resolutions (pre-training size and a larger,
 * position-interpolated one), the BCE + Dice losses and every decoder gradient within the
 * manifest's tolerances; every buffer freed afterwards. Also the CLI end to end and the discovery
 * rules for model cases.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverCases } from '../../src/golden/manifest.js';
import { belongsToModelCase, discoverModelCases, runModelCase } from '../../src/golden/model-cases.js';
import { failureLines } from '../../src/golden/runner.js';
import { cpuDevice, testDevices } from '../helpers/devices.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const folder = join(root, 'test/fixtures/clipseg');
const cases = await discoverModelCases(folder);

it('finds the two tiny CLIPSeg model cases', () => {
  expect(cases.map((c) => c.name)).toEqual(['clipseg_tiny_plain', 'clipseg_tiny_refined']);
  expect(cases.every((c) => c.modelType === 'clipseg')).toBe(true);
  expect(Object.keys(cases[1]!.manifest.runs)).toEqual(['pretrain_res', 'res96']);
  expect(Object.keys(cases[0]!.manifest.runs)).toEqual(['pretrain_res', 'res80']);
});

describe.each(await testDevices())('CLIPSeg golden cases on %s', (_name, device) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_case, c) => {
    const live = device.stats().liveBuffers;
    const r = await runModelCase(c, device);
    if (!r.ok) throw new Error(`${c.name} on ${r.device} failed:\n  ${failureLines(r).join('\n  ')}`);
    const expected = Object.keys(c.manifest.tolerances);
    expect(r.comparisons.map((x) => x.name).sort()).toEqual([...expected].sort());
    // Both resolutions' logits and the decoder gradients are among them.
    expect(expected.filter((n) => n.endsWith('.output.logits'))).toHaveLength(2);
    expect(expected.filter((n) => n.startsWith('pretrain_res.grad.decoder.')).length).toBeGreaterThan(50);
    expect(device.stats().liveBuffers).toBe(live);
  });
});

describe('model-case discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webvlsm-model-golden-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds cases nested anywhere, and op discovery leaves their files to it', async () => {
    cpSync(join(folder, 'clipseg_tiny_plain'), join(dir, 'a', 'b', 'tiny'), { recursive: true });
    const found = await discoverModelCases(dir);
    expect(found.map((c) => c.name)).toEqual(['a/b/tiny']);
    const ops = await discoverCases(dir);
    expect(ops.cases).toEqual([]);
    expect(ops.skipped.every((s) => belongsToModelCase(s.path, found))).toBe(true);
  });

  it('fails an unknown model type and a manifest without tolerances clearly', async () => {
    const odd = join(dir, 'odd');
    cpSync(join(folder, 'clipseg_tiny_plain'), odd, { recursive: true });
    writeFileSync(join(odd, 'config.json'), JSON.stringify({ model_type: 'sam' }));
    const [c] = (await discoverModelCases(dir)).filter((x) => x.name === 'odd');
    const r = await runModelCase(c!, cpuDevice);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/no golden model runner for model_type 'sam'/);
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    for (const f of ['config.json', 'weights.safetensors', 'tensors.safetensors']) cpSync(join(folder, 'clipseg_tiny_plain', f), join(broken, f));
    writeFileSync(join(broken, 'manifest.json'), JSON.stringify({ tensors: {}, tolerances: {} }));
    await expect(discoverModelCases(broken)).rejects.toThrow(/broken\/manifest.json: 'tolerances' must be a non-empty object/);
  });
});

describe('npm run golden on model cases', () => {
  it('runs both cases and exits 0', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(
      process.execPath,
      ['--import', './scripts/register-ts.mjs', 'src/cli/golden.ts', 'test/fixtures/clipseg', '--device', 'cpu', '--verbose'],
      { cwd: root },
    );
    expect(stdout).toMatch(/clipseg_tiny_plain\s+cpu .* PASS/);
    expect(stdout).toMatch(/clipseg_tiny_refined\s+cpu .* PASS/);
    expect(stdout).toMatch(/ok\s+res96\.output\.logits/);
    expect(stdout).toMatch(/2 passed, 0 failed/);
  });
});
