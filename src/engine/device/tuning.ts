/**
 * Per-adapter kernel tuning (issue #3): the fastest variant or tile size differs between lavapipe,
 * SwiftShader and real GPUs, so ops that have several candidates register a Tunable, and the
 * user-facing entry points (CLI, bench, web app) call `autotune` once after opening a device. It
 * measures each registered problem missing from the store (a short warm-up + median of a few
 * timed runs, see tuning-measure.ts), saves the table under the adapter's key, and installs it on
 * the device. Ops ask `tunedVariant(device, name, shapeClass)` on every launch (a WeakMap and two
 * Map lookups) and fall back to their own default on `undefined`: with tuning off, in tests, on the
 * bare library device and for any shape class nobody measured.
 *
 * Browser-safe: no node: imports (the file store lives in tuning-node.ts).
 */
import type { Device } from './device.js';
import { type ProblemMeasurement, measureProblem } from './tuning-measure.js';
import { TUNING_VERSION, type TuningEntry, type TuningTable, entriesMatch, parseTuningTable } from './tuning-table.js';
import { WebGpuDevice } from './webgpu.js';

export { memoryTuningStore, indexedDbTuningStore } from './tuning-stores.js';
export { TUNING_VERSION, parseTuningTable, type TuningEntry, type TuningTable } from './tuning-table.js';
export type { ProblemMeasurement } from './tuning-measure.js';

/** One problem size of a tunable: `setup` allocates its inputs once, `run` launches one candidate. */
export interface TunableProblem {
  /** What the op passes to `tunedVariant`, e.g. 'vit-b16-qkv' or 'k-large'. */
  shapeClass: string;
  setup(device: Device): { run(candidate: string): void; dispose(): void };
}

export interface Tunable {
  /** Unique, e.g. 'matmul' or 'conv2d'. */
  name: string;
  /** The variant names `tunedVariant` may return; order is the tie-break (first wins). */
  candidates: readonly string[];
  problems: TunableProblem[];
  /** Whether measuring makes sense on this device; default: WebGPU devices only. */
  applies?(device: Device): boolean;
}

/** Store of tables by adapter key: a JSON file in Node, IndexedDB or memory in browsers. */
export interface TuningStore {
  /** Where the tables live, for log lines: a path, 'memory', 'IndexedDB webvlsm-tuning'. */
  readonly where: string;
  load(adapterKey: string): Promise<TuningTable | undefined>;
  save(adapterKey: string, table: TuningTable): Promise<void>;
}

/** 'auto': measure what the store lacks; 'retune': measure everything again; 'off': measure nothing. */
export type TuningMode = 'auto' | 'retune' | 'off';

export interface AutotuneOptions {
  store: TuningStore;
  mode: TuningMode;
  /** One line per event (a skipped candidate, the summary); default: silent. */
  log?: (line: string) => void;
  /** Only these tunables are measured (others still get their cached entries installed). */
  only?: readonly string[];
  /** Timed runs per candidate after the warm-up (default 3, clamped to 1..9). */
  reps?: number;
  /** Stop repeating a problem once its timed runs took this long, after at least one (default 2000). */
  budgetMs?: number;
}

export interface AutotuneResult {
  mode: TuningMode;
  adapterKey: string;
  where: string;
  /** The table installed on the device (empty with mode 'off'). */
  table: TuningTable;
  /** What this call measured (empty when everything came from the store). */
  measured: ProblemMeasurement[];
  /** Entries that applied to this device and came from the store. */
  cached: number;
  seconds: number;
}

const registry = new Map<string, Tunable>();

/** Registers (or, for a name seen before, replaces: module reloads) a tunable; ops call it at import. */
export function registerTunable(t: Tunable): void {
  if (!t.name) throw new Error('registerTunable: a tunable needs a name');
  if (t.candidates.length === 0) throw new Error(`registerTunable: tunable '${t.name}' has no candidates`);
  const dupCandidate = t.candidates.find((c, i) => t.candidates.indexOf(c) !== i);
  if (dupCandidate !== undefined) throw new Error(`registerTunable: tunable '${t.name}' lists candidate '${dupCandidate}' twice`);
  const classes = t.problems.map((p) => p.shapeClass);
  const dupClass = classes.find((c, i) => classes.indexOf(c) !== i);
  if (dupClass !== undefined) throw new Error(`registerTunable: tunable '${t.name}' has two problems of shape class '${dupClass}'`);
  registry.set(t.name, t);
}

/** Removes a tunable (tests register fakes); true when it was registered. */
export function unregisterTunable(name: string): boolean {
  return registry.delete(name);
}

export function tunables(): Tunable[] {
  return [...registry.values()];
}

/** name -> shapeClass -> chosen candidate, per device. */
const installed = new WeakMap<Device, Map<string, Map<string, string>>>();

/** The tuned candidate for one launch, or undefined (then the op uses its default). O(1). */
export function tunedVariant(device: Device, name: string, shapeClass: string): string | undefined {
  return installed.get(device)?.get(name)?.get(shapeClass);
}

/** A tuned row count ('r16' -> 16) of `name`'s default class, or `fallback` when none is installed. */
export function tunedRows(device: Device, name: string, fallback: number): number {
  const tuned = tunedVariant(device, name, 'default');
  return tuned ? Number(tuned.slice(1)) : fallback;
}

/** Installs a table's choices on a device (null clears them); autotune calls it, tests may too. */
export function installTuning(device: Device, table: TuningTable | null): void {
  if (!table) {
    installed.delete(device);
    return;
  }
  const byName = new Map<string, Map<string, string>>();
  for (const [name, classes] of Object.entries(table.entries)) {
    const m = new Map<string, string>();
    for (const [shapeClass, entry] of Object.entries(classes)) m.set(shapeClass, entry.choice);
    byName.set(name, m);
  }
  installed.set(device, byName);
}

