/**
 * The pre-training check of a dataset: every file referenced by the chosen splits is read once
 * (shared images are read once), decoded, and masks are inspected; the prompt choice is checked
 * against every entry. All problems are collected and returned together, so a user fixes them in
 * one go instead of meeting them one per crash in the middle of training.
 */
import { type Image, decodeImage, sniffFormat } from '../../models/image/index.js';
import type { AnnotationEntry } from './anns.js';
import { maxFirstChannel } from './mask.js';
import { type PromptChoice, formatPromptChoice, promptChoiceProblem } from './prompt.js';
import type { DatasetSource } from './source.js';

export interface CheckOptions {
  /** Splits to check (default: all the dataset read). */
  splits?: readonly string[];
  /** 'decode' (default) decodes every image and mask; 'exists' only reads them and checks the format. */
  level?: 'decode' | 'exists';
  /** Prompt choice to validate (default: the dataset's). */
  prompt?: PromptChoice;
  /** Files read at once (default 8). */
  concurrency?: number;
}

export type FileProblemKind = 'missing' | 'unreadable' | 'mask-values' | 'prompt';

export interface FileProblem {
  dataset: string;
  location: string;
  split: string;
  /** First entry that references the file (or that shows the prompt problem). */
  index: number;
  /** Path relative to the dataset root ('images/a.jpg'), or 'anns/<split>.json' for prompt problems. */
  path: string;
  kind: FileProblemKind;
  detail: string;
}

/** What the check needs of a dataset (MedVlsmDataset implements it). */
export interface CheckableDataset {
  readonly name: string;
  readonly source: DatasetSource;
  readonly prompt: PromptChoice;
  readonly maskThreshold: number;
  readonly splitNames: string[];
  entries(split: string): readonly AnnotationEntry[];
}

const MAX_LISTED = 100;

/** One error for all problems of one or several datasets. */
export class DatasetFilesError extends Error {
  readonly problems: readonly FileProblem[];
  constructor(problems: readonly FileProblem[]) {
    const counts = new Map<string, number>();
    for (const p of problems) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
    const tally = [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
    const lines = problems.slice(0, MAX_LISTED).map(
      (p) => `  ${p.dataset}/${p.path} (${p.split} entry ${p.index}): ${p.kind}: ${p.detail}`,
    );
    if (problems.length > MAX_LISTED) lines.push(`  ... and ${problems.length - MAX_LISTED} more (error.problems lists all)`);
    const where = [...new Set(problems.map((p) => `${p.dataset} = ${p.location}`))].join('; ');
    super(`dataset check failed before training: ${problems.length} problem(s) (${tally}) in ${where}\n${lines.join('\n')}`);
    this.name = 'DatasetFilesError';
    this.problems = problems;
  }
}

interface FileRef {
  path: string;
  split: string;
  index: number;
  isMask: boolean;
}

export async function checkDataset(dataset: CheckableDataset, options: CheckOptions = {}): Promise<FileProblem[]> {
  const splits = options.splits ?? dataset.splitNames;
  const choice = options.prompt ?? dataset.prompt;
  const problems: FileProblem[] = [];
  const problem = (split: string, index: number, path: string, kind: FileProblemKind, detail: string) =>
    problems.push({ dataset: dataset.name, location: dataset.source.location, split, index, path, kind, detail });

  const files = new Map<string, FileRef>();
  for (const split of splits) {
    const entries = dataset.entries(split);
    // Prompt problems: one line per distinct problem and split, with the count and first entry.
    const promptIssues = new Map<string, { first: number; count: number }>();
    entries.forEach((e, index) => {
      for (const [path, isMask] of [[`images/${e.imgName}`, false], [`masks/${e.maskName}`, true]] as const) {
        if (!files.has(path)) files.set(path, { path, split, index, isMask });
      }
      const issue = promptChoiceProblem(e, choice);
      if (issue !== null) {
        const seen = promptIssues.get(issue);
        if (seen) seen.count++;
        else promptIssues.set(issue, { first: index, count: 1 });
      }
    });
    for (const [issue, { first, count }] of promptIssues) {
      problem(split, first, `anns/${split}.json`, 'prompt',
        `${count} of ${entries.length} entries: ${issue} (prompt choice "${formatPromptChoice(choice)}")`);
    }
  }

  const refs = [...files.values()];
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const found: Array<FileProblem[]> = new Array(refs.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < refs.length; i = next++) {
      found[i] = await checkFile(dataset, refs[i]!, options.level ?? 'decode');
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, refs.length) }, worker));
  for (const list of found) problems.push(...list);
  return problems;
}

async function checkFile(dataset: CheckableDataset, ref: FileRef, level: 'decode' | 'exists'): Promise<FileProblem[]> {
  const out = (kind: FileProblemKind, detail: string): FileProblem[] => [
    { dataset: dataset.name, location: dataset.source.location, split: ref.split, index: ref.index, path: ref.path, kind, detail },
  ];
  let bytes: Uint8Array | null;
  try {
    bytes = await dataset.source.read(ref.path);
  } catch (error) {
    return out('unreadable', (error as Error).message);
  }
  if (bytes === null) return out('missing', 'file not found');
  if (level === 'exists') {
    const format = sniffFormat(bytes);
    return format === 'png' || format === 'jpeg' ? [] : out('unreadable', `not a PNG or JPEG file (looks like: ${format})`);
  }
  let image: Image;
  try {
    image = decodeImage(bytes, ref.path);
  } catch (error) {
    return out('unreadable', (error as Error).message);
  }
  if (ref.isMask) {
    const max = maxFirstChannel(image);
    if (max > 0 && max <= dataset.maskThreshold) {
      return out(
        'mask-values',
        `largest mask value is ${max}, so binarising with value > ${dataset.maskThreshold} leaves it empty ` +
          '(a label map stored as 0/1?); MedVLSM expects 0/255 masks; pass maskThreshold: 0 to read 0/1 masks',
      );
    }
  }
  return [];
}
