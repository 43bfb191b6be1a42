/**
 * Golden model cases: a folder holding `config.json`, `weights.safetensors`, `tensors.safetensors`
 * and `manifest.json` (see /work/shared/fixtures/golden/README.md, "clipseg/"), found anywhere
 * under the searched folder. The config's model_type picks the runner ('clipseg'). CRIS cases
 * ("cris/") have no config.json: their manifest's `config` is the CRIS config and the weights are
 * `weights.safetensors` or `weights.pth` (model-cris.ts); their model type is 'cris'.
 * The manifest lists the expected tensors (`<run>.output.*`, `<run>.grad.*`) with per-tensor
 * tolerances; every one of them must be computed and compared.
 *
 * Node-only (reads the file system): golden checking is tooling, not engine code.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { Device } from '../engine/index.js';
import type { Tolerance } from './manifest.js';
import { runClipSegCase } from './model-clipseg.js';
import { crisCaseWeights, isCrisManifest, runCrisCase } from './model-cris.js';
import type { CaseResult } from './runner.js';

export const MODEL_CASE_FILES = ['config.json', 'weights.safetensors', 'tensors.safetensors', 'manifest.json'] as const;

export interface ModelManifest {
  case: string;
  /** Run name -> description (batch, image size, whether gradients were recorded, ...). */
  runs: Record<string, Record<string, unknown>>;
  tensors: Record<string, { role: string; shape: number[] }>;
  tolerances: Record<string, Tolerance>;
}

export interface ModelCase {
  /** The case folder relative to the searched folder ('clipseg_tiny_refined'); its own name when it is that folder. */
  name: string;
  dir: string;
  modelType: string;
  config: Record<string, unknown>;
  manifest: ModelManifest;
  weightsPath: string;
  tensorsPath: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`golden: ${path} is not valid JSON (${(err as Error).message})`);
  }
}

function validateModelManifest(path: string, raw: unknown): ModelManifest {
  const bad = (m: string): never => {
    throw new Error(`golden model manifest ${path}: ${m}`);
  };
  if (!isObject(raw)) bad('must be a JSON object');
  const m = raw as Record<string, unknown>;
  if (!isObject(m.tensors)) bad(`'tensors' must be an object`);
  if (!isObject(m.tolerances) || Object.keys(m.tolerances).length === 0) bad(`'tolerances' must be a non-empty object`);
  const tensors = m.tensors as Record<string, unknown>;
  for (const [name, tol] of Object.entries(m.tolerances as Record<string, unknown>)) {
    if (!isObject(tol) || typeof tol.atol !== 'number' || typeof tol.rtol !== 'number' || tol.atol < 0 || tol.rtol < 0) {
      bad(`tolerance for '${name}' must be {atol, rtol} with non-negative numbers`);
    }
    if (!(name in tensors)) bad(`tolerance given for '${name}', which is not in 'tensors'`);
  }
  for (const [name, info] of Object.entries(tensors)) {
    if (!isObject(info) || typeof info.role !== 'string' || !Array.isArray(info.shape)) bad(`tensor '${name}' needs a 'role' and a 'shape'`);
    if ((info as { role: string }).role.startsWith('expected') && !(name in (m.tolerances as object))) {
      bad(`expected tensor '${name}' has no tolerance`);
    }
  }
  const runs: Record<string, Record<string, unknown>> = {};
  if (m.runs !== undefined) {
    if (!isObject(m.runs)) bad(`'runs' must be an object`);
    for (const [k, v] of Object.entries(m.runs as object)) runs[k] = isObject(v) ? v : {};
  } else {
    // Runs are the prefixes of the tensor names (`<run>.input.*`).
    for (const name of Object.keys(tensors)) {
      const match = /^(.+?)\.input\./.exec(name);
      if (match) runs[match[1]!] = {};
    }
  }
  if (Object.keys(runs).length === 0) bad('no runs found');
  return {
    case: typeof m.case === 'string' ? m.case : '',
    runs,
    tensors: tensors as ModelManifest['tensors'],
    tolerances: m.tolerances as Record<string, Tolerance>,
  };
}

function caseName(folder: string, dir: string): string {
  return relative(folder, dir).split(sep).join('/') || basename(resolve(dir));
}

/** Every model-case folder under `folder` (recursively, sorted by path). */
export async function discoverModelCases(folder: string): Promise<ModelCase[]> {
  const out: ModelCase[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    if (MODEL_CASE_FILES.every((f) => files.has(f))) {
      const config = await readJson(join(dir, 'config.json'));
      if (!isObject(config)) throw new Error(`golden: ${join(dir, 'config.json')} must be a JSON object`);
      const manifest = validateModelManifest(join(dir, 'manifest.json'), await readJson(join(dir, 'manifest.json')));
      const name = caseName(folder, dir);
      out.push({
        name,
        dir,
        modelType: typeof config.model_type === 'string' ? config.model_type : '',
        config,
        manifest,
        weightsPath: join(dir, 'weights.safetensors'),
        tensorsPath: join(dir, 'tensors.safetensors'),
      });
    } else if (crisCaseWeights(files) !== null) {
      const raw = await readJson(join(dir, 'manifest.json'));
      if (isCrisManifest(raw)) {
        out.push({
          name: caseName(folder, dir),
          dir,
          modelType: 'cris',
          config: raw.config,
          manifest: validateModelManifest(join(dir, 'manifest.json'), raw),
          weightsPath: join(dir, crisCaseWeights(files)!),
          tensorsPath: join(dir, 'tensors.safetensors'),
        });
      }
    }
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  await walk(folder);
  return out;
}

/** Whether `path` is one of the files of a model case (so op discovery need not report it). */
export function belongsToModelCase(path: string, cases: readonly ModelCase[]): boolean {
  return cases.some((c) => MODEL_CASE_FILES.some((f) => join(c.dir, f) === path));
}

/** Runs a model case on `device`; never throws (errors become a failed result). */
export async function runModelCase(c: ModelCase, device: Device): Promise<CaseResult> {
  const start = performance.now();
  const result: CaseResult = { case: c.name, device: device.kind, ok: false, comparisons: [], maxAbs: 0, maxRel: 0, ms: 0 };
  try {
    if (c.modelType === 'cris') result.comparisons = await runCrisCase(c, device);
    else if (c.modelType === 'clipseg') result.comparisons = await runClipSegCase(c, device);
    else throw new Error(`${c.dir}/config.json: no golden model runner for model_type '${c.modelType}' (known: clipseg, cris)`);
    const expected = Object.keys(c.manifest.tolerances);
    const compared = new Set(result.comparisons.map((x) => x.name));
    const skipped = expected.filter((n) => !compared.has(n));
    if (skipped.length > 0) throw new Error(`no value computed for expected tensors ${skipped.slice(0, 5).join(', ')}`);
    result.ok = result.comparisons.every((x) => x.ok);
  } catch (err) {
    result.ok = false;
    result.error = (err as Error).message;
  }
  for (const x of result.comparisons) {
    result.maxAbs = Math.max(result.maxAbs, x.maxAbs);
    result.maxRel = Math.max(result.maxRel, x.maxRel);
  }
  result.ms = performance.now() - start;
  return result;
}
