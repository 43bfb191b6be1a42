/**
 * Dataset sources and browser safety: only *-node.ts files of src/train/data and
 * src/train/synthetic (and metrics.ts) may use Node built-ins; the URL source maps 404 to "missing".
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { MedVlsmDataset, hashSeed, urlSource } from '../../src/train/data/index.js';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../../src/train');

describe('browser safety of the data code', () => {
  it('uses Node built-ins only in *-node.ts files', () => {
    const files = [
      ...readdirSync(join(SRC, 'data')).map((f) => join(SRC, 'data', f)),
      ...readdirSync(join(SRC, 'synthetic')).map((f) => join(SRC, 'synthetic', f)),
      join(SRC, 'metrics.ts'),
    ].filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(15);
    const builtins = new Set(builtinModules);
    const bad: string[] = [];
    for (const file of files) {
      if (file.endsWith('-node.ts')) continue;
      for (const ref of ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles) {
        const s = ref.fileName;
        if (s.startsWith('node:') || builtins.has(s.split('/')[0]!)) bad.push(`${file}: ${s}`);
      }
      expect(readFileSync(file, 'utf8')).not.toMatch(/\bprocess\.|\bBuffer\./);
    }
    expect(bad).toEqual([]);
  });
});

describe('urlSource', () => {
  it('fetches files under a base URL and treats 404 as missing', async () => {
    const anns = JSON.stringify([{ img_name: 'a b.png', mask_name: 'a.png', prompts: { p0: '', p1: 'polyp' } }]);
    const asked: string[] = [];
    const fakeFetch = (async (url: string) => {
      asked.push(url);
      if (url.endsWith('anns/test.json')) return new Response(anns);
      if (url.endsWith('/images/a%20b.png')) return new Response('nope', { status: 500, statusText: 'Server Error' });
      return new Response('', { status: 404 });
    }) as unknown as typeof fetch;
    const d = await MedVlsmDataset.open(urlSource('https://example.org/data', fakeFetch));
    expect(d.name).toBe('data');
    expect(d.splitNames).toEqual(['test']);
    const problems = await d.check();
    expect(problems.map((p) => `${p.kind} ${p.path} ${p.detail}`)).toEqual([
      'unreadable images/a b.png HTTP 500 Server Error',
      'missing masks/a.png file not found',
    ]);
    expect(asked).toContain('https://example.org/data/images/a%20b.png');
  });
});

describe('hashSeed', () => {
  it('separates parts and types', () => {
    expect(hashSeed('ab', 'c')).not.toBe(hashSeed('a', 'bc'));
    expect(hashSeed(1)).not.toBe(hashSeed('1'));
    expect(hashSeed(1, 2)).not.toBe(hashSeed(2, 1));
    expect(hashSeed(0, 'x', 3)).toBe(hashSeed(0, 'x', 3));
    expect(hashSeed(2 ** 40)).not.toBe(hashSeed(0));
  });
});
