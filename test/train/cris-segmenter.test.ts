/**
 * CRIS as a Segmenter (src/train/segmenters/cris.ts) on the tiny golden CRIS (test/fixtures/cris_tiny:
 * 1000-token text tower with BOS 998 / EOS 999, so prompts use the truncated CLIP vocabulary of
 * test/helpers/clipseg-folder.ts):
 * - on each device: the logits of the golden pixels and token ids equal CRIS.pytorch's golden mask
 *   logits upsampled 4x by an independent bilinear reference; prompts are tokenized to word_len with
 *   zero padding and the logits equal Cris.forward's, resized; pixels use CLIP's statistics;
 *   training records exactly the towers the freeze policy trains; a checkpoint round trip gives
 *   bit-identical logits; three decoder-only train steps lower the loss of a fixed batch;
 * - trainable() per policy is exactly the expected parameter groups;
 * - loading: .pth / train.py format / a plain CRIS safetensors / a webvlsm checkpoint through
 *   loadSegmenterFile, the variant inferred from published shapes, and the errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { ClipTokenizer, type TokenizedBatch } from '../../src/models/clip/tokenizer.js';
import type { Image } from '../../src/models/image/index.js';
import { decodeSegmenterCheckpoint, encodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { loadSegmenterFile, saveSegmenterFile } from '../../src/train/checkpoint-node.js';
import type { BinaryMask } from '../../src/train/data/mask.js';
import { AdamW } from '../../src/train/optim.js';
import { FREEZE_POLICIES, type FreezePolicy, logitsToSize } from '../../src/train/segmenter.js';
import { CrisSegmenter, crisSegmenterFromCheckpoint, inferCrisVariant } from '../../src/train/segmenters/cris.js';
import { createSegmenter } from '../../src/train/segmenters/index.js';
import { masksToTarget, segmentationLoss, trainStep } from '../../src/train/step.js';
import { expectClose } from '../helpers/allclose.js';
import { truncatedClipVocab } from '../helpers/clipseg-folder.js';
import { cpuDevice, testDevices } from '../helpers/devices.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/cris_tiny/', import.meta.url));
const manifest = JSON.parse(readFileSync(join(FIXTURE, 'manifest.json'), 'utf8'));
const CONFIG = manifest.config as Record<string, unknown>;
const WEIGHTS = join(FIXTURE, 'weights.safetensors');
const weightBytes = readFileSync(WEIGHTS);
const { vocabJson, mergesTxt } = truncatedClipVocab();
const tokenizer = ClipTokenizer.fromHf(vocabJson, mergesTxt);
const golden = E.readCheckpoint(readFileSync(join(FIXTURE, 'tensors.safetensors')), 'tensors.safetensors').tensors;
const S = 32; // smallest side the backbone takes (it downsamples by 32)

const tmp = mkdtempSync(join(tmpdir(), 'webvlsm-cris-seg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tiny(device: E.Device, inputSize = S, tok = tokenizer): CrisSegmenter {
  return crisSegmenterFromCheckpoint(weightBytes, WEIGHTS, { config: CONFIG, inputSize, tokenizer: tok, device });
}

/** A 32x32 image with a bright square (the object) on a gradient, and its mask. */
function sample(x0: number, y0: number, side: number): { image: Image; mask: BinaryMask } {
  const data = new Uint8Array(S * S * 3);
  const mask = new Uint8Array(S * S);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const inside = x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
      const i = y * S + x;
      data.set(inside ? [230, 60, 40] : [x * 4, y * 4, 90], i * 3);
      mask[i] = inside ? 1 : 0;
    }
  }
  return { image: { width: S, height: S, channels: 3, data }, mask: { width: S, height: S, data: mask } };
}

/** PyTorch bilinear resize (align_corners False) of planes [B, h, w] to [B, H, W], in float64. */
function bilinearReference(src: ArrayLike<number>, b: number, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(b * outH * outW);
  const coord = (o: number, inSize: number, outSize: number) => {
    const s = Math.max(0, ((o + 0.5) * inSize) / outSize - 0.5);
    const i0 = Math.floor(s);
    return { i0, i1: Math.min(i0 + 1, inSize - 1), t: s - i0 };
  };
  for (let k = 0; k < b; k++) {
    for (let y = 0; y < outH; y++) {
      const cy = coord(y, h, outH);
      for (let x = 0; x < outW; x++) {
        const cx = coord(x, w, outW);
        const at = (yy: number, xx: number) => src[k * h * w + yy * w + xx]!;
        const top = at(cy.i0, cx.i0) * (1 - cx.t) + at(cy.i0, cx.i1) * cx.t;
        const bottom = at(cy.i1, cx.i0) * (1 - cx.t) + at(cy.i1, cx.i1) * cx.t;
        out[k * outH * outW + y * outW + x] = top * (1 - cy.t) + bottom * cy.t;
      }
    }
  }
  return out;
}

