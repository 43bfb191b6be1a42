/**
 * "Who may import what" (docs/style.md §1), checked on every import specifier under src/
 * (static, type-only, re-exports and dynamic import()), read with TypeScript's own pre-processor:
 *
 * - src/kernels imports nothing outside src/kernels (no packages either: strings, numbers, CPU refs).
 * - src/engine imports only src/engine and src/kernels (so never src/models or src/train).
 * - Only src/engine/platform/* imports 'webgpu' (Dawn) or touches navigator.gpu.
 * - Engine code runs in browsers: Node built-ins only in engine/platform/node.ts and *-node.ts files.
 * - src/models imports the engine only through its public index (src/engine/index.ts), never a
 *   kernel, and nothing from src/train.
 * - src/train never imports a kernel (fused kernels reach it as engine ops).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

interface ImportRef {
  /** File doing the import, relative to the repository root with '/' separators. */
  from: string;
  specifier: string;
  /** For relative specifiers: the imported file relative to the root ('.js' mapped to '.ts'). */
  target: string | null;
  line: number;
}

function listTs(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) listTs(path, out);
    else if (/\.(m|c)?tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

const rel = (path: string) => relative(ROOT, path).split(sep).join('/');

function importsOf(file: string): ImportRef[] {
  const text = readFileSync(file, 'utf8');
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((ref) => {
    const specifier = ref.fileName;
    let target: string | null = null;
    if (specifier.startsWith('.')) {
      target = rel(resolve(dirname(file), specifier)).replace(/\.js$/, '.ts');
    }
    const line = text.slice(0, ref.pos).split('\n').length;
    return { from: rel(file), specifier, target, line };
  });
}

const NODE_BUILTINS = new Set(builtinModules);
const isNodeBuiltin = (s: string) => s.startsWith('node:') || NODE_BUILTINS.has(s.split('/')[0]!);
const under = (path: string | null, dir: string) => path !== null && (path === dir || path.startsWith(`${dir}/`));
const show = (r: ImportRef) => `${r.from}:${r.line} imports '${r.specifier}'`;

const files = listTs(SRC);
const allImports = files.flatMap(importsOf);

/** The imports of files under `dir` that break `allowed`. */
function violations(dir: string, allowed: (r: ImportRef) => boolean, refs = allImports): string[] {
  return refs.filter((r) => under(r.from, dir) && !allowed(r)).map(show);
}

const kernelsOk = (r: ImportRef) => under(r.target, 'src/kernels');
const engineOk = (r: ImportRef) => r.target === null || under(r.target, 'src/engine') || under(r.target, 'src/kernels');
const modelsOk = (r: ImportRef) =>
  r.target === null ? r.specifier !== 'webgpu' : under(r.target, 'src/models') || r.target === 'src/engine/index.ts';
const trainOk = (r: ImportRef) => !under(r.target, 'src/kernels');

describe('import rules (docs/style.md "who may import what")', () => {
  it('reads the import specifiers of the source tree', () => {
    expect(files.length).toBeGreaterThan(20);
    const index = allImports.filter((r) => r.from === 'src/engine/index.ts');
    expect(index.some((r) => r.target === 'src/engine/tensor.ts')).toBe(true);
    // Dynamic imports are seen too (platform/node.ts loads Dawn with import('webgpu')).
    expect(allImports.some((r) => r.from === 'src/engine/platform/node.ts' && r.specifier === 'webgpu')).toBe(true);
  });

  it('src/kernels imports nothing outside src/kernels', () => {
    expect(violations('src/kernels', kernelsOk)).toEqual([]);
  });

  it('src/engine imports only src/engine and src/kernels (never src/models or src/train)', () => {
    expect(violations('src/engine', engineOk)).toEqual([]);
  });

  it("only src/engine/platform/* imports 'webgpu' or touches navigator.gpu", () => {
    const dawn = allImports
      .filter((r) => (r.specifier === 'webgpu' || r.specifier.startsWith('webgpu/')) && !under(r.from, 'src/engine/platform'))
      .map(show);
    expect(dawn).toEqual([]);
    const navigatorGpu: string[] = [];
    for (const file of files) {
      const path = rel(file);
      if (under(path, 'src/engine/platform')) continue;
      const text = readFileSync(file, 'utf8');
      if (!text.includes('navigator')) continue;
      // Code only: comments may mention navigator.gpu.
      if (/\bnavigator\s*\??\.\s*gpu\b/.test(stripComments(text))) navigatorGpu.push(path);
    }
    expect(navigatorGpu).toEqual([]);
  });

  it('engine code stays browser-safe: Node built-ins only in platform/node.ts and *-node.ts', () => {
    const bad = allImports
      .filter((r) => under(r.from, 'src/engine') && isNodeBuiltin(r.specifier))
      .filter((r) => r.from !== 'src/engine/platform/node.ts' && !r.from.endsWith('-node.ts'))
      .map(show);
    expect(bad).toEqual([]);
  });

  it("src/models imports the engine only through src/engine/index.ts, and no kernel or train code", () => {
    expect(violations('src/models', modelsOk)).toEqual([]);
  });

  it('src/train never imports a kernel', () => {
    expect(violations('src/train', trainOk)).toEqual([]);
  });

  it('the rules catch violations (synthetic imports)', () => {
    const ref = (from: string, specifier: string, target: string | null): ImportRef => ({ from, specifier, target, line: 1 });
    const fake = [
      ref('src/kernels/a/a.ts', '../../engine/tensor.js', 'src/engine/tensor.ts'),
      ref('src/kernels/a/a.ts', 'fflate', null),
      ref('src/kernels/a/a.ts', '../wgsl.js', 'src/kernels/wgsl.ts'),
      ref('src/engine/ops/x.ts', '../../models/nn/index.js', 'src/models/nn/index.ts'),
      ref('src/engine/ops/x.ts', '../../train/optim.js', 'src/train/optim.ts'),
      ref('src/engine/ops/x.ts', '../../kernels/wgsl.js', 'src/kernels/wgsl.ts'),
      ref('src/models/nn/x.ts', '../../engine/tensor.js', 'src/engine/tensor.ts'),
      ref('src/models/nn/x.ts', '../../kernels/wgsl.js', 'src/kernels/wgsl.ts'),
      ref('src/models/nn/x.ts', '../../engine/index.js', 'src/engine/index.ts'),
      ref('src/models/nn/x.ts', 'webgpu', null),
      ref('src/train/x.ts', '../kernels/adamw/adamw.js', 'src/kernels/adamw/adamw.ts'),
    ];
    expect(violations('src/kernels', kernelsOk, fake)).toEqual([
      "src/kernels/a/a.ts:1 imports '../../engine/tensor.js'",
      "src/kernels/a/a.ts:1 imports 'fflate'",
    ]);
    expect(violations('src/engine', engineOk, fake)).toEqual([
      "src/engine/ops/x.ts:1 imports '../../models/nn/index.js'",
      "src/engine/ops/x.ts:1 imports '../../train/optim.js'",
    ]);
    expect(violations('src/models', modelsOk, fake)).toEqual([
      "src/models/nn/x.ts:1 imports '../../engine/tensor.js'",
      "src/models/nn/x.ts:1 imports '../../kernels/wgsl.js'",
      "src/models/nn/x.ts:1 imports 'webgpu'",
    ]);
    expect(violations('src/train', trainOk, fake)).toEqual(["src/train/x.ts:1 imports '../kernels/adamw/adamw.js'"]);
  });
});

/**
 * Removes // and block comments (approximately: text after a template literal's `${...}` may be
 * mis-scanned, which can only hide code, never invent a match in a comment).
 */
function stripComments(text: string): string {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, false, ts.LanguageVariant.Standard, text);
  let out = '';
  for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
    if (kind === ts.SyntaxKind.SingleLineCommentTrivia || kind === ts.SyntaxKind.MultiLineCommentTrivia) continue;
    out += scanner.getTokenText();
  }
  return out;
}
