/**
 * Object shapes of the synthetic datasets and their rasterisation.
 *
 * Every shape is parameterised by its centre and an "equivalent radius" r: the shape's area is
 * pi r^2 whatever its kind, so a size class maps to one radius range for all shapes.
 * - round: a disc of radius r;
 * - oval: an ellipse with axis ratio `aspect` (semi-axes r sqrt(aspect), r / sqrt(aspect)), rotated;
 * - irregular: a star-like blob, radius rho(t) = r0 (1 + amp sin(lobes t + phase)), with
 *   r0 = r / sqrt(1 + amp^2 / 2) so that its area is pi r^2 as well.
 */
import type { ShapeClass } from '../data/attributes.js';
import { randRange } from '../data/random.js';
import { pick } from './noise.js';

export interface ShapeSpec {
  kind: ShapeClass;
  cx: number;
  cy: number;
  /** Equivalent radius (area = pi r^2). */
  r: number;
  /** Oval axis ratio (>= 1). */
  aspect: number;
  /** Rotation in radians. */
  angle: number;
  /** Irregular: lobe count, amplitude and phase. */
  lobes: number;
  amp: number;
  phase: number;
}

export const SHAPES: readonly ShapeClass[] = ['round', 'oval', 'irregular'];

/** Random shape parameters for a kind (centre left at 0, 0). */
export function randomShape(kind: ShapeClass, r: number, rng: () => number): ShapeSpec {
  return {
    kind,
    cx: 0,
    cy: 0,
    r,
    aspect: kind === 'oval' ? randRange(rng, 1.7, 2.3) : 1,
    angle: randRange(rng, 0, Math.PI),
    lobes: kind === 'irregular' ? pick(rng, [4, 5, 6]) : 0,
    amp: kind === 'irregular' ? randRange(rng, 0.32, 0.42) : 0,
    phase: randRange(rng, 0, 2 * Math.PI),
  };
}

/** Radius of the smallest centred circle that holds the shape. */
export function shapeExtent(s: ShapeSpec): number {
  if (s.kind === 'oval') return s.r * Math.sqrt(s.aspect);
  if (s.kind === 'irregular') return (s.r / Math.sqrt(1 + (s.amp * s.amp) / 2)) * (1 + s.amp);
  return s.r;
}

/** Whether the point (x, y) (pixel units, continuous) lies inside the shape. */
export function insideShape(s: ShapeSpec, x: number, y: number): boolean {
  const dx = x - s.cx;
  const dy = y - s.cy;
  if (s.kind === 'round') return dx * dx + dy * dy <= s.r * s.r;
  const c = Math.cos(s.angle);
  const sn = Math.sin(s.angle);
  const u = c * dx + sn * dy;
  const v = -sn * dx + c * dy;
  if (s.kind === 'oval') {
    const a = s.r * Math.sqrt(s.aspect);
    const b = s.r / Math.sqrt(s.aspect);
    return (u * u) / (a * a) + (v * v) / (b * b) <= 1;
  }
  const r0 = s.r / Math.sqrt(1 + (s.amp * s.amp) / 2);
  const rho = r0 * (1 + s.amp * Math.sin(s.lobes * Math.atan2(v, u) + s.phase));
  return u * u + v * v <= rho * rho;
}

/**
 * Coverage of each pixel by the shape (SS x SS samples per pixel), and the binary mask
 * coverage >= 0.5. Only the shape's bounding box is visited.
 */
export function rasterizeShape(
  s: ShapeSpec,
  width: number,
  height: number,
  ss = 4,
): { coverage: Float32Array; mask: Uint8Array } {
  const coverage = new Float32Array(width * height);
  const mask = new Uint8Array(width * height);
  const ext = shapeExtent(s) + 1;
  const x0 = Math.max(0, Math.floor(s.cx - ext));
  const x1 = Math.min(width - 1, Math.ceil(s.cx + ext));
  const y0 = Math.max(0, Math.floor(s.cy - ext));
  const y1 = Math.min(height - 1, Math.ceil(s.cy + ext));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let hits = 0;
      for (let j = 0; j < ss; j++) {
        for (let i = 0; i < ss; i++) {
          if (insideShape(s, x + (i + 0.5) / ss, y + (j + 0.5) / ss)) hits++;
        }
      }
      const cov = hits / (ss * ss);
      coverage[y * width + x] = cov;
      mask[y * width + x] = cov >= 0.5 ? 1 : 0;
    }
  }
  return { coverage, mask };
}
