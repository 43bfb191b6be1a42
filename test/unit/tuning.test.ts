/**
 * Kernel tuning (src/engine/device/tuning*.ts): the search picks the fastest candidate, the cache
 * makes the second start measure nothing, and every failure (a throwing candidate, a shader that
 * does not compile, a corrupt or unreadable cache file) costs a log line, never the run.
 *
 * The CPU tests time plain busy-waits (wall time); the WebGPU test times a real WGSL loop of 1 vs
 * 1000 iterations per element with GPU timestamps. Fake tunables are unregistered after each test,
 * and every autotune passes `only`, so the ops' own tunables are never measured here.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import {
  type Tunable,
  TUNING_VERSION,
  adapterKey,
  autotune,
  describeTuning,
  indexedDbTuningStore,
  installTuning,
  memoryTuningStore,
  registerTunable,
  tunables,
  tunedVariant,
  unregisterTunable,
} from '../../src/engine/device/tuning.js';
import { defaultTuningPath, fileTuningStore, nodeAutotune, tuningModeFromEnv } from '../../src/engine/device/tuning-node.js';
import { requestNodeDevice } from '../../src/engine/platform/node.js';
import type { KernelSpec } from '../../src/kernels/kernel-spec.js';
import { webgpuDevice } from '../helpers/devices.js';

const NAME = 'test-fake';
const registered: string[] = [];
afterEach(() => {
  for (const n of registered.splice(0)) unregisterTunable(n);
});

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

/** A CPU tunable: candidate c busy-waits costMs[c] (or throws when it is 'broken'); counts calls. */
function fakeTunable(costMs: Record<string, number>, opts: { name?: string; setupThrows?: boolean } = {}) {
  const counts = { setup: 0, run: 0, dispose: 0 };
  const t: Tunable = {
    name: opts.name ?? NAME,
    candidates: Object.keys(costMs),
    applies: () => true,
    problems: [
      {
        shapeClass: 'small',
        setup: () => {
          counts.setup++;
          if (opts.setupThrows) throw new Error('out of fake memory');
          return {
            run: (c) => {
              counts.run++;
              if (c === 'broken') throw new Error('no such variant on this adapter');
              busyWait(costMs[c]!);
            },
            dispose: () => void counts.dispose++,
          };
        },
      },
    ],
  };
  registerTunable(t);
  registered.push(t.name);
  return counts;
}

function logger() {
  const lines: string[] = [];
  return { lines, log: (l: string) => void lines.push(l) };
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'webvlsm-tuning-'));

