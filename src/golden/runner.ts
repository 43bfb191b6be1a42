/**
 * Runs one golden case on one device and compares every expected tensor with the manifest's
 * tolerances. Used by `npm run golden -- <folder>` (src/cli/golden.ts) and test/golden.test.ts.
 *
 * For `forward` adapters: output = op(inputs); L = sum(output * cotangent) is differentiated by
 * backward(output, dOut = cotangent); expected `output` and `grad.<input>` are compared.
 * Everything a case allocates is freed when it ends (scopeAsync), pass or fail.
 */
import { type Device, type Tensor, backward, scopeAsync } from '../engine/index.js';
import { readSafetensorsFile } from '../engine/io/safetensors-node.js';
import { ADAPTERS } from './adapters.js';
import { type Comparison, compareTensor, describeMismatch } from './compare.js';
import { CaseContext } from './context.js';
import type { GoldenCase } from './manifest.js';

export interface CaseResult {
  case: string;
  device: string;
  ok: boolean;
  comparisons: Comparison[];
  /** Set when the case could not run (unknown op, missing engine op, thrown error). */
  error?: string;
  maxAbs: number;
  maxRel: number;
  ms: number;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

async function runForward(ctx: CaseContext, build: (ctx: CaseContext) => Tensor) {
  const actual = new Map<string, ArrayLike<number>>();
  const out = build(ctx);
  const expectedShape = ctx.file.info('output').shape;
  if (!sameShape(out.shape, expectedShape)) {
    throw new Error(`output has shape [${out.shape.join(', ')}], expected [${expectedShape.join(', ')}]`);
  }
  actual.set('output', await out.read());
  const inputs = ctx.differentiatedInputs();
  if (inputs.size === 0) return actual;
  if (!out.requiresGrad) throw new Error('output does not require a gradient although inputs do (op not recorded?)');
  backward(out, ctx.tensor('cotangent'));
  for (const [name, t] of inputs) {
    if (!t.grad) throw new Error(`no gradient reached input '${name}'`);
    actual.set(`grad.${name}`, await t.grad.read());
  }
  return actual;
}

/** Runs `c` on `device`; never throws (errors become a failed result). */
export async function runCase(c: GoldenCase, device: Device): Promise<CaseResult> {
  const start = performance.now();
  const result: CaseResult = { case: c.name, device: device.kind, ok: false, comparisons: [], maxAbs: 0, maxRel: 0, ms: 0 };
  try {
    const adapter = ADAPTERS[c.manifest.op];
    if (!adapter) {
      throw new Error(
        `unknown op '${c.manifest.op}' in ${c.manifestPath} (no golden adapter; known: ${Object.keys(ADAPTERS).sort().join(', ')})`,
      );
    }
    const file = await readSafetensorsFile(c.tensorsPath);
    const actual = await scopeAsync(async () => {
      const ctx = new CaseContext(c.manifest, file, device);
      return adapter.kind === 'forward' ? runForward(ctx, adapter.forward) : adapter.run(ctx);
    });
    for (const [name, tol] of Object.entries(c.manifest.tolerances)) {
      const values = actual.get(name);
      if (!values) throw new Error(`the adapter computed no value for expected tensor '${name}'`);
      const expected = file.get(name, { as: 'f32' }).data;
      result.comparisons.push(compareTensor(name, values, expected, tol.atol, tol.rtol));
    }
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

/** Why a result failed, one line per problem (empty when it passed). */
export function failureLines(r: CaseResult): string[] {
  const lines: string[] = [];
  if (r.error) lines.push(`error: ${r.error}`);
  for (const x of r.comparisons) if (!x.ok) lines.push(describeMismatch(x));
  return lines;
}
