/**
 * Maps a checkpoint onto a Module's parameters and buffers, with a report of what matched:
 *
 *   const { tensors } = await readCheckpointFile('weights.pth');
 *   const report = loadState(model, tensors);                        // strict: all keys must match
 *   loadState(decoder, tensors, { prefix: 'decoder', strict: false }); // a partial load
 *   await loadStateFromSafetensors(model, await openSafetensorsFile(p)); // streamed, one tensor at a time
 *
 * Steps, for each checkpoint key (in order):
 * 1. `prefix` (optional): keys outside `prefix.` are ignored (listed in `ignored`); the prefix is
 *    stripped from the others. `prefix: 'decoder'` and `'decoder.'` are the same.
 * 2. `rename` (optional): a function (return a new name, `null` to drop the key, `undefined` to keep
 *    it) or a table `{ old: new | null }`. Dropped keys are listed in `ignored`.
 * 3. Match against `module.stateDict()` names: `missing` (model names with no value), `unexpected`
 *    (checkpoint names the model lacks), `shapeMismatch`, `dtypeMismatch`.
 * 4. Dtype conversion to the model tensor's dtype:
 *      model f32 <- f32 (as is), f16 / bf16 (exact), f64 (rounded), integers and bool (must be
 *                   exact in f32, |v| <= 2^24)
 *      model i32 <- i32, i64 (range-checked), i16 / i8 / u8 / bool; never from a float dtype
 *    Engine Tensors in the checkpoint must already have the model's dtype and device.
 *
 * `strict` (default true) throws one LoadStateError listing every problem (missing, unexpected,
 * shape, dtype and range problems, with names and shapes). With `strict: false` missing and
 * unexpected keys are only reported; shape and dtype problems still throw unless
 * `skipMismatched: true` (then those keys are skipped and reported). Every check runs before any
 * value is written, so a failed load leaves the model untouched. Values are written in place
 * through Module.loadStateDict, one tensor at a time (converted copies are dropped as they go).
 */
import type { Module } from '../module.js';
import { Tensor } from '../tensor.js';
import type { LazySafetensors } from './safetensors-lazy.js';
import { SAFETENSORS_TO_TENSOR_DTYPE } from './safetensors-lazy.js';
import { CheckpointError, FLOAT_DTYPES, type TensorData, type TensorDType, formatShape, numelOf, toFloat32 } from './tensor-data.js';

/** A checkpoint value: host data as the readers return it (TensorData, HostTensor) or an engine Tensor. */
export type StateEntry = TensorData | Tensor;

export type StateSource = Map<string, StateEntry> | Readonly<Record<string, StateEntry>>;

export type RenameRule = ((name: string) => string | null | undefined) | Readonly<Record<string, string | null>>;

export interface LoadStateOptions {
  /** Every model tensor must get a value and every checkpoint key must be used (default true). */
  strict?: boolean;
  /** Use only the checkpoint keys under this prefix, with the prefix removed. */
  prefix?: string;
  /** Renames (or drops, with null) checkpoint keys after the prefix is removed. */
  rename?: RenameRule;
  /** Skip, instead of throwing on, keys whose shape or dtype cannot be loaded (default false). */
  skipMismatched?: boolean;
}

export interface ShapeMismatch {
  /** The model name. */
  name: string;
  /** The checkpoint key it came from (before prefix and rename). */
  key: string;
  expected: number[];
  actual: number[];
}

export interface DtypeMismatch {
  name: string;
  key: string;
  expected: 'f32' | 'i32' | 'f16';
  actual: TensorDType;
  /** Why it cannot be loaded (a float into i32, a value out of range, another device...). */
  reason: string;
}

export interface LoadStateReport {
  /** Model names that received a value. */
  loaded: string[];
  /** Model names with no value in the checkpoint, with their shapes. */
  missing: { name: string; shape: number[] }[];
  /** Checkpoint names (after prefix and rename) that the model does not have. */
  unexpected: { name: string; key: string; shape: number[]; dtype: string }[];
  shapeMismatch: ShapeMismatch[];
  dtypeMismatch: DtypeMismatch[];
  /** Loaded names whose dtype was converted (f16 -> f32, i64 -> i32, ...). */
  converted: { name: string; from: TensorDType; to: 'f32' | 'i32' }[];
  /** Checkpoint keys outside `prefix` or dropped by `rename`. */
  ignored: string[];
}

