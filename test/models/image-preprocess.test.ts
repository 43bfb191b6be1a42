// CLIPSeg preprocessing (HF CLIPSegProcessor / ViTImageProcessor slow path). Exact float32 values were
// computed with numpy 2.4 the way HF does it: (np.float64(v) * (1/255)).astype(float32), then
// (x - mean_f32) / std_f32 in float32.
import { describe, expect, it } from 'vitest';
import {
  CLIP_MEAN,
  CLIP_STD,
  type Image,
  clipsegPreprocess,
  encodePng,
  decodeImage,
  preprocessOptionsFromConfig,
  resizePil,
} from '../../src/models/image/index.js';

const NUMPY_IMAGENET: Record<number, [number, number, number]> = {
  0: [-2.1179039478302, -2.0357141494750977, -1.804444432258606],
  1: [-2.1007792949676514, -2.018207311630249, -1.7870151996612549],
  37: [-1.4842880964279175, -1.3879550695419312, -1.1595641374588013],
  128: [0.07406462728977203, 0.20518219470977783, 0.4264925718307495],
  200: [1.3070467710494995, 1.465686321258545, 1.6813944578170776],
  255: [2.248908281326294, 2.4285714626312256, 2.640000104904175],
};

function solid(w: number, h: number, px: number[]): Image {
  const data = new Uint8Array(w * h * px.length);
  for (let i = 0; i < data.length; i++) data[i] = px[i % px.length]!;
  return { width: w, height: h, channels: px.length as 1 | 3 | 4, data };
}

function randomImage(w: number, h: number, channels: 1 | 2 | 3 | 4, seed: number): Image {
  const data = new Uint8Array(w * h * channels).map(() => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed >> 8) & 255;
  });
  return { width: w, height: h, channels, data };
}

