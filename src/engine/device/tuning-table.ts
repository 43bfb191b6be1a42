/**
 * The tuning table of one adapter, as stores keep it (JSON in a file, a structured clone in
 * IndexedDB), and its validation: whatever a store hands back is checked field by field, since a
 * hand-edited or half-written cache must cost a re-tune, never a crash or a bogus choice.
 */

/**
 * Bump when kernels change in a way that invalidates measured choices: it is part of every adapter
 * key, so old tables are never looked up again (and the file store drops them on its next save).
 */
export const TUNING_VERSION = 2;

export interface TuningEntry {
  /** The fastest candidate. */
  choice: string;
  /** The candidate list it was chosen from: a registrant that changes it gets a re-measure. */
  candidates: string[];
  /** Median time per candidate that ran (skipped ones are absent). */
  ms: Record<string, number>;
  /** 'gpu': GPU timestamps around the runs; 'wall': launch to finished work. */
  timing: 'gpu' | 'wall';
  /** Candidates that failed, with the reason. */
  skipped?: Record<string, string>;
  /** ISO date of the measurement. */
  measuredAt?: string;
}

export interface TuningTable {
  /** TUNING_VERSION when measured. */
  version: number;
  /** Human-readable adapter description (the store key is adapterKey(device)). */
  adapter: string;
  /** tunable name -> shape class -> entry. */
  entries: Record<string, Record<string, TuningEntry>>;
}

/** True when the entry was measured over exactly these candidates and chose one of them. */
export function entriesMatch(entry: TuningEntry, candidates: readonly string[]): boolean {
  if (entry.candidates.length !== candidates.length) return false;
  const set = new Set(candidates);
  return entry.candidates.every((c) => set.has(c)) && set.has(entry.choice);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** Why `v` is not a TuningEntry, or null when it is one. */
function entryProblem(v: unknown): string | null {
  if (!isObject(v)) return `expected an object, got ${show(v)}`;
  if (typeof v.choice !== 'string') return `'choice' must be a string, got ${show(v.choice)}`;
  if (!Array.isArray(v.candidates) || !v.candidates.every((c) => typeof c === 'string')) {
    return `'candidates' must be an array of strings, got ${show(v.candidates)}`;
  }
  if (!isObject(v.ms) || !Object.values(v.ms).every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return `'ms' must map candidates to finite numbers, got ${show(v.ms)}`;
  }
  if (v.timing !== 'gpu' && v.timing !== 'wall') return `'timing' must be 'gpu' or 'wall', got ${show(v.timing)}`;
  if (v.skipped !== undefined && (!isObject(v.skipped) || !Object.values(v.skipped).every((x) => typeof x === 'string'))) {
    return `'skipped' must map candidates to strings, got ${show(v.skipped)}`;
  }
  return null;
}

/**
 * Checks a stored value. `table` is undefined when its outer shape is wrong (then the whole
 * adapter is re-tuned); a bad entry is dropped (re-measured) and listed in `problems` with its path.
 */
export function parseTuningTable(value: unknown, expectedVersion: number): { table?: TuningTable; problems: string[] } {
  if (!isObject(value)) return { problems: [`expected a table object, got ${show(value)}`] };
  if (value.version !== expectedVersion) return { problems: [`'version' is ${show(value.version)}, expected ${expectedVersion}`] };
  if (!isObject(value.entries)) return { problems: [`'entries' must be an object, got ${show(value.entries)}`] };
  const problems: string[] = [];
  const entries: TuningTable['entries'] = {};
  for (const [name, classes] of Object.entries(value.entries)) {
    if (!isObject(classes)) {
      problems.push(`entries.${name}: expected an object of shape classes, got ${show(classes)}`);
      continue;
    }
    const kept: Record<string, TuningEntry> = {};
    for (const [shapeClass, entry] of Object.entries(classes)) {
      const problem = entryProblem(entry);
      if (problem) problems.push(`entries.${name}.${shapeClass}: ${problem}`);
      else kept[shapeClass] = entry as unknown as TuningEntry;
    }
    entries[name] = kept;
  }
  const adapter = typeof value.adapter === 'string' ? value.adapter : '?';
  return { table: { version: expectedVersion, adapter, entries }, problems };
}
