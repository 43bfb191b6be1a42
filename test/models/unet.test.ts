/**
 * The image-only UNet baseline: config parsing and its errors, parameter names and the hand-counted
 * parameter total, He initialisation, the forward against a plain-TypeScript reference written
 * independently of the engine, gradients (finite differences for the input and for parameters),
 * no leaked buffers, a short training run that must learn a synthetic mask task, and the
 * UNetSegmenter (pixels, logits, recording, freeze policies, describe).
 */
import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import type { Image } from '../../src/models/image/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/models/image/preprocess.js';
import { createRng, setInitSeed } from '../../src/models/nn/index.js';
import { UNet, type UNetConfig, parseUNetConfig, unetConfigToJson } from '../../src/models/unet/index.js';
import { AdamW } from '../../src/train/optim.js';
import { UNetSegmenter } from '../../src/train/segmenters/unet.js';
import { expectClose } from '../helpers/allclose.js';
import { cpuDevice, testDevices } from '../helpers/devices.js';
import { gradcheck, randomNormal } from '../helpers/gradcheck.js';
import { expectNoLeak } from '../helpers/leak.js';
import { referenceUNetForward } from '../helpers/unet-reference.js';

const tiny = { base_channels: 4, depth: 2, image_size: 16 };

/** Parameter count written out per layer: conv k x k (a -> b) has k*k*a*b + b values. */
function expectedParameterCount(k: number, c: number, d: number): number {
  const conv = (a: number, b: number, ks: number) => ks * ks * a * b + b;
  const w = (i: number) => c * 2 ** i;
  let n = conv(k, w(0), 3) + conv(w(0), w(0), 3);
  for (let i = 1; i < d; i++) n += conv(w(i - 1), w(i), 3) + conv(w(i), w(i), 3);
  n += conv(w(d - 1), w(d), 3) + conv(w(d), w(d), 3);
  for (let i = 0; i < d; i++) n += conv(w(i + 1), w(i), 2) + conv(w(i + 1), w(i), 3) + conv(w(i), w(i), 3);
  return n + conv(w(0), 1, 1);
}

describe('UNet config', () => {
  it('takes defaults, reads snake_case keys and round-trips through its JSON form', () => {
    expect(parseUNetConfig({})).toEqual({ inChannels: 3, baseChannels: 16, depth: 3, imageSize: 64 });
    const c = parseUNetConfig({ model_type: 'unet', ...tiny });
    expect(c).toEqual({ inChannels: 3, baseChannels: 4, depth: 2, imageSize: 16 });
    expect(unetConfigToJson(c)).toEqual({ model_type: 'unet', in_channels: 3, base_channels: 4, depth: 2, image_size: 16 });
    expect(parseUNetConfig(unetConfigToJson(c))).toEqual(c);
  });

  it('rejects bad values with the source and the key', () => {
    expect(() => parseUNetConfig({ image_size: 20, depth: 3 }, 'run/config.json')).toThrow(
      "run/config.json: 'image_size' (20) must be a multiple of 2^depth = 8 (depth 3)",
    );
    expect(() => parseUNetConfig({ base_channel: 8 }, 'c.json')).toThrow(/c\.json: 'base_channel' is not a UNet setting; known keys: .*'base_channels'/);
    expect(() => parseUNetConfig({ depth: 0 })).toThrow("config.json: 'depth' must be an integer >= 1, got 0");
    expect(() => parseUNetConfig({ base_channels: 2.5 })).toThrow(/'base_channels' must be an integer >= 1, got 2\.5/);
    expect(() => parseUNetConfig({ model_type: 'clipseg' })).toThrow("'model_type' is 'clipseg', expected 'unet'");
    expect(() => parseUNetConfig([1])).toThrow(/a UNet config must be a JSON object/);
    // A parsed config built by hand is validated too.
    expect(() => new UNet({ inChannels: 3, baseChannels: 4, depth: 2, imageSize: 18 } as UNetConfig, { empty: true, device: cpuDevice }))
      .toThrow(/'image_size' \(18\) must be a multiple of 2\^depth = 4/);
  });
});

