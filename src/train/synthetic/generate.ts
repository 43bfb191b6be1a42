/**
 * The synthetic dataset generator: webvlsm's embedded default dataset, in MedVLSM's layout.
 *
 * Each image holds minObjects..maxObjects objects (uniform) that differ in shape (round, oval,
 * irregular), colour (per modality), size class and position; no two objects of an image share all
 * of (shape, colour, size, location), and they do not touch. Every object is the target of one
 * sample (`targets: 'all'`, default) or one object per image is (`'one'`): the sample's mask is
 * that ONE object, and its prompts p0..p6 are built like the study's (prompt-writer.ts: empty,
 * class, + shape, + colour, + size, + count, + location), with size, count and location measured on
 * the target's own mask (attributes.ts). On a multi-object image only the richer prompts tell
 * which object is meant.
 *
 * Deterministic: image i of a split comes from a generator seeded by (seed, modality, shift, split,
 * i); the same spec gives byte-identical files. Entries carry the generator's truth as extra keys
 * (ignored by the loader): `attributes` (the target's), `objects` (all objects of the image) and
 * `target` (the target's index in `objects`).
 */
import { encodePng, type Image } from '../../models/image/index.js';
import type { AnnotationJson } from '../data/anns.js';
import {
  GRID_LOCATIONS,
  type GridLocation,
  SIZE_THRESHOLDS,
  type ShapeClass,
  type SizeClass,
  maskAttributes,
} from '../data/attributes.js';
import { type BinaryMask, maskToImage } from '../data/mask.js';
import { buildPrompts } from '../data/prompt-writer.js';
import { randInt, randRange, rngFor } from '../data/random.js';
import { type DatasetSource, memorySource } from '../data/source.js';
import { type Modality, MODALITIES, finishCanvas, paintObject, renderBackground } from './modalities.js';
import { pick } from './noise.js';
import { SHAPES, type ShapeSpec, randomShape, rasterizeShape, shapeExtent } from './shapes.js';

export type { Modality } from './modalities.js';

export interface SyntheticSpec {
  modality?: Modality;
  /** Domain shift strength in [0, 1]: 0 = source domain (default), 1 = the shifted variant. */
  shift?: number;
  seed?: number;
  /** Image side in pixels (default 64). */
  size?: number;
  minObjects?: number;
  /** Default 3. */
  maxObjects?: number;
  /** Images per split (default train 200, val 50, test 50; a split with 0 images is not written). */
  images?: Partial<Record<string, number>>;
  /** 'all' (default): one sample per object; 'one': one sample per image. */
  targets?: 'all' | 'one';
}

export type ResolvedSpec = Required<Omit<SyntheticSpec, 'images'>> & { images: Record<string, number> };

export interface SyntheticObject {
  shape: ShapeClass;
  colour: string;
  size: SizeClass;
  location: GridLocation;
  area_fraction: number;
}

export interface SyntheticImage {
  name: string;
  image: Image;
  objects: SyntheticObject[];
  /** One mask per object, same order. */
  masks: BinaryMask[];
}

export interface SyntheticSplit {
  images: SyntheticImage[];
  entries: AnnotationJson[];
}

/** Area fraction bands per size class, well inside SIZE_THRESHOLDS' classes. */
const SIZE_BANDS: Readonly<Record<SizeClass, readonly [number, number]>> = {
  small: [0.012, 0.03],
  medium: [0.065, 0.11],
  large: [0.18, 0.24],
};
const SIZES: readonly SizeClass[] = ['small', 'medium', 'large'];

