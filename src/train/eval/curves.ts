/**
 * Training curves as one SVG document (plain string building, no dependencies), from the log
 * records of a run ({ step, epoch?, loss?, lr?, val_dice? }):
 *
 *   panel 1  training loss and validation Dice against the step (one polyline each, a legend)
 *   panel 2  the learning rate against the step (when the records have one)
 *
 * Each panel has its own axes with "nice" ticks (1, 2, 5 x 10^k), tick labels and axis labels;
 * dashed vertical lines mark where the epoch changes. Records are sorted by step; a missing or
 * non-finite value leaves the point out of its series. All text is XML-escaped.
 */
import { PALETTE, type Rgb } from '../../models/image/index.js';

export interface CurveRecord {
  step: number;
  epoch?: number;
  loss?: number;
  lr?: number;
  val_dice?: number;
}

export interface CurveOptions {
  /** Document width in pixels (default 720). */
  width?: number;
  /** Height of each panel in pixels (default 260). */
  panelHeight?: number;
  title?: string;
}

/** Plot margins inside each panel (pixels). */
export const CURVE_MARGIN = { left: 72, right: 20, top: 34, bottom: 46 } as const;

type SeriesKey = 'loss' | 'val_dice' | 'lr';

const SERIES: Record<SeriesKey, { label: string; colour: Rgb }> = {
  loss: { label: 'training loss', colour: PALETTE[0]! },
  val_dice: { label: 'validation Dice', colour: PALETTE[2]! },
  lr: { label: 'learning rate', colour: PALETTE[4]! },
};

const PANELS: { title: string; yLabel: string; series: SeriesKey[] }[] = [
  { title: 'loss and validation Dice', yLabel: 'value', series: ['loss', 'val_dice'] },
  { title: 'learning rate', yLabel: 'learning rate', series: ['lr'] },
];

/** Escapes text for XML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** About `count` evenly spaced round values (steps of 1, 2 or 5 x 10^k) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return [];
  if (min === max) return [min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

/** A tick label: exponent form for small non-zero magnitudes (learning rates), else short decimals. */
export function formatTick(v: number): string {
  if (v !== 0 && Math.abs(v) < 1e-2) return v.toExponential(1).replace('e-', 'e\u2212');
  return String(Number(v.toPrecision(6)));
}

const rgb = (c: Rgb) => `rgb(${c[0]},${c[1]},${c[2]})`;
const num = (v: number) => v.toFixed(2);

/** The domain of values, padded when flat; the y domain includes 0 for non-negative data. */
function domain(values: number[], fromZero: boolean): [number, number] {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (fromZero && lo >= 0) lo = 0;
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= fromZero && lo >= 0 ? 0 : pad;
    hi += pad;
  }
  return [lo, hi];
}

