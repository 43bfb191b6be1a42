/**
 * Which prompt a sample gets in a run (MedVLSM's `prompt_type`, `override_prompt`, `zero_prompt`):
 *
 * - `{ kind: 'key', key: 'p3' }`: that prompt kind of every entry;
 * - `{ kind: 'random' }`: per sample and epoch, a kind drawn uniformly from p1..pN (never p0), as the
 *   study's `random.choice(list(prompts.values())[1:])`;
 * - `{ kind: 'override', text }`: the same text for every sample;
 * - `{ kind: 'empty' }`: the empty string.
 *
 * When the chosen value is a list of alternatives, one is drawn uniformly, again per sample and
 * epoch. Unlike the study (Python's global `random`), the draws are seeded by (seed, split, epoch,
 * sample index), so runs repeat exactly and resume mid-epoch without changing what comes next.
 */
import { type AnnotationEntry, sortedPromptKeys } from './anns.js';
import { randInt, rngFor } from './random.js';

export type PromptChoice =
  | { kind: 'key'; key: string }
  | { kind: 'random' }
  | { kind: 'override'; text: string }
  | { kind: 'empty' };

/** The prompt a sample got: its text and where it came from. */
export interface ChosenPrompt {
  text: string;
  /** The prompt kind ('p3'), or 'override' / 'empty'. */
  key: string;
  /** Index of the alternative when the value was a list, else null. */
  alternative: number | null;
}

/**
 * Parses the textual form used in configs and on the command line: 'p3', 'random', 'empty' (or ''),
 * or 'text:<prompt>' for an override.
 */
export function parsePromptChoice(spec: string): PromptChoice {
  const s = spec.trim();
  if (s === '' || s === 'empty') return { kind: 'empty' };
  if (s === 'random') return { kind: 'random' };
  if (/^p\d+$/.test(s)) return { kind: 'key', key: s };
  if (spec.startsWith('text:')) return { kind: 'override', text: spec.slice('text:'.length) };
  throw new Error(
    `prompt choice ${JSON.stringify(spec)}: expected a prompt key such as "p3", "random", "empty", ` +
      'or "text:<prompt>" to use one text for every sample',
  );
}

/** The textual form of a choice (parsePromptChoice's inverse). */
export function formatPromptChoice(choice: PromptChoice): string {
  switch (choice.kind) {
    case 'key':
      return choice.key;
    case 'random':
      return 'random';
    case 'empty':
      return 'empty';
    case 'override':
      return `text:${choice.text}`;
  }
}

/** The keys `random` draws from for an entry: p1..pN (pN keys sorted by N, p0 left out). */
export function randomPromptKeys(entry: AnnotationEntry): string[] {
  return sortedPromptKeys(Object.keys(entry.prompts)).filter((k) => k !== 'p0');
}

/**
 * What is wrong with using `choice` on `entry` (null when nothing): a missing key, or no p1..pN
 * for 'random'.
 */
export function promptChoiceProblem(entry: AnnotationEntry, choice: PromptChoice): string | null {
  if (choice.kind === 'key' && !(choice.key in entry.prompts)) {
    const have = Object.keys(entry.prompts);
    return `has no prompt "${choice.key}" (it has ${have.length > 0 ? have.join(', ') : 'no prompts'})`;
  }
  if (choice.kind === 'random' && randomPromptKeys(entry).length === 0) {
    return 'has no prompts p1..pN to draw from (prompt choice "random")';
  }
  return null;
}

export interface PromptDrawContext {
  seed: number;
  /** Split (or any label that keeps the streams of different sets apart). */
  split: string;
  epoch: number;
  index: number;
}

/** The prompt of one sample in one epoch (deterministic in seed, split, epoch and index). */
export function choosePrompt(entry: AnnotationEntry, choice: PromptChoice, at: PromptDrawContext): ChosenPrompt {
  if (choice.kind === 'override') return { text: choice.text, key: 'override', alternative: null };
  if (choice.kind === 'empty') return { text: '', key: 'empty', alternative: null };
  const problem = promptChoiceProblem(entry, choice);
  if (problem !== null) throw new Error(`sample ${at.index} (${entry.imgName}) ${problem}`);
  const rng = rngFor(at.seed, 'prompt', at.split, at.epoch, at.index);
  let key: string;
  if (choice.kind === 'random') {
    const keys = randomPromptKeys(entry);
    key = keys[randInt(rng, keys.length)]!;
  } else {
    key = choice.key;
  }
  const value = entry.prompts[key]!;
  if (typeof value === 'string') return { text: value, key, alternative: null };
  const alternative = randInt(rng, value.length);
  return { text: value[alternative]!, key, alternative };
}
