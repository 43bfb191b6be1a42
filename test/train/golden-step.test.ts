/**
 * One decoder-only training step of the tiny CLIPSeg against the PyTorch golden data
 * (test/fixtures/clipseg/clipseg_tiny_refined, run `pretrain_res`; test/fixtures/golden/ops/adamw_3steps),
 * through the trainer's own code path:
 *   - forwardBackward on a ClipSegSegmenter with freeze 'decoder-only' and the loss
 *     { kind: 'dice+bce', diceReduction: 'batch' } (= the manifest's loss_for_gradients: BCE mean
 *     + soft Dice over ALL elements, smoothing 1). The golden run feeds token ids of a tiny
 *     1000-id vocabulary (BOS 998, EOS 999) rather than text, so the segmenter's tokenizer is a stub
 *     that returns the fixture's ids, and `pixels` returns the fixture's normalised pixel_values;
 *     everything else (freeze flags, loss, backward) is the production code;
 *   - every decoder gradient within the manifest's tolerance, no CLIP parameter with a gradient,
 *     trainable('decoder-only') exactly the decoder parameters;
 *   - AdamW via clipGradients (no clipping) + optimizer.step, compared after each of 3 steps.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Device, Tensor } from '../../src/engine/index.js';
import { readSafetensorsFile } from '../../src/engine/io/safetensors-node.js';
import type { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import type { TokenBatch } from '../../src/models/clip/text.js';
import type { Image } from '../../src/models/image/index.js';
import type { BinaryMask } from '../../src/train/data/mask.js';
import { AdamW } from '../../src/train/optim.js';
import type { Segmenter } from '../../src/train/segmenter.js';
import { ClipSegSegmenter } from '../../src/train/segmenters/clipseg.js';
import { clipGradients, forwardBackward } from '../../src/train/step.js';
import { compareClose } from '../helpers/allclose.js';
import { testDevices } from '../helpers/devices.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CASE = join(ROOT, 'test/fixtures/clipseg/clipseg_tiny_refined');
const ADAMW = join(ROOT, 'test/fixtures/golden/ops/adamw_3steps');
const RUN = 'pretrain_res';

interface Tolerance { atol: number; rtol: number }
const manifest = JSON.parse(readFileSync(join(CASE, 'manifest.json'), 'utf8')) as { tolerances: Record<string, Tolerance> };
const config = JSON.parse(readFileSync(join(CASE, 'config.json'), 'utf8')) as Record<string, unknown>;
const weights = await readSafetensorsFile(join(CASE, 'weights.safetensors'));
const tensors = await readSafetensorsFile(join(CASE, 'tensors.safetensors'));
const adamwManifest = JSON.parse(readFileSync(`${ADAMW}.json`, 'utf8')) as {
  parameters: { lr: number; betas: [number, number]; eps: number; weight_decay: number; steps: number; num_params: number };
  tolerances: Record<string, Tolerance>;
};
const adamwFile = await readSafetensorsFile(`${ADAMW}.safetensors`);

/** A tokenizer stand-in that hands the segmenter the fixture's token ids, whatever the prompts. */
function fixtureTokenizer(batch: TokenBatch): ClipTokenizer {
  return { tokenize: (texts: readonly string[]) => {
    if (texts.length !== batch.shape[0]) throw new Error(`fixture tokenizer: ${texts.length} prompts, the fixture has ${batch.shape[0]}`);
    return batch;
  } } as unknown as ClipTokenizer;
}

/** The fixture's labels [B, H, W] as binary masks (they are exactly 0/1). */
function fixtureMasks(): BinaryMask[] {
  const labels = tensors.get(`${RUN}.input.labels`, { as: 'f32' });
  const [b, h, w] = labels.shape as [number, number, number];
  return Array.from({ length: b }, (_, i) => {
    const data = new Uint8Array(h * w);
    for (let j = 0; j < h * w; j++) {
      const v = labels.data[i * h * w + j]!;
      if (v !== 0 && v !== 1) throw new Error(`labels[${i}] holds ${v}, not a binary mask`);
      data[j] = v;
    }
    return { width: w, height: h, data };
  });
}

/**
 * The tiny CLIPSeg as a Segmenter whose inputs are the fixture's: pixels() returns the stored
 * normalised pixel_values, the tokenizer the stored ids. logits/trainable are ClipSegSegmenter's.
 */
