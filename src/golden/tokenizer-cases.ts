/**
 * Golden tokenizer cases: a folder holding `cases.json` beside `tokenized_77.safetensors` (see
 * /work/shared/fixtures/golden/README.md, "tokenizer/"), found anywhere under the searched folder.
 * Each entry of `cases.json` is one case: its text must give exactly the recorded `cleaned_text`,
 * `bpe_tokens`, `ids` (no BOS/EOS), `ids_with_bos_eos` (untruncated), `tokenized_77` row and
 * `truncated_at_77` flag, and row i of `tokenized_77.safetensors` ([N, L] int32, padding 0 as
 * clip.tokenize) must equal our row. Ids are compared exactly (atol = rtol = 0).
 *
 * Vocabulary: the folder's own `bpe_simple_vocab_16e6.txt.gz`, or its `vocab.json` + `merges.txt`,
 * else the one shipped in the project (weights/vocab/bpe_simple_vocab_16e6.txt.gz).
 *
 * Tokenization runs on the host, so each case is reported once, with device 'host'.
 * Node-only (reads the file system): golden checking is tooling, not engine code.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensorsFile } from '../engine/io/safetensors-node.js';
import { cleanText } from '../models/clip/text-clean.js';
import { ClipTokenizer } from '../models/clip/tokenizer.js';
import { compareTensor } from './compare.js';
import type { CaseResult } from './runner.js';

export const TOKENIZER_CASE_FILES = ['cases.json', 'tokenized_77.safetensors'] as const;
export const SHIPPED_VOCAB_PATH = fileURLToPath(new URL('../../weights/vocab/bpe_simple_vocab_16e6.txt.gz', import.meta.url));

export interface TokenizerGoldenCase {
  index: number;
  text: string;
  cleaned_text?: string;
  bpe_tokens?: string[];
  ids: number[];
  ids_with_bos_eos?: number[];
  tokenized_77: number[];
  truncated_at_77?: boolean;
}

export interface TokenizerCaseFolder {
  /** The folder relative to the searched folder ('tokenizer'; its own name when it is the root). */
  name: string;
  dir: string;
  casesPath: string;
  tensorsPath: string;
  /** The vocabulary file(s) used, for messages. */
  vocabulary: string;
  cases: TokenizerGoldenCase[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x));

function validateCases(path: string, raw: unknown): TokenizerGoldenCase[] {
  const bad = (m: string): never => {
    throw new Error(`golden tokenizer cases ${path}: ${m}`);
  };
  if (!isObject(raw) || !Array.isArray(raw.cases)) bad(`must be a JSON object with a 'cases' list`);
  const list = (raw as { cases: unknown[] }).cases;
  if (list.length === 0) bad(`'cases' is empty`);
  return list.map((c, i) => {
    if (!isObject(c)) return bad(`case ${i} is not an object`);
    if (typeof c.text !== 'string') bad(`case ${i} has no 'text' string`);
    if (!isIntList(c.ids)) bad(`case ${i} has no 'ids' list of integers`);
    if (!isIntList(c.tokenized_77)) bad(`case ${i} has no 'tokenized_77' list of integers`);
    if (c.ids_with_bos_eos !== undefined && !isIntList(c.ids_with_bos_eos)) bad(`case ${i}: 'ids_with_bos_eos' must be a list of integers`);
    if (c.bpe_tokens !== undefined && !(Array.isArray(c.bpe_tokens) && c.bpe_tokens.every((t) => typeof t === 'string'))) {
      bad(`case ${i}: 'bpe_tokens' must be a list of strings`);
    }
    return { ...(c as object), index: Number.isInteger(c.index) ? (c.index as number) : i } as TokenizerGoldenCase;
  });
}