async function evalLogits(seg: CrisSegmenter, images: Image[], prompts: string[]): Promise<Float32Array> {
  return E.exclusiveScopeAsync(async () => (await E.noGrad(() => seg.logits(seg.pixels(images), prompts)).read()) as Float32Array);
}

function clearGrads(seg: CrisSegmenter): void {
  for (const p of seg.module.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
}

describe.each(await testDevices())('CrisSegmenter on %s', (_name, device) => {
  it('golden pixels and token ids give CRIS.pytorch mask logits, bilinearly upsampled to the input size', async () => {
    const img = golden.get('img96.input.img')!;
    const word = golden.get('img96.input.word')!;
    const ids = Int32Array.from(word.data as ArrayLike<number | bigint>, (v) => Number(v));
    const batch: TokenizedBatch = {
      inputIds: ids,
      attentionMask: Int32Array.from(ids, (v) => (v === 0 ? 0 : 1)),
      shape: [2, 17],
      lengths: [7, 14],
      truncated: [false, false],
    };
    const calls: unknown[] = [];
    // Stands in for the BPE tokenizer so that the golden ids reach the model unchanged.
    const stub = { vocabSize: 1000, tokenize: (texts: unknown, options: unknown) => (calls.push([texts, options]), batch) } as unknown as ClipTokenizer;
    const seg = tiny(device, 96, stub);
    try {
      expect(seg.inputSize).toEqual([96, 96]);
      const out = await E.exclusiveScopeAsync(async () => {
        const pixels = E.Tensor.fromArray(img.data as Float32Array, [2, 3, 96, 96], { device });
        const logits = E.noGrad(() => seg.logits(pixels, ['a', 'b']));
        expect(logits.shape).toEqual([2, 96, 96]);
        expect(logits.requiresGrad).toBe(false);
        return (await logits.read()) as Float32Array;
      });
      expect(calls).toEqual([[['a', 'b'], { contextLength: 17, truncate: true, padTokenId: 0 }]]);
      const pred = golden.get('img96.output.pred')!;
      expect(pred.shape).toEqual([2, 1, 24, 24]);
      const tol = manifest.tolerances['img96.output.pred'] as { atol: number; rtol: number };
      expectClose(out, bilinearReference(pred.data as Float32Array, 2, 24, 24, 96, 96), tol.atol, tol.rtol, 'segmenter logits');
    } finally {
      seg.module.dispose();
    }
  });

  it('pixels use CLIP statistics; prompts are CRIS tokens; logits equal Cris.forward resized', async () => {
    const seg = tiny(device);
    try {
      const { image } = sample(8, 10, 12);
      const images = [image, sample(3, 3, 20).image];
      const prompts = ['the red square', 'a polyp in the lower left of a colonoscopy frame with extra words to truncate'];
      const pixels = seg.pixels(images);
      const px = (await pixels.read()) as Float32Array;
      expect(pixels.shape).toEqual([2, 3, S, S]);
      // Pixel (x 20, y 5) is outside the square: RGB (80, 20, 90); CLIP mean/std written out.
      const i = 5 * S + 20;
      expect(px[i]).toBeCloseTo((80 / 255 - 0.48145466) / 0.26862954, 5);
      expect(px[S * S + i]).toBeCloseTo((20 / 255 - 0.4578275) / 0.26130258, 5);
      expect(px[2 * S * S + i]).toBeCloseTo((90 / 255 - 0.40821073) / 0.27577711, 5);
      const got = await evalLogits(seg, images, prompts);
      const tokens = tokenizer.tokenize(prompts, { contextLength: 17 });
      expect(tokens.truncated).toEqual([false, true]);
      const want = await E.exclusiveScopeAsync(async () => {
        const pred = E.noGrad(() => seg.module.forward({ pixels, tokens }).pred);
        expect(pred.shape).toEqual([2, 1, S / 4, S / 4]);
        return (await E.noGrad(() => logitsToSize(E.reshape(pred, [2, S / 4, S / 4]), [S, S])).read()) as Float32Array;
      });
      expect(got).toEqual(want);
      pixels.dispose();
      expect(() => seg.logits(E.Tensor.zeros([1, 3, 64, 64], { device }), ['x'])).toThrow('pixels must be [B, 3, 32, 32] (inputSize), got [1, 3, 64, 64]');
      expect(() => seg.logits(E.Tensor.zeros([1, 3, S, S], { device }), ['x', 'y'])).toThrow('1 images but 2 prompts');
    } finally {
      seg.module.dispose();
    }
  });

  it('training records exactly the towers the policy trains', async () => {
    const seg = tiny(device);
    const { image } = sample(8, 10, 12);
    const towers: [FreezePolicy, string[], string[]][] = [
      ['decoder-only', ['neck.', 'decoder.', 'proj.'], ['backbone.']],
      ['frozen-image', ['neck.', 'backbone.transformer.', 'backbone.text_projection'], ['backbone.visual.']],
      ['frozen-text', ['proj.', 'backbone.visual.'], ['backbone.transformer.', 'backbone.token_embedding.', 'backbone.positional_embedding']],
    ];
    try {
      for (const [freeze, withGrad, withoutGrad] of towers) {
        E.scope(() => {
          const logits = seg.logits(seg.pixels([image, image]), ['the square', 'the background'], { train: true, freeze });
          E.backward(E.sum(logits));
        });
        expect(seg.module.training).toBe(true); // decoder dropout active while training
        const named = seg.module.namedParameters();
        for (const prefix of withGrad) {
          const group = named.filter(([n]) => n.startsWith(prefix));
          expect(group.length, prefix).toBeGreaterThan(0);
          expect(group.filter(([, p]) => p.grad !== null).length, `${freeze}: ${prefix}`).toBeGreaterThan(0);
        }
        for (const prefix of withoutGrad) {
          expect(named.filter(([n, p]) => n.startsWith(prefix) && p.grad !== null).map(([n]) => n), `${freeze}: ${prefix}`).toEqual([]);
        }
        // Whatever got a gradient is trained by the policy.
        const trained = new Set(seg.trainable(freeze).map(([n]) => n));
        expect(named.filter(([n, p]) => p.grad !== null && !trained.has(n)).map(([n]) => n)).toEqual([]);
        clearGrads(seg);
      }
      await evalLogits(seg, [image], ['x']);
      expect(seg.module.training).toBe(false);
    } finally {
      clearGrads(seg);
      seg.module.dispose();
    }
    // The first backward through every tower JIT-compiles its kernels (conv, fused attention and
    // matmul gradients): 2-4 min on this 2-core machine with an empty Mesa shader cache, i.e. on
    // a fresh CI machine; seconds once cached.
  }, 6 * 60_000);

  it('a checkpoint round trip rebuilds the model with bit-identical logits', async () => {
    const seg = tiny(device);
    const images = [sample(8, 10, 12).image, sample(2, 16, 9).image];
    const prompts = ['the red square', 'a small thing'];
    let back: ReturnType<typeof decodeSegmenterCheckpoint> | null = null;
    try {
      const bytes = await encodeSegmenterCheckpoint(seg);
      back = decodeSegmenterCheckpoint(bytes, 'cris.safetensors', { device, tokenizer });
      expect(back).toBeInstanceOf(CrisSegmenter);
      expect(back.describe()).toEqual({ kind: 'cris', config: { ...CONFIG, input_size: S } });
      expect(back.threshold).toBe(0.35);
      expect(await evalLogits(back as CrisSegmenter, images, prompts)).toEqual(await evalLogits(seg, images, prompts));
    } finally {
      back?.module.dispose();
      seg.module.dispose();
    }
  });

  it('three decoder-only train steps lower the loss of a fixed batch', async () => {
    E.setDropoutSeed(7);
    const seg = tiny(device);
    const samples = [sample(8, 10, 12), sample(2, 16, 9)];
    const batch = { images: samples.map((s) => s.image), prompts: ['the red square', 'the red square'], masks: samples.map((s) => s.mask) };
    const loss = { kind: 'dice+bce' as const };
    const evalLoss = () =>
      E.exclusiveScopeAsync(async () => {
        const logits = E.noGrad(() => seg.logits(seg.pixels(batch.images), batch.prompts));
        return E.noGrad(() => segmentationLoss(logits, masksToTarget(batch.masks, seg.inputSize, device), loss)).item();
      });
    const params = seg.trainable('decoder-only');
    const before = params.map(([, p]) => p);
    const frozenBefore = await seg.module.namedParameters().find(([n]) => n === 'backbone.visual.conv1.weight')![1].read();
    const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0 });
    try {
      const start = await evalLoss();
      const losses: number[] = [];
      for (let step = 0; step < 3; step++) losses.push((await trainStep(seg, optimizer, batch, { freeze: 'decoder-only', loss })).loss);
      const end = await evalLoss();
      const story = `eval loss ${start} -> ${end}; step losses ${losses.join(', ')}`;
      expect(losses.every(Number.isFinite), story).toBe(true);
      expect(end, story).toBeLessThan(start - 1e-3);
      expect(before.every((p) => p.grad === null)).toBe(true);
      expect(await seg.module.namedParameters().find(([n]) => n === 'backbone.visual.conv1.weight')![1].read()).toEqual(frozenBefore);
    } finally {
      optimizer.dispose();
      seg.module.dispose();
    }
  });
});