describe('UNet structure and init', () => {
  it('has torch-style names and the hand-counted parameter total', () => {
    const net = new UNet(tiny, { device: cpuDevice, empty: true });
    const shapes = new Map(net.namedParameters().map(([n, t]) => [n, [...t.shape]]));
    expect(shapes.get('down.0.conv1.weight')).toEqual([4, 3, 3, 3]);
    expect(shapes.get('down.1.conv2.bias')).toEqual([8]);
    expect(shapes.get('bottleneck.conv1.weight')).toEqual([16, 8, 3, 3]);
    expect(shapes.get('up.1.upsample.weight')).toEqual([16, 8, 2, 2]);
    expect(shapes.get('up.0.conv.conv1.weight')).toEqual([4, 8, 3, 3]);
    expect(shapes.get('head.weight')).toEqual([1, 4, 1, 1]);
    expect(shapes.size).toBe(2 * (2 * 2 + 2 + 2 * 3) + 2); // 2 per conv: 4 down, 2 bottleneck, 6 up, head
    // 260 (down.0) + 880 (down.1) + 3488 (bottleneck) + 572 (up.0) + 2264 (up.1) + 5 (head)
    expect(net.numParameters()).toBe(7469);
    expect(expectedParameterCount(3, 4, 2)).toBe(7469);
    const full = new UNet({}, { device: cpuDevice, empty: true });
    expect(full.numParameters()).toBe(expectedParameterCount(3, 16, 3));
    net.dispose();
    full.dispose();
  });

  it('is deterministic under setInitSeed, He-uniform on the 3x3 convs with zero biases', async () => {
    setInitSeed(11);
    const a = new UNet(tiny, { device: cpuDevice });
    setInitSeed(11);
    const b = new UNet(tiny, { device: cpuDevice });
    const c = new UNet(tiny, { device: cpuDevice });
    const wa = await a.down.get(1).conv1.weight.read();
    expect([...(await b.down.get(1).conv1.weight.read())]).toEqual([...wa]);
    expect([...(await c.down.get(1).conv1.weight.read())]).not.toEqual([...wa]);
    // U(±sqrt(6 / (4 * 9))): |w| <= bound and mean square ~ bound^2 / 3 = 1/18 over 288 values.
    const bound = Math.sqrt(6 / 36);
    expect(Math.max(...wa.map(Math.abs))).toBeLessThanOrEqual(bound);
    const meanSq = [...wa].reduce((s, v) => s + v * v, 0) / wa.length;
    expect(meanSq).toBeGreaterThan(0.8 / 18);
    expect(meanSq).toBeLessThan(1.2 / 18);
    expect([...(await a.down.get(1).conv1.bias!.read())]).toEqual(new Array(8).fill(0));
    for (const m of [a, b, c]) m.dispose();
  });
});

async function hostParameters(net: UNet): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of net.namedParameters()) out.set(name, (await t.read()) as Float32Array);
  return out;
}

/** Square masks on noisy dark images: the object is brighter in every channel. */
function squaresTask(n: number, size: number, seed: number): { images: Image[]; masks: Float32Array } {
  const rng = createRng(seed);
  const images: Image[] = [];
  const masks = new Float32Array(n * size * size);
  for (let b = 0; b < n; b++) {
    const side = 4 + Math.floor(rng() * 5);
    const y0 = Math.floor(rng() * (size - side));
    const x0 = Math.floor(rng() * (size - side));
    const data = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = y >= y0 && y < y0 + side && x >= x0 && x < x0 + side;
        masks[(b * size + y) * size + x] = inside ? 1 : 0;
        for (let c = 0; c < 3; c++) data[(y * size + x) * 3 + c] = (inside ? 150 : 60) + Math.floor(rng() * 50);
      }
    }
    images.push({ width: size, height: size, channels: 3, data });
  }
  return { images, masks };
}

