/**
 * Model benchmark: the full CRIS R50 architecture (crisConfigFor('cris-r50'); 146,849,122
 * parameters) with seeded random weights, one 416x416 image and one prompt of word_len 17 (batch
 * 1), forward only. Reports memory like clipseg.bench.ts (peak_bytes = max liveBytes + pooledBytes).
 * Run through `npm run bench -- --only models --filter cris`; on lavapipe one forward takes
 * minutes (the direct-loop convolutions dominate).
 */
import * as E from '../../src/engine/index.js';
import { Cris, crisConfigFor } from '../../src/models/cris/index.js';
import { createRng, setInitSeed } from '../../src/models/nn/index.js';
import { type ModelBenchCase, trackPeakMemory } from './clipseg.bench.js';

const SIZE = 416;
const WORD_LEN = 17;

const forwardCase: ModelBenchCase = {
  name: 'cris_r50_forward',
  shape: `1x3x${SIZE}x${SIZE}, 1 prompt of ${WORD_LEN} tokens`,
  warmup: 0,
  reps: 1,
  setup(device) {
    const memory = trackPeakMemory(device);
    setInitSeed(20240602);
    const model = new Cris(crisConfigFor('cris-r50', { wordLen: WORD_LEN }), { device });
    for (const p of model.parameters()) E.keep(p);
    model.eval();
    const rng = createRng(7);
    const pixels = E.keep(E.Tensor.fromArray(Float32Array.from({ length: 3 * SIZE * SIZE }, () => rng() * 4 - 2), [1, 3, SIZE, SIZE], { device }));
    // BOS, a few words, EOS, zero padding (CRIS's pad mask is id == 0).
    const ids = new Int32Array(WORD_LEN);
    ids.set([49406, 320, 1929, 49407]);
    const tokens = { inputIds: ids, attentionMask: Int32Array.from(ids, (id) => (id === 0 ? 0 : 1)), shape: [1, WORD_LEN] as [number, number] };
    const weightsBytes = device.stats().liveBytes;
    return {
      run: () => E.noGrad(() => E.scope(() => void model.forward({ pixels, tokens }))),
      dispose: () => {
        memory.stop();
        pixels.dispose();
        model.dispose();
      },
      metrics: () => {
        memory.sample();
        return { peak_bytes: memory.peak(), peak_live_bytes: memory.peakLive(), weights_bytes: weightsBytes, parameters: model.numParameters() };
      },
    };
  },
};

export const MODEL_CASES: ModelBenchCase[] = [forwardCase];
