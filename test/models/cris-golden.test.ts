/**
 * The tiny CRIS golden case (CRIS.pytorch reference data, test/fixtures/cris_tiny, see its
 * SOURCES.md) through the same runner as `npm run golden`, on each test device: every recorded
 * intermediate (C3..C5, word features, sentence state, neck, decoder) and the mask logits of both
 * runs (96x96 batch 2 with a 4x4 -> 3x3 position resize, 128x128) within the manifest's
 * tolerances, with the weights loaded from `weights.pth` and from the train.py-style
 * `checkpoint_train_format.pth`; every buffer freed afterwards. Also the discovery rules for CRIS
 * cases and the CLI end to end.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverCases } from '../../src/golden/manifest.js';
import { belongsToModelCase, discoverModelCases, runModelCase } from '../../src/golden/model-cases.js';
import { failureLines } from '../../src/golden/runner.js';
import { testDevices } from '../helpers/devices.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const folder = join(root, 'test/fixtures/cris_tiny');
const cases = await discoverModelCases(folder);
const tiny = cases[0]!;

const OUTPUTS = ['visual_layer1', 'vis_c3', 'vis_c4', 'visual_layer4', 'vis_c5', 'word_features', 'text_state', 'fq_neck', 'fq_decoder', 'pred'];

it('finds the tiny CRIS case with its config, both runs and every output', () => {
  expect(cases.map((c) => [c.name, c.modelType])).toEqual([['cris_tiny', 'cris']]);
  expect(tiny.weightsPath).toBe(join(folder, 'weights.safetensors'));
  expect(Object.keys(tiny.manifest.runs)).toEqual(['img96', 'img128']);
  expect(tiny.config).toMatchObject({ word_len: 17, vis_dim: 64, fpn_in: [32, 64, 64] });
  const expected = Object.keys(tiny.manifest.tolerances).sort();
  expect(expected).toEqual(['img96', 'img128'].flatMap((r) => OUTPUTS.map((o) => `${r}.output.${o}`)).sort());
});

describe.each(await testDevices())('CRIS golden case on %s', (_name, device) => {
  it.each(['weights.pth', 'checkpoint_train_format.pth'])('every intermediate and the logits, weights from %s', async (weights) => {
    const live = device.stats().liveBuffers;
    const r = await runModelCase({ ...tiny, weightsPath: join(folder, weights) }, device);
    if (!r.ok) throw new Error(`cris_tiny (${weights}) on ${r.device} failed:\n  ${failureLines(r).join('\n  ')}`);
    expect(r.comparisons.map((x) => x.name).sort()).toEqual(Object.keys(tiny.manifest.tolerances).sort());
    // Far inside the tolerances (float32 rounding only): worst is |a - e| / (atol + rtol |e|).
    for (const x of r.comparisons) expect(x.worst, x.name).toBeLessThan(0.1);
    expect(device.stats().liveBuffers).toBe(live);
  });
});

describe('CRIS case discovery', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webvlsm-cris-golden-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds a nested case with only weights.pth, and op discovery leaves its manifest to it', async () => {
    const nested = join(dir, 'a', 'cris_pth');
    mkdirSync(nested, { recursive: true });
    for (const f of ['manifest.json', 'tensors.safetensors', 'weights.pth']) copyFileSync(join(folder, f), join(nested, f));
    const found = await discoverModelCases(dir);
    expect(found.map((c) => [c.name, c.modelType, c.weightsPath])).toEqual([['a/cris_pth', 'cris', join(nested, 'weights.pth')]]);
    const ops = await discoverCases(dir);
    expect(ops.cases).toEqual([]);
    expect(ops.skipped.length).toBe(1);
    expect(ops.skipped.every((s) => belongsToModelCase(s.path, found))).toBe(true);
  });

  it('ignores folders without weights or without a CRIS config', async () => {
    const noWeights = join(dir, 'b');
    mkdirSync(noWeights);
    for (const f of ['manifest.json', 'tensors.safetensors']) copyFileSync(join(folder, f), join(noWeights, f));
    expect(await discoverModelCases(noWeights)).toEqual([]);
    const noConfig = join(dir, 'c');
    mkdirSync(noConfig);
    for (const f of ['tensors.safetensors', 'weights.pth']) copyFileSync(join(folder, f), join(noConfig, f));
    const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8'));
    delete manifest.config;
    writeFileSync(join(noConfig, 'manifest.json'), JSON.stringify(manifest));
    expect(await discoverModelCases(noConfig)).toEqual([]);
  });
});

describe('npm run golden on the CRIS case', () => {
  it('checks every tensor and exits 0', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(
      process.execPath,
      ['--import', './scripts/register-ts.mjs', 'src/cli/golden.ts', 'test/fixtures/cris_tiny', '--device', 'cpu', '--verbose'],
      { cwd: root },
    );
    expect(stdout).toMatch(/cris_tiny\s+cpu .* PASS/);
    for (const o of OUTPUTS) expect(stdout).toMatch(new RegExp(`ok\\s+img96\\.output\\.${o}\\s`));
    expect(stdout).toMatch(/ok\s+img128\.output\.pred/);
    expect(stdout).toMatch(/1 passed, 0 failed/);
  });
});
