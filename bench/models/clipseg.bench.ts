/**
 * Model benchmarks: the full CIDAS/clipseg-rd64-refined architecture (its published config,
 * clipSegConfigFor; 150,747,746 parameters) with seeded random weights:
 *
 *   clipseg_rd64_refined_forward      one 352x352 image, one prompt (batch 1): vision tower to the
 *                                     deepest extracted layer, text tower, decoder, refined head
 *   clipseg_rd64_refined_finetune     decoder-only training step at batch 8 (8 images, 8 prompts):
 *                                     forward, BCE + Dice loss, backward through the decoder, AdamW
 *
 * Exported as MODEL_CASES for bench/run.ts. Each instance also reports memory through `metrics()`
 * (a field the harness may add to its JSON line):
 *   peak_bytes        max over the case of the device's liveBytes + pooledBytes, sampled at every
 *                     allocation and after each run: device memory held (tensors + reuse pool).
 *                     Buffers released but not yet submitted are in neither count, so this is a
 *                     lower bound of what the driver holds
 *   peak_live_bytes   max liveBytes: weights + the largest set of tensors alive at once
 *   weights_bytes     liveBytes after setup (parameters, plus the optimizer state for the step)
 *
 * Standalone (one JSON line per case, with the metrics):
 *   node --import ./scripts/register-ts.mjs bench/models/clipseg.bench.ts [--device webgpu|cpu]
 *        [--filter <text>] [--warmup <n>] [--reps <n>]
 * A forward takes ~40 s on lavapipe (this shared machine); the CPU reference device is far slower.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as E from '../../src/engine/index.js';
import { INSTALL_DRIVER_HINT, requestNodeDevice } from '../../src/engine/platform/node.js';
import { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { ClipSegForImageSegmentation, clipSegConfigFor } from '../../src/models/clipseg/index.js';
import { createRng, setInitSeed } from '../../src/models/nn/index.js';
import { AdamW } from '../../src/train/optim.js';
import { type BenchCase, median } from '../harness.js';

const CHECKPOINT = 'CIDAS/clipseg-rd64-refined';
const SIZE = 352;
const PROMPTS = ['a polyp', 'a skin lesion', 'one small pink round polyp at the top left', 'a kidney', 'the left lung',
  'a breast tumour', 'an optic disc', 'a large irregular skin lesion in the centre'];
/** Images (and prompts) per finetuning step: the model benchmark batch. */
const FINETUNE_BATCH = 8;

export interface ModelCaseInstance {
  run(): void;
  dispose(): void;
  /** Memory figures of the case so far (see the file header). */
  metrics(): Record<string, number>;
}

/** A BenchCase (assignable to it) whose instances also report memory. */
export interface ModelBenchCase extends Omit<BenchCase, 'setup' | 'warmup' | 'reps'> {
  warmup: number;
  reps: number;
  setup(device: E.Device): ModelCaseInstance;
}

/** Follows liveBytes + pooledBytes at every allocation (the device's alloc is wrapped until stop()). */
export function trackPeakMemory(device: E.Device): { sample(): void; peak(): number; peakLive(): number; stop(): void } {
  let peak = 0;
  let peakLive = 0;
  const sample = () => {
    const s = device.stats();
    peak = Math.max(peak, s.liveBytes + s.pooledBytes);
    peakLive = Math.max(peakLive, s.liveBytes);
  };
  const target = device as { alloc: E.Device['alloc'] };
  const original = device.alloc;
  target.alloc = (byteSize, label) => {
    const storage = original.call(device, byteSize, label);
    sample();
    return storage;
  };
  sample();
  return { sample, peak: () => peak, peakLive: () => peakLive, stop: () => void delete (target as { alloc?: unknown }).alloc };
}

let tokenizer: ClipTokenizer | null = null;

function tokens(batch: number): ReturnType<ClipTokenizer['tokenize']> {
  tokenizer ??= ClipTokenizer.fromBpeGz(readFileSync(fileURLToPath(new URL('../../weights/vocab/bpe_simple_vocab_16e6.txt.gz', import.meta.url))));
  return tokenizer.tokenize(PROMPTS.slice(0, batch), { padding: 'longest' });
}

function randomTensor(shape: number[], device: E.Device, seed: number, binary = false): E.Tensor {
  const rng = createRng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = binary ? (rng() < 0.3 ? 1 : 0) : rng() * 4 - 2;
  return E.keep(E.Tensor.fromArray(data, shape, { device }));
}

/** The model with seeded random weights (built outside any scope: parameters live until dispose). */
function buildModel(device: E.Device): ClipSegForImageSegmentation {
  setInitSeed(20240601);
  const model = new ClipSegForImageSegmentation(clipSegConfigFor(CHECKPOINT), { device });
  for (const p of model.parameters()) E.keep(p);
  return model;
}