describe.each(await testDevices())('UNet on %s', (name, device) => {
  it('forward gives [B, H, W] logits equal to an independent reference', async () => {
    await E.scopeAsync(async () => {
      const net = new UNet({ base_channels: 2, depth: 2, image_size: 8 }, { device, rng: createRng(3) });
      const xs = randomNormal(2 * 3 * 8 * 12, 4);
      const out = net.forward(E.Tensor.fromArray(xs, [2, 3, 8, 12], { device }));
      expect(out.shape).toEqual([2, 8, 12]);
      const got = await out.read();
      const params = await hostParameters(net);
      for (let b = 0; b < 2; b++) {
        const ref = referenceUNetForward(params, xs.subarray(b * 288, (b + 1) * 288), 3, 8, 12, 2);
        expectClose(got.subarray(b * 96, (b + 1) * 96), ref, 1e-5, 1e-4, `unet batch ${b}`);
      }
      net.dispose();
    });
  });

  it('rejects inputs of the wrong rank, channels or size', () => {
    const net = new UNet(tiny, { device, empty: true });
    const x = (shape: number[]) => E.Tensor.zeros(shape, { device });
    E.scope(() => {
      expect(() => net.forward(x([1, 3, 16, 18]))).toThrow('UNet.forward: height 16 and width 18 must be positive multiples of 2^depth = 4 (depth 2)');
      expect(() => net.forward(x([1, 3, 6, 16]))).toThrow(/height 6 and width 16 must be positive multiples of 2\^depth = 4/);
      expect(() => net.forward(x([1, 1, 16, 16]))).toThrow('UNet.forward: pixels must be [B, 3, H, W], got [1, 1, 16, 16]');
      expect(() => net.forward(x([3, 16, 16]))).toThrow(/pixels must be \[B, 3, H, W\], got \[3, 16, 16\]/);
    });
    net.dispose();
  });

  it('frees every intermediate after forward and backward', async () => {
    const net = new UNet(tiny, { device, rng: createRng(1) });
    const x = E.Tensor.fromArray(randomNormal(2 * 3 * 16 * 16, 2), [2, 3, 16, 16], { device });
    await expectNoLeak(device, net.parameters(), () => net.forward(x));
    x.dispose();
    net.dispose();
  });

  it('learns a synthetic square-mask task in 30 AdamW steps (BCE + soft Dice)', async () => {
    const seg = new UNetSegmenter(tiny, { device, init: { rng: createRng(21) } });
    const { images, masks } = squaresTask(6, 16, 5);
    const prompts = images.map(() => 'a square');
    const opt = new AdamW(seg.trainable('full'), { lr: 1e-2, weightDecay: 0 });
    const pixels = E.keep(seg.pixels(images));
    const target = E.keep(E.Tensor.fromArray(masks, [6, 16, 16], { device }));
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const loss = E.scope(() => {
        const logits = seg.logits(pixels, prompts, { train: true, freeze: 'full' });
        return E.add(E.bceWithLogits(logits, target), E.softDiceLoss(logits, target));
      });
      E.backward(loss);
      losses.push(await loss.item());
      loss.dispose();
      opt.step();
      seg.module.zeroGrad();
    }
    // Untrained: BCE ~0.7 plus Dice ~0.7; a model that finds the squares ends far below.
    expect(losses[0]!).toBeGreaterThan(0.9);
    expect(losses[29]! / losses[0]!).toBeLessThan(0.35);
    const probs = await E.noGrad(() => E.sigmoid(seg.logits(pixels, prompts))).read();
    let correct = 0;
    probs.forEach((p, i) => { correct += (p > seg.threshold ? 1 : 0) === masks[i] ? 1 : 0; });
    expect(correct / probs.length).toBeGreaterThan(0.95);
    console.log(`UNet on ${name}: loss ${losses[0]!.toFixed(3)} -> ${losses[29]!.toFixed(3)}, pixel accuracy ${(correct / probs.length).toFixed(3)}`);
    pixels.dispose();
    target.dispose();
    opt.dispose();
    seg.module.dispose();
  });
});

