/**
 * Datasets in the page, in MedVLSM's layout (anns/{train,val,test}.json, images/, masks/): from a
 * zip (fflate), a picked or dropped folder, or the synthetic generator. The layout may sit one
 * folder down (a zip of `kvasir/anns/...`): the folder holding `anns/` is the root. Every file the
 * annotations name is checked before training starts, with all problems reported together.
 */
import { unzipSync } from 'fflate';
import { MedVlsmDataset, assertDatasetsReadable, memorySource } from '../../src/train/data/index.js';
import { generateSyntheticDataset, syntheticSource } from '../../src/train/synthetic/index.js';
import { type PickedFile, extensionOf } from './files.js';

/** Keeps the files under the folder that holds anns/, with paths relative to it. */
export function rootAtAnns(files: Map<string, Uint8Array>, label: string): Map<string, Uint8Array> {
  const anns = [...files.keys()].filter((p) => /(^|\/)anns\/[^/]+\.json$/.test(p) && !p.startsWith('__MACOSX/'));
  if (anns.length === 0) {
    const shown = [...files.keys()].slice(0, 8).join(', ');
    throw new Error(
      `${label} is not a dataset in MedVLSM's layout: no anns/<split>.json in it ` +
        `(expected anns/train.json, anns/val.json or anns/test.json next to images/ and masks/; it holds ${shown || 'no files'}${files.size > 8 ? ', ...' : ''})`,
    );
  }
  const prefix = anns.map((p) => p.slice(0, p.lastIndexOf('anns/'))).sort((a, b) => a.length - b.length)[0]!;
  const out = new Map<string, Uint8Array>();
  for (const [path, bytes] of files) if (path.startsWith(prefix)) out.set(path.slice(prefix.length), bytes);
  return out;
}

async function open(files: Map<string, Uint8Array>, name: string, location: string): Promise<MedVlsmDataset> {
  const dataset = await MedVlsmDataset.open(memorySource(rootAtAnns(files, name), location), { name, cache: true });
  if (!dataset.hasSplit('train')) {
    throw new Error(`${name}: no anns/train.json: finetuning needs a train split (it has ${dataset.splitNames.join(', ')})`);
  }
  await assertDatasetsReadable([dataset]);
  return dataset;
}

/** A dataset zip; errors say when the file is not a zip or not a dataset. */
export async function datasetFromZip(file: File): Promise<MedVlsmDataset> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new Error(`${file.name} is not a zip file this app can read (${(err as Error).message}): pick a .zip of a dataset folder`);
  }
  const files = new Map(Object.entries(entries).filter(([path]) => !path.endsWith('/')));
  return open(files, file.name.replace(/\.zip$/i, ''), `zip:${file.name}`);
}

/** Picked or dropped files: one zip, or a dataset folder. */
export async function datasetFromFiles(picked: PickedFile[]): Promise<MedVlsmDataset> {
  if (picked.length === 1 && extensionOf(picked[0]!.path) === 'zip') return datasetFromZip(picked[0]!.file);
  if (picked.length === 1 && !picked[0]!.path.includes('/')) {
    throw new Error(`${picked[0]!.path} is not a dataset: pick a .zip, or a folder with anns/, images/ and masks/`);
  }
  const files = new Map<string, Uint8Array>();
  for (const { path, file } of picked) files.set(path, new Uint8Array(await file.arrayBuffer()));
  const folder = picked[0]!.file.webkitRelativePath.split('/')[0] || 'dataset';
  return open(files, folder, `folder:${folder}`);
}

/** The synthetic dataset, generated in the page (endoscopy, one object per image as target). */
export async function syntheticDataset(images: number, size: number): Promise<MedVlsmDataset> {
  if (!Number.isInteger(images) || images < 2) throw new Error(`synthetic: images must be an integer >= 2, got ${images}`);
  const val = Math.max(1, Math.round(images / 4));
  const generated = generateSyntheticDataset({ size, images: { train: images - val, val, test: 0 }, targets: 'one', seed: 0 });
  const dataset = await MedVlsmDataset.open(syntheticSource(generated), { name: `synthetic-${size}px`, cache: true });
  return dataset;
}

/** Split sizes for the page's status line. */
export function splitSizes(dataset: MedVlsmDataset): Record<string, number> {
  return Object.fromEntries(dataset.splitNames.map((s) => [s, dataset.size(s)]));
}