/** Thrown by a failed load; `problems` holds one line per problem, `report` the full report. */
export class LoadStateError extends Error {
  constructor(
    message: string,
    readonly problems: string[],
    readonly report: LoadStateReport,
  ) {
    super(message);
    this.name = 'LoadStateError';
  }
}

/** What the planner needs to know about a checkpoint entry before reading its data. */
interface EntryInfo {
  key: string;
  dtype: TensorDType;
  shape: readonly number[];
  tensor?: Tensor;
}

interface PlanItem {
  name: string;
  key: string;
  target: Tensor;
  entry: EntryInfo;
  /** Integer sources are converted (and range-checked) while planning. */
  ready?: Float32Array | Int32Array;
}

const F32_EXACT = 2 ** 24;

function normalizePrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  return prefix.endsWith('.') ? prefix : `${prefix}.`;
}

function applyRename(rule: RenameRule | undefined, name: string): string | null {
  if (!rule) return name;
  if (typeof rule === 'function') {
    const out = rule(name);
    return out === undefined ? name : out;
  }
  if (!Object.hasOwn(rule, name)) return name;
  return rule[name] ?? null;
}

function entryInfo(key: string, value: StateEntry): EntryInfo {
  if (value instanceof Tensor) return { key, dtype: value.dtype, shape: value.shape, tensor: value };
  return { key, dtype: value.dtype, shape: value.shape };
}

/** Integer or bool data as Int32Array (range-checked), or a reason it cannot be. */
function integersToI32(t: TensorData): Int32Array | string {
  if (t.dtype === 'i32') return t.data as Int32Array;
  if (t.dtype === 'i64') {
    const src = t.data as BigInt64Array;
    const out = new Int32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      if (v < -2147483648n || v > 2147483647n) return `i64 value ${v} at index ${i} does not fit in i32`;
      out[i] = Number(v);
    }
    return out;
  }
  const src = t.data as Int16Array | Int8Array | Uint8Array;
  return t.dtype === 'bool' ? Int32Array.from(src, (v) => (v !== 0 ? 1 : 0)) : Int32Array.from(src);
}