const forwardCase: ModelBenchCase = {
  name: 'clipseg_rd64_refined_forward',
  shape: `1x3x${SIZE}x${SIZE}, 1 prompt`,
  warmup: 1,
  reps: 1,
  setup(device) {
    const memory = trackPeakMemory(device);
    const model = buildModel(device).eval();
    const pixelValues = randomTensor([1, 3, SIZE, SIZE], device, 1);
    const batch = tokens(1);
    const weightsBytes = device.stats().liveBytes;
    return {
      run: () => E.noGrad(() => E.scope(() => void model.forward({ pixelValues, tokens: batch }))),
      dispose: () => {
        memory.stop();
        pixelValues.dispose();
        model.dispose();
      },
      metrics: () => {
        memory.sample();
        return { peak_bytes: memory.peak(), peak_live_bytes: memory.peakLive(), weights_bytes: weightsBytes, parameters: model.numParameters() };
      },
    };
  },
};

const finetuneCase: ModelBenchCase = {
  name: 'clipseg_rd64_refined_finetune',
  shape: `${FINETUNE_BATCH}x3x${SIZE}x${SIZE}, ${FINETUNE_BATCH} prompts, decoder only`,
  warmup: 1,
  reps: 1,
  setup(device) {
    const memory = trackPeakMemory(device);
    const model = buildModel(device).train();
    model.freeze('clip');
    const pixelValues = randomTensor([FINETUNE_BATCH, 3, SIZE, SIZE], device, 2);
    const labels = randomTensor([FINETUNE_BATCH, SIZE, SIZE], device, 3, true);
    const batch = tokens(FINETUNE_BATCH);
    const optimizer = new AdamW(model.decoder.namedParameters(), { lr: 1e-4 });
    let weightsBytes = device.stats().liveBytes;
    let steps = 0;
    return {
      run: () => {
        E.scope(() => {
          const { logits } = model.forward({ pixelValues, tokens: batch });
          const loss = E.add(E.bceWithLogits(logits, labels), E.softDiceLoss(logits, labels));
          E.backward(loss);
        });
        optimizer.step();
        optimizer.zeroGrad();
        // The optimizer state appears at the first step: count it with the weights.
        if (steps++ === 0) weightsBytes = device.stats().liveBytes;
      },
      dispose: () => {
        memory.stop();
        optimizer.dispose();
        pixelValues.dispose();
        labels.dispose();
        model.dispose();
      },
      metrics: () => {
        memory.sample();
        return {
          peak_bytes: memory.peak(),
          peak_live_bytes: memory.peakLive(),
          weights_bytes: weightsBytes,
          parameters: model.numParameters(),
          trainable_parameters: model.decoder.numParameters(),
        };
      },
    };
  },
};

export const MODEL_CASES: ModelBenchCase[] = [forwardCase, finetuneCase];

// MODEL_CASES is usable wherever the harness takes BenchCase[].
const _asBenchCases: BenchCase[] = MODEL_CASES;
void _asBenchCases;

// ---------------------------------------------------------------------------------------------
// Standalone run (see the header).

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function standalone(): Promise<void> {
  let device: E.Device;
  if (option('--device') === 'cpu') {
    device = new E.CpuDevice();
  } else {
    const got = await requestNodeDevice();
    if (!got.device) throw new Error(`no WebGPU adapter (${got.reason}); ${INSTALL_DRIVER_HINT}, or pass --device cpu`);
    device = got.device;
  }
  const filter = option('--filter');
  for (const c of MODEL_CASES) {
    if (filter && !`${c.name} ${c.shape}`.includes(filter)) continue;
    const warmup = Number(option('--warmup') ?? c.warmup);
    const reps = Number(option('--reps') ?? c.reps);
    const t0 = performance.now();
    const instance = c.setup(device);
    await device.sync();
    const setupMs = performance.now() - t0;
    const times: number[] = [];
    for (let i = 0; i < warmup + reps; i++) {
      const start = performance.now();
      instance.run();
      device.flush();
      await device.sync();
      const ms = performance.now() - start;
      console.error(`${c.name}: ${i < warmup ? 'warm-up' : 'run'} ${i + 1}/${warmup + reps}: ${(ms / 1000).toFixed(1)} s`);
      if (i >= warmup) times.push(ms);
    }
    const metrics = instance.metrics();
    instance.dispose();
    const line = {
      name: c.name,
      shape: c.shape,
      device: device.description,
      ours_ms: +median(times).toFixed(1),
      reps,
      warmup,
      setup_ms: +setupMs.toFixed(0),
      ...metrics,
      peak_mib: +(metrics.peak_bytes! / 2 ** 20).toFixed(1),
    };
    console.log(JSON.stringify(line));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  standalone().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
