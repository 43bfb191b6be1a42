/**
 * Every golden PyTorch op case in test/fixtures/golden/ops (copied from the shared fixtures, see
 * test/fixtures/SOURCES.md), through the same runner as `npm run golden`, on each test device:
 * one test per case and device, asserting that every expected tensor is within tolerance and that
 * the case freed every buffer it allocated. Also checks the runner's own rules (comparison,
 * discovery, unknown ops).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { compareTensor } from '../src/golden/compare.js';
import { discoverCases } from '../src/golden/manifest.js';
import { failureLines, runCase } from '../src/golden/runner.js';
import { cpuDevice, testDevices } from './helpers/devices.js';

const folder = fileURLToPath(new URL('./fixtures/golden/ops', import.meta.url));
const { cases } = await discoverCases(folder);

it('finds all 61 golden op cases', () => {
  expect(cases.length).toBe(61);
});

describe.each(await testDevices())('golden ops on %s', (_name, device) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_case, c) => {
    const live = device.stats().liveBuffers;
    const r = await runCase(c, device);
    if (!r.ok) throw new Error(`${c.name} on ${r.device} failed:\n  ${failureLines(r).join('\n  ')}`);
    expect(r.comparisons.length).toBe(Object.keys(c.manifest.tolerances).length);
    // Everything the case allocated (inputs, activations, saved tensors, gradients) was freed.
    expect(device.stats().liveBuffers).toBe(live);
  });
});

describe('golden runner rules', () => {
  it('compares with |a - e| <= atol + rtol * |e|, exactly at the bound', () => {
    expect(compareTensor('t', [1.5], [1], 0.25, 0.25).ok).toBe(true);
    const r = compareTensor('t', [1.5, 2], [1, 2], 0.25, 0.2);
    expect(r.ok).toBe(false);
    expect(r.mismatches).toBe(1);
    expect(r.maxAbs).toBe(0.5);
    expect(r.maxRel).toBe(0.5);
    expect(r.firstMismatches).toEqual(['[0] got 1.5, expected 1']);
  });

  it('requires non-finite expected values to match exactly, and never accepts NaN for a number', () => {
    expect(compareTensor('t', [-Infinity, NaN], [-Infinity, NaN], 0, 0).ok).toBe(true);
    expect(compareTensor('t', [-3e38], [-Infinity], 1, 1).ok).toBe(false);
    expect(compareTensor('t', [Infinity], [-Infinity], 1, 1).ok).toBe(false);
    const nan = compareTensor('t', [NaN], [0], 1, 1);
    expect(nan.ok).toBe(false);
    expect(nan.maxAbs).toBe(Infinity);
    expect(compareTensor('t', [1, 2], [1], 1, 1).firstMismatches).toEqual(['got 2 values, expected 1']);
  });

  describe('on a scratch folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'webvlsm-golden-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('skips non-case JSON, names nested cases by path, and fails unknown ops clearly', async () => {
      mkdirSync(join(dir, 'nested'));
      for (const ext of ['json', 'safetensors']) {
        copyFileSync(join(folder, `act_relu.${ext}`), join(dir, 'nested', `act_relu.${ext}`));
      }
      const manifest = JSON.parse(readFileSync(join(folder, 'act_relu.json'), 'utf8'));
      manifest.op = 'relu6';
      writeFileSync(join(dir, 'weird.json'), JSON.stringify(manifest));
      copyFileSync(join(folder, 'act_relu.safetensors'), join(dir, 'act_relu.safetensors'));
      writeFileSync(join(dir, 'config.json'), '{"hidden": 64}');
      const found = await discoverCases(dir);
      expect(found.cases.map((c) => c.name)).toEqual(['nested/act_relu', 'weird']);
      expect(found.skipped.map((s) => s.path)).toEqual([join(dir, 'config.json')]);
      const ok = await runCase(found.cases[0]!, cpuDevice);
      expect(ok.ok).toBe(true);
      const bad = await runCase(found.cases[1]!, cpuDevice);
      expect(bad.ok).toBe(false);
      expect(bad.error).toMatch(/unknown op 'relu6' in .*weird\.json \(no golden adapter; known: .*relu/);
    });

    it('refuses a missing folder and a manifest without its tensors file', async () => {
      await expect(discoverCases(join(dir, 'absent'))).rejects.toThrow(/folder '.*absent' does not exist/);
      const lonely = join(dir, 'lonely');
      mkdirSync(lonely);
      writeFileSync(join(lonely, 'x.json'), readFileSync(join(folder, 'act_relu.json')));
      await expect(discoverCases(lonely)).rejects.toThrow(/tensors_file 'act_relu.safetensors' not found next to it/);
    });
  });
});
