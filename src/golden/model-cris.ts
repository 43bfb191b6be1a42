/**
 * Golden runner for CRIS model cases (CRIS.pytorch reference data, laid out as
 * /work/shared/fixtures/golden/cris/*): a folder with `manifest.json` (whose `config` is the CRIS
 * config, see models/cris/config.ts), `tensors.safetensors` and the weights, `weights.safetensors`
 * or, when only that exists, `weights.pth` (read by readCheckpoint: zip/legacy .pth, train.py
 * dicts with `module.` keys). No config.json: that is what tells it apart from a CLIPSeg case.
 *
 * For every run (`img96`, `img128`, ...) it feeds `<run>.input.img` and `<run>.input.word` through
 * the eval-mode forward with all intermediates and compares each `<run>.output.*` of the manifest
 * (visual_layer1, vis_c3, vis_c4, visual_layer4, vis_c5, word_features, text_state, fq_neck,
 * fq_decoder, pred) within its tolerance.
 */
import { type Device, type Tensor, Tensor as T, scopeAsync } from '../engine/index.js';
import { readCheckpointFile } from '../engine/io/checkpoint-node.js';
import { readSafetensorsFile } from '../engine/io/safetensors-node.js';
import type { SafetensorsFile } from '../engine/io/safetensors.js';
import { Cris, type CrisOutput, parseCrisConfig } from '../models/cris/index.js';
import { type Comparison, compareTensor } from './compare.js';
import type { ModelCase } from './model-cases.js';

/** Weight files of a CRIS case, in order of preference. */
export const CRIS_WEIGHT_FILES = ['weights.safetensors', 'weights.pth'] as const;

/** The weights file a CRIS case folder would use, or null when `files` do not make a CRIS case. */
export function crisCaseWeights(files: ReadonlySet<string>): string | null {
  if (files.has('config.json') || !files.has('manifest.json') || !files.has('tensors.safetensors')) return null;
  return CRIS_WEIGHT_FILES.find((f) => files.has(f)) ?? null;
}

/** Whether a parsed manifest describes a CRIS case (a `config` with the CRIS fields). */
export function isCrisManifest(raw: unknown): raw is { config: Record<string, unknown> } {
  if (typeof raw !== 'object' || raw === null) return false;
  const config = (raw as Record<string, unknown>).config;
  return typeof config === 'object' && config !== null && ['clip', 'word_len', 'fpn_in', 'fpn_out'].every((k) => k in config);
}

/** Output names of one forward (manifest suffixes after `<run>.output.`). */
function namedOutputs(out: CrisOutput): Map<string, Tensor> {
  const im = out.intermediates!;
  return new Map<string, Tensor>([
    ['visual_layer1', im.visualLayer1],
    ['vis_c3', im.visC3],
    ['vis_c4', im.visC4],
    ['visual_layer4', im.visualLayer4],
    ['vis_c5', im.visC5],
    ['word_features', im.wordFeatures],
    ['text_state', im.textState],
    ['fq_neck', im.fqNeck],
    ['fq_decoder', im.fqDecoder],
    ['pred', out.pred],
  ]);
}

async function runOne(model: Cris, c: ModelCase, file: SafetensorsFile, run: string, device: Device): Promise<Comparison[]> {
  const img = file.get(`${run}.input.img`, { as: 'f32' });
  const word = file.get(`${run}.input.word`, { as: 'i32' });
  const pixels = T.fromArray(img.data, img.shape, { device });
  const out = model.forward({ pixels, tokens: { inputIds: word.data, shape: word.shape } }, { outputIntermediates: true });
  const named = namedOutputs(out);
  const results: Comparison[] = [];
  for (const key of Object.keys(c.manifest.tolerances).filter((k) => k.startsWith(`${run}.output.`))) {
    const t = named.get(key.slice(`${run}.output.`.length));
    if (!t) throw new Error(`'${key}': the CRIS runner computes no such tensor (known: ${[...named.keys()].join(', ')})`);
    const shape = file.info(key).shape;
    if (shape.length !== t.rank || shape.some((d, i) => d !== t.shape[i])) {
      throw new Error(`'${key}': computed shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
    const tol = c.manifest.tolerances[key]!;
    results.push(compareTensor(key, await t.read(), file.get(key, { as: 'f32' }).data, tol.atol, tol.rtol));
  }
  return results;
}

/** Every comparison of the case on `device`, with the weights of `c.weightsPath` (throws on setup errors). */
export async function runCrisCase(c: ModelCase, device: Device): Promise<Comparison[]> {
  const config = parseCrisConfig(c.config, `${c.dir}/manifest.json config`);
  const checkpoint = await readCheckpointFile(c.weightsPath);
  const file = await readSafetensorsFile(c.tensorsPath);
  const model = new Cris(config, { device, empty: true });
  try {
    model.loadWeights(checkpoint.tensors);
    model.eval();
    const results: Comparison[] = [];
    for (const run of Object.keys(c.manifest.runs)) {
      results.push(...(await scopeAsync(() => runOne(model, c, file, run, device))));
    }
    return results;
  } finally {
    model.dispose();
  }
}
