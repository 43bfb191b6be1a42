/**
 * A PNG grid of the best and worst cases of an evaluation: one row per case,
 *
 *   image | truth overlay (green) | prediction overlay (red)
 *
 * best rows first (highest Dice first), then the worst (lowest Dice first). Small images are
 * enlarged by an integer nearest-neighbour factor so each cell is at least `minCell` pixels
 * (default 128) on its shorter side; images larger than `maxCell` (default 512) on their longer side
 * are shrunk (nearest) to fit it. Cells and rows are parted by `separator`-pixel (default 2) white
 * lines; a row narrower than the widest is padded with white on the right.
 */
import { type Image, type Rgb, PALETTE, encodePng, overlay } from '../../models/image/index.js';
import type { MedVlsmDataset } from '../data/dataset.js';
import { type BinaryMask, maskToImage, resizeMaskNearest } from '../data/mask.js';
import type { Segmenter } from '../segmenter.js';
import { type EvalRecord, type EvalResult, type ScoreItem, loadImageAndMask, predictMasks } from './evaluate.js';
import { richestPromptKey } from './language.js';

export interface OverlayCase {
  image: Image;
  truth: BinaryMask;
  prediction: BinaryMask;
}

export interface GridOptions {
  /** Shortest cell side that small images are enlarged to (default 128). */
  minCell?: number;
  /** Longest cell side (default 512). */
  maxCell?: number;
  /** Separator width in pixels (default 2). */
  separator?: number;
  /** Mask opacity (default 0.5). */
  opacity?: number;
  truthColour?: Rgb;
  predictionColour?: Rgb;
}

/** Truth overlays are green, predictions red (PALETTE[1], PALETTE[0]). */
export const TRUTH_COLOUR: Rgb = PALETTE[1]!;
export const PREDICTION_COLOUR: Rgb = PALETTE[0]!;

const WHITE = 255;

/** Nearest-neighbour resize with pixel-centre sampling (any channel count). */
export function resizeNearest(image: Image, width: number, height: number): Image {
  const { width: W, height: H, channels: C, data } = image;
  if (width === W && height === H) return image;
  const out = new Uint8Array(width * height * C);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(H - 1, Math.floor(((y + 0.5) * H) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(W - 1, Math.floor(((x + 0.5) * W) / width));
      const s = (sy * W + sx) * C;
      const d = (y * width + x) * C;
      for (let c = 0; c < C; c++) out[d + c] = data[s + c]!;
    }
  }
  return { width, height, channels: C, data: out };
}

/** The cell size of a `w x h` image (see the file comment). */
export function cellSize(w: number, h: number, minCell = 128, maxCell = 512): [number, number] {
  if (Math.max(w, h) > maxCell) {
    const s = maxCell / Math.max(w, h);
    return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
  }
  let f = Math.max(1, Math.ceil(minCell / Math.min(w, h)));
  if (Math.max(w, h) * f > maxCell) f = Math.max(1, Math.floor(maxCell / Math.max(w, h)));
  return [w * f, h * f];
}

function fitMask(mask: BinaryMask, image: Image): Image {
  const m = mask.width === image.width && mask.height === image.height ? mask : resizeMaskNearest(mask, image.width, image.height);
  return maskToImage(m);
}

