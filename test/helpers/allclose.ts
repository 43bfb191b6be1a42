/**
 * Comparison with the golden rule |actual - expected| <= atol + rtol * |expected| (non-finite
 * expected values must match exactly). On failure the message lists the first five mismatches.
 */
export interface CloseReport {
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  mismatches: number;
  message: string;
}

export function compareClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  label = 'tensor',
): CloseReport {
  if (actual.length !== expected.length) {
    return { ok: false, maxAbs: Infinity, maxRel: Infinity, mismatches: -1, message: `${label}: ${actual.length} values, expected ${expected.length}` };
  }
  let maxAbs = 0;
  let maxRel = 0;
  const bad: string[] = [];
  let mismatches = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    let ok: boolean;
    if (!Number.isFinite(e)) {
      ok = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
    } else {
      const diff = Math.abs(a - e);
      ok = diff <= atol + rtol * Math.abs(e);
      if (Number.isNaN(diff)) ok = false;
      else {
        maxAbs = Math.max(maxAbs, diff);
        maxRel = Math.max(maxRel, diff / Math.max(Math.abs(e), 1e-30));
      }
    }
    if (!ok) {
      mismatches++;
      if (bad.length < 5) bad.push(`[${i}] got ${a}, expected ${e}`);
    }
  }
  const ok = mismatches === 0;
  const message = ok
    ? `${label}: ok (max abs ${maxAbs.toExponential(2)})`
    : `${label}: ${mismatches}/${expected.length} mismatches (atol ${atol}, rtol ${rtol}); first: ${bad.join('; ')}`;
  return { ok, maxAbs, maxRel, mismatches, message };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-6, rtol = 1e-5, label = 'tensor'): void {
  const r = compareClose(actual, expected, atol, rtol, label);
  if (!r.ok) throw new Error(r.message);
}