describe('tuning on the CPU device (wall time)', () => {
  it('picks the fastest candidate, installs it, and a new device loads it from the store without measuring', async () => {
    const counts = fakeTunable({ slow: 12, fast: 0, medium: 3 });
    const store = memoryTuningStore();
    const { lines, log } = logger();
    const device = new E.CpuDevice();
    const r = await autotune(device, { store, mode: 'auto', log, only: [NAME], reps: 3 });
    expect(r.measured).toHaveLength(1);
    const m = r.measured[0]!;
    expect(m.choice).toBe('fast');
    expect(m.timing).toBe('wall');
    expect(m.ms.slow!).toBeGreaterThan(11);
    expect(m.ms.slow!).toBeGreaterThan(m.ms.medium!);
    expect(m.ms.medium!).toBeGreaterThan(m.ms.fast!);
    // One setup, one warm-up + 3 timed runs per candidate, one dispose.
    expect(counts).toEqual({ setup: 1, run: 3 * 4, dispose: 1 });
    expect(tunedVariant(device, NAME, 'small')).toBe('fast');
    expect(tunedVariant(device, NAME, 'other')).toBeUndefined();
    expect(tunedVariant(new E.CpuDevice(), NAME, 'small')).toBeUndefined();
    expect(lines.at(-1)).toMatch(/^tuning: 1 choice measured in \d+\.\d s, cached in memory$/);

    const again = new E.CpuDevice();
    const second = logger();
    const r2 = await autotune(again, { store, mode: 'auto', log: second.log, only: [NAME] });
    expect(r2.measured).toEqual([]);
    expect(r2.cached).toBe(1);
    expect(counts.setup).toBe(1);
    expect(tunedVariant(again, NAME, 'small')).toBe('fast');
    expect(second.lines).toEqual(['tuning: cached (memory)']);
    expect(describeTuning(r2.table)[0]).toMatch(/^test-fake\[small\] = fast \(slow \d+\.\d{3} ms, fast 0\.\d{3} ms, medium \d+\.\d{3} ms; wall\)$/);
  });

  it("mode 'off' measures nothing, reads no store and clears installed choices", async () => {
    const counts = fakeTunable({ a: 0, b: 1 });
    const device = new E.CpuDevice();
    installTuning(device, { version: TUNING_VERSION, adapter: 'cpu', entries: { [NAME]: { small: { choice: 'b', candidates: ['a', 'b'], ms: {}, timing: 'wall' } } } });
    expect(tunedVariant(device, NAME, 'small')).toBe('b');
    let loads = 0;
    const store = { where: 'spy', load: async () => void loads++, save: async () => void loads++ };
    const r = await autotune(device, { store, mode: 'off', only: [NAME] });
    expect(r.measured).toEqual([]);
    expect(counts.setup).toBe(0);
    expect(loads).toBe(0);
    expect(tunedVariant(device, NAME, 'small')).toBeUndefined();
  });

  it('skips a throwing candidate and a failing setup with a logged reason', async () => {
    const ok = fakeTunable({ broken: 0, slow: 3, fast: 0 });
    const bad = fakeTunable({ a: 0 }, { name: 'test-fake-setup', setupThrows: true });
    const { lines, log } = logger();
    const device = new E.CpuDevice();
    const r = await autotune(device, { store: memoryTuningStore(), mode: 'auto', log, only: [NAME, 'test-fake-setup'], reps: 1 });
    const m = r.measured.find((x) => x.name === NAME)!;
    expect(m.choice).toBe('fast');
    expect(m.skipped).toEqual({ broken: 'no such variant on this adapter' });
    expect(Object.keys(m.ms).sort()).toEqual(['fast', 'slow']);
    expect(r.table.entries[NAME]!.small!.skipped).toEqual({ broken: 'no such variant on this adapter' });
    expect(ok.dispose).toBe(1);
    expect(bad).toEqual({ setup: 1, run: 0, dispose: 0 });
    expect(tunedVariant(device, 'test-fake-setup', 'small')).toBeUndefined();
    expect(lines).toContain("tuning: test-fake[small]: candidate 'broken' skipped: no such variant on this adapter");
    expect(lines).toContain('tuning: test-fake-setup[small]: skipped, setup failed: out of fake memory');
    expect(lines.at(-1)).toMatch(/^tuning: 1 choice measured/);
  });

  it('re-measures an entry whose candidate list changed or that is malformed, and everything with retune', async () => {
    const counts = fakeTunable({ a: 2, b: 0, c: 4 });
    const store = memoryTuningStore();
    const key = adapterKey(new E.CpuDevice());
    const stale = { choice: 'a', candidates: ['a', 'b'], ms: { a: 1, b: 2 }, timing: 'wall' as const };
    await store.save(key, { version: TUNING_VERSION, adapter: 'cpu', entries: { [NAME]: { small: stale } } });
    const r = await autotune(new E.CpuDevice(), { store, mode: 'auto', only: [NAME], reps: 1 });
    expect(r.measured.map((m) => m.choice)).toEqual(['b']);

    const { lines, log } = logger();
    await store.save(key, { version: TUNING_VERSION, adapter: 'cpu', entries: { [NAME]: { small: { choice: 7 } as never } } });
    const r2 = await autotune(new E.CpuDevice(), { store, mode: 'auto', log, only: [NAME], reps: 1 });
    expect(r2.measured).toHaveLength(1);
    expect(lines[0]).toBe(`tuning: memory: table '${key}': entries.test-fake.small: 'choice' must be a string, got 7; re-measuring it`);

    const before = counts.setup;
    const r3 = await autotune(new E.CpuDevice(), { store, mode: 'retune', only: [NAME], reps: 1 });
    expect(r3.measured).toHaveLength(1);
    expect(counts.setup).toBe(before + 1);
  });

  it('never installs a cached choice whose candidate list changed, even when `only` leaves it unmeasured', async () => {
    fakeTunable({ a: 0 });
    const counts = fakeTunable({ x: 0, y: 0 }, { name: 'test-fake-b' });
    const store = memoryTuningStore();
    const entry = (choice: string, candidates: string[]) => ({ small: { choice, candidates, ms: {}, timing: 'wall' as const } });
    const entries = { [NAME]: entry('a', ['a']), 'test-fake-b': entry('old', ['x', 'old']), 'test-fake-ghost': entry('g', ['g']) };
    await store.save(adapterKey(new E.CpuDevice()), { version: TUNING_VERSION, adapter: 'cpu', entries });
    const device = new E.CpuDevice();
    const { lines, log } = logger();
    const r = await autotune(device, { store, mode: 'auto', log, only: [NAME] });
    expect(r.measured).toEqual([]);
    expect(counts.setup).toBe(0);
    expect(tunedVariant(device, NAME, 'small')).toBe('a');
    expect(tunedVariant(device, 'test-fake-b', 'small')).toBeUndefined();
    expect(tunedVariant(device, 'test-fake-ghost', 'small')).toBe('g'); // not registered here: kept as cached
    expect(lines).toEqual(['tuning: cached (memory)']);
  });

  it('does not measure on the CPU device unless a tunable says it applies', async () => {
    const t: Tunable = { name: 'test-fake-gpu-only', candidates: ['x'], problems: [{ shapeClass: 's', setup: () => ({ run() {}, dispose() {} }) }] };
    registerTunable(t);
    registered.push(t.name);
    const r = await autotune(new E.CpuDevice(), { store: memoryTuningStore(), mode: 'auto', only: [t.name] });
    expect(r.measured).toEqual([]);
  });

  it('refuses malformed tunables with errors naming them', () => {
    expect(() => registerTunable({ name: 'x', candidates: [], problems: [] })).toThrow("tunable 'x' has no candidates");
    expect(() => registerTunable({ name: 'x', candidates: ['a', 'a'], problems: [] })).toThrow("tunable 'x' lists candidate 'a' twice");
    const p = { shapeClass: 's', setup: () => ({ run() {}, dispose() {} }) };
    expect(() => registerTunable({ name: 'x', candidates: ['a'], problems: [p, p] })).toThrow("two problems of shape class 's'");
    expect(tunables().some((t) => t.name === 'x')).toBe(false);
  });
});

