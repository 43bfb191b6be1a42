/**
 * End-to-end tests of the browser app's start-up and Segment tab: Debian's Chromium with WebGPU
 * (SwiftShader) driven by playwright-core against the built app (scripts/serve.mjs). Run with
 * `npm run test:browser` (it builds first), apart from `npm test` (test/browser/vitest.config.ts).
 *
 * Every result the page shows is compared with the same model run in Node (CPU device) on the same
 * files. Without a WebGPU adapter in the browser the GPU tests are skipped loudly; with CI=true
 * that is a failure.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIPSeg } from '../../src/models/clipseg/api.js';
import { CRIS } from '../../src/models/cris/api.js';
import { decodeImage } from '../../src/models/image/index.js';
import { decodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { maskFromValues } from '../../src/train/data/index.js';
import { dice } from '../../src/train/metrics.js';
import { predictProbabilities } from '../../src/train/segmenter.js';
import {
  ROOT,
  Session,
  VOCAB,
  artifact,
  cpu,
  dropFile,
  isCi,
  maxAbsDiff,
  nodeCheckpoint,
  openApp,
  segmentIn,
  state,
  tempDir,
  testImage,
  tinyClipSegFolder,
  tinyCrisFolder,
  tokenizer,
  waitForModel,
  waitForState,
} from './harness.js';

/** The demo files the build shipped (WEBVLSM_DEMO_DIR, as for scripts/build-web.mjs). */
const DEMO_DIR = process.env.WEBVLSM_DEMO_DIR ? resolve(process.env.WEBVLSM_DEMO_DIR) : join(ROOT, 'weights/demo');
const DEMO_CHECKPOINT = join(DEMO_DIR, 'clipseg-tiny-synthetic.safetensors');
const DEMO_IMAGE = join(DEMO_DIR, 'demo-image.png');

const session = new Session();
const work = tempDir('browser-segment');
const imagePath = testImage(work);
const imageBytes = () => new Uint8Array(readFileSync(imagePath));

beforeAll(() => session.start());
afterAll(() => session.stop());

