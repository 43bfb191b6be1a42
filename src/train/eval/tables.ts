/**
 * Reports of an evaluation (evaluate.ts) and a language-reliance report (language.ts):
 *
 * - Markdown: the study's tables, `mean ± std` (population std) with the number of images n;
 * - JSON: stable (object keys sorted at every level, arrays in order), pretty (2 spaces), NaN and
 *   infinities as null, one trailing newline: the same result always gives the same bytes;
 * - CSV: one row per image and prompt, a header row, RFC 4180 (CRLF line ends; a field with a
 *   comma, quote, CR or LF is quoted, quotes doubled), numbers at full precision, empty for
 *   missing / NaN values.
 */
import type { MeanStd } from '../metrics.js';
import type { EvalResult } from './evaluate.js';
import type { LanguageReport, RelianceFigures, ScoreSummary } from './language.js';

export interface TableOptions {
  /** Decimals of the scores (default 4). */
  digits?: number;
}

/** '0.8123 ± 0.0456' ('n/a' for NaN). */
export function formatMeanStd(m: MeanStd, digits = 4): string {
  if (!Number.isFinite(m.mean)) return 'n/a';
  const std = Number.isFinite(m.std) ? m.std.toFixed(digits) : 'n/a';
  return `${m.mean.toFixed(digits)} ± ${std}`;
}

function escapeCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n|\r/g, ' ');
}