describe('UNet gradients (cpu)', () => {
  const config = { base_channels: 2, depth: 2, image_size: 8 };

  it('input gradient matches finite differences', async () => {
    const net = new UNet(config, { device: cpuDevice, rng: createRng(9) });
    await gradcheck(cpuDevice, ([x]) => net.forward(x!), [[1, 3, 8, 8]], { samples: 16, seed: 3 });
    net.dispose();
  });

  it('parameter gradients match finite differences at every kind of layer', async () => {
    const device = cpuDevice;
    // Base 4: with base 2 whole channels start dead and most parameter gradients are exactly 0.
    const net = new UNet({ ...config, base_channels: 4 }, { device, rng: createRng(9) });
    const x = E.Tensor.fromArray(randomNormal(2 * 3 * 64, 6), [2, 3, 8, 8], { device });
    const r = E.Tensor.fromArray(randomNormal(2 * 64, 7), [2, 8, 8], { device });
    const lossOf = () => E.scope(() => E.sum(E.mul(net.forward(x), r)));
    const loss = lossOf();
    E.backward(loss);
    loss.dispose();
    const names = ['down.0.conv1.weight', 'down.1.conv2.bias', 'bottleneck.conv1.weight', 'up.1.upsample.weight', 'up.0.conv.conv1.weight', 'head.weight', 'head.bias'];
    const params = new Map(net.namedParameters());
    const rand = createRng(4);
    for (const pname of names) {
      const p = params.get(pname)!;
      const grad = (await p.grad!.read()) as Float32Array;
      const values = (await p.read()) as Float32Array;
      // Check the largest gradient and two random non-zero ones (a zero/zero match proves little).
      const live = [...grad.keys()].filter((i) => Math.abs(grad[i]!) > 1e-3);
      expect(live.length, `${pname} has no gradient above 1e-3`).toBeGreaterThan(0);
      const largest = live.reduce((a, b) => (Math.abs(grad[b]!) > Math.abs(grad[a]!) ? b : a));
      const picks = [largest, live[Math.floor(rand() * live.length)]!, live[Math.floor(rand() * live.length)]!];
      for (const k of picks) {
        // A small step: a first-layer weight moves every pixel, and a larger one crosses ReLU kinks.
        const h = 1e-3;
        const at = async (v: number) => {
          const data = values.slice();
          data[k] = v;
          net.loadStateDict({ [pname]: { shape: p.shape, data } }, { strict: false });
          return E.noGrad(lossOf).item();
        };
        const numeric = ((await at(values[k]! + h)) - (await at(values[k]! - h))) / (2 * h);
        net.loadStateDict({ [pname]: { shape: p.shape, data: values } }, { strict: false });
        expect(Math.abs(grad[k]! - numeric), `${pname}[${k}]: autograd ${grad[k]}, finite difference ${numeric}`)
          .toBeLessThanOrEqual(1e-3 + 1e-3 * Math.abs(numeric));
      }
    }
    net.zeroGrad();
    x.dispose();
    r.dispose();
    net.dispose();
  });
});

describe.each(await testDevices())('UNetSegmenter on %s', (_name, device) => {
  it('normalises images to inputSize, ignores prompts and records only when training', async () => {
    const seg = new UNetSegmenter(tiny, { device, init: { rng: createRng(2) } });
    expect([seg.kind, seg.usesText, seg.threshold, seg.inputSize]).toEqual(['unet', false, 0.5, [16, 16]]);
    const grey: Image = { width: 20, height: 12, channels: 3, data: new Uint8Array(20 * 12 * 3).fill(100) };
    const { images } = squaresTask(1, 16, 3);
    await E.scopeAsync(async () => {
      const px = seg.pixels([grey, images[0]!]);
      expect(px.shape).toEqual([2, 3, 16, 16]);
      const values = await px.read();
      for (let c = 0; c < 3; c++) expect(values[c * 256 + 37]).toBeCloseTo((100 / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!, 5);
      const evalOut = seg.logits(px, ['a', 'b']);
      expect(evalOut.shape).toEqual([2, 16, 16]);
      expect(evalOut.node).toBeNull();
      const trainOut = seg.logits(px, ['x', 'y'], { train: true, freeze: 'decoder-only' });
      expect(trainOut.node).not.toBeNull();
      expect([...(await trainOut.read())]).toEqual([...(await evalOut.read())]);
      expect(() => seg.logits(px, ['only one'])).toThrow('UNetSegmenter.logits: 2 images but 1 prompts (one per image, even though the UNet ignores them)');
      expect(() => seg.logits(E.Tensor.zeros([1, 3, 8, 8], { device }), ['a'])).toThrow(/pixels must be \[B, 3, 16, 16\] \(inputSize\), got \[1, 3, 8, 8\]/);
    });
    seg.module.dispose();
  });

  it('trains every parameter under every freeze policy and describes itself', () => {
    const seg = new UNetSegmenter({ ...tiny, model_type: 'unet' }, { device, init: { empty: true } });
    const all = seg.module.namedParameters();
    for (const policy of ['full', 'decoder-only', 'frozen-image', 'frozen-text'] as const) {
      const t = seg.trainable(policy);
      expect(t.map(([n]) => n)).toEqual(all.map(([n]) => n));
      expect(t.every(([, p], i) => p === all[i]![1])).toBe(true);
    }
    expect(() => seg.trainable('encoder-only' as never)).toThrow(/unknown freeze policy 'encoder-only'/);
    const d = seg.describe();
    expect(d).toEqual({ kind: 'unet', config: { model_type: 'unet', in_channels: 3, base_channels: 4, depth: 2, image_size: 16 } });
    expect(parseUNetConfig(d.config)).toEqual(seg.module.config);
    expect(() => new UNetSegmenter({ in_channels: 1, ...tiny }, { device, init: { empty: true } })).toThrow(/in_channels is 1, but the pixels are RGB/);
    seg.module.dispose();
  });
});