export function resolveSpec(spec: SyntheticSpec = {}): ResolvedSpec {
  const r: ResolvedSpec = {
    modality: spec.modality ?? 'endoscopy',
    shift: spec.shift ?? 0,
    seed: spec.seed ?? 0,
    size: spec.size ?? 64,
    minObjects: spec.minObjects ?? 1,
    maxObjects: spec.maxObjects ?? 3,
    images: { train: 200, val: 50, test: 50 },
    targets: spec.targets ?? 'all',
  };
  for (const [k, v] of Object.entries(spec.images ?? {})) if (v !== undefined) r.images[k] = v;
  if (!(r.modality in MODALITIES)) throw new Error(`synthetic: unknown modality "${r.modality}" (endoscopy, ultrasound)`);
  if (!(r.shift >= 0 && r.shift <= 1)) throw new Error(`synthetic: shift must be in [0, 1], got ${r.shift}`);
  if (!Number.isInteger(r.size) || r.size < 16) throw new Error(`synthetic: size must be an integer >= 16, got ${r.size}`);
  if (!(r.minObjects >= 1 && r.maxObjects >= r.minObjects && Number.isInteger(r.minObjects) && Number.isInteger(r.maxObjects))) {
    throw new Error(`synthetic: need integers 1 <= minObjects <= maxObjects, got ${r.minObjects}..${r.maxObjects}`);
  }
  return r;
}

const key = (o: SyntheticObject) => `${o.shape}|${o.colour}|${o.size}|${o.location}`;

/** Generates image `index` of `split` (its objects, per-object masks and pixels). */
export function generateImage(specIn: SyntheticSpec, split: string, index: number): SyntheticImage {
  const spec = resolveSpec(specIn);
  const { modality, shift, size: W } = spec;
  const H = W;
  const info = MODALITIES[modality];
  const rng = rngFor(spec.seed, 'synthetic', modality, Math.round(shift * 1e6), split, index);
  const want = spec.minObjects + randInt(rng, spec.maxObjects - spec.minObjects + 1);
  const shapes: ShapeSpec[] = [];
  const objects: SyntheticObject[] = [];
  const masks: BinaryMask[] = [];
  const coverages: Float32Array[] = [];
  for (let attempt = 0; objects.length < want && attempt < 60 * want; attempt++) {
    const sizeClass = pick(rng, SIZES);
    const band = SIZE_BANDS[sizeClass];
    const r = Math.sqrt((randRange(rng, band[0], band[1]) * W * H) / Math.PI);
    const s = randomShape(pick(rng, SHAPES), r, rng);
    const ext = shapeExtent(s);
    if (2 * ext + 2 > W) continue;
    s.cx = randRange(rng, ext + 1, W - ext - 1);
    s.cy = randRange(rng, ext + 1, H - ext - 1);
    if (shapes.some((o) => Math.hypot(o.cx - s.cx, o.cy - s.cy) < shapeExtent(o) + ext + 2)) continue;
    const { coverage, mask } = rasterizeShape(s, W, H);
    const m: BinaryMask = { width: W, height: H, data: mask };
    const a = maskAttributes(m);
    if (a.count !== 1 || a.size === null || a.location === null) continue;
    const obj: SyntheticObject = {
      shape: s.kind,
      colour: pick(rng, info.colours),
      size: a.size,
      location: a.location,
      area_fraction: Math.round(a.areaFraction * 1e4) / 1e4,
    };
    if (objects.some((o) => key(o) === key(obj))) continue;
    shapes.push(s);
    objects.push(obj);
    masks.push(m);
    coverages.push(coverage);
  }
  if (objects.length === 0) {
    throw new Error(`synthetic: could not place any object in ${split} image ${index} (${W}x${H}); use a larger size`);
  }
  const canvas = renderBackground(modality, W, H, shift, rng);
  objects.forEach((o, k) => {
    const s = shapes[k]!;
    paintObject(canvas, modality, o.colour, coverages[k]!, { cx: s.cx, cy: s.cy, extent: shapeExtent(s) }, shift, rng);
  });
  const image = finishCanvas(canvas, modality, shift, rng);
  return { name: `${split}_${String(index).padStart(4, '0')}`, image, objects, masks };
}

/** The prompts p0..p6 of one object as target (count 1: the target is one object). */
export function objectPrompts(modality: Modality, o: SyntheticObject): Record<string, string> {
  return buildPrompts({
    className: MODALITIES[modality].className,
    shape: o.shape,
    colour: o.colour,
    size: o.size,
    count: 1,
    locations: [o.location],
  });
}

