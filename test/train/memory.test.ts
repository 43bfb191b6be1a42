/**
 * GPU memory stays flat over 100 training steps (issue 7): the trainer's step (forwardBackward +
 * clipGradients + AdamW, gradients dropped) with a validation pass (validationScores) every 20
 * steps, on WebGPU, for a tiny CLIPSeg (the clipseg_tiny_plain fixture with its 1000-id vocabulary,
 * freeze 'decoder-only'; 'full' for 40 steps) and a tiny UNet. After step 2 (the optimizer state
 * exists) the live buffers and bytes are exactly those of the model, its AdamW moments and nothing
 * else, and they are the same after the last step; the pooled bytes stay bounded.
 * NOTE: `created` keeps growing at steady state (buffer churn, not growth: the pool destroys what
 * exceeds 64 buffers per size bucket and the next step creates them again); the log line shows it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Device, DeviceStats } from '../../src/engine/index.js';
import { readSafetensorsFile } from '../../src/engine/io/safetensors-node.js';
import { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { createRng } from '../../src/models/nn/init.js';
import { MedVlsmDataset } from '../../src/train/data/index.js';
import { AdamW } from '../../src/train/optim.js';
import type { FreezePolicy, Segmenter } from '../../src/train/segmenter.js';
import { ClipSegSegmenter } from '../../src/train/segmenters/clipseg.js';
import { UNetSegmenter } from '../../src/train/segmenters/unet.js';
import { clipGradients, forwardBackward } from '../../src/train/step.js';
import { generateSyntheticDataset, syntheticSource } from '../../src/train/synthetic/index.js';
import { validationScores } from '../../src/train/validate.js';
import { truncatedClipVocab } from '../helpers/clipseg-folder.js';
import { webgpuDevice } from '../helpers/devices.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PLAIN = join(ROOT, 'test/fixtures/clipseg/clipseg_tiny_plain');
const VALIDATE_EVERY = 20;

const gpu = await webgpuDevice();
const synthetic = generateSyntheticDataset({ size: 32, seed: 5, images: { train: 6, val: 2, test: 0 } });
const dataset = await MedVlsmDataset.open(syntheticSource(synthetic), { name: 'synth', prompt: { kind: 'random' }, cache: true });
const val = Array.from({ length: dataset.size('val') }, (_, index) => ({ dataset, index }));

function tinyClipSeg(device: Device, weights: Awaited<ReturnType<typeof readSafetensorsFile>>): Segmenter {
  const { vocabJson, mergesTxt } = truncatedClipVocab();
  const config = JSON.parse(readFileSync(join(PLAIN, 'config.json'), 'utf8')) as Record<string, unknown>;
  const seg = new ClipSegSegmenter(config, { tokenizer: ClipTokenizer.fromHf(vocabJson, mergesTxt), device, empty: true });
  seg.module.loadWeights(weights);
  return seg;
}

interface LoopResult {
  stats: DeviceStats[];
  losses: number[];
  expectedLive: { buffers: number; bytes: number };
  /** Trainable parameters that never got a gradient (no optimizer state). */
  neverUpdated: string[];
}

/** `steps` training steps of batch 2, validating every VALIDATE_EVERY steps; stats after each step. */
async function trainLoop(device: Device, seg: Segmenter, freeze: FreezePolicy, steps: number): Promise<LoopResult> {
  const trainable = seg.trainable(freeze);
  const optimizer = new AdamW(trainable, { lr: 1e-3 });
  const n = dataset.size('train');
  const stats: DeviceStats[] = [];
  const losses: number[] = [];
  for (let step = 1; step <= steps; step++) {
    const samples = await Promise.all([0, 1].map((k) => dataset.loadSample('train', (2 * step + k) % n, step)));
    optimizer.zeroGrad();
    const batch = { images: samples.map((s) => s.image), prompts: samples.map((s) => s.prompt.text), masks: samples.map((s) => s.mask) };
    losses.push(await forwardBackward(seg, batch, { freeze, loss: { kind: 'dice+bce' } }));
    const norm = await clipGradients(optimizer.params, 1);
    expect(Number.isFinite(norm)).toBe(true);
    optimizer.step();
    optimizer.zeroGrad();
    if (step % VALIDATE_EVERY === 1) {
      const scores = await validationScores(seg, val, 'val', { kind: 'random' }, 2);
      expect(scores.n).toBe(val.length);
    }
    await device.sync();
    stats.push(device.stats());
  }
  // What must live: every state-dict tensor of the model and two AdamW moments per updated parameter.
  const state = [...seg.module.stateDict().values()];
  const updated = optimizer.stateDict();
  const neverUpdated = trainable.filter(([name]) => !updated.has(name)).map(([name]) => name);
  const moments = trainable.filter(([name]) => updated.has(name));
  const expectedLive = {
    buffers: state.length + 2 * moments.length,
    bytes: state.reduce((a, t) => a + t.size * 4, 0) + 2 * moments.reduce((a, [, t]) => a + t.size * 4, 0),
  };
  optimizer.dispose();
  seg.module.dispose();
  return { stats, losses, expectedLive, neverUpdated };
}

