/**
 * The golden comparison rule: |actual - expected| <= atol + rtol * |expected|, elementwise.
 * Non-finite expected values (±inf, NaN) must match exactly; a NaN actual against a finite expected
 * value is a mismatch. Statistics cover the finite expected values only:
 *   maxAbs  = max |a - e|
 *   maxRel  = max |a - e| / |e| over e != 0
 *   worst   = max |a - e| / (atol + rtol * |e|)   (<= 1 passes)
 */

export interface Comparison {
  name: string;
  ok: boolean;
  total: number;
  mismatches: number;
  maxAbs: number;
  maxRel: number;
  worst: number;
  atol: number;
  rtol: number;
  /** The first five mismatches: `[index] got a, expected e`. */
  firstMismatches: string[];
}

export function compareTensor(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): Comparison {
  const result: Comparison = {
    name,
    ok: true,
    total: expected.length,
    mismatches: 0,
    maxAbs: 0,
    maxRel: 0,
    worst: 0,
    atol,
    rtol,
    firstMismatches: [],
  };
  const miss = (i: number, a: number, e: number) => {
    result.mismatches++;
    if (result.firstMismatches.length < 5) result.firstMismatches.push(`[${i}] got ${a}, expected ${e}`);
  };
  if (actual.length !== expected.length) {
    result.ok = false;
    result.mismatches = expected.length;
    result.maxAbs = result.maxRel = result.worst = Infinity;
    result.firstMismatches.push(`got ${actual.length} values, expected ${expected.length}`);
    return result;
  }
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!Number.isFinite(e)) {
      if (!(Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)))) miss(i, a, e);
      continue;
    }
    const diff = Math.abs(a - e);
    if (Number.isNaN(diff)) {
      // a is NaN while e is finite
      result.maxAbs = result.maxRel = result.worst = Infinity;
      miss(i, a, e);
      continue;
    }
    const bound = atol + rtol * Math.abs(e);
    result.maxAbs = Math.max(result.maxAbs, diff);
    if (e !== 0) result.maxRel = Math.max(result.maxRel, diff / Math.abs(e));
    result.worst = Math.max(result.worst, bound > 0 ? diff / bound : diff > 0 ? Infinity : 0);
    if (!(diff <= bound)) miss(i, a, e);
  }
  result.ok = result.mismatches === 0;
  return result;
}

/** One line describing a failed comparison. */
export function describeMismatch(c: Comparison): string {
  const worst = Number.isFinite(c.worst) ? `, ${c.worst.toFixed(2)}x the tolerance` : '';
  return (
    `${c.name}: ${c.mismatches}/${c.total} outside atol ${c.atol.toExponential(2)} + rtol ` +
    `${c.rtol.toExponential(2)}*|e| (max abs ${c.maxAbs.toExponential(2)}${worst}); ` +
    `first: ${c.firstMismatches.join('; ')}`
  );
}
