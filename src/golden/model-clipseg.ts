/**
 * Golden runner for CLIPSeg model cases (HF CLIPSegForImageSegmentation reference data): builds
 * the model from the case's config.json, loads weights.safetensors strictly, and for every run
 * (`pretrain_res`, `res96`, ...) feeds `<run>.input.*` through the forward with all intermediates,
 * comparing each `<run>.output.*` it finds in the manifest's tolerances. Runs that hold
 * `<run>.input.labels` also compute loss = BCE-with-logits (mean) + soft Dice, backpropagate and
 * compare `<run>.output.loss_*` and the decoder gradients `<run>.grad.<parameter>`.
 */
import { type Device, type Tensor, Tensor as T, add, backward, bceWithLogits, scopeAsync, softDiceLoss } from '../engine/index.js';
import { readSafetensorsFile } from '../engine/io/safetensors-node.js';
import type { SafetensorsFile } from '../engine/io/safetensors.js';
import { ClipSegForImageSegmentation, parseClipSegConfig } from '../models/clipseg/index.js';
import { type Comparison, compareTensor } from './compare.js';
import type { ModelCase } from './model-cases.js';

function upload(file: SafetensorsFile, key: string, device: Device): Tensor {
  const host = file.get(key);
  return T.fromArray(host.data, host.shape, { device, dtype: host.dtype });
}

/** Output names of one forward (manifest suffixes after `<run>.output.`). */
function namedOutputs(out: ReturnType<ClipSegForImageSegmentation['forward']>): Map<string, Tensor> {
  const named = new Map<string, Tensor>();
  const im = out.intermediates!;
  named.set('vision_embeddings', im.visionEmbeddings);
  im.visionHiddenStates.forEach((t, i) => named.set(`vision_hidden_states.${i}`, t));
  named.set('vision_pooled_output', im.visionPooledOutput);
  named.set('vision_projected', im.visionProjected);
  if (im.textLastHiddenState) named.set('text_last_hidden_state', im.textLastHiddenState);
  if (im.textPooledOutput) named.set('text_pooled_output', im.textPooledOutput);
  named.set('conditional_embeddings', out.conditionalEmbeddings);
  out.decoderHiddenStates.forEach((t, i) => named.set(`decoder_hidden_states.${i}`, t));
  named.set('logits', out.logits);
  return named;
}

async function compareOne(file: SafetensorsFile, c: ModelCase, key: string, t: Tensor): Promise<Comparison> {
  const tol = c.manifest.tolerances[key]!;
  const shape = file.info(key).shape;
  if (shape.length !== t.rank || shape.some((d, i) => d !== t.shape[i])) {
    throw new Error(`'${key}': computed shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  return compareTensor(key, await t.read(), file.get(key, { as: 'f32' }).data, tol.atol, tol.rtol);
}

async function runOne(model: ClipSegForImageSegmentation, c: ModelCase, file: SafetensorsFile, run: string, device: Device): Promise<Comparison[]> {
  const results: Comparison[] = [];
  const expected = (section: string) => Object.keys(c.manifest.tolerances).filter((k) => k.startsWith(`${run}.${section}.`));
  const ids = file.get(`${run}.input.input_ids`, { as: 'i32' });
  const maskKey = `${run}.input.attention_mask`;
  const tokens = {
    inputIds: ids.data,
    attentionMask: file.has(maskKey) ? file.get(maskKey, { as: 'i32' }).data : null,
    shape: ids.shape,
  };
  const pixelValues = upload(file, `${run}.input.pixel_values`, device);
  const out = model.forward({ pixelValues, tokens }, { outputIntermediates: true });
  const named = namedOutputs(out);
  const labelsKey = `${run}.input.labels`;
  if (file.has(labelsKey)) {
    const labels = upload(file, labelsKey, device);
    const bce = bceWithLogits(out.logits, labels);
    const dice = softDiceLoss(out.logits, labels);
    const total = add(bce, dice);
    named.set('loss_bce', bce).set('loss_dice', dice).set('loss_total', total);
    model.zeroGrad();
    backward(total);
  }
  for (const key of expected('output')) {
    const t = named.get(key.slice(`${run}.output.`.length));
    if (t) results.push(await compareOne(file, c, key, t));
  }
  const params = model.stateDict();
  for (const key of expected('grad')) {
    const name = key.slice(`${run}.grad.`.length);
    const p = params.get(name);
    if (!p) throw new Error(`'${key}': the model has no parameter '${name}'`);
    if (!p.grad) throw new Error(`'${key}': no gradient reached '${name}'`);
    results.push(await compareOne(file, c, key, p.grad));
  }
  model.zeroGrad();
  return results;
}

/** Every comparison of the case on `device` (throws on a setup or shape error). */
export async function runClipSegCase(c: ModelCase, device: Device): Promise<Comparison[]> {
  const config = parseClipSegConfig(c.config, `${c.dir}/config.json`);
  const weights = await readSafetensorsFile(c.weightsPath);
  const file = await readSafetensorsFile(c.tensorsPath);
  const model = new ClipSegForImageSegmentation(config, { device, empty: true });
  try {
    model.loadWeights(weights);
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
