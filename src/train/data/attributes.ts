/**
 * Prompt attributes measured on a binary mask (and, for colour, its image), the way MedVLSM's
 * prompts describe a target: size class, number of connected components, 3x3-grid location,
 * shape and colour.
 *
 * Choices (the study does not publish its rules; these are ours, and documented):
 * - Size class by foreground area / image area: small < 5%, medium < 15%, large >= 15%
 *   (SIZE_THRESHOLDS). Applied to the whole mask, and to each component.
 * - Components use 8-connectivity (diagonal neighbours join), as OpenCV's connectedComponents and
 *   scikit-image's label() default to in 2-D; components smaller than `minComponentArea` pixels
 *   (default 1: none dropped) are ignored, which helps with speckled JPEG masks.
 * - Location: the centroid of the component's pixel centres in a 3x3 grid of equal thirds:
 *   "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom",
 *   "bottom right" (the study's words).
 * - Shape (estimateShape): "irregular" when solidity (area / convex area) < 0.85, else "oval"
 *   when the second-moment axis ratio >= 1.3, else "round".
 * - Colour (estimateColour): the nearest named colour (RGB distance) to the mean colour under the mask.
 */
import type { Image } from '../../models/image/index.js';
import { type BinaryMask, resizeMaskNearest } from './mask.js';

export type SizeClass = 'small' | 'medium' | 'large';
export type GridLocation =
  | 'top left' | 'top' | 'top right'
  | 'left' | 'center' | 'right'
  | 'bottom left' | 'bottom' | 'bottom right';
export type ShapeClass = 'round' | 'oval' | 'irregular';
export type Connectivity = 4 | 8;

export interface SizeThresholds {
  medium: number;
  large: number;
}

/** Lower bounds (fractions of the image area) of the medium and large classes. */
export const SIZE_THRESHOLDS: Readonly<SizeThresholds> = { medium: 0.05, large: 0.15 };

export const GRID_LOCATIONS: readonly GridLocation[] = [
  'top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right',
];

export function sizeClass(areaFraction: number, thresholds: Readonly<SizeThresholds> = SIZE_THRESHOLDS): SizeClass {
  if (areaFraction >= thresholds.large) return 'large';
  return areaFraction >= thresholds.medium ? 'medium' : 'small';
}

/** The 3x3-grid cell of a point (x, y in pixels, 0..width, 0..height). */
export function gridLocation(x: number, y: number, width: number, height: number): GridLocation {
  const col = Math.max(0, Math.min(2, Math.floor((3 * x) / width)));
  const row = Math.max(0, Math.min(2, Math.floor((3 * y) / height)));
  return GRID_LOCATIONS[row * 3 + col]!;
}

export interface Component {
  /** Label in `labels` (1-based). */
  label: number;
  area: number;
  /** Centroid of the pixel centres (x + 0.5, y + 0.5). */
  cx: number;
  cy: number;
  /** Inclusive pixel bounds. */
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface Components {
  /** Per pixel: 0 = background, else the component's label. */
  labels: Int32Array;
  /** Sorted by area, largest first (ties: first in raster order). */
  components: Component[];
}

/** Connected components of the foreground (flood fill with an explicit stack). */
export function connectedComponents(mask: BinaryMask, connectivity: Connectivity = 8): Components {
  const { width: W, height: H, data } = mask;
  const labels = new Int32Array(W * H);
  const components: Component[] = [];
  const stack: number[] = [];
  const offsets =
    connectivity === 8
      ? [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]]
      : [[0, -1], [-1, 0], [1, 0], [0, 1]];
  for (let start = 0; start < W * H; start++) {
    if (!data[start] || labels[start]) continue;
    const label = components.length + 1;
    const c: Component = { label, area: 0, cx: 0, cy: 0, x0: W, y0: H, x1: -1, y1: -1 };
    labels[start] = label;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % W;
      const y = (p - x) / W;
      c.area++;
      c.cx += x + 0.5;
      c.cy += y + 0.5;
      c.x0 = Math.min(c.x0, x);
      c.x1 = Math.max(c.x1, x);
      c.y0 = Math.min(c.y0, y);
      c.y1 = Math.max(c.y1, y);
      for (const [dx, dy] of offsets) {
        const nx = x + dx!;
        const ny = y + dy!;
        if (nx < 0 || ny < 0 || nx >= W || ny >= H) continue;
        const q = ny * W + nx;
        if (data[q] && !labels[q]) {
          labels[q] = label;
          stack.push(q);
        }
      }
    }
    c.cx /= c.area;
    c.cy /= c.area;
    components.push(c);
  }
  components.sort((a, b) => b.area - a.area || a.label - b.label);
  return { labels, components };
}

export interface ComponentAttributes {
  area: number;
  areaFraction: number;
  size: SizeClass;
  location: GridLocation;
}

export interface MaskAttributes {
  area: number;
  areaFraction: number;
  /** Size class of the whole foreground (null when empty). */
  size: SizeClass | null;
  /** Connected components counted (those of at least minComponentArea pixels). */
  count: number;
  /** Largest first. */
  components: ComponentAttributes[];
  /** Location of the whole foreground's centroid (null when empty). */
  location: GridLocation | null;
}

export interface AttributeOptions {
  connectivity?: Connectivity;
  thresholds?: Readonly<SizeThresholds>;
  /** Components smaller than this many pixels are ignored (default 1). */
  minComponentArea?: number;
}