/** The SVG document of the curves. */
export function trainingCurvesSvg(records: readonly CurveRecord[], options: CurveOptions = {}): string {
  const width = options.width ?? 720;
  const panelHeight = options.panelHeight ?? 260;
  const sorted = [...records].filter((r) => Number.isFinite(r.step)).sort((a, b) => a.step - b.step);
  const points = (key: SeriesKey) =>
    sorted.filter((r) => typeof r[key] === 'number' && Number.isFinite(r[key])).map((r) => [r.step, r[key] as number] as const);
  const panels = PANELS.map((p) => ({ ...p, series: p.series.filter((k) => points(k).length > 0) })).filter((p) => p.series.length > 0);
  const titleHeight = options.title === undefined ? 0 : 28;
  const height = titleHeight + Math.max(1, panels.length) * panelHeight;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`,
  ];
  if (options.title !== undefined) {
    out.push(`<text x="${num(width / 2)}" y="20" text-anchor="middle" font-size="15">${escapeXml(options.title)}</text>`);
  }
  if (panels.length === 0) {
    out.push(`<text x="${num(width / 2)}" y="${num(titleHeight + panelHeight / 2)}" text-anchor="middle">no loss, learning-rate or validation records</text>`);
    return `${out.join('\n')}\n</svg>\n`;
  }
  const steps = sorted.map((r) => r.step);
  const [x0, x1] = domain(steps, false);
  const epochMarks: number[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!.epoch;
    const b = sorted[i]!.epoch;
    if (a !== undefined && b !== undefined && a !== b) epochMarks.push(sorted[i]!.step);
  }

  panels.forEach((panel, p) => {
    const top = titleHeight + p * panelHeight;
    const left = CURVE_MARGIN.left;
    const right = width - CURVE_MARGIN.right;
    const plotTop = top + CURVE_MARGIN.top;
    const plotBottom = top + panelHeight - CURVE_MARGIN.bottom;
    const [y0, y1] = domain(panel.series.flatMap((k) => points(k).map((q) => q[1])), true);
    const sx = (x: number) => left + ((x - x0) / (x1 - x0)) * (right - left);
    const sy = (y: number) => plotBottom - ((y - y0) / (y1 - y0)) * (plotBottom - plotTop);
    out.push(`<g data-panel="${escapeXml(panel.title)}">`);
    out.push(`<text x="${num(left)}" y="${num(top + 20)}" font-size="13">${escapeXml(panel.title)}</text>`);
    for (const t of niceTicks(y0, y1)) {
      const y = num(sy(t));
      out.push(`<line x1="${num(left)}" y1="${y}" x2="${num(right)}" y2="${y}" stroke="#e4e4e4"/>`);
      out.push(`<line x1="${num(left - 5)}" y1="${y}" x2="${num(left)}" y2="${y}" stroke="black"/>`);
      out.push(`<text x="${num(left - 8)}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>`);
    }
    for (const t of niceTicks(x0, x1, 6)) {
      const x = num(sx(t));
      out.push(`<line x1="${x}" y1="${num(plotBottom)}" x2="${x}" y2="${num(plotBottom + 5)}" stroke="black"/>`);
      out.push(`<text x="${x}" y="${num(plotBottom + 18)}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
    }
    for (const s of epochMarks) {
      const x = num(sx(s));
      out.push(`<line x1="${x}" y1="${num(plotTop)}" x2="${x}" y2="${num(plotBottom)}" stroke="#b0b0b0" stroke-dasharray="4 3"/>`);
    }
    out.push(`<line x1="${num(left)}" y1="${num(plotBottom)}" x2="${num(right)}" y2="${num(plotBottom)}" stroke="black"/>`);
    out.push(`<line x1="${num(left)}" y1="${num(plotTop)}" x2="${num(left)}" y2="${num(plotBottom)}" stroke="black"/>`);
    out.push(`<text x="${num((left + right) / 2)}" y="${num(plotBottom + 36)}" text-anchor="middle">step</text>`);
    const midY = num((plotTop + plotBottom) / 2);
    out.push(`<text x="16" y="${midY}" text-anchor="middle" transform="rotate(-90 16 ${midY})">${escapeXml(panel.yLabel)}</text>`);
    for (const key of panel.series) {
      const pts = points(key).map(([x, y]) => `${num(sx(x))},${num(sy(y))}`).join(' ');
      out.push(`<polyline data-series="${key}" fill="none" stroke="${rgb(SERIES[key].colour)}" stroke-width="1.5" points="${pts}"/>`);
    }
    const legendX = right - 156;
    out.push(`<rect x="${num(legendX)}" y="${num(plotTop - 6)}" width="150" height="${num(panel.series.length * 16 + 4)}" fill="white" fill-opacity="0.85"/>`);
    panel.series.forEach((key, i) => {
      const y = plotTop + 4 + i * 16;
      const x = legendX + 6;
      out.push(`<line x1="${num(x)}" y1="${num(y)}" x2="${num(x + 20)}" y2="${num(y)}" stroke="${rgb(SERIES[key].colour)}" stroke-width="2"/>`);
      out.push(`<text x="${num(x + 26)}" y="${num(y)}" dominant-baseline="middle">${escapeXml(SERIES[key].label)}</text>`);
    });
    out.push('</g>');
  });
  return `${out.join('\n')}\n</svg>\n`;
}