export type ChangeableAttribute = 'shape' | 'colour' | 'size' | 'location';

/** The values each attribute takes in a modality (what a changed prompt may say instead). */
export function attributeValues(modality: Modality, attribute: ChangeableAttribute): readonly string[] {
  if (attribute === 'shape') return SHAPES;
  if (attribute === 'colour') return MODALITIES[modality].colours;
  if (attribute === 'size') return SIZES;
  return GRID_LOCATIONS;
}

/**
 * The object with one attribute replaced by another value of the same kind, drawn uniformly
 * (for "one attribute changed" prompts in language-reliance tests).
 */
export function withChangedAttribute(
  modality: Modality,
  object: SyntheticObject,
  attribute: ChangeableAttribute,
  rng: () => number,
): SyntheticObject {
  const others = attributeValues(modality, attribute).filter((v) => v !== object[attribute]);
  return { ...object, [attribute]: others[randInt(rng, others.length)]! };
}

export function generateSplit(specIn: SyntheticSpec, split: string): SyntheticSplit {
  const spec = resolveSpec(specIn);
  const count = spec.images[split] ?? 0;
  const images: SyntheticImage[] = [];
  const entries: AnnotationJson[] = [];
  for (let i = 0; i < count; i++) {
    const img = generateImage(spec, split, i);
    images.push(img);
    const targets =
      spec.targets === 'all'
        ? img.objects.map((_, k) => k)
        : [randInt(rngFor(spec.seed, 'target', split, i), img.objects.length)];
    for (const t of targets) {
      const o = img.objects[t]!;
      entries.push({
        img_name: `${img.name}.png`,
        mask_name: `${img.name}_${t}.png`,
        prompts: objectPrompts(spec.modality, o),
        attributes: { class: MODALITIES[spec.modality].className, ...o, count: 1 },
        objects: img.objects,
        target: t,
      });
    }
  }
  return { images, entries };
}

export interface SyntheticDataset {
  spec: ResolvedSpec;
  /** Files in MedVLSM's layout: anns/<split>.json, images/*.png, masks/*.png, synthetic.json. */
  files: Map<string, Uint8Array>;
  splits: Record<string, SyntheticSplit>;
}

/** The whole dataset in memory, PNG-encoded (use `syntheticSource` to load it like a folder). */
export function generateSyntheticDataset(specIn: SyntheticSpec = {}): SyntheticDataset {
  const spec = resolveSpec(specIn);
  const files = new Map<string, Uint8Array>();
  const splits: Record<string, SyntheticSplit> = {};
  const enc = new TextEncoder();
  for (const [split, n] of Object.entries(spec.images)) {
    if (n <= 0) continue;
    const s = generateSplit(spec, split);
    splits[split] = s;
    const used = new Set(s.entries.map((e) => e.mask_name));
    for (const img of s.images) {
      files.set(`images/${img.name}.png`, encodePng(img.image));
      img.masks.forEach((m, k) => {
        const name = `${img.name}_${k}.png`;
        if (used.has(name)) files.set(`masks/${name}`, encodePng(maskToImage(m)));
      });
    }
    files.set(`anns/${split}.json`, enc.encode(`${JSON.stringify(s.entries, null, 1)}\n`));
  }
  const about = { generator: 'webvlsm synthetic', spec, sizeThresholds: SIZE_THRESHOLDS, sizeBands: SIZE_BANDS };
  files.set('synthetic.json', enc.encode(`${JSON.stringify(about, null, 1)}\n`));
  return { spec, files, splits };
}

/** A DatasetSource over a generated dataset (for MedVlsmDataset.open in browsers and tests). */
export function syntheticSource(dataset: SyntheticDataset): DatasetSource {
  const { modality, shift, seed } = dataset.spec;
  return memorySource(dataset.files, `memory:synthetic-${modality}-shift${shift}-seed${seed}`);
}