describe('CrisSegmenter parameters and config', () => {
  const seg = new CrisSegmenter({ ...CONFIG, input_size: S }, { tokenizer, device: cpuDevice, empty: true });
  afterAll(() => seg.module.dispose());
  const groupOf = (name: string) => (name.startsWith('backbone.') ? name.split('.').slice(0, 2).join('.') : name.split('.')[0]!);
  const groups = (freeze: FreezePolicy) => [...new Set(seg.trainable(freeze).map(([n]) => groupOf(n)))].sort();
  const TEXT = ['backbone.ln_final', 'backbone.positional_embedding', 'backbone.text_projection', 'backbone.token_embedding', 'backbone.transformer'];

  it('trainable() per policy is exactly the expected parameter groups', () => {
    expect([...new Set(seg.module.namedParameters().map(([n]) => groupOf(n)))].sort()).toEqual(
      ['backbone.logit_scale', ...TEXT, 'backbone.visual', 'decoder', 'neck', 'proj'].sort(),
    );
    expect(groups('decoder-only')).toEqual(['decoder', 'neck', 'proj']);
    expect(groups('frozen-image')).toEqual([...TEXT, 'decoder', 'neck', 'proj'].sort());
    expect(groups('frozen-text')).toEqual(['backbone.visual', 'decoder', 'neck', 'proj']);
    expect(groups('full')).toEqual([...TEXT, 'backbone.visual', 'decoder', 'neck', 'proj'].sort());
    // Within a trained group, every parameter is trained: 'full' leaves out logit_scale alone.
    expect(seg.trainable('full').length).toBe(seg.module.namedParameters().length - 1);
    const count = (freeze: FreezePolicy) => seg.trainable(freeze).reduce((n, [, p]) => n + p.size, 0);
    const all = seg.module.namedParameters().reduce((n, [, p]) => n + p.size, 0);
    expect(count('frozen-image') + count('frozen-text')).toBe(all - 1 + count('decoder-only'));
    expect(() => seg.trainable('none' as FreezePolicy)).toThrow("unknown freeze policy 'none'");
    expect(FREEZE_POLICIES.length).toBe(4);
  });

  it('describes itself with the config it was given; rejects bad settings', () => {
    expect(seg.kind).toBe('cris');
    expect(seg.usesText).toBe(true);
    expect(seg.describe()).toEqual({ kind: 'cris', config: { ...CONFIG, input_size: S } });
    const fromFixture = new CrisSegmenter(CONFIG, { tokenizer, device: cpuDevice, empty: true, inputSize: 64 });
    expect(fromFixture.inputSize).toEqual([64, 64]);
    expect(fromFixture.describe().config['input_size']).toBe(64);
    fromFixture.module.dispose();
    expect(new CrisSegmenter(CONFIG, { tokenizer, empty: true, device: cpuDevice }).inputSize).toEqual([416, 416]);
    expect(() => new CrisSegmenter({ ...CONFIG, input_size: 48 }, { tokenizer, empty: true, device: cpuDevice })).toThrow('input size 48 must be a multiple of 32');
    const big = { vocabSize: 49408 } as unknown as ClipTokenizer;
    expect(() => new CrisSegmenter(CONFIG, { tokenizer: big, empty: true, device: cpuDevice })).toThrow("the tokenizer has 49408 tokens, but the model's clip.vocab_size is 1000");
    expect(() => createSegmenter('cris', CONFIG, { device: cpuDevice }, 'run.json')).toThrow('run.json: a CRIS model needs the CLIP tokenizer');
    expect(createSegmenter('cris', CONFIG, { device: cpuDevice, empty: true, tokenizer })).toBeInstanceOf(CrisSegmenter);
  });
});

