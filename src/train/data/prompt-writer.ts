/**
 * Writing MedVLSM-style prompts p0..p6, for the synthetic generator and for a user's own dataset:
 *
 *   p0  ''                                                     (empty prompt)
 *   p1  'polyp'                                                (class)
 *   p2  'round polyp'                                          (+ shape)
 *   p3  'red round polyp'                                      (+ colour)
 *   p4  'small red round polyp'                                (+ size)
 *   p5  'one small red round polyp'                            (+ count)
 *   p6  'one small red round polyp, located in top left of the image'   (+ location)
 *
 * the pattern of the study's polyp, ISIC and DFU prompts p0..p6 (count in words, one location per
 * component joined by ', ', and 'no <class>' for p1..p6 of an empty mask). Attributes the user
 * leaves out (shape, colour) are dropped from the text.
 */
import { type Image, decodeImage, toRgb } from '../../models/image/index.js';
import { type AnnotationJson, type AnnotationEntry, entryToJson } from './anns.js';
import {
  type AttributeOptions,
  type GridLocation,
  type SizeClass,
  estimateColour,
  estimateShape,
  maskAttributes,
} from './attributes.js';
import { DatasetFilesError, type FileProblem } from './check.js';
import { type BinaryMask, MASK_THRESHOLD, binarizeMask } from './mask.js';
import type { DatasetSource } from './source.js';

export const STUDY_PROMPT_KEYS = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6'] as const;
export type StudyPromptKey = (typeof STUDY_PROMPT_KEYS)[number];

export interface TargetDescription {
  className: string;
  shape?: string | null;
  colour?: string | null;
  /** Size class of the target (null when the mask is empty). */
  size: SizeClass | null;
  /** Connected components (0 = empty mask). */
  count: number;
  /** One location per component, or one for the whole target. */
  locations: readonly GridLocation[];
}

const NUMBER_WORDS = [
  'no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
  'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen', 'twenty',
];

/** 'one', 'two', ... 'twenty' (the study's words), digits above. */
export function countWord(n: number): string {
  return NUMBER_WORDS[n] ?? String(n);
}

export function buildPrompts(d: TargetDescription): Record<StudyPromptKey, string> {
  const cls = d.className.trim();
  if (d.count === 0 || d.size === null) {
    const none = `no ${cls}`;
    return { p0: '', p1: none, p2: none, p3: none, p4: none, p5: none, p6: none };
  }
  const join = (...words: Array<string | null | undefined>) => words.filter((w) => w && w.trim() !== '').join(' ');
  const p2 = join(d.shape, cls);
  const p3 = join(d.colour, d.shape, cls);
  const p4 = join(d.size, d.colour, d.shape, cls);
  const p5 = join(countWord(d.count), p4);
  const p6 = d.locations.length > 0 ? `${p5}, located in ${d.locations.join(', ')} of the image` : p5;
  return { p0: '', p1: cls, p2, p3, p4, p5, p6 };
}

export interface PromptToolOptions {
  className: string;
  /** Estimate the shape from the mask (default true). */
  shape?: boolean;
  /** Estimate the colour from the image under the mask (default true; reads the images). */
  colour?: boolean;
  /** Mask foreground is first channel > maskThreshold (default 127). */
  maskThreshold?: number;
  attributes?: AttributeOptions;
}

/** What the tool measured for one entry (stored as the entry's `prompt_attributes`). */
export interface MeasuredAttributes {
  size: SizeClass | null;
  count: number;
  locations: GridLocation[];
  shape: string | null;
  colour: string | null;
  area_fraction: number;
}

/** Prompts for one mask (and image, for the colour). */
export function describeTarget(
  mask: BinaryMask,
  image: Image | null,
  options: PromptToolOptions,
): { prompts: Record<StudyPromptKey, string>; attributes: MeasuredAttributes } {
  const a = maskAttributes(mask, options.attributes);
  const shape = options.shape === false || a.count === 0 ? null : (estimateShape(mask, options.attributes?.connectivity)?.shape ?? null);
  const colour = options.colour === false || image === null || a.count === 0 ? null : estimateColour(image, mask);
  const locations = a.components.map((c) => c.location);
  const prompts = buildPrompts({ className: options.className, shape, colour, size: a.size, count: a.count, locations });
  return {
    prompts,
    attributes: { size: a.size, count: a.count, locations, shape, colour, area_fraction: a.areaFraction },
  };
}

/**
 * Writes p0..p6 for every entry of a user's dataset (entries from its anns file, or pairs built by
 * the caller), reading `masks/<mask_name>` (and `images/<img_name>` for the colour) from `source`.
 * Other prompt keys and extra keys are kept; p0..p6 are replaced; the measured attributes are
 * stored as `prompt_attributes`. Missing or unreadable files are reported together in one
 * DatasetFilesError.
 */
export async function writePromptsForEntries(
  source: DatasetSource,
  entries: readonly AnnotationEntry[],
  options: PromptToolOptions,
): Promise<AnnotationJson[]> {
  const problems: FileProblem[] = [];
  const out: AnnotationJson[] = [];
  const load = async (path: string, index: number): Promise<Image | null> => {
    const fail = (kind: 'missing' | 'unreadable', detail: string) => {
      problems.push({ dataset: source.location, location: source.location, split: 'anns', index, path, kind, detail });
      return null;
    };
    try {
      const bytes = await source.read(path);
      return bytes === null ? fail('missing', 'file not found') : decodeImage(bytes, path);
    } catch (error) {
      return fail('unreadable', (error as Error).message);
    }
  };
  for (let index = 0; index < entries.length; index++) {
    const entry = entries[index]!;
    const maskImage = await load(`masks/${entry.maskName}`, index);
    const image = options.colour === false ? null : await load(`images/${entry.imgName}`, index);
    if (maskImage === null || (options.colour !== false && image === null)) continue;
    const mask = binarizeMask(maskImage, options.maskThreshold ?? MASK_THRESHOLD);
    const { prompts, attributes } = describeTarget(mask, image === null ? null : toRgb(image), options);
    const json = entryToJson(entry);
    json.prompts = { ...json.prompts, ...prompts };
    json.prompt_attributes = attributes;
    out.push(json);
  }
  if (problems.length > 0) throw new DatasetFilesError(problems);
  return out;
}