/** A GitHub-flavoured Markdown table; `numeric` columns are right-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], numeric: readonly number[] = []): string {
  const line = (cells: readonly string[]) => `| ${cells.map(escapeCell).join(' | ')} |`;
  const rule = header.map((_, i) => (numeric.includes(i) ? '---:' : '---'));
  return [line(header), `|${rule.map((r) => ` ${r} `).join('|')}|`, ...rows.map(line)].join('\n');
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** The evaluation as Markdown: per dataset x prompt, then single- vs multi-object images. */
export function evalMarkdown(result: EvalResult, options: TableOptions = {}): string {
  const d = options.digits ?? 4;
  const out: string[] = [
    `## Evaluation: split "${result.split}", threshold ${result.threshold}, ${result.segmenter.kind}`,
    '',
    markdownTable(
      ['dataset', 'prompt', 'n', 'Dice (mean ± std)', 'IoU (mean ± std)'],
      result.groups.map((g) => [g.dataset, g.prompt_key, String(g.n), formatMeanStd(g.dice, d), formatMeanStd(g.iou, d)]),
      [2],
    ),
  ];
  if (result.object_groups.length > 0) {
    out.push(
      '',
      '### Single- vs multi-object images',
      '',
      markdownTable(
        ['dataset', 'prompt', 'objects', 'n', 'Dice (mean ± std)', 'IoU (mean ± std)'],
        result.object_groups.map((g) => [g.dataset, g.prompt_key, g.objects, String(g.n), formatMeanStd(g.dice, d), formatMeanStd(g.iou, d)]),
        [3],
      ),
    );
  }
  const notes: string[] = [];
  if (!result.segmenter.usesText) notes.push('image-only segmenter: prompts are ignored, every prompt type scores the same.');
  for (const s of result.skipped) notes.push(`${s.dataset}: ${s.count} sample(s) have no prompt "${s.prompt_key}" and were skipped for it.`);
  if (result.resized > 0) notes.push(`${result.resized} prediction(s) were resized (nearest) to a mask whose size differs from its image.`);
  if (notes.length > 0) out.push('', ...notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

function summaryCells(s: ScoreSummary | undefined, d: number): string[] {
  return s === undefined ? ['0', 'n/a', 'n/a'] : [String(s.n), formatMeanStd(s.dice, d), formatMeanStd(s.iou, d)];
}

/** The language-reliance report as Markdown. */
export function languageMarkdown(report: LanguageReport, options: TableOptions = {}): string {
  const d = options.digits ?? 4;
  const keys = [...new Set(report.datasets.map((x) => `${x.name}: ${x.prompt_key}`))].join(', ');
  const out: string[] = [
    `## Language reliance: split "${report.split}", threshold ${report.threshold}, ${report.segmenter.kind} (true prompt ${keys})`,
    '',
    markdownTable(
      ['variant', 'n', 'Dice (mean ± std)', 'IoU (mean ± std)'],
      report.variants.map((v) => [v.variant, ...summaryCells(v, d)]),
      [1],
    ),
  ];
  const split = report.variants.some((v) => v.single !== undefined || v.multi !== undefined);
  if (split) {
    out.push(
      '',
      '### Single- vs multi-object images',
      '',
      markdownTable(
        ['variant', 'objects', 'n', 'Dice (mean ± std)', 'IoU (mean ± std)'],
        report.variants.flatMap((v) => [
          [v.variant, 'single', ...summaryCells(v.single, d)],
          [v.variant, 'multi', ...summaryCells(v.multi, d)],
        ]),
        [2],
      ),
    );
  }
  if (report.per_dataset.length > report.variants.length) {
    out.push(
      '',
      '### Per dataset',
      '',
      markdownTable(
        ['dataset', 'variant', 'n', 'Dice (mean ± std)', 'IoU (mean ± std)'],
        report.per_dataset.map((v) => [v.dataset, v.variant, ...summaryCells(v, d)]),
        [2],
      ),
    );
  }
  const figure = (name: string, f: RelianceFigures) => {
    const parts = [`overall ${fixed(f.overall, d)}`];
    if (f.single !== undefined) parts.push(`single-object ${fixed(f.single, d)}`);
    if (f.multi !== undefined) parts.push(`multi-object ${fixed(f.multi, d)}`);
    return `- ${name}: ${parts.join(', ')}`;
  };
  out.push('', figure('reliance (true Dice - shuffled Dice)', report.reliance), figure('changed-attribute drop (true Dice - changed Dice)', report.changed_drop));
  if (report.changed_skipped > 0) out.push(`- ${report.changed_skipped} sample(s) state no changeable attribute and have no changed variant.`);
  const same = report.datasets.reduce((n, x) => n + x.shuffled_same_image, 0);
  if (same > 0) out.push(`- ${same} shuffled prompt(s) come from the same image (one image holds more than half the samples).`);
  if (report.note !== null) out.push(`- note: ${report.note}`);
  return `${out.join('\n')}\n`;
}

function sortKeys(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** Stable pretty JSON (sorted keys, NaN as null, trailing newline). */
export function stableJson(value: unknown): string {
  return `${JSON.stringify(sortKeys(value), null, 2)}\n`;
}

/** One CSV field (RFC 4180 quoting; numbers in full precision, NaN / undefined / null empty). */
export function csvField(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number' && !Number.isFinite(value)) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** A CSV document: header plus rows, CRLF line ends (including after the last row). */
export function toCsv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [header, ...rows].map((r) => `${r.map(csvField).join(',')}\r\n`).join('');
}

export const EVAL_CSV_COLUMNS = [
  'dataset', 'split', 'index', 'img_name', 'mask_name', 'prompt_key', 'prompt', 'dice', 'iou', 'truth_pixels', 'predicted_pixels', 'objects',
] as const;

/** Per-image rows of an evaluation. */
export function evalCsv(result: EvalResult): string {
  return toCsv(EVAL_CSV_COLUMNS, result.records.map((r) => EVAL_CSV_COLUMNS.map((c) => r[c])));
}

export const LANGUAGE_CSV_COLUMNS = [
  'dataset', 'split', 'index', 'img_name', 'variant', 'prompt', 'dice', 'iou', 'objects', 'source_index', 'attribute', 'from', 'to',
] as const;

/** Per-image rows of a language report (one per variant). */
export function languageCsv(report: LanguageReport): string {
  return toCsv(LANGUAGE_CSV_COLUMNS, report.records.map((r) => LANGUAGE_CSV_COLUMNS.map((c) => r[c])));
}