export function maskAttributes(mask: BinaryMask, options: AttributeOptions = {}): MaskAttributes {
  const { width: W, height: H } = mask;
  const total = W * H;
  const thresholds = options.thresholds ?? SIZE_THRESHOLDS;
  const kept = connectedComponents(mask, options.connectivity ?? 8).components.filter(
    (c) => c.area >= (options.minComponentArea ?? 1),
  );
  let area = 0;
  let sx = 0;
  let sy = 0;
  for (const c of kept) {
    area += c.area;
    sx += c.cx * c.area;
    sy += c.cy * c.area;
  }
  return {
    area,
    areaFraction: area / total,
    size: area > 0 ? sizeClass(area / total, thresholds) : null,
    count: kept.length,
    components: kept.map((c) => ({
      area: c.area,
      areaFraction: c.area / total,
      size: sizeClass(c.area / total, thresholds),
      location: gridLocation(c.cx, c.cy, W, H),
    })),
    location: area > 0 ? gridLocation(sx / area, sy / area, W, H) : null,
  };
}

/**
 * Area of the pixels a convex shape would cover: the convex hull of the component's pixel centres
 * grown by half a pixel (Steiner: A + P / 2 + pi / 4), which a convex raster shape fills almost
 * exactly whatever its size (the hull of pixel corners would count the staircase of small discs).
 */
function convexArea(mask: BinaryMask, labels: Int32Array, c: Component): number {
  const pts: Array<[number, number]> = [];
  for (let y = c.y0; y <= c.y1; y++) {
    let lo = -1;
    let hi = -1;
    for (let x = c.x0; x <= c.x1; x++) {
      if (labels[y * mask.width + x] === c.label) {
        if (lo < 0) lo = x;
        hi = x;
      }
    }
    if (lo >= 0) pts.push([lo, y], [hi, y]);
  }
  pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cross = (o: [number, number], a: [number, number], b: [number, number]) =>
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (points: Array<[number, number]>) => {
    const h: Array<[number, number]> = [];
    for (const p of points) {
      while (h.length >= 2 && cross(h[h.length - 2]!, h[h.length - 1]!, p) <= 0) h.pop();
      h.push(p);
    }
    h.pop();
    return h;
  };
  const hull = pts.length <= 1 ? pts : [...half(pts), ...half([...pts].reverse())];
  let twiceArea = 0;
  let perimeter = 0;
  for (let i = 0; i < hull.length; i++) {
    const p = hull[i]!;
    const q = hull[(i + 1) % hull.length]!;
    twiceArea += p[0] * q[1] - q[0] * p[1];
    perimeter += Math.hypot(q[0] - p[0], q[1] - p[1]);
  }
  return Math.abs(twiceArea) / 2 + perimeter / 2 + Math.PI / 4;
}

export interface ShapeMeasures {
  shape: ShapeClass;
  /** Area / convex area (about 1 for convex shapes, at most 1). */
  solidity: number;
  /** sqrt(largest / smallest second-moment eigenvalue) (1 for a disc). */
  elongation: number;
}

/** Shape of the largest component (null for an empty mask). */
export function estimateShape(mask: BinaryMask, connectivity: Connectivity = 8): ShapeMeasures | null {
  const { labels, components } = connectedComponents(mask, connectivity);
  const c = components[0];
  if (c === undefined) return null;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (let y = c.y0; y <= c.y1; y++) {
    for (let x = c.x0; x <= c.x1; x++) {
      if (labels[y * mask.width + x] !== c.label) continue;
      const dx = x + 0.5 - c.cx;
      const dy = y + 0.5 - c.cy;
      sxx += dx * dx;
      syy += dy * dy;
      sxy += dx * dy;
    }
  }
  // Eigenvalues of the covariance (+1/12 per axis: the spread of a unit pixel square).
  const a = sxx / c.area + 1 / 12;
  const b = syy / c.area + 1 / 12;
  const d = sxy / c.area;
  const root = Math.sqrt(((a - b) / 2) ** 2 + d * d);
  const l1 = (a + b) / 2 + root;
  const l2 = (a + b) / 2 - root;
  const elongation = Math.sqrt(l1 / Math.max(l2, 1e-12));
  const solidity = Math.min(1, c.area / convexArea(mask, labels, c));
  const shape: ShapeClass = solidity < 0.85 ? 'irregular' : elongation >= 1.3 ? 'oval' : 'round';
  return { shape, solidity, elongation };
}

/** Named colours for estimateColour (sRGB). */
export const NAMED_COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
  white: [235, 235, 230],
  grey: [128, 128, 128],
  black: [20, 20, 20],
  pink: [230, 150, 160],
  red: [180, 40, 45],
  brown: [125, 75, 45],
  orange: [230, 130, 50],
  yellow: [225, 200, 80],
  green: [70, 150, 70],
  blue: [60, 90, 190],
  purple: [130, 70, 150],
};

/** The named colour nearest to the mean colour of `image` under `mask` (null for an empty mask). */
export function estimateColour(
  image: Image,
  mask: BinaryMask,
  palette: Readonly<Record<string, readonly [number, number, number]>> = NAMED_COLOURS,
): string | null {
  const m = mask.width === image.width && mask.height === image.height ? mask : resizeMaskNearest(mask, image.width, image.height);
  const C = image.channels;
  const g = C >= 3 ? 1 : 0;
  const b = C >= 3 ? 2 : 0;
  let r0 = 0;
  let g0 = 0;
  let b0 = 0;
  let n = 0;
  for (let i = 0; i < m.data.length; i++) {
    if (!m.data[i]) continue;
    r0 += image.data[i * C]!;
    g0 += image.data[i * C + g]!;
    b0 += image.data[i * C + b]!;
    n++;
  }
  if (n === 0) return null;
  let best: string | null = null;
  let bestD = Infinity;
  for (const [name, rgb] of Object.entries(palette)) {
    const d = (r0 / n - rgb[0]) ** 2 + (g0 / n - rgb[1]) ** 2 + (b0 / n - rgb[2]) ** 2;
    if (d < bestD) {
      bestD = d;
      best = name;
    }
  }
  return best;
}