describe('tuning stores', () => {
  it('memory store round-trips copies', async () => {
    const store = memoryTuningStore();
    const table = { version: TUNING_VERSION, adapter: 'a', entries: { m: { s: { choice: 'x', candidates: ['x'], ms: { x: 1 }, timing: 'gpu' as const } } } };
    await store.save('k', table);
    table.entries.m.s.choice = 'mutated';
    const back = await store.load('k');
    expect(back!.entries.m!.s!.choice).toBe('x');
    back!.adapter = 'changed';
    expect((await store.load('k'))!.adapter).toBe('a');
    expect(await store.load('other')).toBeUndefined();
  });

  it('IndexedDB store falls back to memory where there is no IndexedDB (Node)', async () => {
    const store = indexedDbTuningStore();
    expect(store.where).toBe('memory (no IndexedDB here)');
    const table = { version: TUNING_VERSION, adapter: 'a', entries: {} };
    await store.save('k', table);
    expect(await store.load('k')).toEqual(table);
  });

  it('file store: saves atomically, merges other adapters, drops old versions, and a fresh start loads it', async () => {
    const dir = tempDir();
    const path = join(dir, 'nested', 'tuning.json');
    mkdirSync(join(dir, 'nested'));
    const other = { version: TUNING_VERSION, adapter: 'other gpu', entries: {} };
    writeFileSync(path, JSON.stringify({ 'other|v1': other, 'old|v0': { version: 0, adapter: 'old', entries: {} } }));
    fakeTunable({ slow: 3, fast: 0 });
    const { lines, log } = logger();
    const device = new E.CpuDevice();
    await autotune(device, { store: fileTuningStore(path, log), mode: 'auto', log, only: [NAME], reps: 1 });
    expect(lines.at(-1)).toMatch(new RegExp(`^tuning: 1 choice measured in .* s, cached in ${path}$`));
    const saved = JSON.parse(readFileSync(path, 'utf8'));
    expect(Object.keys(saved).sort()).toEqual([adapterKey(device), 'other|v1'].sort());
    expect(saved[adapterKey(device)].entries[NAME].small.choice).toBe('fast');

    const second = logger();
    const r = await autotune(new E.CpuDevice(), { store: fileTuningStore(path, second.log), mode: 'auto', log: second.log, only: [NAME] });
    expect(r.measured).toEqual([]);
    expect(second.lines).toEqual([`tuning: cached (${path})`]);
  });

  it('file store: a corrupt file is a one-line warning naming it, then re-tuned and rewritten', async () => {
    const path = join(tempDir(), 'tuning.json');
    writeFileSync(path, '{"cpu|v1": {"version": 1, "entr');
    const counts = fakeTunable({ slow: 2, fast: 0 });
    const { lines, log } = logger();
    const r = await autotune(new E.CpuDevice(), { store: fileTuningStore(path, log), mode: 'auto', log, only: [NAME], reps: 1 });
    expect(counts.setup).toBe(1);
    expect(r.measured[0]!.choice).toBe('fast');
    expect(lines[0]).toMatch(new RegExp(`^tuning: ${path} is not valid JSON \\(.+\\); re-tuning and rewriting it$`));
    expect(JSON.parse(readFileSync(path, 'utf8'))[adapterKey(new E.CpuDevice())].entries[NAME].small.choice).toBe('fast');
  });

  it('file store: an unreadable path warns, and a failed save still leaves the choice installed', async () => {
    const path = tempDir(); // a directory: reading and renaming onto it both fail
    fakeTunable({ slow: 2, fast: 0 });
    const { lines, log } = logger();
    const device = new E.CpuDevice();
    await autotune(device, { store: fileTuningStore(path, log), mode: 'auto', log, only: [NAME], reps: 1 });
    expect(lines[0]).toBe(`tuning: cannot read ${path} (EISDIR); re-tuning`);
    expect(lines.some((l) => l.startsWith(`tuning: could not save to ${path} (`))).toBe(true);
    expect(tunedVariant(device, NAME, 'small')).toBe('fast');
  });

  it('WEBVLSM_TUNING and the cache path come from the environment', async () => {
    expect(process.env.WEBVLSM_TUNING).toBe('off'); // vitest.config.ts: CLI commands under test never tune
    expect(tuningModeFromEnv({})).toBe('auto');
    expect(tuningModeFromEnv({ WEBVLSM_TUNING: 'off' })).toBe('off');
    expect(tuningModeFromEnv({ WEBVLSM_TUNING: 'retune' })).toBe('retune');
    expect(() => tuningModeFromEnv({ WEBVLSM_TUNING: 'of' })).toThrow("WEBVLSM_TUNING='of' is not one of auto, off, retune");
    expect(defaultTuningPath({ WEBVLSM_CACHE_DIR: '/c', XDG_CACHE_HOME: '/x' })).toBe('/c/tuning.json');
    expect(defaultTuningPath({ XDG_CACHE_HOME: '/x' })).toBe('/x/webvlsm/tuning.json');
    expect(defaultTuningPath({})).toMatch(/\/\.cache\/webvlsm\/tuning\.json$/);

    const counts = fakeTunable({ a: 0 });
    const dir = tempDir();
    const off = await nodeAutotune(new E.CpuDevice(), () => {}, { env: { WEBVLSM_TUNING: 'off', WEBVLSM_CACHE_DIR: dir } });
    expect(off!.mode).toBe('off');
    expect(counts.setup).toBe(0);
    const on = await nodeAutotune(new E.CpuDevice(), () => {}, { env: { WEBVLSM_CACHE_DIR: dir } });
    expect(on!.where).toBe(join(dir, 'tuning.json'));
    expect(adapterKey(new E.CpuDevice())).toBe(`cpu|v${TUNING_VERSION}`);
  });
});