describe('loading CRIS checkpoints as segmenters', () => {
  const images = [sample(8, 10, 12).image];
  const prompts = ['the red square'];
  const options = { tokenizer, device: cpuDevice, cris: { config: CONFIG, inputSize: S } };

  it('a .pth, a train.py checkpoint, a plain CRIS safetensors and a webvlsm checkpoint give the same logits', async () => {
    const ref = tiny(cpuDevice);
    const want = await evalLogits(ref, images, prompts);
    const webvlsm = join(tmp, 'cris-webvlsm.safetensors');
    await saveSegmenterFile(webvlsm, ref);
    ref.module.dispose();
    for (const path of [join(FIXTURE, 'weights.pth'), join(FIXTURE, 'checkpoint_train_format.pth'), WEIGHTS, webvlsm]) {
      // A webvlsm checkpoint stores its config; CRIS options are for CRIS.pytorch files only.
      const seg = await loadSegmenterFile(path, path === webvlsm ? { tokenizer, device: cpuDevice } : options);
      try {
        expect(seg.kind, path).toBe('cris');
        expect(seg.describe().config, path).toEqual({ ...CONFIG, input_size: S });
        expect(await evalLogits(seg as CrisSegmenter, images, prompts), path).toEqual(want);
      } finally {
        seg.module.dispose();
      }
    }
  });

  it('infers the published variant from the shapes, else asks for the config', async () => {
    const shapes = (blocks: number, embed: number) => {
      const m = new Map<string, { shape: number[] }>();
      for (let i = 0; i < blocks; i++) m.set(`backbone.visual.layer3.${i}.conv1.weight`, { shape: [256, 1024, 1, 1] });
      m.set('backbone.text_projection', { shape: [512, embed] });
      return m;
    };
    expect(inferCrisVariant(shapes(6, 1024))).toBe('cris-r50');
    expect(inferCrisVariant(shapes(23, 512))).toBe('cris-r101');
    expect(inferCrisVariant(shapes(6, 512))).toBeNull();
    expect(inferCrisVariant(shapes(1, 64))).toBeNull(); // the tiny fixture's shape
    const pth = join(FIXTURE, 'weights.pth');
    await expect(loadSegmenterFile(pth, { tokenizer, device: cpuDevice })).rejects.toThrow(`${pth}: cannot tell the CRIS variant from the weights`);
    await expect(loadSegmenterFile(pth, { tokenizer, device: cpuDevice, cris: { config: 'cris-r50' } })).rejects.toThrow(
      /weights\.pth: the checkpoint does not match 'cris-r50': 'backbone.visual.conv1.weight' is \[2, 3, 3, 3\], the config needs \[32, 3, 3, 3\]/,
    );
    await expect(loadSegmenterFile(pth, { tokenizer, device: cpuDevice, cris: { config: 'cris-r5' } as never })).rejects.toThrow("unknown CRIS config 'cris-r5'");
    const webvlsm = join(tmp, 'cris-webvlsm-options.safetensors');
    const ref = tiny(cpuDevice);
    await saveSegmenterFile(webvlsm, ref);
    ref.module.dispose();
    await expect(loadSegmenterFile(webvlsm, { tokenizer, device: cpuDevice, cris: { wordLen: 22, inputSize: undefined } })).rejects.toThrow(
      `${webvlsm}: the CRIS options wordLen apply only to CRIS.pytorch checkpoints (.pth, or a safetensors state dict with backbone.visual.* keys); this is a webvlsm checkpoint, which stores its own config`,
    );
    const notCkpt = join(tmp, 'junk.pth');
    writeFileSync(notCkpt, 'not a checkpoint');
    await expect(loadSegmenterFile(notCkpt, options)).rejects.toThrow(/junk\.pth: not a checkpoint/);
  });
});