describe('clipsegPreprocess', () => {
  it('gives numpy float32 values bit for bit (ImageNet statistics by default)', () => {
    for (const [v, expected] of Object.entries(NUMPY_IMAGENET)) {
      const out = clipsegPreprocess(solid(5, 3, [Number(v), Number(v), Number(v)]), 8);
      expect(out.shape).toEqual([1, 3, 8, 8]);
      for (let c = 0; c < 3; c++) {
        const plane = out.pixelValues.subarray(c * 64, (c + 1) * 64);
        expect(plane.every((x) => x === Math.fround(expected[c]!))).toBe(true);
      }
    }
  });

  it('resizes with Pillow bilinear to 352 x 352 ignoring the aspect ratio, CHW layout', () => {
    const img = randomImage(53, 21, 3, 5);
    const out = clipsegPreprocess(img);
    expect(out.shape).toEqual([1, 3, 352, 352]);
    expect([out.originalWidth, out.originalHeight]).toEqual([53, 21]);
    const resized = resizePil(img, 352, 352, 'bilinear');
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    let worst = 0;
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 352 * 352; i += 97) {
        const v = resized.data[3 * i + c]!;
        const ref = (v / 255 - mean[c]!) / std[c]!; // float64 reference
        worst = Math.max(worst, Math.abs(out.pixelValues[c * 352 * 352 + i]! - ref));
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });

  it('converts grey and grey+alpha to RGB (replicated) and drops alpha like convert("RGB")', () => {
    const grey = randomImage(40, 30, 1, 11);
    const rgb: Image = { width: 40, height: 30, channels: 3, data: new Uint8Array(40 * 30 * 3) };
    const rgba: Image = { width: 40, height: 30, channels: 4, data: new Uint8Array(40 * 30 * 4) };
    const ga: Image = { width: 40, height: 30, channels: 2, data: new Uint8Array(40 * 30 * 2) };
    for (let i = 0; i < 1200; i++) {
      const v = grey.data[i]!;
      rgb.data.set([v, v, v], 3 * i);
      rgba.data.set([v, v, v, i & 255], 4 * i);
      ga.data.set([v, 255 - (i & 255)], 2 * i);
    }
    const a = clipsegPreprocess(grey, 64).pixelValues;
    for (const other of [rgb, rgba, ga]) expect(Array.from(clipsegPreprocess(other, 64).pixelValues)).toEqual(Array.from(a));
  });

  it('accepts a 1x1 image (constant output) and non-square sizes', () => {
    const one = clipsegPreprocess(solid(1, 1, [255, 0, 128]));
    expect(one.shape).toEqual([1, 3, 352, 352]);
    expect(one.pixelValues[0]).toBe(Math.fround(NUMPY_IMAGENET[255]![0]));
    expect(one.pixelValues[352 * 352]).toBe(Math.fround(NUMPY_IMAGENET[0]![1]));
    expect(one.pixelValues[2 * 352 * 352 + 1000]).toBe(Math.fround(NUMPY_IMAGENET[128]![2]));
    const rect = clipsegPreprocess(solid(3, 3, [1, 2, 3]), { size: { height: 224, width: 160 } });
    expect(rect.shape).toEqual([1, 3, 224, 160]);
  });

  it('reads HF preprocessor_config.json', () => {
    const cidas = {
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      image_mean: [0.485, 0.456, 0.406],
      image_processor_type: 'ViTImageProcessor',
      image_std: [0.229, 0.224, 0.225],
      processor_class: 'CLIPSegProcessor',
      resample: 2,
      rescale_factor: 0.00392156862745098,
      size: { height: 352, width: 352 },
    };
    const o = preprocessOptionsFromConfig(cidas);
    expect(o).toEqual({
      size: { height: 352, width: 352 },
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      resample: 'bilinear',
      rescaleFactor: 0.00392156862745098,
      doResize: true,
      doRescale: true,
      doNormalize: true,
    });
    const img = randomImage(30, 20, 3, 2);
    expect(Array.from(clipsegPreprocess(img, o).pixelValues)).toEqual(Array.from(clipsegPreprocess(img).pixelValues));
    const old = preprocessOptionsFromConfig({ image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], size: 224 });
    const half = clipsegPreprocess(solid(2, 2, [255, 0, 51]), old);
    expect(half.shape).toEqual([1, 3, 224, 224]);
    expect([half.pixelValues[0], half.pixelValues[224 * 224], half.pixelValues[2 * 224 * 224]]).toEqual([1, -1, Math.fround(Math.fround(Math.fround(51 / 255) - 0.5) / 0.5)]);
    const clip = clipsegPreprocess(solid(2, 2, [0, 0, 0]), { size: 4, mean: CLIP_MEAN, std: CLIP_STD });
    expect(clip.pixelValues[0]).toBeCloseTo(-0.48145466 / 0.26862954, 6);
    expect(() => preprocessOptionsFromConfig({ resample: 0 })).toThrow(/resample=0 is not supported/);
    expect(() => preprocessOptionsFromConfig({ size: { shortest_edge: 224 } })).toThrow(/shortest_edge/);
  });

  it('handles an 8000 x 8000 image (decoded from PNG) in a few seconds', () => {
    // Documented behaviour: 8000 x 8000 = 64 Mpx is under MAX_PIXELS (2^27) and decodes; a grey image is
    // resized as one channel. Measured here: encode 1.4 s, decode 0.7 s, preprocess 1.2 s, ~280 MB RSS.
    const W = 8000;
    const data = new Uint8Array(W * W);
    for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) data[y * W + x] = (x >> 5) ^ (y >> 5);
    const img = decodeImage(encodePng({ width: W, height: W, channels: 1, data }, { filter: 'up', level: 1 }), 'big.png');
    expect([img.width, img.height, img.channels]).toEqual([W, W, 1]);
    const out = clipsegPreprocess(img);
    expect(out.shape).toEqual([1, 3, 352, 352]);
    expect([out.originalWidth, out.originalHeight]).toEqual([W, W]);
    expect(out.pixelValues.every((v) => Number.isFinite(v) && v >= -2.2 && v <= 2.7)).toBe(true);
  });
});
