/**
 * A small line plot on a canvas (training loss per step, validation Dice per evaluation): axes
 * with rounded ticks, one polyline per series, points when a series is short. Re-drawn whole on
 * every update; fine for the few thousand points of a browser finetune.
 */

export interface Series {
  label: string;
  color: string;
  points: Array<[number, number]>;
}

export interface PlotOptions {
  xLabel: string;
  yLabel: string;
  /** Fixed y range (Dice: [0, 1]); default: the data's range with a margin. */
  yRange?: [number, number];
}

const PAD = { left: 58, right: 16, top: 14, bottom: 40 };

/** 1, 2 or 5 times a power of ten, about `count` ticks over [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

export class LinePlot {
  private series: Series[] = [];

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly options: PlotOptions,
  ) {
    this.draw();
  }

  set(series: Series[]): void {
    this.series = series;
    this.draw();
  }

  draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const { width: W, height: H } = this.canvas;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, W, H);
    const all = this.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const [x0, x1] = all.length > 0 ? [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))] : [0, 10];
    let [y0, y1] = this.options.yRange ?? (all.length > 0 ? [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))] : [0, 1]);
    if (!this.options.yRange) {
      const margin = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 1;
      [y0, y1] = [y0 - margin, y1 + margin];
    }
    const xHi = x1 > x0 ? x1 : x0 + 1;
    const px = (x: number) => PAD.left + ((x - x0) / (xHi - x0)) * (W - PAD.left - PAD.right);
    const py = (y: number) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);

    ctx.font = '12px system-ui, sans-serif';
    ctx.strokeStyle = '#e3e6eb';
    ctx.fillStyle = '#5d6677';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const t of niceTicks(y0, y1)) {
      ctx.beginPath();
      ctx.moveTo(PAD.left, py(t));
      ctx.lineTo(W - PAD.right, py(t));
      ctx.stroke();
      ctx.fillText(formatTick(t), PAD.left - 6, py(t));
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const t of niceTicks(x0, xHi).filter((t) => Number.isInteger(t))) ctx.fillText(String(t), px(t), H - PAD.bottom + 6);
    ctx.fillText(this.options.xLabel, (PAD.left + W - PAD.right) / 2, H - 16);
    ctx.save();
    ctx.translate(14, (PAD.top + H - PAD.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(this.options.yLabel, 0, -6);
    ctx.restore();
    ctx.strokeStyle = '#9aa3b2';
    ctx.strokeRect(PAD.left, PAD.top, W - PAD.left - PAD.right, H - PAD.top - PAD.bottom);

    if (all.length === 0) {
      ctx.textBaseline = 'middle';
      ctx.fillText('no data yet', (PAD.left + W - PAD.right) / 2, (PAD.top + H - PAD.bottom) / 2);
      return;
    }
    for (const s of this.series) {
      const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(px(x), py(y)) : ctx.lineTo(px(x), py(y))));
      ctx.stroke();
      if (pts.length <= 60) for (const [x, y] of pts) ctx.fillRect(px(x) - 2.5, py(y) - 2.5, 5, 5);
    }
    ctx.textAlign = 'left';
    ctx.textBaseline = 'top';
    this.series.forEach((s, i) => {
      ctx.fillStyle = s.color;
      ctx.fillRect(W - PAD.right - 150, PAD.top + 8 + i * 16, 10, 10);
      ctx.fillStyle = '#1d2330';
      ctx.fillText(s.label, W - PAD.right - 134, PAD.top + 7 + i * 16);
    });
  }
}
