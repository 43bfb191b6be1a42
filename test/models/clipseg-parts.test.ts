/**
 * Building blocks of the CLIP towers and the CLIPSeg decoder, checked against independent
 * computations: HF-style attention against the engine's packed torch multi-head attention, the
 * text masks and EOS pooling rules, position-embedding interpolation (identity at the pre-training
 * grid, CLS row kept), module parameter names and init options.
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { F32_MIN, eosPositions, textAttentionMask } from '../../src/models/clip/text.js';
import { ClipVisionEmbeddings } from '../../src/models/clip/vision.js';
import { parseClipVisionConfig } from '../../src/models/clip/config.js';
import { ConfigReader } from '../../src/models/clip/config-reader.js';
import { Attention, ConvTranspose2d, Embedding, Mlp, activationFn, createRng } from '../../src/models/nn/index.js';
import { expectClose } from '../helpers/allclose.js';
import { randomNormal } from '../helpers/gradcheck.js';
import { testDevices } from '../helpers/devices.js';

describe('text masks and pooling (host side)', () => {
  it("builds HF's additive mask: causal MIN, padding MIN, both -inf", () => {
    const mask = textAttentionMask({ inputIds: [5, 6, 0], attentionMask: [1, 1, 0], shape: [1, 3] });
    const min = Math.fround(F32_MIN);
    expect([...mask]).toEqual([0, min, -Infinity, 0, 0, -Infinity, 0, 0, min]);
    expect([...textAttentionMask({ inputIds: [5, 6], shape: [1, 2] })]).toEqual([0, min, 0, 0]);
  });

  it('pools at the first largest id (eos_token_id 2) or at the first EOS id', () => {
    const tokens = { inputIds: [998, 5, 999, 999, 0, 998, 7, 999, 0, 0], shape: [2, 5] };
    expect(eosPositions(tokens, 2)).toEqual([2, 2]);
    expect(eosPositions(tokens, 998)).toEqual([0, 0]);
    expect(eosPositions({ inputIds: [1, 2, 3], shape: [1, 3] }, 49407)).toEqual([0]);
  });
});

describe('init options', () => {
  it('empty allocates without drawing random numbers', () => {
    const device = new E.CpuDevice();
    const rng = createRng(3);
    const first = rng();
    const rng2 = createRng(3);
    const emb = new Embedding(10, 4, { device, rng: rng2, empty: true });
    expect(emb.weight.shape).toEqual([10, 4]);
    expect(rng2()).toBe(first);
    emb.dispose();
  });

  it('names parameters like PyTorch/HF', () => {
    const device = new E.CpuDevice();
    const attn = new Attention(8, 2, { device });
    expect([...attn.stateDict().keys()]).toEqual([
      'k_proj.weight', 'k_proj.bias', 'v_proj.weight', 'v_proj.bias', 'q_proj.weight', 'q_proj.bias', 'out_proj.weight', 'out_proj.bias',
    ]);
    const up = new ConvTranspose2d(6, 4, 2, { device, stride: 2, groups: 2 });
    expect(up.weight.shape).toEqual([6, 2, 2, 2]);
    expect(up.bias!.shape).toEqual([4]);
    expect(() => new Attention(6, 4, { device })).toThrow(/embed dim 6 must be divisible by the number of heads 4/);
    expect(() => activationFn('swish')).toThrow(/unknown activation 'swish'/);
    for (const m of [attn, up]) m.dispose();
  });
});

describe.each(await testDevices())('CLIP parts on %s', (_name, device) => {
  it('Attention equals torch multi-head attention with the packed q|k|v weight', async () => {
    await E.scopeAsync(async () => {
      const attn = new Attention(8, 2, { device, rng: createRng(5) });
      const x = E.Tensor.fromArray(randomNormal(2 * 5 * 8, 9), [2, 5, 8], { device });
      const mask = E.Tensor.fromArray(textAttentionMask({ inputIds: new Array(10).fill(1), attentionMask: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1], shape: [2, 5] }), [2, 1, 5, 5], { device });
      const ours = attn.forward(x, { mask });
      const packed = E.concat([attn.qProj.weight, attn.kProj.weight, attn.vProj.weight], 0);
      const packedBias = E.concat([attn.qProj.bias!, attn.kProj.bias!, attn.vProj.bias!], 0);
      const perHead = E.reshape(E.expand(mask, [2, 2, 5, 5]), [4, 5, 5]);
      const ref = E.multiHeadAttention(x, x, x, {
        inProjWeight: packed, inProjBias: packedBias, outProjWeight: attn.outProj.weight, outProjBias: attn.outProj.bias,
        numHeads: 2, batchFirst: true, attnMask: perHead,
      });
      expectClose(await ours.read(), await ref.read(), 1e-6, 1e-5, 'attention');
      attn.dispose();
    });
  });

  it('Mlp is fc2(act(fc1(x)))', async () => {
    await E.scopeAsync(async () => {
      const mlp = new Mlp(4, 6, 'quick_gelu', { device, rng: createRng(2) });
      const x = E.Tensor.fromArray(randomNormal(12, 4), [3, 4], { device });
      const ref = E.linear(E.quickGelu(E.linear(x, mlp.fc1.weight, mlp.fc1.bias)), mlp.fc2.weight, mlp.fc2.bias);
      expectClose(await mlp.forward(x).read(), await ref.read(), 0, 0, 'mlp');
      mlp.dispose();
    });
  });

  it('vision positions: the table itself at the pre-training grid; CLS kept and bicubic rows otherwise', async () => {
    await E.scopeAsync(async () => {
      const config = parseClipVisionConfig(new ConfigReader({ hidden_size: 4, num_attention_heads: 1, image_size: 32, patch_size: 16 }, 't'));
      const emb = new ClipVisionEmbeddings(config, { device, rng: createRng(8) });
      expect(emb.positions(2, 2)).toBe(emb.positionEmbedding.weight);
      const table = await emb.positionEmbedding.weight.read();
      const big = await emb.positions(3, 5).read();
      expect(big.length).toBe((1 + 15) * 4);
      expect([...big.slice(0, 4)]).toEqual([...table.slice(0, 4)]);
      // Row (y, x) channel c of the 3x5 grid equals interpolate of the [1, 4, 2, 2] image.
      const grid = new Float32Array(16);
      for (let p = 0; p < 4; p++) for (let c = 0; c < 4; c++) grid[c * 4 + p] = table[(1 + p) * 4 + c]!;
      const img = E.Tensor.fromArray(grid, [1, 4, 2, 2], { device });
      const ref = await E.interpolate(img, { size: [3, 5], mode: 'bicubic' }).read();
      for (let p = 0; p < 15; p++) for (let c = 0; c < 4; c++) expect(big[(1 + p) * 4 + c]).toBe(ref[c * 15 + p]);
      emb.dispose();
    });
  });
});
