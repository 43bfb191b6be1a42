/**
 * Loading HF CLIPSeg checkpoints (`model.safetensors`, HF key names; docs/architectures.md §1.9)
 * into a model, one tensor at a time (a 600 MB file is never converted all at once).
 *
 * Key rules: `clipseg.` is accepted as an alias of the `clip.` prefix (the stale name written by
 * transformers' conversion script); the int64 `*.position_ids` buffers are ignored; with `strict`
 * (the default) every model key must be present and no other key may be, and every shape must
 * match. All checks run before anything is written.
 */
import type { Module, Tensor } from '../../engine/index.js';

/** What is read from a weights file: a parsed SafetensorsFile fits, as does mapSource(...). */
export interface WeightSource {
  keys(): string[];
  info(name: string): { readonly shape: readonly number[] };
  get(name: string, options?: { as?: 'f32' | 'i32' }): { readonly shape: readonly number[]; readonly data: Float32Array | Int32Array };
}

export interface LoadWeightsOptions {
  /** Missing or unexpected keys are errors (default true). */
  strict?: boolean;
}

export interface LoadWeightsReport {
  /** Model keys written. */
  loaded: string[];
  /** File keys skipped on purpose (position_ids buffers). */
  ignored: string[];
  /** Model keys the file lacks (only when not strict). */
  missing: string[];
  /** File keys the model does not have (only when not strict). */
  unexpected: string[];
}

const IGNORED = /(^|\.)position_ids$/;

function listNames(names: string[], max = 8): string {
  const shown = names.slice(0, max).map((n) => `'${n}'`).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** The model key a file key names ('clipseg.' read as 'clip.'). */
export function canonicalKey(key: string): string {
  return key.startsWith('clipseg.') ? `clip.${key.slice('clipseg.'.length)}` : key;
}

/** A WeightSource over host tensors by name (tests, converted checkpoints). */
export function mapSource(entries: Map<string, { shape: readonly number[]; data: Float32Array | Int32Array }>): WeightSource {
  return {
    keys: () => [...entries.keys()],
    info: (name) => {
      const e = entries.get(name);
      if (!e) throw new Error(`no tensor named '${name}'`);
      return e;
    },
    get: (name, options) => {
      const e = entries.get(name);
      if (!e) throw new Error(`no tensor named '${name}'`);
      if (options?.as === 'f32' && !(e.data instanceof Float32Array)) return { shape: e.shape, data: Float32Array.from(e.data) };
      return e;
    },
  };
}

/** Copies the weights of `source` into `model` (names as in `model.stateDict()`). */
export function loadWeights(model: Module, source: WeightSource, options: LoadWeightsOptions = {}, what = 'weights'): LoadWeightsReport {
  const strict = options.strict ?? true;
  const targets: Map<string, Tensor> = model.stateDict();
  const fileKeyOf = new Map<string, string>();
  const ignored: string[] = [];
  const unexpected: string[] = [];
  const problems: string[] = [];
  for (const key of source.keys()) {
    const name = canonicalKey(key);
    if (IGNORED.test(name) && !targets.has(name)) {
      ignored.push(key);
    } else if (!targets.has(name)) {
      unexpected.push(key);
    } else if (fileKeyOf.has(name)) {
      problems.push(`'${key}' and '${fileKeyOf.get(name)}' both name '${name}'`);
    } else {
      fileKeyOf.set(name, key);
    }
  }
  const missing = [...targets.keys()].filter((k) => !fileKeyOf.has(k));
  if (strict && missing.length > 0) problems.push(`missing keys: ${listNames(missing)}`);
  if (strict && unexpected.length > 0) problems.push(`unexpected keys: ${listNames(unexpected)}`);
  for (const [name, key] of fileKeyOf) {
    const shape = source.info(key).shape;
    const target = targets.get(name)!;
    if (shape.length !== target.rank || shape.some((d, i) => d !== target.shape[i])) {
      problems.push(`'${key}' has shape [${shape.join(', ')}], the model expects [${target.shape.join(', ')}]`);
    }
  }
  if (problems.length > 0) throw new Error(`${model.constructor.name}: cannot load ${what}: ${problems.join('; ')}`);
  const loaded: string[] = [];
  for (const [name, key] of fileKeyOf) {
    const host = source.get(key, { as: targets.get(name)!.dtype === 'i32' ? 'i32' : 'f32' });
    model.loadStateDict(new Map([[name, { shape: host.shape, data: host.data }]]), { strict: false });
    loaded.push(name);
  }
  return { loaded, ignored, missing, unexpected };
}