// CLIPSeg's vision tower ends at hidden states for the decoder: its post_layernorm and projection
// serve only CLIP's own pooled output, so even 'full' never gives them a gradient.
const VISION_HEAD = ['clip.vision_model.post_layernorm.weight', 'clip.vision_model.post_layernorm.bias', 'clip.visual_projection.weight'];

describe.skipIf(gpu === null)('GPU memory over 100 training steps with validation', () => {
  const device = gpu!;
  const clipseg = async () => tinyClipSeg(device, await readSafetensorsFile(join(PLAIN, 'weights.safetensors')));
  // 'full' CLIPSeg records both towers and is ~3x slower on lavapipe: 40 steps (two validations).
  const cases: [string, FreezePolicy, number, () => Promise<Segmenter>, string[]][] = [
    ['tiny CLIPSeg', 'decoder-only', 100, clipseg, []],
    ['tiny CLIPSeg', 'full', 40, clipseg, VISION_HEAD],
    ['tiny UNet', 'full', 100, async () => new UNetSegmenter({ base_channels: 4, depth: 2, image_size: 32 }, { device, init: { rng: createRng(1) } }), []],
  ];

  it.each(cases)('%s, freeze %s, %i steps: live buffers and bytes flat from step 2 on, pool bounded', async (model, freeze, steps, build, neverUpdatedExpected) => {
    await device.sync();
    const before = device.stats();
    const seg = await build();
    const started = performance.now();
    const { stats, losses, expectedLive, neverUpdated } = await trainLoop(device, seg, freeze, steps);
    const seconds = (performance.now() - started) / 1000;
    const at2 = stats[1]!;
    const last = stats[steps - 1]!;
    const half = stats[steps / 2 - 1]!;
    console.log(`${model} (${freeze}): ${steps} steps in ${seconds.toFixed(1)} s; pooled bytes at steps 2 / ${steps / 2} / ${steps}: ` +
      `${at2.pooledBytes} / ${half.pooledBytes} / ${last.pooledBytes}; buffers created ${at2.created} / ${half.created} / ${last.created}`);
    expect(neverUpdated.sort()).toEqual([...neverUpdatedExpected].sort());
    expect(last.liveBuffers).toBe(at2.liveBuffers);
    expect(last.liveBytes).toBe(at2.liveBytes);
    for (const s of stats.slice(1)) expect(s.liveBuffers).toBe(at2.liveBuffers);
    expect(at2.liveBuffers - before.liveBuffers).toBe(expectedLive.buffers);
    expect(at2.liveBytes - before.liveBytes).toBe(expectedLive.bytes);
    // The pool stays bounded: the second half of the run adds at most a little (new prompt lengths).
    const firstHalfPeak = Math.max(...stats.slice(0, steps / 2).map((s) => s.pooledBytes));
    expect(last.pooledBytes).toBeLessThanOrEqual(1.25 * firstHalfPeak);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Everything is freed with the model and the optimizer.
    await device.sync();
    expect(device.stats().liveBuffers).toBe(before.liveBuffers);
    expect(device.stats().liveBytes).toBe(before.liveBytes);
  }, 300_000);
});
