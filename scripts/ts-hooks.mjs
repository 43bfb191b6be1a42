/**
 * ESM loader hooks registered by register-ts.mjs (see there). They run on Node's loader thread.
 *
 * - resolve: a relative or file: specifier ending in .js whose file does not exist, but whose .ts
 *   sibling does, resolves to the .ts file (TypeScript's NodeNext import style).
 * - load: a file: URL ending in .ts is transpiled by esbuild to an ES module, with an inline source
 *   map so that stack traces point into the TypeScript source.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';

const RELATIVE = /^(\.{1,2}\/|\/|file:)/;

export async function resolve(specifier, context, nextResolve) {
  if (RELATIVE.test(specifier) && specifier.endsWith('.js') && context.parentURL?.startsWith('file:')) {
    const jsUrl = new URL(specifier, context.parentURL);
    if (!existsSync(jsUrl)) {
      const tsUrl = new URL(jsUrl.href.slice(0, -'.js'.length) + '.ts');
      if (existsSync(tsUrl)) return nextResolve(tsUrl.href, context);
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const { code } = transformSync(readFileSync(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcefile: path,
    sourcemap: 'inline',
  });
  return { format: 'module', source: code, shortCircuit: true };
}
