/**
 * Pipelines are keyed by what changes the WGSL text, never by shapes: one CLIPSeg forward builds a
 * bounded number of pipelines, and forwards at other image sizes, batch sizes and prompt lengths
 * build none beyond operand-alignment variants (no shape-keyed recompiles). Variants chosen by a bounded fact (matmul tile size,
 * broadcast or flat elementwise) are distinct keys, so the first forward is made to meet them all.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { readSafetensorsFile } from '../../src/engine/io/safetensors-node.js';
import { ClipSegForImageSegmentation, parseClipSegConfig } from '../../src/models/clipseg/index.js';
import { randomNormal } from '../helpers/gradcheck.js';
import { webgpuDevice } from '../helpers/devices.js';

const dir = new URL('../fixtures/clipseg/clipseg_tiny_refined/', import.meta.url).pathname;
const gpu = await webgpuDevice();

describe.skipIf(!gpu)('pipeline cache over CLIPSeg forwards', () => {
  it('one forward builds a bounded set of pipelines; other shapes add none', async () => {
    const device = gpu!;
    const config = parseClipSegConfig(JSON.parse(await (await import('node:fs/promises')).readFile(`${dir}config.json`, 'utf8')));
    const model = new ClipSegForImageSegmentation(config, { device, empty: true });
    model.loadWeights(await readSafetensorsFile(`${dir}weights.safetensors`));
    const run = async (batch: number, size: number, tokens: number) => {
      const pixelValues = E.Tensor.fromArray(randomNormal(batch * 3 * size * size, size), [batch, 3, size, size], { device });
      const ids = new Int32Array(batch * tokens).map((_, i) => (i % tokens === 0 ? 998 : i % tokens === tokens - 1 ? 999 : 5 + (i % 50)));
      const tokenBatch = { inputIds: ids, attentionMask: new Int32Array(ids.length).fill(1), shape: [batch, tokens] as [number, number] };
      const logits = E.scope(() => E.noGrad(() => model.forward({ pixelValues, tokens: tokenBatch }).logits));
      await logits.read();
      logits.dispose();
      pixelValues.dispose();
    };
    const before = device.pipelineKeys().length;
    // Two warm-up forwards meet every kernel variant: a non-native size (position embeddings get
    // interpolated) with a batch of 2 (large enough for the 8x8 matmul tiles), and the native size
    // with a batch of 1 (a same-shape copy where batch 2 broadcasts).
    await run(2, 96, 9);
    await run(1, 64, 6);
    const afterFirst = device.pipelineKeys();
    // Every distinct kernel variant a CLIPSeg forward needs, with room for a few more; a
    // shape-keyed cache would build one per layer shape.
    expect(afterFirst.length - before).toBeLessThanOrEqual(40);
    await run(1, 80, 4);
    await run(3, 112, 12);
    await run(2, 48, 5);
    // The only new keys allowed: the subgroup matmul's vec4-or-scalar operand loads, chosen by
    // operand alignment (a bounded fact: at most 4 per product kind), for a product kind already built.
    const extra = device.pipelineKeys().filter((k) => !afterFirst.includes(k));
    const kind = (key: string) => key.replace(/:a(v4|s):b(v4|s)$/, '');
    for (const key of extra) expect(afterFirst.map(kind), key).toContain(kind(key));
    expect(extra.length).toBeLessThanOrEqual(4);
    model.dispose();
  });
});