/** y[i] = x[i] pushed through `iters` rounds of sin (iters from the key, so each candidate is its own pipeline). */
const loopKernel: KernelSpec<{ n: number; iters: number; broken?: boolean }> = {
  name: 'test-loop',
  key: (p) => `test-loop:${p.iters}${p.broken ? ':broken' : ''}`,
  source: (p) => `struct U { n: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= u.n) { return; }
  var acc = x[i];
  for (var k = 0u; k < ${p.iters}u; k++) { acc = sin(acc) * 0.5 + ${p.broken ? 'undefined_name' : '0.25'}; }
  y[i] = acc;
}`,
  bindings: () => [
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'y', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => [{ u32: p.n }],
  workgroupSize: () => 64,
  dispatch: (p) => Math.ceil(p.n / 64),
  reference: (p, [x, y]) => {
    for (let i = 0; i < p.n; i++) {
      let acc = x![i]!;
      for (let k = 0; k < p.iters; k++) acc = Math.sin(acc) * 0.5 + 0.25;
      y![i] = acc;
    }
  },
};

const gpu = await webgpuDevice();

describe.skipIf(!gpu)('tuning on the WebGPU device (GPU timestamps)', () => {
  it('picks the cheap WGSL loop, skips a shader that does not compile, and a new device loads the cache', async () => {
    const device = gpu!;
    const N = 4096;
    const counts = { setup: 0, run: 0 };
    const t: Tunable = {
      name: 'test-fake-wgsl',
      candidates: ['slow', 'cheap', 'bad-wgsl'],
      problems: [
        {
          shapeClass: `n${N}`,
          setup: (d) => {
            counts.setup++;
            const x = E.Tensor.fromArray(Float32Array.from({ length: N }, (_, i) => i / N), [N], { device: d });
            const y = E.Tensor.empty([N], 'f32', d);
            return {
              run: (c) => {
                counts.run++;
                const params = { n: N, iters: c === 'slow' ? 1000 : 1, broken: c === 'bad-wgsl' };
                d.run(loopKernel, params, [x.storage, y.storage]);
              },
              dispose: () => {
                x.dispose();
                y.dispose();
              },
            };
          },
        },
      ],
    };
    registerTunable(t);
    registered.push(t.name);
    const live = device.stats().liveBuffers;
    const path = join(tempDir(), 'tuning.json');
    const { lines, log } = logger();
    const r = await autotune(device, { store: fileTuningStore(path, log), mode: 'auto', log, only: [t.name], reps: 3 });
    const m = r.measured[0]!;
    expect(m.choice).toBe('cheap');
    expect(m.timing).toBe(device.gpu.features.has('timestamp-query') ? 'gpu' : 'wall');
    expect(m.ms.slow!).toBeGreaterThan(3 * m.ms.cheap!);
    expect(Object.keys(m.skipped)).toEqual(['bad-wgsl']);
    expect(m.skipped['bad-wgsl']).toMatch(/undefined_name/); // the WGSL compiler's message, caught by an error scope
    expect(lines.some((l) => l.startsWith("tuning: test-fake-wgsl[n4096]: candidate 'bad-wgsl' skipped: "))).toBe(true);
    expect(tunedVariant(device, t.name, `n${N}`)).toBe('cheap');
    expect(device.stats().liveBuffers).toBe(live);
    expect(counts.setup).toBe(1);

    const fresh = await requestNodeDevice();
    try {
      const again = fresh.device!;
      expect(adapterKey(again)).toBe(adapterKey(device));
      const r2 = await autotune(again, { store: fileTuningStore(path, log), mode: 'auto', log, only: [t.name] });
      expect(r2.measured).toEqual([]);
      expect(counts).toEqual({ setup: 1, run: 3 + 2 * 3 });
      expect(tunedVariant(again, t.name, `n${N}`)).toBe('cheap');
    } finally {
      fresh.device?.destroy();
    }
  });
});
