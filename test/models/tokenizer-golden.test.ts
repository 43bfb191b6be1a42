/**
 * Golden tokenizer cases through the golden runner (src/golden/tokenizer-cases.ts), as
 * `npm run golden -- <folder>` runs them: discovery of `cases.json` beside
 * `tokenized_77.safetensors` anywhere under a folder, the vocabulary choice (the folder's own file,
 * else the shipped weights/vocab/bpe_simple_vocab_16e6.txt.gz), all 156 cases of
 * test/fixtures/tokenizer exact, a tampered case reported as a failure with its mismatch, malformed
 * files refused clearly, and the command line's output format and exit code.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { failureLines } from '../../src/golden/runner.js';
import {
  SHIPPED_VOCAB_PATH,
  belongsToTokenizerCase,
  discoverTokenizerCases,
  runTokenizerCases,
} from '../../src/golden/tokenizer-cases.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/tokenizer');
const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-tok-golden-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function copyFixture(to: string): string {
  mkdirSync(to, { recursive: true });
  for (const f of ['cases.json', 'tokenized_77.safetensors']) copyFileSync(join(FIXTURE, f), join(to, f));
  return to;
}

describe('golden tokenizer cases', () => {
  it('finds the fixture folder from test/fixtures, with the shipped vocabulary', async () => {
    const found = await discoverTokenizerCases(join(ROOT, 'test/fixtures'));
    expect(found.map((f) => f.name)).toEqual(['tokenizer']);
    expect(found[0]!.cases).toHaveLength(156);
    expect(found[0]!.vocabulary).toBe(SHIPPED_VOCAB_PATH);
    expect(belongsToTokenizerCase(join(FIXTURE, 'cases.json'), found)).toBe(true);
  });

  it('passes all 156 cases exactly (ids, BOS/EOS rows, 77-token rows, safetensors rows, BPE symbols)', async () => {
    const [folder] = await discoverTokenizerCases(FIXTURE);
    expect(folder!.name).toBe('tokenizer');
    const results = await runTokenizerCases(folder!);
    expect(results).toHaveLength(156);
    expect(results[0]!.case).toBe('tokenizer/000');
    expect(results[155]!.case).toBe('tokenizer/155');
    const failed = results.filter((r) => !r.ok).map((r) => `${r.case}: ${failureLines(r).join('; ')}`);
    expect(failed).toEqual([]);
    for (const r of results) {
      expect(r.device).toBe('host');
      expect(r.comparisons.map((c) => c.name)).toEqual(['ids', 'ids_with_bos_eos', 'tokenized_77', 'tokenized_77.safetensors']);
      expect(r.maxAbs).toBe(0);
    }
    const truncated = folder!.cases.filter((c) => c.truncated_at_77).length;
    expect(truncated).toBeGreaterThan(0);
  });

  it('reports a tampered case as a failure naming the mismatch; prefers the folder\'s own vocabulary', async () => {
    const dir = copyFixture(join(tmp, 'nested', 'tampered'));
    copyFileSync(SHIPPED_VOCAB_PATH, join(dir, 'bpe_simple_vocab_16e6.txt.gz'));
    const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
    cases.cases[1].ids[1] += 1;
    cases.cases[2].bpe_tokens = ['nope</w>'];
    writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
    const [folder] = await discoverTokenizerCases(tmp);
    expect(folder!.name).toBe('nested/tampered');
    expect(folder!.vocabulary).toBe(join(dir, 'bpe_simple_vocab_16e6.txt.gz'));
    const results = await runTokenizerCases(folder!);
    expect(results.filter((r) => !r.ok).map((r) => r.case)).toEqual(['nested/tampered/001', 'nested/tampered/002']);
    expect(failureLines(results[1]!).join('\n')).toMatch(/^ids: 1\/3 outside atol/m);
    expect(failureLines(results[2]!).join('\n')).toMatch(/^error: "colon polyp": bpe_tokens \[.*\], expected \["nope<\/w>"\]/);
    rmSync(join(tmp, 'nested'), { recursive: true });
  });

  it('refuses malformed cases.json files and a row count that does not match', async () => {
    const dir = copyFixture(join(tmp, 'bad'));
    writeFileSync(join(dir, 'cases.json'), '{"cases": [{"text": 3}]}');
    await expect(discoverTokenizerCases(dir)).rejects.toThrow(/cases\.json: case 0 has no 'text' string/);
    writeFileSync(join(dir, 'cases.json'), '{not json');
    await expect(discoverTokenizerCases(dir)).rejects.toThrow(/cases\.json is not valid JSON/);
    writeFileSync(join(dir, 'cases.json'), JSON.stringify({ cases: [{ text: 'a', ids: [320], tokenized_77: [] }] }));
    const [folder] = await discoverTokenizerCases(dir);
    await expect(runTokenizerCases(folder!)).rejects.toThrow(/'tokenized_77' has shape \[156, 77\], expected \[1, L\]/);
    rmSync(dir, { recursive: true });
  });

  it('npm run golden -- test/fixtures/tokenizer prints one line per case and "156 passed, 0 failed"', async () => {
    const exec = promisify(execFile);
    const { stdout } = await exec(process.execPath, ['--import', './scripts/register-ts.mjs', 'src/cli/golden.ts', 'test/fixtures/tokenizer'], { cwd: ROOT });
    const lines = stdout.trim().split('\n');
    expect(lines.filter((l) => /^tokenizer\/\d{3}\s+host\s+max abs\s+0\.00e\+0\s+max rel\s+0\.00e\+0\s+PASS/.test(l))).toHaveLength(156);
    expect(lines[lines.length - 1]).toBe('156 passed, 0 failed');
    expect(stdout).not.toContain('skipping');
  });
});