/** Every tokenizer-case folder under `folder` (recursively, sorted by path). */
export async function discoverTokenizerCases(folder: string): Promise<TokenizerCaseFolder[]> {
  const out: TokenizerCaseFolder[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    if (TOKENIZER_CASE_FILES.every((f) => files.has(f))) {
      const casesPath = join(dir, 'cases.json');
      let raw: unknown;
      try {
        raw = JSON.parse(await readFile(casesPath, 'utf8'));
      } catch (err) {
        throw new Error(`golden: ${casesPath} is not valid JSON (${(err as Error).message})`);
      }
      const vocabulary = files.has('bpe_simple_vocab_16e6.txt.gz')
        ? join(dir, 'bpe_simple_vocab_16e6.txt.gz')
        : files.has('vocab.json') && files.has('merges.txt')
          ? `${join(dir, 'vocab.json')} + merges.txt`
          : SHIPPED_VOCAB_PATH;
      const rel = relative(folder, dir).split(sep).join('/');
      out.push({
        name: rel || (dir.split(sep).filter(Boolean).pop() ?? '.'),
        dir,
        casesPath,
        tensorsPath: join(dir, 'tokenized_77.safetensors'),
        vocabulary,
        cases: validateCases(casesPath, raw),
      });
    }
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  await walk(folder);
  return out;
}

/** Whether `path` is the cases.json of a tokenizer folder (op discovery need not report it). */
export function belongsToTokenizerCase(path: string, folders: readonly TokenizerCaseFolder[]): boolean {
  return folders.some((f) => f.casesPath === path);
}

/** The name of one case of a folder: `<folder>/<index, 3 digits>`. */
export function tokenizerCaseName(f: TokenizerCaseFolder, c: TokenizerGoldenCase): string {
  return `${f.name}/${String(c.index).padStart(3, '0')}`;
}

async function loadTokenizer(f: TokenizerCaseFolder): Promise<ClipTokenizer> {
  if (f.vocabulary.endsWith('.gz')) return ClipTokenizer.fromBpeGz(new Uint8Array(await readFile(f.vocabulary)));
  return ClipTokenizer.fromHf(await readFile(join(f.dir, 'vocab.json'), 'utf8'), await readFile(join(f.dir, 'merges.txt'), 'utf8'));
}

/** The [N, L] int32 rows of tokenized_77.safetensors (its only tensor, or the one named tokenized_77). */
async function readRows(f: TokenizerCaseFolder): Promise<{ rows: Int32Array; length: number }> {
  const file = await readSafetensorsFile(f.tensorsPath);
  const keys = file.keys();
  const key = keys.includes('tokenized_77') ? 'tokenized_77' : keys.length === 1 ? keys[0]! : undefined;
  if (key === undefined) throw new Error(`golden: ${f.tensorsPath} must hold one tensor (or one named 'tokenized_77'), it has ${keys.join(', ')}`);
  const t = file.get(key, { as: 'i32' });
  if (t.shape.length !== 2 || t.shape[0] !== f.cases.length) {
    throw new Error(`golden: ${f.tensorsPath}: '${key}' has shape [${t.shape.join(', ')}], expected [${f.cases.length}, L] (one row per case)`);
  }
  return { rows: t.data as Int32Array, length: t.shape[1]! };
}

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
};

/** Runs every case of a folder; one result per case (never throws for a failing case). */
export async function runTokenizerCases(f: TokenizerCaseFolder): Promise<CaseResult[]> {
  const tokenizer = await loadTokenizer(f);
  const { rows, length } = await readRows(f);
  return f.cases.map((c, i) => {
    const start = performance.now();
    const result: CaseResult = { case: tokenizerCaseName(f, c), device: 'host', ok: false, comparisons: [], maxAbs: 0, maxRel: 0, ms: 0 };
    const problems: string[] = [];
    try {
      const cleaned = cleanText(c.text);
      if (c.cleaned_text !== undefined && cleaned !== c.cleaned_text) problems.push(`cleaned text ${show(cleaned)}, expected ${show(c.cleaned_text)}`);
      const symbols = tokenizer.bpeTokens(c.text);
      if (c.bpe_tokens !== undefined && show(symbols) !== show(c.bpe_tokens)) problems.push(`bpe_tokens ${show(symbols)}, expected ${show(c.bpe_tokens)}`);
      result.comparisons.push(compareTensor('ids', tokenizer.encode(c.text), c.ids, 0, 0));
      if (c.ids_with_bos_eos !== undefined) {
        const full = tokenizer.tokenize([c.text], { truncate: false, contextLength: Number.MAX_SAFE_INTEGER, padding: 'longest' });
        result.comparisons.push(compareTensor('ids_with_bos_eos', full.inputIds, c.ids_with_bos_eos, 0, 0));
      }
      const row = tokenizer.tokenize([c.text], { contextLength: length });
      result.comparisons.push(compareTensor('tokenized_77', row.inputIds, c.tokenized_77, 0, 0));
      result.comparisons.push(compareTensor('tokenized_77.safetensors', row.inputIds, rows.subarray(i * length, (i + 1) * length), 0, 0));
      if (c.truncated_at_77 !== undefined && row.truncated[0] !== c.truncated_at_77) {
        problems.push(`truncated ${row.truncated[0]}, expected ${c.truncated_at_77}`);
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (problems.length > 0) result.error = `${show(c.text)}: ${problems.join('; ')}`;
    result.ok = problems.length === 0 && result.comparisons.every((x) => x.ok);
    for (const x of result.comparisons) {
      result.maxAbs = Math.max(result.maxAbs, x.maxAbs);
      result.maxRel = Math.max(result.maxRel, x.maxRel);
    }
    result.ms = performance.now() - start;
    return result;
  });
}
