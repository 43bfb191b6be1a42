/**
 * MedVLSM annotation files: `anns/<split>.json`, a JSON list of entries
 *
 *   { "img_name": "a.jpg", "mask_name": "a.png", "prompts": { "p0": "", "p1": "polyp", "p7": ["..", ".."] }, ... }
 *
 * `img_name` / `mask_name` are relative to the dataset's `images/` and `masks/` folders (they may
 * contain sub-folders, as CAMUS's `mask_1/...`). A prompt value is a string or a list of
 * alternatives (one is drawn each time the sample is loaded). Other keys (`bbox`, `cat`,
 * `segment_id`, `sentences`, `sentences_num`, or the synthetic generator's `attributes`) are kept
 * in `extra` and otherwise ignored.
 */

export type PromptValue = string | readonly string[];

export interface AnnotationEntry {
  imgName: string;
  maskName: string;
  /** Prompt kinds in file order (p0..pN in MedVLSM's files). */
  prompts: Readonly<Record<string, PromptValue>>;
  /** Every other key of the entry, unchanged. */
  extra: Readonly<Record<string, unknown>>;
}

/** The JSON form of an entry (what anns files hold and what the writers produce). */
export interface AnnotationJson {
  img_name: string;
  mask_name: string;
  prompts: Record<string, string | string[]>;
  [key: string]: unknown;
}

/** Raised for malformed annotation files; lists every problem found in the file. */
export class AnnotationError extends Error {
  readonly file: string;
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[]) {
    const shown = problems.slice(0, MAX_LISTED);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    super(`${file}: ${problems.length} problem(s) in the annotation file:\n  ${shown.join('\n  ')}${more}`);
    this.name = 'AnnotationError';
    this.file = file;
    this.problems = problems;
  }
}

const MAX_LISTED = 50;
const KNOWN_KEYS = new Set(['img_name', 'mask_name', 'prompts']);

/** True for a relative '/'-separated path that stays inside its folder. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\\') || /^[a-zA-Z]:/.test(path)) return false;
  return !path.split('/').some((part) => part === '..' || part === '');
}

/** Validates parsed JSON; throws AnnotationError listing every problem, or returns the entries. */
export function parseAnnotations(json: unknown, file: string): AnnotationEntry[] {
  if (!Array.isArray(json)) {
    const what = json === null ? 'null' : typeof json;
    throw new AnnotationError(file, [`expected a JSON list of entries, found ${Array.isArray(json) ? 'a list' : what}`]);
  }
  const problems: string[] = [];
  const entries: AnnotationEntry[] = [];
  json.forEach((raw: unknown, i: number) => {
    const at = `entry ${i}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push(`${at}: expected an object`);
      return;
    }
    const e = raw as Record<string, unknown>;
    const names: string[] = [];
    for (const key of ['img_name', 'mask_name']) {
      const v = e[key];
      if (typeof v !== 'string' || v === '') problems.push(`${at}: "${key}" must be a non-empty string`);
      else if (!isSafeRelativePath(v)) problems.push(`${at}: "${key}" ${JSON.stringify(v)} must be a relative path inside the folder`);
      else names.push(v);
    }
    const prompts = parsePrompts(e.prompts, at, problems);
    if (names.length !== 2 || prompts === null) return;
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e)) if (!KNOWN_KEYS.has(k)) extra[k] = v;
    entries.push({ imgName: names[0]!, maskName: names[1]!, prompts, extra });
  });
  if (problems.length > 0) throw new AnnotationError(file, problems);
  return entries;
}

function parsePrompts(v: unknown, at: string, problems: string[]): Record<string, PromptValue> | null {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.push(`${at}: "prompts" must be an object mapping p0..pN to strings or lists of strings`);
    return null;
  }
  const out: Record<string, PromptValue> = {};
  let ok = true;
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    if (typeof value === 'string') out[key] = value;
    else if (Array.isArray(value) && value.length > 0 && value.every((s) => typeof s === 'string')) {
      out[key] = Object.freeze([...(value as string[])]);
    } else {
      problems.push(`${at}: prompt "${key}" must be a string or a non-empty list of strings`);
      ok = false;
    }
  }
  return ok ? out : null;
}

/** The number N of a prompt key "pN", or null for other keys. */
export function promptKeyNumber(key: string): number | null {
  const m = /^p(\d+)$/.exec(key);
  return m ? Number(m[1]) : null;
}

/** Prompt keys of the form pN, sorted by N (p2 before p10). */
export function sortedPromptKeys(keys: Iterable<string>): string[] {
  return [...keys]
    .filter((k) => promptKeyNumber(k) !== null)
    .sort((a, b) => promptKeyNumber(a)! - promptKeyNumber(b)!);
}

/** An entry back in its JSON form (prompts and extra keys kept). */
export function entryToJson(entry: AnnotationEntry): AnnotationJson {
  const prompts: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(entry.prompts)) prompts[k] = typeof v === 'string' ? v : [...v];
  return { img_name: entry.imgName, mask_name: entry.maskName, prompts, ...entry.extra };
}