function goldenSegmenter(device: Device): { segmenter: Segmenter; inner: ClipSegSegmenter } {
  const ids = tensors.get(`${RUN}.input.input_ids`, { as: 'i32' });
  const mask = tensors.get(`${RUN}.input.attention_mask`, { as: 'i32' });
  const inner = new ClipSegSegmenter(config, { tokenizer: fixtureTokenizer({ inputIds: ids.data, attentionMask: mask.data, shape: ids.shape }), device, empty: true });
  inner.module.loadWeights(weights);
  inner.module.eval();
  const px = tensors.get(`${RUN}.input.pixel_values`, { as: 'f32' });
  const segmenter: Segmenter = {
    kind: inner.kind,
    module: inner.module,
    usesText: inner.usesText,
    inputSize: inner.inputSize,
    threshold: inner.threshold,
    pixels: (images) => {
      if (images.length !== px.shape[0]) throw new Error('golden segmenter: batch size differs from the fixture');
      return Tensor.fromArray(px.data, px.shape, { device });
    },
    logits: (pixels, prompts, options) => inner.logits(pixels, prompts, options),
    trainable: (freeze) => inner.trainable(freeze),
    describe: () => inner.describe(),
  };
  return { segmenter, inner };
}

function check(actual: ArrayLike<number>, key: string, tol: Tolerance): void {
  const r = compareClose(actual, tensors.has(key) ? tensors.get(key, { as: 'f32' }).data : adamwFile.get(key, { as: 'f32' }).data, tol.atol, tol.rtol, key);
  if (!r.ok) throw new Error(r.message);
}

describe.each(await testDevices())('a decoder-only CLIPSeg training step on %s', (_name, device) => {
  it('trainable("decoder-only") is exactly the decoder, and every decoder gradient matches the golden data', async () => {
    const { segmenter, inner } = goldenSegmenter(device);
    try {
      const trainable = inner.trainable('decoder-only');
      const decoderNames = inner.module.namedParameters().map(([n]) => n).filter((n) => n.startsWith('decoder.'));
      expect(trainable.map(([n]) => n).sort()).toEqual([...decoderNames].sort());
      const expectedGrads = Object.keys(manifest.tolerances).filter((k) => k.startsWith(`${RUN}.grad.`)).map((k) => k.slice(`${RUN}.grad.`.length));
      // The golden run lists every decoder parameter's gradient.
      expect([...expectedGrads].sort()).toEqual([...decoderNames].sort());

      const masks = fixtureMasks();
      const [h, w] = segmenter.inputSize;
      expect([h, w]).toEqual([masks[0]!.height, masks[0]!.width]);
      const images: Image[] = masks.map(() => ({ width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3) }) as Image);
      const loss = await forwardBackward(segmenter, { images, prompts: masks.map(() => 'fixture ids'), masks },
        { freeze: 'decoder-only', loss: { kind: 'dice+bce', diceReduction: 'batch' } });
      const lossKey = `${RUN}.output.loss_total`;
      check([loss], lossKey, manifest.tolerances[lossKey]!);

      for (const [name, p] of inner.module.namedParameters()) {
        if (name.startsWith('decoder.')) {
          expect(p.grad, `${name} has no gradient`).not.toBeNull();
          const key = `${RUN}.grad.${name}`;
          check(await p.grad!.read(), key, manifest.tolerances[key]!);
        } else {
          expect(p.grad, `frozen ${name} got a gradient`).toBeNull();
        }
      }
    } finally {
      inner.module.zeroGrad();
      inner.module.dispose();
    }
  });

  it('AdamW through clipGradients (no clipping) + optimizer.step matches torch for 3 steps', async () => {
    const hp = adamwManifest.parameters;
    const names = Array.from({ length: hp.num_params }, (_, i) => `param${i}`);
    const params = names.map((n) => {
      const t = adamwFile.get(`${n}.initial`, { as: 'f32' });
      return [n, Tensor.fromArray(t.data, t.shape, { device })] as [string, Tensor];
    });
    const optimizer = new AdamW(params, { lr: hp.lr, betas: hp.betas, eps: hp.eps, weightDecay: hp.weight_decay });
    try {
      for (let step = 1; step <= hp.steps; step++) {
        optimizer.zeroGrad();
        let sq = 0;
        for (const [n, p] of params) {
          const g = adamwFile.get(`${n}.grad.step${step}`, { as: 'f32' });
          p.grad = Tensor.fromArray(g.data, g.shape, { device });
          for (const v of g.data) sq += v * v;
        }
        // The trainer's order: clip (0 = none: returns the norm, leaves the gradients), then step.
        const norm = await clipGradients(optimizer.params, 0);
        expect(norm).toBeCloseTo(Math.sqrt(sq), 4);
        optimizer.step();
        const state = optimizer.stateDict();
        for (const [n, p] of params) {
          const s = state.get(n)!;
          expect(s.step).toBe(step);
          for (const [suffix, t] of [['', p], ['.exp_avg', s.expAvg], ['.exp_avg_sq', s.expAvgSq]] as const) {
            const key = `${n}${suffix}.after_step${step}`;
            check(await t.read(), key, adamwManifest.tolerances[key]!);
          }
        }
      }
    } finally {
      optimizer.zeroGrad();
      optimizer.dispose();
      for (const [, p] of params) p.dispose();
    }
  });
});
