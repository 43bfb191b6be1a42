/**
 * The altered prompts of the language-reliance report (language.ts):
 *
 * - shuffled: each sample gets the prompt of ANOTHER image's sample, by a seeded derangement
 *   (`shufflePartners`);
 * - changed: the true prompt with ONE attribute word swapped for another value of the same kind
 *   (`changeOneAttribute`): colour, size, shape or location, from the vocabularies the prompt
 *   writer uses (attributes.ts: NAMED_COLOURS, GRID_LOCATIONS; the size and shape classes).
 *
 * Choices (ours, documented):
 * - The derangement lays the samples out image by image (images and samples within an image in a
 *   seeded order) and gives sample k the prompt of sample k + m (cyclically), m = the most
 *   samples any image has. Runs of one image are at most m long, so no sample gets a prompt of its
 *   own image whenever that is possible at all (no image holds more than half the samples); when
 *   it is not, m = floor(n / 2) and the same-image pairs are counted.
 * - A changed location changes one WORD: 'top left' becomes 'top right' or 'bottom left', a
 *   one-word location ('top', 'center', ...) another one-word location; so every change replaces
 *   exactly one word of the text.
 * - Entries with known attributes (the synthetic generator's `attributes`, the prompt tool's
 *   `prompt_attributes`) change only a word that states one of them; other entries change any
 *   vocabulary word found in the text (whole words, longest match first).
 */
import type { AnnotationEntry } from '../data/anns.js';
import { GRID_LOCATIONS, NAMED_COLOURS } from '../data/attributes.js';
import { randInt, rngFor, shuffleInPlace } from '../data/random.js';
import { type ChangeableAttribute, attributeValues } from '../synthetic/generate.js';

export type { ChangeableAttribute } from '../synthetic/generate.js';

/** The words each attribute kind may take in a prompt. */
export const ATTRIBUTE_VOCABULARY: Readonly<Record<ChangeableAttribute, readonly string[]>> = {
  colour: Object.keys(NAMED_COLOURS),
  size: attributeValues('endoscopy', 'size'),
  shape: attributeValues('endoscopy', 'shape'),
  location: GRID_LOCATIONS,
};

const KINDS: readonly ChangeableAttribute[] = ['colour', 'size', 'shape', 'location'];

export interface ShufflePlan {
  /** partner[i]: the sample whose prompt sample i gets (-1 when there is no other sample). */
  partner: number[];
  /** Samples whose partner shows the same image (0 unless unavoidable). */
  sameImage: number;
}

/**
 * A seeded derangement of n = imageNames.length samples that pairs samples of different images
 * where possible (see the file comment). Deterministic in (imageNames, seed, label).
 */
export function shufflePartners(imageNames: readonly string[], seed: number, label = ''): ShufflePlan {
  const n = imageNames.length;
  if (n < 2) return { partner: new Array<number>(n).fill(-1), sameImage: 0 };
  const groups = new Map<string, number[]>();
  imageNames.forEach((name, i) => {
    const g = groups.get(name);
    if (g) g.push(i);
    else groups.set(name, [i]);
  });
  const rng = rngFor(seed, 'language-shuffle', label, n);
  const layout: number[] = [];
  for (const name of shuffleInPlace([...groups.keys()], rng)) layout.push(...shuffleInPlace([...groups.get(name)!], rng));
  const largest = Math.max(...[...groups.values()].map((g) => g.length));
  const shift = 2 * largest <= n ? largest : Math.max(1, Math.floor(n / 2));
  const partner = new Array<number>(n);
  let sameImage = 0;
  for (let k = 0; k < n; k++) {
    const i = layout[k]!;
    const j = layout[(k + shift) % n]!;
    partner[i] = j;
    if (imageNames[i] === imageNames[j]) sameImage++;
  }
  return { partner, sameImage };
}

export interface AttributeChange {
  attribute: ChangeableAttribute;
  from: string;
  to: string;
  /** The changed prompt. */
  text: string;
}

interface WordMatch {
  attribute: ChangeableAttribute;
  value: string;
  start: number;
  end: number;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whole-word occurrences of vocabulary values in `text`, longest first, not overlapping. */
export function findAttributeWords(text: string): WordMatch[] {
  const all: WordMatch[] = [];
  for (const attribute of KINDS) {
    for (const value of ATTRIBUTE_VOCABULARY[attribute]) {
      const re = new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(value)}(?![\\p{L}\\p{N}])`, 'giu');
      for (const m of text.matchAll(re)) all.push({ attribute, value, start: m.index, end: m.index + m[0].length });
    }
  }
  all.sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
  const kept: WordMatch[] = [];
  for (const m of all) if (!kept.some((k) => m.start < k.end && k.start < m.end)) kept.push(m);
  return kept.sort((a, b) => a.start - b.start);
}

/** The attribute values an entry states (synthetic `attributes` or the prompt tool's `prompt_attributes`), or null. */
export function knownAttributes(entry: AnnotationEntry | null): Partial<Record<ChangeableAttribute, string[]>> | null {
  if (entry === null) return null;
  const raw = entry.extra.attributes ?? entry.extra.prompt_attributes;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const a = raw as Record<string, unknown>;
  const out: Partial<Record<ChangeableAttribute, string[]>> = {};
  for (const kind of KINDS) {
    const values = kind === 'location' && Array.isArray(a.locations) ? a.locations : [a[kind]];
    const strings = values.filter((v): v is string => typeof v === 'string' && v !== '');
    if (strings.length > 0) out[kind] = strings.map((s) => s.toLowerCase());
  }
  return out;
}

/** Values of the same kind that differ from `from` in exactly one word (same word count). */
export function oneWordAlternatives(attribute: ChangeableAttribute, from: string): string[] {
  const words = from.toLowerCase().split(' ');
  return ATTRIBUTE_VOCABULARY[attribute].filter((v) => {
    const w = v.split(' ');
    if (w.length !== words.length) return false;
    let diff = 0;
    for (let i = 0; i < w.length; i++) if (w[i] !== words[i]) diff++;
    return diff === 1;
  });
}

/**
 * `text` with one attribute word changed (see the file comment), chosen with `rng`; null when the
 * text states no changeable attribute (of the entry's, when the entry lists them).
 */
export function changeOneAttribute(text: string, entry: AnnotationEntry | null, rng: () => number): AttributeChange | null {
  const known = knownAttributes(entry);
  let matches = findAttributeWords(text);
  if (known !== null) matches = matches.filter((m) => known[m.attribute]?.includes(m.value.toLowerCase()) ?? false);
  const usable = matches
    .map((m) => ({ m, alternatives: oneWordAlternatives(m.attribute, text.slice(m.start, m.end)) }))
    .filter((u) => u.alternatives.length > 0);
  if (usable.length === 0) return null;
  // Kind first (each kind present equally likely), then an occurrence, then the new value.
  const kinds = KINDS.filter((k) => usable.some((u) => u.m.attribute === k));
  const kind = kinds[randInt(rng, kinds.length)]!;
  const ofKind = usable.filter((u) => u.m.attribute === kind);
  const { m, alternatives } = ofKind[randInt(rng, ofKind.length)]!;
  const from = text.slice(m.start, m.end);
  let to = alternatives[randInt(rng, alternatives.length)]!;
  if (from[0] !== undefined && from[0] !== from[0].toLowerCase()) to = to[0]!.toUpperCase() + to.slice(1);
  return { attribute: kind, from, to, text: text.slice(0, m.start) + to + text.slice(m.end) };
}