/** Integer or bool data as Float32Array (each value exact in f32), or a reason it cannot be. */
function integersToF32(t: TensorData): Float32Array | string {
  const out = new Float32Array(t.data.length);
  const big = t.dtype === 'i64';
  for (let i = 0; i < t.data.length; i++) {
    const raw = t.data[i]!;
    const v = big ? Number(raw as bigint) : t.dtype === 'bool' ? (raw !== 0 ? 1 : 0) : (raw as number);
    if (Math.abs(v) > F32_EXACT) return `${t.dtype} value ${String(raw)} at index ${i} is not exact in f32 (|v| > 2^24)`;
    out[i] = v;
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function entriesOf(tensors: StateSource): [string, StateEntry][] {
  return tensors instanceof Map ? [...tensors] : Object.entries(tensors);
}

function emptyReport(): LoadStateReport {
  return { loaded: [], missing: [], unexpected: [], shapeMismatch: [], dtypeMismatch: [], converted: [], ignored: [] };
}

interface Matched {
  pairs: { name: string; target: Tensor; entry: EntryInfo }[];
  report: LoadStateReport;
  /** Problems found while matching (duplicate names). */
  problems: string[];
}

/** Applies prefix and rename and matches checkpoint entries to the model's state-dict names. */
function match(module: Module, entries: EntryInfo[], options: LoadStateOptions): Matched {
  const prefix = normalizePrefix(options.prefix);
  const targets = module.stateDict();
  const report = emptyReport();
  const byName = new Map<string, EntryInfo>();
  const problems: string[] = [];
  for (const e of entries) {
    if (prefix && !e.key.startsWith(prefix)) {
      report.ignored.push(e.key);
      continue;
    }
    const name = applyRename(options.rename, e.key.slice(prefix.length));
    if (name === null) {
      report.ignored.push(e.key);
      continue;
    }
    const other = byName.get(name);
    if (other) {
      problems.push(`duplicate: checkpoint keys '${other.key}' and '${e.key}' both map to '${name}'`);
      continue;
    }
    byName.set(name, e);
  }
  for (const [name, e] of byName) {
    if (!targets.has(name)) report.unexpected.push({ name, key: e.key, shape: [...e.shape], dtype: e.dtype });
  }
  const pairs: Matched['pairs'] = [];
  for (const [name, target] of targets) {
    const entry = byName.get(name);
    if (entry) pairs.push({ name, target, entry });
    else report.missing.push({ name, shape: [...target.shape] });
  }
  return { pairs, report, problems };
}

/** Entries whose data is needed while checking (integer sources: converted and range-checked early). */
function needsDataWhileChecking(pair: Matched['pairs'][number]): boolean {
  const e = pair.entry;
  return !e.tensor && !FLOAT_DTYPES.has(e.dtype) && sameShape(e.shape, pair.target.shape);
}

/**
 * Checks shapes and dtypes of the matched pairs and throws when anything is wrong (nothing has been
 * written yet). `intData` returns the host data of integer-typed entries.
 */
function check(module: Module, matched: Matched, options: LoadStateOptions, intData: (e: EntryInfo) => TensorData): PlanItem[] {
  const strict = options.strict ?? true;
  const { report, problems } = matched;
  const items: PlanItem[] = [];
  for (const { name, target, entry: e } of matched.pairs) {
    if (!sameShape(e.shape, target.shape)) {
      report.shapeMismatch.push({ name, key: e.key, expected: [...target.shape], actual: [...e.shape] });
      continue;
    }
    const mismatch = (reason: string): void => {
      report.dtypeMismatch.push({ name, key: e.key, expected: target.dtype, actual: e.dtype, reason });
    };
    const item: PlanItem = { name, key: e.key, target, entry: e };
    if (target.dtype === 'f16') {
      mismatch('the model stores it as f16 (Module.toPrecision): load the weights at f32 precision, then convert');
      continue;
    }
    if (e.tensor) {
      if (e.tensor.dtype !== target.dtype) {
        mismatch(`the checkpoint holds an engine tensor of dtype ${e.tensor.dtype}; it is not converted`);
        continue;
      }
      if (e.tensor.device !== target.device) {
        mismatch(`the value lives on ${e.tensor.device.kind}, the model on ${target.device.kind}`);
        continue;
      }
    } else if (FLOAT_DTYPES.has(e.dtype)) {
      if (target.dtype !== 'f32') {
        mismatch(`a ${e.dtype} tensor cannot be loaded into an i32 tensor`);
        continue;
      }
    } else {
      const ready = target.dtype === 'i32' ? integersToI32(intData(e)) : integersToF32(intData(e));
      if (typeof ready === 'string') {
        mismatch(ready);
        continue;
      }
      item.ready = ready;
    }
    if (e.dtype !== target.dtype) report.converted.push({ name, from: e.dtype, to: target.dtype });
    items.push(item);
  }
  if (strict) {
    for (const m of report.missing) problems.push(`missing: '${m.name}' ${formatShape(m.shape)}`);
    for (const u of report.unexpected) {
      problems.push(`unexpected: '${u.name}' ${formatShape(u.shape)} ${u.dtype}${u.key !== u.name ? ` (checkpoint key '${u.key}')` : ''}`);
    }
  }
  if (!options.skipMismatched) {
    for (const s of report.shapeMismatch) {
      problems.push(`shape: '${s.name}' is ${formatShape(s.actual)} in the checkpoint${s.key !== s.name ? ` (key '${s.key}')` : ''}, ${formatShape(s.expected)} in the model`);
    }
    for (const d of report.dtypeMismatch) problems.push(`dtype: '${d.name}' (${d.actual} -> ${d.expected}): ${d.reason}`);
  }
  if (problems.length > 0) {
    const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    const message = `loadState(${module.constructor.name}): ${count}${strict ? '' : ' (non-strict)'}; nothing was loaded\n  ${problems.join('\n  ')}`;
    throw new LoadStateError(message, problems, report);
  }
  return items;
}

/**
 * Writes one planned value into the model (through Module.loadStateDict, in place). `floatData` is
 * the host data of a float entry (f32 is used as is, f16 / bf16 / f64 converted here).
 */
function write(module: Module, item: PlanItem, floatData: TensorData | null, report: LoadStateReport): void {
  let value: Tensor | { shape: readonly number[]; data: Float32Array | Int32Array };
  if (item.entry.tensor) value = item.entry.tensor;
  else if (item.ready) value = { shape: item.entry.shape, data: item.ready };
  else if (floatData) value = { shape: item.entry.shape, data: toFloat32(floatData, item.key).data };
  else throw new Error(`loadState: internal error: no data for '${item.key}'`);
  module.loadStateDict(new Map([[item.name, value]]), { strict: false });
  report.loaded.push(item.name);
}

function checkEntry(key: string, value: StateEntry): void {
  if (value instanceof Tensor) return;
  if (value.data.length !== numelOf(value.shape)) {
    throw new CheckpointError(`loadState: checkpoint key '${key}' has ${value.data.length} values for shape ${formatShape(value.shape)}`);
  }
}

/**
 * Loads `tensors` (name -> TensorData / HostTensor / Tensor) into `module`'s parameters and buffers.
 * Returns the report; throws a LoadStateError listing every problem (see the file header).
 */
export function loadState(module: Module, tensors: StateSource, options: LoadStateOptions = {}): LoadStateReport {
  const values = new Map(entriesOf(tensors));
  for (const [k, v] of values) checkEntry(k, v);
  const matched = match(module, [...values].map(([k, v]) => entryInfo(k, v)), options);
  const items = check(module, matched, options, (e) => values.get(e.key) as TensorData);
  for (const item of items) {
    const value = values.get(item.key)!;
    write(module, item, value instanceof Tensor ? null : value, matched.report);
  }
  return matched.report;
}

/**
 * Loads a lazily opened safetensors file into `module`, reading one tensor at a time (the whole
 * file is never in memory). Same options and report as loadState.
 */
export async function loadStateFromSafetensors(
  module: Module,
  file: LazySafetensors,
  options: LoadStateOptions = {},
): Promise<LoadStateReport> {
  const entries: EntryInfo[] = file.keys().map((key) => {
    const info = file.info(key);
    return { key, dtype: SAFETENSORS_TO_TENSOR_DTYPE[info.dtype], shape: info.shape };
  });
  const matched = match(module, entries, options);
  const early = new Map<string, TensorData>();
  for (const pair of matched.pairs) {
    if (needsDataWhileChecking(pair)) early.set(pair.entry.key, await file.tensorData(pair.entry.key));
  }
  const items = check(module, matched, options, (e) => early.get(e.key)!);
  early.clear();
  for (const item of items) write(module, item, item.ready ? null : await file.tensorData(item.key), matched.report);
  // Each tensor's bytes are dropped after its write: peak host memory is about one tensor.
  return matched.report;
}

/** One line per category, for logs and the CLI. */
export function formatLoadReport(report: LoadStateReport): string {
  const lines = [`loaded ${report.loaded.length} tensors`];
  if (report.converted.length > 0) {
    const kinds = new Map<string, number>();
    for (const c of report.converted) kinds.set(`${c.from} -> ${c.to}`, (kinds.get(`${c.from} -> ${c.to}`) ?? 0) + 1);
    lines.push(`converted ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  }
  if (report.missing.length > 0) lines.push(`missing ${report.missing.length}: ${report.missing.map((m) => m.name).join(', ')}`);
  if (report.unexpected.length > 0) lines.push(`unexpected ${report.unexpected.length}: ${report.unexpected.map((u) => u.name).join(', ')}`);
  if (report.shapeMismatch.length > 0) {
    lines.push(`skipped (shape) ${report.shapeMismatch.map((s) => `${s.name} ${formatShape(s.actual)} vs ${formatShape(s.expected)}`).join(', ')}`);
  }
  if (report.dtypeMismatch.length > 0) lines.push(`skipped (dtype) ${report.dtypeMismatch.map((d) => `${d.name}: ${d.reason}`).join(', ')}`);
  if (report.ignored.length > 0) lines.push(`ignored ${report.ignored.length} keys outside the prefix or dropped by rename`);
  return lines.join('\n');
}
