/**
 * Golden op cases: discovery and validation of `<case>.json` manifests (PyTorch reference data, see
 * /work/shared/fixtures/golden/README.md). A case manifest names an `op`, its `parameters`, the
 * `tensors_file` (a .safetensors next to it, holding `input.*`, `output`, `cotangent`, `grad.*` or
 * op-specific tensors), the `differentiated_inputs` and per-expected-tensor `tolerances`.
 *
 * Node-only (reads the file system): golden checking is tooling, not engine code.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface GoldenTensorInfo {
  role: string;
  dtype: string;
  shape: number[];
  description?: string;
}

export interface GoldenManifest {
  case: string;
  op: string;
  parameters: Record<string, unknown>;
  /** Names (without the `input.` prefix) of the inputs with expected gradients `grad.<name>`. */
  differentiated_inputs: string[];
  tensors_file: string;
  tensors: Record<string, GoldenTensorInfo>;
  tolerances: Record<string, Tolerance>;
  formula?: string;
  loss_for_gradients?: string;
}

export interface GoldenCase {
  /** Path of the manifest relative to the searched folder, without `.json` (e.g. `act_relu`). */
  name: string;
  manifestPath: string;
  tensorsPath: string;
  manifest: GoldenManifest;
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface Discovery {
  cases: GoldenCase[];
  /** JSON files that are not op-case manifests (configs, model-level manifests). */
  skipped: SkippedFile[];
}

function invalid(path: string, message: string): never {
  throw new Error(`golden manifest ${path}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the fields the runner relies on; throws naming the file and field. */
export function validateManifest(path: string, raw: Record<string, unknown>): GoldenManifest {
  const { op, tensors_file: tensorsFile, tensors, tolerances } = raw;
  if (typeof op !== 'string' || op.length === 0) invalid(path, `'op' must be a non-empty string`);
  if (typeof tensorsFile !== 'string' || tensorsFile.length === 0) invalid(path, `'tensors_file' must be a string`);
  if (!isObject(tensors)) invalid(path, `'tensors' must be an object`);
  if (!isObject(tolerances) || Object.keys(tolerances).length === 0) invalid(path, `'tolerances' must be a non-empty object`);
  for (const [name, tol] of Object.entries(tolerances)) {
    if (!isObject(tol) || typeof tol.atol !== 'number' || typeof tol.rtol !== 'number' || tol.atol < 0 || tol.rtol < 0) {
      invalid(path, `tolerance for '${name}' must be {atol, rtol} with non-negative numbers`);
    }
    if (!(name in tensors)) invalid(path, `tolerance given for '${name}', which is not in 'tensors'`);
  }
  for (const [name, info] of Object.entries(tensors)) {
    if (!isObject(info) || typeof info.role !== 'string' || !Array.isArray(info.shape)) {
      invalid(path, `tensor '${name}' needs a 'role' string and a 'shape' list`);
    }
    // Every expected tensor must be compared: a missing tolerance would silently skip it.
    if (info.role.startsWith('expected') && !(name in tolerances)) {
      invalid(path, `expected tensor '${name}' has no tolerance`);
    }
  }
  const diff = raw.differentiated_inputs ?? [];
  if (!Array.isArray(diff) || !diff.every((d) => typeof d === 'string')) {
    invalid(path, `'differentiated_inputs' must be a list of input names`);
  }
  const params = raw.parameters ?? {};
  if (!isObject(params)) invalid(path, `'parameters' must be an object`);
  return {
    ...(raw as object),
    case: typeof raw.case === 'string' ? raw.case : '',
    op,
    parameters: params,
    differentiated_inputs: diff as string[],
    tensors_file: tensorsFile,
    tensors: tensors as Record<string, GoldenTensorInfo>,
    tolerances: tolerances as Record<string, Tolerance>,
  } as GoldenManifest;
}

async function listJson(folder: string, out: string[]): Promise<void> {
  const entries = await readdir(folder, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const path = join(folder, e.name);
    if (e.isDirectory()) await listJson(path, out);
    else if (e.isFile() && e.name.endsWith('.json')) out.push(path);
  }
}

/**
 * Finds every op-case manifest under `folder`, recursively, in sorted path order. JSON files
 * without `op` and `tensors_file` are listed in `skipped`. Throws when the folder does not exist,
 * a JSON file does not parse, or a case manifest is malformed or lacks its tensors file.
 */
export async function discoverCases(folder: string): Promise<Discovery> {
  let info;
  try {
    info = await stat(folder);
  } catch {
    throw new Error(`golden: folder '${folder}' does not exist`);
  }
  if (!info.isDirectory()) throw new Error(`golden: '${folder}' is not a folder`);
  const files: string[] = [];
  await listJson(folder, files);
  const cases: GoldenCase[] = [];
  const skipped: SkippedFile[] = [];
  for (const path of files) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      throw new Error(`golden: ${path} is not valid JSON (${(err as Error).message})`);
    }
    if (!isObject(raw) || !('op' in raw) || !('tensors_file' in raw)) {
      skipped.push({ path, reason: 'not an op case (no "op" and "tensors_file")' });
      continue;
    }
    const manifest = validateManifest(path, raw);
    const tensorsPath = join(dirname(path), manifest.tensors_file);
    try {
      await stat(tensorsPath);
    } catch {
      invalid(path, `tensors_file '${manifest.tensors_file}' not found next to it (${tensorsPath})`);
    }
    const name = relative(folder, path).slice(0, -'.json'.length).split(sep).join('/');
    cases.push({ name, manifestPath: path, tensorsPath, manifest });
  }
  return { cases, skipped };
}
