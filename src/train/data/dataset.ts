/**
 * A dataset in MedVLSM's layout, read from any DatasetSource:
 *
 *   anns/{train,val,test}.json   entries (see anns.ts)
 *   images/<img_name>            PNG or JPEG, converted to RGB (Pillow's convert('RGB'); the EXIF
 *                                orientation is not applied, as Image.open does not)
 *   masks/<mask_name>            PNG or JPEG, binarised from its first channel (mask.ts explains the
 *                                `> 127` choice); kept at its original resolution
 *
 * Browser-safe (no Node API). Opening reads only the annotation files; `check()` /
 * `assertDatasetsReadable()` read every referenced file once and report all problems together,
 * before training starts.
 */
import { type Image, decodeImage, toRgb } from '../../models/image/index.js';
import { type AnnotationEntry, parseAnnotations } from './anns.js';
import { epochBatches, type BatchOptions } from './batching.js';
import { checkDataset, type CheckOptions, DatasetFilesError, type FileProblem } from './check.js';
import { type BinaryMask, MASK_THRESHOLD, binarizeMask } from './mask.js';
import { type ChosenPrompt, type PromptChoice, choosePrompt } from './prompt.js';
import type { DatasetSource } from './source.js';
import { type DatasetSummary, summarizeSplit } from './summary.js';

export const DEFAULT_SPLITS: readonly string[] = ['train', 'val', 'test'];

export interface DatasetOptions {
  /** Name in reports (default: the last part of the source's location). */
  name?: string;
  /** Splits to read; each must exist. Default: those of train/val/test that exist (at least one). */
  splits?: readonly string[];
  /** Prompt choice of the run (default 'random', as the study's training). */
  prompt?: PromptChoice;
  /** Seed of prompt draws and epoch orders (default 0). */
  seed?: number;
  /** Mask foreground is first channel > maskThreshold (default 127). */
  maskThreshold?: number;
  /** Keep decoded images and masks in memory (default false). */
  cache?: boolean;
}

export interface Sample {
  dataset: string;
  split: string;
  index: number;
  epoch: number;
  entry: AnnotationEntry;
  prompt: ChosenPrompt;
  /** RGB, 8-bit, original resolution. */
  image: Image;
  /** Original resolution (metrics are computed at this size). */
  mask: BinaryMask;
}

export class MedVlsmDataset {
  readonly name: string;
  readonly source: DatasetSource;
  readonly prompt: PromptChoice;
  readonly seed: number;
  readonly maskThreshold: number;
  private readonly splitEntries: ReadonlyMap<string, readonly AnnotationEntry[]>;
  private readonly cache: Map<string, Image | BinaryMask> | null;

  private constructor(source: DatasetSource, splits: Map<string, AnnotationEntry[]>, options: DatasetOptions) {
    this.source = source;
    this.splitEntries = splits;
    this.name = options.name ?? (source.location.split(/[\\/]/).filter((p) => p !== '').pop() || 'dataset');
    this.prompt = options.prompt ?? { kind: 'random' };
    this.seed = options.seed ?? 0;
    this.maskThreshold = options.maskThreshold ?? MASK_THRESHOLD;
    this.cache = options.cache ? new Map() : null;
  }

  /** Reads and validates the annotation files (not the images). */
  static async open(source: DatasetSource, options: DatasetOptions = {}): Promise<MedVlsmDataset> {
    const splits = new Map<string, AnnotationEntry[]>();
    for (const split of options.splits ?? DEFAULT_SPLITS) {
      const path = `anns/${split}.json`;
      const bytes = await source.read(path);
      if (bytes === null) {
        if (options.splits) throw new Error(`${source.location}: ${path} does not exist (split "${split}" was asked for)`);
        continue;
      }
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch (error) {
        throw new Error(`${source.location}/${path}: not valid JSON (${(error as Error).message})`);
      }
      splits.set(split, parseAnnotations(json, `${source.location}/${path}`));
    }
    if (splits.size === 0) {
      throw new Error(
        `${source.location}: no annotation file found (expected anns/train.json, anns/val.json or anns/test.json; ` +
          "MedVLSM's layout is anns/, images/, masks/)",
      );
    }
    return new MedVlsmDataset(source, splits, options);
  }