/** The grid as an RGB image. */
export function overlayGridImage(cases: readonly OverlayCase[], options: GridOptions = {}): Image {
  if (cases.length === 0) throw new Error('overlayGrid: no cases to draw');
  const sep = options.separator ?? 2;
  const opacity = options.opacity ?? 0.5;
  const rows = cases.map((c) => {
    const [w, h] = cellSize(c.image.width, c.image.height, options.minCell ?? 128, options.maxCell ?? 512);
    const cells = [
      overlay(c.image, [], opacity),
      overlay(c.image, [{ mask: fitMask(c.truth, c.image), color: options.truthColour ?? TRUTH_COLOUR }], opacity),
      overlay(c.image, [{ mask: fitMask(c.prediction, c.image), color: options.predictionColour ?? PREDICTION_COLOUR }], opacity),
    ].map((img) => resizeNearest(img, w, h));
    return { w, h, cells };
  });
  const width = Math.max(...rows.map((r) => 3 * r.w + 2 * sep));
  const height = rows.reduce((n, r) => n + r.h, 0) + (rows.length - 1) * sep;
  const data = new Uint8Array(width * height * 3).fill(WHITE);
  let top = 0;
  for (const row of rows) {
    row.cells.forEach((cell, col) => {
      const left = col * (row.w + sep);
      for (let y = 0; y < row.h; y++) {
        for (let x = 0; x < row.w; x++) {
          const s = (y * row.w + x) * 4;
          const d = ((top + y) * width + left + x) * 3;
          data[d] = cell.data[s]!;
          data[d + 1] = cell.data[s + 1]!;
          data[d + 2] = cell.data[s + 2]!;
        }
      }
    });
    top += row.h + sep;
  }
  return { width, height, channels: 3, data };
}

/** The grid as PNG bytes. */
export function overlayGrid(cases: readonly OverlayCase[], options: GridOptions = {}): Uint8Array {
  return encodePng(overlayGridImage(cases, options));
}

/**
 * The k best (highest Dice first) and k worst (lowest Dice first) records of one prompt key;
 * a record is never in both lists (with fewer than 2k records the worst list is shorter).
 */
export function selectBestWorst(records: readonly EvalRecord[], k: number, promptKey?: string): { best: EvalRecord[]; worst: EvalRecord[] } {
  const of = promptKey === undefined ? [...records] : records.filter((r) => r.prompt_key === promptKey);
  const byDice = of.map((r, i) => ({ r, i })).sort((a, b) => b.r.dice - a.r.dice || a.i - b.i);
  const best = byDice.slice(0, k);
  const worst = byDice.slice(best.length).reverse().slice(0, k);
  return { best: best.map((x) => x.r), worst: worst.map((x) => x.r) };
}

export interface BestWorstOptions extends GridOptions {
  /** Cases of each kind (default 4). */
  k?: number;
  /** Prompt key of the cases (default: the richest key scored). */
  promptKey?: string;
  /** Default: the evaluation's threshold. */
  threshold?: number;
  batchSize?: number;
}

/**
 * Re-predicts the best and worst cases of `result` (the evaluation keeps no masks) and draws them.
 * Returns the PNG and the records of its rows, in order; null when there is no record to draw.
 */
export async function bestWorstOverlays(
  segmenter: Segmenter,
  datasets: readonly MedVlsmDataset[],
  result: EvalResult,
  options: BestWorstOptions = {},
): Promise<{ png: Uint8Array; rows: EvalRecord[] } | null> {
  const key = options.promptKey ?? richestPromptKey(result.prompt_keys);
  const { best, worst } = selectBestWorst(result.records, options.k ?? 4, key);
  const rows = [...best, ...worst];
  if (rows.length === 0) return null;
  const items: ScoreItem[] = [];
  for (const r of rows) {
    const dataset = datasets.find((d) => d.name === r.dataset);
    if (dataset === undefined) throw new Error(`bestWorstOverlays: the record's dataset "${r.dataset}" was not given`);
    const entry = dataset.entries(r.split)[r.index];
    if (entry === undefined) throw new Error(`bestWorstOverlays: ${r.dataset}/${r.split} has no sample ${r.index}`);
    const { image, mask } = await loadImageAndMask(dataset, entry);
    items.push({ image, mask, prompt: r.prompt });
  }
  const { masks } = await predictMasks(segmenter, items, options.threshold ?? result.threshold, options.batchSize ?? 8);
  const cases = items.map((it, i) => ({ image: it.image, truth: it.mask, prediction: masks[i]! }));
  return { png: overlayGrid(cases, options), rows };
}
