/**
 * Dataset summaries: per split the sample count, distinct images and masks, the prompt kinds
 * (how many entries have each, how many give a list of alternatives, how many are empty) and the
 * extra keys the loader ignores. `formatSummary` renders it as Markdown tables.
 */
import { type AnnotationEntry, promptKeyNumber } from './anns.js';

export interface PromptKindSummary {
  key: string;
  /** Entries that have this prompt kind. */
  entries: number;
  /** Entries whose value is a list of alternatives. */
  withAlternatives: number;
  /** Longest list of alternatives (1 when every value is a plain string). */
  maxAlternatives: number;
  /** Entries whose value is '' (or whose alternatives are all ''). */
  empty: number;
  /** Distinct texts over all entries and alternatives. */
  distinctTexts: number;
}

export interface SplitSummary {
  split: string;
  samples: number;
  images: number;
  masks: number;
  promptKinds: PromptKindSummary[];
  /** Keys other than img_name, mask_name and prompts (ignored by the loader). */
  extraKeys: string[];
}

export interface DatasetSummary {
  name: string;
  location: string;
  splits: SplitSummary[];
}

/** Prompt keys in a stable order: pN by N first, then any other keys alphabetically. */
function compareKeys(a: string, b: string): number {
  const na = promptKeyNumber(a);
  const nb = promptKeyNumber(b);
  if (na !== null && nb !== null) return na - nb;
  if (na !== null) return -1;
  if (nb !== null) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function summarizeSplit(split: string, entries: readonly AnnotationEntry[]): SplitSummary {
  const kinds = new Map<string, PromptKindSummary & { texts: Set<string> }>();
  const extra = new Set<string>();
  for (const e of entries) {
    for (const k of Object.keys(e.extra)) extra.add(k);
    for (const [key, value] of Object.entries(e.prompts)) {
      let s = kinds.get(key);
      if (s === undefined) {
        s = { key, entries: 0, withAlternatives: 0, maxAlternatives: 1, empty: 0, distinctTexts: 0, texts: new Set() };
        kinds.set(key, s);
      }
      s.entries++;
      const texts = typeof value === 'string' ? [value] : value;
      if (typeof value !== 'string') {
        s.withAlternatives++;
        s.maxAlternatives = Math.max(s.maxAlternatives, value.length);
      }
      if (texts.every((t) => t === '')) s.empty++;
      for (const t of texts) s.texts.add(t);
    }
  }
  const promptKinds = [...kinds.values()]
    .sort((a, b) => compareKeys(a.key, b.key))
    .map(({ texts, ...s }) => ({ ...s, distinctTexts: texts.size }));
  return {
    split,
    samples: entries.length,
    images: new Set(entries.map((e) => e.imgName)).size,
    masks: new Set(entries.map((e) => e.maskName)).size,
    promptKinds,
    extraKeys: [...extra].sort(),
  };
}

/** Markdown: one line per split, then a table of its prompt kinds. */
export function formatSummary(summary: DatasetSummary): string {
  const lines = [`## ${summary.name} (${summary.location})`, ''];
  for (const s of summary.splits) {
    lines.push(`### ${s.split}: ${s.samples} samples, ${s.images} images, ${s.masks} masks`);
    if (s.extraKeys.length > 0) lines.push(`Ignored keys: ${s.extraKeys.join(', ')}`);
    lines.push('', '| prompt | entries | with alternatives | max alternatives | empty | distinct texts |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const k of s.promptKinds) {
      lines.push(
        `| ${k.key} | ${k.entries} | ${k.withAlternatives} | ${k.maxAlternatives} | ${k.empty} | ${k.distinctTexts} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}