describe('serve.mjs', () => {
  it('serves the app, the vocabulary as gzip bytes without Content-Encoding, and 404 outside the root', async () => {
    const url = session.server.url;
    expect((await fetch(url)).headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect((await fetch(`${url}main.js`)).headers.get('content-type')).toMatch(/^text\/javascript/);
    const gz = await fetch(`${url}weights/vocab/bpe_simple_vocab_16e6.txt.gz`);
    expect(gz.headers.get('content-type')).toBe('application/gzip');
    expect(gz.headers.get('content-encoding')).toBeNull();
    const body = new Uint8Array(await gz.arrayBuffer());
    expect([body[0], body[1]]).toEqual([0x1f, 0x8b]);
    expect(body.byteLength).toBe(readFileSync(VOCAB).byteLength);
    expect((await fetch(`${url}..%2f..%2fpackage.json`)).status).toBe(404);
    expect((await fetch(`${url}nope.js`)).status).toBe(404);
  });
});

describe('start-up', () => {
  it('finds a WebGPU adapter and shows it', async ({ skip }) => {
    session.needGpu(skip);
    const s = await state(session.page);
    expect(s.gpu.kind).toBe('webgpu');
    expect(s.gpu.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(await session.page.textContent('#gpu-status')).toContain('WebGPU:');
    expect(s.errors).toEqual([]);
  });

  it('says so when the browser has no WebGPU, and offers the CPU device', async () => {
    const ctx = await session.browser.newContext();
    await ctx.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
    const { page } = await openApp(ctx, session.server.url);
    expect((await state(page)).gpu.ok).toBe(false);
    const message = await page.textContent('#gpu-message');
    expect(message).toContain('No WebGPU: this browser does not expose navigator.gpu');
    expect(message).toContain('--enable-unsafe-webgpu');
    await page.click('#use-cpu');
    expect((await state(page)).gpu.kind).toBe('cpu');
    await page.screenshot({ path: artifact('browser-no-webgpu.png') });
    await ctx.close();
  });
});

describe('invalid files', () => {
  it('get messages that name the file and say what was expected', async ({ skip }) => {
    session.needGpu(skip);
    const page = session.page;
    const text = { mimeType: 'text/plain', buffer: Buffer.from('hello, not a model\n') };
    await page.setInputFiles('#model-files-input', { name: 'notes.txt', ...text });
    await expect.poll(() => page.textContent('#model-error')).toContain('notes.txt is not a model. Expected a Hugging Face CLIPSeg folder');
    await page.setInputFiles('#model-files-input', { name: 'broken.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from([1, 2, 3]) });
    await expect.poll(() => page.textContent('#model-error')).toMatch(/^Cannot load broken\.safetensors: .*too short for the 8-byte header/);
    await page.setInputFiles('#model-files-input', { name: 'weights.pth', mimeType: 'application/octet-stream', buffer: Buffer.from('PK not really') });
    await expect.poll(() => page.textContent('#model-error')).toMatch(/^Cannot load weights\.pth: /);
    await page.setInputFiles('#image-input', { name: 'scan.png', ...text });
    await expect.poll(() => page.textContent('#image-error')).toContain('scan.png is not an image this app can read (PNG or JPEG)');
    await page.setInputFiles('#dataset-zip-input', { name: 'data.zip', ...text });
    await expect.poll(() => page.textContent('#dataset-error')).toContain('data.zip is not a zip file this app can read');
    const zip = Buffer.from(zipSync({ 'photos/a.png': new Uint8Array([1]) }));
    await page.setInputFiles('#dataset-zip-input', { name: 'photos.zip', mimeType: 'application/zip', buffer: zip });
    await expect.poll(() => page.textContent('#dataset-error')).toContain("photos is not a dataset in MedVLSM's layout: no anns/<split>.json");
    expect((await state(page)).model).toBeNull();
  });
});

describe('adapter limits', () => {
  it('a model whose weights exceed maxStorageBufferBindingSize is refused with the tensor and limit named', async ({ skip }) => {
    session.needGpu(skip);
    const ctx = await session.browser.newContext();
    // An adapter with a 4 KiB storage binding limit: the page reads GPUDevice.limits.
    await ctx.addInitScript(() => {
      const desc = Object.getOwnPropertyDescriptor(GPUDevice.prototype, 'limits')!;
      Object.defineProperty(GPUDevice.prototype, 'limits', {
        get() {
          const real = desc.get!.call(this) as GPUSupportedLimits;
          return new Proxy(real, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? 4096 : Reflect.get(t, k, t)) });
        },
      });
    });
    const { page } = await openApp(ctx, session.server.url);
    expect((await state(page)).gpu.limits.maxStorageBufferBindingSize).toBe(4096);
    await page.setInputFiles('#model-folder-input', tinyClipSegFolder());
    await expect.poll(() => page.textContent('#model-error'), { timeout: 60_000 }).toMatch(
      /This model is too large for this GPU adapter: model\.safetensors holds .+ as f32, but the adapter's maxStorageBufferBindingSize is 4\.0 KiB/,
    );
    await ctx.close();
  });
});

describe('segmentation', () => {
  it('a CLIPSeg folder (folder picker) and a dropped image: two prompts as in Node, threshold slider, mask PNG', async ({ skip }) => {
    session.needGpu(skip);
    const page = session.page;
    const folder = tinyClipSegFolder();
    await page.setInputFiles('#model-folder-input', folder);
    await waitForModel(page, (await state(page)).errors.length);
    await dropFile(page, '#image-drop', imagePath, 'image/png');
    await expect.poll(async () => (await state(page)).image?.name).toBe('synthetic-64.png');
    const prompts = ['a large round polyp', 'a small red polyp'];
    const s = await segmentIn(page, prompts);
    expect(s.model!.kind).toBe('clipseg');
    expect(s.timings.loadMs).toBeGreaterThan(0);
    expect(s.timings.pipelines).toBeGreaterThan(0);
    await page.screenshot({ path: artifact('browser-segment-clipseg-tiny.png'), fullPage: true });

    const model = await CLIPSeg.fromPretrained(folder, { device: cpu });
    const node = await model.segment(imageBytes(), prompts);
    model.dispose();
    prompts.forEach((_, k) => {
      expect(maxAbsDiff(s.segmentation!.probabilities[k]!, node.probabilities[k]!.data), `prompt ${k}: max |p_browser - p_node|`).toBeLessThan(1e-4);
    });

    // The slider re-thresholds without running the model; the mask PNG is the mask at its value.
    await page.fill('#threshold', '0');
    await expect.poll(() => page.textContent('#results')).toContain('100.0% of the image above the threshold');
    await page.fill('#threshold', '0.5');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-mask-0')]);
    expect(download.suggestedFilename()).toBe('mask-1-a-large-round-polyp.png');
    const png = decodeImage(new Uint8Array(readFileSync(await download.path())), 'mask.png');
    expect([png.width, png.height, png.channels]).toEqual([64, 64, 1]);
    const nodeMask = maskFromValues(node.probabilities[0]!.data, 64, 64, 0.5);
    expect(png.data.reduce((n, v, i) => n + (v !== nodeMask.data[i]! * 255 ? 1 : 0), 0), 'mask pixels that differ').toBeLessThanOrEqual(2);
  });

  it('a CRIS .pth with its config.json segments as CRIS does in Node', async ({ skip }) => {
    session.needGpu(skip);
    const page = session.page;
    const { dir, config } = tinyCrisFolder();
    await page.setInputFiles('#model-folder-input', dir);
    await waitForModel(page, (await state(page)).errors.length);
    const s = await segmentIn(page, ['the polyp']);
    expect(s.model!.kind).toBe('cris');
    expect(s.model!.threshold).toBe(0.35);
    const model = await CRIS.fromPretrained(dir, { config, device: cpu });
    const node = await model.segment(imageBytes(), ['the polyp']);
    model.dispose();
    expect(maxAbsDiff(s.segmentation!.probabilities[0]!, node.probabilities[0]!.data)).toBeLessThan(1e-4);
  });

  it('a segmenter checkpoint made in Node loads through the file picker and segments as in Node', async ({ skip }) => {
    session.needGpu(skip);
    const page = session.page;
    const path = await nodeCheckpoint(work);
    await page.setInputFiles('#model-files-input', path);
    await waitForModel(page, (await state(page)).errors.length);
    const s = await segmentIn(page, ['a polyp']);
    expect(s.model!.kind).toBe('segmenter');
    const seg = decodeSegmenterCheckpoint(new Uint8Array(readFileSync(path)), path, { device: cpu, tokenizer });
    const [node] = await predictProbabilities(seg, [decodeImage(imageBytes(), imagePath)], ['a polyp']);
    seg.module.dispose();
    expect(maxAbsDiff(s.segmentation!.probabilities[0]!, node!.data)).toBeLessThan(1e-4);
  });

  it('the demo checkpoint segments the demo image; the mask equals the Node mask (Dice >= 0.99)', async ({ skip }) => {
    session.needGpu(skip);
    if (!existsSync(DEMO_CHECKPOINT) || !existsSync(DEMO_IMAGE)) {
      const missing = [DEMO_CHECKPOINT, DEMO_IMAGE].filter((p) => !existsSync(p)).join(', ');
      if (isCi()) throw new Error(`the demo files are missing: ${missing}`);
      console.warn(`SKIPPED: ${missing} not found`);
      return skip('no demo checkpoint');
    }
    const page = session.page;
    await page.click('#load-demo-model');
    await waitForModel(page, (await state(page)).errors.length);
    await page.click('#load-demo-image');
    await expect.poll(async () => (await state(page)).image?.name).toBe('demo image');
    // The page fills in the prompts of demo-image.json (one per object of the image).
    const prompts = (JSON.parse(readFileSync(join(DEMO_DIR, 'demo-image.json'), 'utf8')) as { prompts: string[] }).prompts;
    expect(await page.inputValue('#prompts')).toBe(prompts.join('\n'));
    const before = await state(page);
    await page.click('#segment-button');
    const s = await waitForState(page, `s.segmentation !== null && s.segmentation.runs > ${before.segmentation?.runs ?? 0}`, { errorsBefore: before.errors.length });
    expect(s.segmentation!.prompts).toEqual(prompts);
    await page.screenshot({ path: artifact('browser-segment.png'), fullPage: true });

    const seg = decodeSegmenterCheckpoint(new Uint8Array(readFileSync(DEMO_CHECKPOINT)), DEMO_CHECKPOINT, { device: cpu, tokenizer });
    const image = decodeImage(new Uint8Array(readFileSync(DEMO_IMAGE)), DEMO_IMAGE);
    const node = await predictProbabilities(seg, prompts.map(() => image), prompts);
    const threshold = seg.threshold;
    seg.module.dispose();
    expect(s.segmentation!.threshold).toBe(threshold);
    let foreground = 0;
    prompts.forEach((prompt, k) => {
      const { width, height } = s.segmentation!;
      const nodeMask = maskFromValues(node[k]!.data, width, height, threshold);
      const pageMask = maskFromValues(s.segmentation!.probabilities[k]!, width, height, threshold);
      const count = (m: typeof nodeMask) => m.data.reduce((a, b) => a + b, 0);
      foreground += count(nodeMask);
      // An empty Node mask leaves Dice undefined: the page's must then be empty too.
      if (count(nodeMask) === 0) expect(count(pageMask), `"${prompt}": pixels in the browser mask`).toBe(0);
      else expect(dice(pageMask, nodeMask), `"${prompt}": Dice(browser mask, Node mask)`).toBeGreaterThanOrEqual(0.99);
    });
    expect(foreground, 'the demo checkpoint finds nothing in the demo image').toBeGreaterThan(0);
  });
});