  /** Split names in the order they were read. */
  get splitNames(): string[] {
    return [...this.splitEntries.keys()];
  }

  hasSplit(split: string): boolean {
    return this.splitEntries.has(split);
  }

  entries(split: string): readonly AnnotationEntry[] {
    const entries = this.splitEntries.get(split);
    if (entries === undefined) {
      throw new Error(`${this.name}: no split "${split}" (it has ${this.splitNames.join(', ')})`);
    }
    return entries;
  }

  size(split: string): number {
    return this.entries(split).length;
  }

  /** The prompt of sample `index` of `split` in `epoch` (the run's choice unless one is given). */
  promptFor(split: string, index: number, epoch = 0, choice: PromptChoice = this.prompt): ChosenPrompt {
    const entry = this.entry(split, index);
    return choosePrompt(entry, choice, { seed: this.seed, split, epoch, index });
  }

  /** Decodes `images/<name>` to RGB. */
  async loadImage(name: string): Promise<Image> {
    return this.cached(`images/${name}`, async (path) => toRgb(decodeImage(await this.readFile(path), path)));
  }

  /** Decodes and binarises `masks/<name>`. */
  async loadMask(name: string): Promise<BinaryMask> {
    return this.cached(`masks/${name}`, async (path) =>
      binarizeMask(decodeImage(await this.readFile(path), path), this.maskThreshold),
    );
  }

  async loadSample(split: string, index: number, epoch = 0, choice: PromptChoice = this.prompt): Promise<Sample> {
    const entry = this.entry(split, index);
    const prompt = this.promptFor(split, index, epoch, choice);
    const [image, mask] = await Promise.all([this.loadImage(entry.imgName), this.loadMask(entry.maskName)]);
    return { dataset: this.name, split, index, epoch, entry, prompt, image, mask };
  }

  /** The batches of one epoch of `split` (seeded by the dataset's seed unless given). */
  batches(split: string, options: Omit<BatchOptions, 'seed' | 'label'> & { seed?: number }): number[][] {
    return epochBatches(this.size(split), { ...options, seed: options.seed ?? this.seed, label: `${this.name}/${split}` });
  }

  /** Loads the batches of one epoch, one batch at a time. */
  async *iterateBatches(
    split: string,
    options: Omit<BatchOptions, 'seed' | 'label'> & { seed?: number; prompt?: PromptChoice },
  ): AsyncGenerator<Sample[]> {
    for (const batch of this.batches(split, options)) {
      yield await Promise.all(batch.map((i) => this.loadSample(split, i, options.epoch, options.prompt ?? this.prompt)));
    }
  }

  /** Every problem with the referenced files (and the prompt choice), without throwing. */
  check(options: CheckOptions = {}): Promise<FileProblem[]> {
    return checkDataset(this, options);
  }

  summarize(): DatasetSummary {
    return {
      name: this.name,
      location: this.source.location,
      splits: this.splitNames.map((s) => summarizeSplit(s, this.entries(s))),
    };
  }

  private entry(split: string, index: number): AnnotationEntry {
    const entries = this.entries(split);
    const entry = entries[index];
    if (entry === undefined) throw new Error(`${this.name}/${split}: sample ${index} out of range (0..${entries.length - 1})`);
    return entry;
  }

  private async readFile(path: string): Promise<Uint8Array> {
    const bytes = await this.source.read(path);
    if (bytes === null) throw new Error(`${this.source.location}/${path}: file not found`);
    return bytes;
  }

  private async cached<T extends Image | BinaryMask>(path: string, load: (path: string) => Promise<T>): Promise<T> {
    const hit = this.cache?.get(path);
    if (hit !== undefined) return hit as T;
    const value = await load(path);
    this.cache?.set(path, value);
    return value;
  }
}

/**
 * Checks every dataset (each split, or those given) and throws ONE DatasetFilesError listing every
 * missing or unreadable file of all of them; call it before training starts.
 */
export async function assertDatasetsReadable(
  datasets: readonly MedVlsmDataset[],
  options: CheckOptions = {},
): Promise<void> {
  const problems: FileProblem[] = [];
  for (const d of datasets) problems.push(...(await d.check(options)));
  if (problems.length > 0) throw new DatasetFilesError(problems);
}
