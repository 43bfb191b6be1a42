/**
 * Node side of kernel tuning: the cache file and the call the Node entry points make after opening
 * a device (src/cli/gpu.ts, bench/run.ts).
 *
 * The file is JSON, `{ "<adapter key>": <TuningTable>, ... }`, at $WEBVLSM_CACHE_DIR/tuning.json
 * (default $XDG_CACHE_HOME/webvlsm, else ~/.cache/webvlsm). It is written atomically (a temporary
 * file, then rename) and merged with the other adapters' tables already in it. A missing file is a
 * first run; an unreadable or corrupt one gets a one-line warning naming it and is re-tuned (and
 * rewritten), never a crash.
 *
 * WEBVLSM_TUNING: unset/'auto' = measure what the file lacks; 'off' = measure nothing, ops use their
 * defaults; 'retune' = measure everything again.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Device } from './device.js';
import { type AutotuneResult, type TuningMode, type TuningStore, autotune } from './tuning.js';
import { TUNING_VERSION, type TuningTable } from './tuning-table.js';

type Env = Record<string, string | undefined>;

/** $WEBVLSM_CACHE_DIR/tuning.json, else $XDG_CACHE_HOME/webvlsm/tuning.json, else ~/.cache/webvlsm/tuning.json. */
export function defaultTuningPath(env: Env = process.env): string {
  const dir = env.WEBVLSM_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'webvlsm');
  return join(dir, 'tuning.json');
}

/** The mode WEBVLSM_TUNING asks for; any other value is an error naming it. */
export function tuningModeFromEnv(env: Env = process.env): TuningMode {
  const v = (env.WEBVLSM_TUNING ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto' || v === 'on' || v === '1') return 'auto';
  if (v === 'off' || v === '0') return 'off';
  if (v === 'retune') return 'retune';
  throw new Error(`WEBVLSM_TUNING='${env.WEBVLSM_TUNING}' is not one of auto, off, retune`);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The file's top-level object; undefined (with `warn`) when it is unreadable or not such JSON. */
async function readTables(path: string, warn: ((line: string) => void) | null): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT') warn?.(`tuning: cannot read ${path} (${e.code ?? e.message}); re-tuning`);
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    warn?.(`tuning: ${path} is not valid JSON (${(err as Error).message}); re-tuning and rewriting it`);
    return undefined;
  }
  if (!isObject(value)) {
    warn?.(`tuning: ${path} does not hold an object of tables by adapter; re-tuning and rewriting it`);
    return undefined;
  }
  return value;
}

/** The JSON tuning cache at `path` (default: defaultTuningPath()); problems go to `warn` as one line each. */
export function fileTuningStore(path = defaultTuningPath(), warn: (line: string) => void = (l) => console.error(l)): TuningStore {
  return {
    where: path,
    async load(key) {
      const tables = await readTables(path, warn);
      return tables?.[key] as TuningTable | undefined;
    },
    async save(key, table) {
      // Merge with the other adapters' tables; tables of an older TUNING_VERSION are dropped.
      const old = (await readTables(path, null)) ?? {};
      const tables: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(old)) if (isObject(v) && v.version === TUNING_VERSION) tables[k] = v;
      tables[key] = table;
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.tmp-${process.pid}`;
      try {
        await writeFile(tmp, `${JSON.stringify(tables, null, 2)}\n`);
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    },
  };
}

/**
 * What the Node entry points call once they hold a device: tunes per WEBVLSM_TUNING with the file
 * cache, logging through `log` ("tuning: N choices measured in X s, cached in <path>" or "tuning:
 * cached (<path>)"). A failure of tuning itself is logged and leaves the ops on their defaults.
 */
export async function nodeAutotune(
  device: Device,
  log: (line: string) => void = (l) => console.error(l),
  options: { path?: string; env?: Env } = {},
): Promise<AutotuneResult | null> {
  const mode = tuningModeFromEnv(options.env);
  try {
    return await autotune(device, { store: fileTuningStore(options.path ?? defaultTuningPath(options.env), log), mode, log });
  } catch (err) {
    log(`tuning: failed (${(err as Error).message}); kernels use their defaults`);
    return null;
  }
}
