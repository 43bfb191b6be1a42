/**
 * The prompt tool on a dataset folder: writes `anns/<split>.json` with p0..p6 prompts measured from
 * the masks (see prompt-writer.ts), for a user's own data in MedVLSM's layout.
 *
 * Entries come from the existing `anns/<split>.json` when there is one (its other keys are kept),
 * otherwise from pairing `images/` and `masks/` files with the same name stem (a.jpg + a.png). An
 * existing output file is only replaced with `overwrite: true`.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, parse, resolve } from 'node:path';
import { type AnnotationEntry, parseAnnotations } from './anns.js';
import { type PromptToolOptions, writePromptsForEntries } from './prompt-writer.js';
import { folderSource, writeFiles } from './source-node.js';

export interface PromptFolderOptions extends PromptToolOptions {
  /** Split whose annotation file is read and written (default 'train'). */
  split?: string;
  /** Output path relative to the dataset root (default `anns/<split>.json`). */
  out?: string;
  /** Replace an existing output file (default false). */
  overwrite?: boolean;
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** Image/mask pairs with the same stem, sorted by image name. */
async function pairFiles(root: string): Promise<AnnotationEntry[]> {
  const list = async (dir: string) =>
    existsSync(dir) ? (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && IMAGE_EXT.test(e.name)).map((e) => e.name) : [];
  const images = (await list(join(root, 'images'))).sort();
  const masks = new Map((await list(join(root, 'masks'))).map((m) => [parse(m).name, m]));
  const unmatched = images.filter((i) => !masks.has(parse(i).name));
  if (images.length === 0 || unmatched.length > 0) {
    throw new Error(
      `${root}: no anns file to read, and images/ and masks/ do not pair up by name stem ` +
        `(${images.length} images, ${masks.size} masks; without a mask: ${unmatched.slice(0, 10).join(', ') || 'none'})`,
    );
  }
  return images.map((i) => ({ imgName: i, maskName: masks.get(parse(i).name)!, prompts: {}, extra: {} }));
}

/** Writes the prompts; returns the output path and the number of entries written. */
export async function writePromptAnnotations(
  root: string,
  options: PromptFolderOptions,
): Promise<{ path: string; entries: number }> {
  const base = resolve(root);
  const split = options.split ?? 'train';
  const annsPath = join(base, 'anns', `${split}.json`);
  const outRel = options.out ?? `anns/${split}.json`;
  const outPath = join(base, ...outRel.split('/'));
  if (existsSync(outPath) && !options.overwrite) {
    throw new Error(`${outPath} exists; pass overwrite: true (or another output path) to replace it`);
  }
  const source = folderSource(base);
  let entries: AnnotationEntry[];
  if (existsSync(annsPath)) {
    const bytes = await source.read(`anns/${split}.json`);
    entries = parseAnnotations(JSON.parse(new TextDecoder().decode(bytes!)), annsPath);
  } else {
    entries = await pairFiles(base);
  }
  const json = await writePromptsForEntries(source, entries, options);
  const text = `${JSON.stringify(json, null, 1)}\n`;
  await writeFiles(base, new Map([[outRel, new TextEncoder().encode(text)]]));
  return { path: outPath, entries: json.length };
}