/** The store key of a device's adapter: vendor, architecture, device and description + TUNING_VERSION. */
export function adapterKey(device: Device): string {
  let parts: string[] = [device.description];
  if (device instanceof WebGpuDevice) {
    // GPUDevice.adapterInfo (Chrome 132+, Dawn); older browsers only have the description.
    const info = (device.gpu as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    if (info) parts = [info.vendor, info.architecture, info.device, info.description].map((p) => p || '?');
  } else {
    parts = ['cpu'];
  }
  return `${parts.join('|')}|v${TUNING_VERSION}`;
}

function defaultApplies(device: Device): boolean {
  return device.kind === 'webgpu';
}

function emptyTable(device: Device): TuningTable {
  return { version: TUNING_VERSION, adapter: device.description, entries: {} };
}

/** The store's table for `key`, checked (a bad one is logged and dropped: re-tuned, never fatal). */
async function loadTable(store: TuningStore, key: string, log: (line: string) => void): Promise<TuningTable | undefined> {
  let stored: unknown;
  try {
    stored = await store.load(key);
  } catch (err) {
    log(`tuning: could not load the cached table from ${store.where} (${(err as Error).message}); re-tuning`);
    return undefined;
  }
  if (stored === undefined) return undefined;
  const { table, problems } = parseTuningTable(stored, TUNING_VERSION);
  for (const p of problems) log(`tuning: ${store.where}: table '${key}': ${p}; re-measuring it`);
  return table;
}

/**
 * Removes entries of registered tunables whose candidate list changed since they were measured
 * (left unmeasured by `only`): their choice may name a variant that no longer exists.
 */
function dropStale(table: TuningTable): void {
  for (const t of tunables()) {
    const classes = table.entries[t.name];
    if (!classes) continue;
    for (const [shapeClass, entry] of Object.entries(classes)) if (!entriesMatch(entry, t.candidates)) delete classes[shapeClass];
  }
}

/**
 * Measures what the store lacks (every problem with 'retune'), saves and installs the table. Never
 * throws for a failing candidate or problem (logged and skipped) nor for a store that cannot load
 * or save (logged; the measured table is still installed).
 */
export async function autotune(device: Device, options: AutotuneOptions): Promise<AutotuneResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const key = adapterKey(device);
  const result: AutotuneResult = {
    mode: options.mode,
    adapterKey: key,
    where: options.store.where,
    table: emptyTable(device),
    measured: [],
    cached: 0,
    seconds: 0,
  };
  installTuning(device, null);
  const applicable = tunables().filter((t) => (t.applies ?? defaultApplies)(device));
  if (options.mode === 'off' || applicable.length === 0) return result;

  const table = emptyTable(device);
  if (options.mode === 'auto') {
    const loaded = await loadTable(options.store, key, log);
    if (loaded) table.entries = loaded.entries;
  }

  const todo: [Tunable, TunableProblem][] = [];
  for (const t of applicable) {
    if (options.only && !options.only.includes(t.name)) continue;
    for (const p of t.problems) {
      const entry = table.entries[t.name]?.[p.shapeClass];
      if (entry && entriesMatch(entry, t.candidates)) result.cached++;
      else todo.push([t, p]);
    }
  }

  if (todo.length > 0) {
    log(`tuning: measuring ${todo.length} kernel choice${todo.length === 1 ? '' : 's'} for this adapter (once: later runs use the cache)`);
    for (const [t, p] of todo) {
      const m = await measureProblem(device, t.name, t.candidates, p, { reps: options.reps, budgetMs: options.budgetMs, log });
      result.measured.push(m);
      const classes = (table.entries[t.name] ??= {});
      if (m.choice === null) {
        delete classes[p.shapeClass];
        continue;
      }
      const entry: TuningEntry = { choice: m.choice, candidates: [...t.candidates], ms: m.ms, timing: m.timing, measuredAt: new Date().toISOString() };
      if (Object.keys(m.skipped).length > 0) entry.skipped = m.skipped;
      classes[p.shapeClass] = entry;
    }
    // The profiler (WEBVLSM_PROFILE=1) would otherwise report the tuning runs as the workload's.
    if (device instanceof WebGpuDevice) await device.profiler?.report(true);
    try {
      await options.store.save(key, table);
    } catch (err) {
      log(`tuning: could not save to ${options.store.where} (${(err as Error).message}); the choices hold for this run only`);
    }
  }

  dropStale(table);
  installTuning(device, table);
  result.table = table;
  result.where = options.store.where; // a store may fall back (IndexedDB -> memory) while loading
  result.seconds = (performance.now() - started) / 1000;
  if (result.measured.length > 0) {
    const n = result.measured.filter((m) => m.choice !== null).length;
    log(`tuning: ${n} choice${n === 1 ? '' : 's'} measured in ${result.seconds.toFixed(1)} s, cached in ${options.store.where}`);
  } else if (result.cached > 0) {
    log(`tuning: cached (${options.store.where})`);
  }
  return result;
}

/** One line per entry, e.g. "matmul[vit-qkv] = sg24 (sg24 0.41 ms, tiled 0.62 ms; gpu)", for bench notes. */
export function describeTuning(table: TuningTable): string[] {
  const lines: string[] = [];
  for (const [name, classes] of Object.entries(table.entries)) {
    for (const [shapeClass, e] of Object.entries(classes)) {
      const times = Object.entries(e.ms).map(([c, ms]) => `${c} ${ms.toFixed(3)} ms`);
      lines.push(`${name}[${shapeClass}] = ${e.choice} (${times.join(', ')}; ${e.timing})`);
    }
  }
  return lines;
}
