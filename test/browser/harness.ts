/**
 * The browser tests' harness: serves the built app (scripts/serve.mjs on a free port), launches
 * Debian's Chromium through playwright-core with WebGPU on (SwiftShader's Vulkan adapter in a
 * headless machine), reads what the page publishes (window.__webvlsm, web/src/state.ts), drives
 * the Segment tab, and writes the test inputs to disk.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { expect } from 'vitest';
import { CpuDevice } from '../../src/engine/index.js';
import { ClipTokenizer } from '../../src/models/clip/tokenizer.js';
import { encodePng } from '../../src/models/image/index.js';
import { createRng } from '../../src/models/nn/init.js';
import { encodeSegmenterCheckpoint } from '../../src/train/checkpoint.js';
import { ClipSegSegmenter } from '../../src/train/segmenters/clipseg.js';
import { generateImage } from '../../src/train/synthetic/index.js';
import type { PublishedState } from '../../web/src/state.js';
import { truncatedClipVocab } from '../helpers/clipseg-folder.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export const VOCAB = join(ROOT, 'weights/vocab/bpe_simple_vocab_16e6.txt.gz');

/** Debian's chromium package; CHROMIUM overrides it. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * `--enable-unsafe-webgpu` is all Chromium 156 on Linux needs: navigator.gpu then offers its
 * SwiftShader (CPU Vulkan) adapter in headless mode, with no GPU or display. Tried and not needed
 * here: --use-angle=swiftshader, --enable-features=Vulkan, --use-webgpu-adapter=swiftshader.
 * --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
 */
export const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--no-sandbox'];

export const isCi = (): boolean => process.env.CI === 'true' || process.env.CI === '1';

/** Node's side of every comparison: the CPU device (the kernels' TypeScript references). */
export const cpu = new CpuDevice();
export const tokenizer = ClipTokenizer.fromBpeGz(new Uint8Array(readFileSync(VOCAB)));

export interface Server {
  url: string;
  close(): void;
}

/** Starts scripts/serve.mjs on a free port and resolves with its URL once it listens. */
export function serveApp(): Promise<Server> {
  if (!existsSync(join(ROOT, 'web/dist/index.html'))) {
    throw new Error('web/dist/index.html is missing: run `npm run build:web` first (npm run test:browser does)');
  }
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'scripts/serve.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve.mjs did not start in 20 s: ${out}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[0], close: () => child.kill() });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}: ${out}`)));
  });
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** Opens the app in a new page of `context` and waits until it has started. */
export async function openApp(context: BrowserContext, url: string): Promise<{ page: Page; console: string[] }> {
  const page = await context.newPage();
  const lines: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') lines.push(`[${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => lines.push(`[pageerror] ${err.message}`));
  await page.goto(url);
  await page.waitForFunction(() => (globalThis as { __webvlsm?: { ready: boolean } }).__webvlsm?.ready === true, null, { timeout: 60_000 });
  return { page, console: lines };
}

/** One served app, one Chromium and one page, shared by the tests of a file (they run in order). */
export class Session {
  server!: Server;
  browser!: Browser;
  context!: BrowserContext;
  page!: Page;
  console: string[] = [];
  gpuOk = false;

  async start(): Promise<void> {
    this.server = await serveApp();
    this.browser = await launchChromium();
    this.context = await this.browser.newContext({ viewport: { width: 1360, height: 980 }, acceptDownloads: true });
    ({ page: this.page, console: this.console } = await openApp(this.context, this.server.url));
    this.gpuOk = (await state(this.page)).gpu.ok;
  }

  async stop(): Promise<void> {
    await this.browser?.close();
    this.server?.close();
  }

  /** Skips a GPU test when the browser has no adapter (a failure with CI=true). */
  needGpu(skip: (note?: string) => void): void {
    if (this.gpuOk) return;
    if (isCi()) throw new Error(`CI=true but the browser found no WebGPU adapter. Page console:\n${this.console.join('\n')}`);
    console.warn('SKIPPED: the browser has no WebGPU adapter (Chromium with --enable-unsafe-webgpu should offer SwiftShader)');
    skip('no WebGPU adapter in the browser');
  }
}

export function state(page: Page): Promise<PublishedState> {
  return page.evaluate(() => (globalThis as unknown as { __webvlsm: PublishedState }).__webvlsm);
}

/**
 * Waits until `predicate` (an expression over the published state `s`) holds; fails as soon as
 * the page shows an error message beyond the first `errorsBefore`.
 */
export async function waitForState(
  page: Page,
  predicate: string,
  options: { timeout?: number; errorsBefore?: number } = {},
): Promise<PublishedState> {
  const { timeout = 300_000, errorsBefore = 0 } = options;
  await page.waitForFunction(
    ([pred, before]) => {
      const s = (globalThis as unknown as { __webvlsm: PublishedState }).__webvlsm;
      return new Function('s', `return (${pred});`)(s) || s.errors.length > (before as number);
    },
    [predicate, errorsBefore] as const,
    { timeout, polling: 250 },
  );
  const s = await state(page);
  if (s.errors.length > errorsBefore) throw new Error(`the page showed an error: ${s.errors.slice(errorsBefore).join(' | ')}`);
  return s;
}

/** Waits for the model to be loaded and warmed up (or for an error). */
export async function waitForModel(page: Page, errorsBefore: number): Promise<PublishedState> {
  return waitForState(page, 's.model !== null && s.timings.compileMs !== null', { errorsBefore });
}

/** Types the prompts, presses Segment and waits for the new result. */
export async function segmentIn(page: Page, prompts: string[]): Promise<PublishedState> {
  const before = await state(page);
  await page.fill('#prompts', prompts.join('\n'));
  await page.click('#segment-button');
  const runs = before.segmentation?.runs ?? 0;
  return waitForState(page, `s.segmentation !== null && s.segmentation.runs > ${runs}`, { errorsBefore: before.errors.length });
}

/** Drops a file from disk on the element, as a drag from the desktop does (a DataTransfer with a File). */
export async function dropFile(page: Page, selector: string, path: string, type: string): Promise<void> {
  const bytes = [...readFileSync(path)];
  const name = path.split('/').pop()!;
  await page.evaluate(
    ([sel, data, fileName, mime]) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(data as number[])], fileName as string, { type: mime as string }));
      document.querySelector(sel as string)!.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    },
    [selector, bytes, name, type] as const,
  );
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

export function artifact(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `webvlsm-${prefix}-`));
}

/** A synthetic endoscopy-like test image (64 x 64 PNG, two objects) written into `dir`. */
export function testImage(dir: string): string {
  const path = join(dir, 'synthetic-64.png');
  writeFileSync(path, encodePng(generateImage({ size: 64, seed: 3, minObjects: 2, maxObjects: 2 }, 'test', 0).image));
  return path;
}

/**
 * The tiny golden CLIPSeg (test/fixtures/clipseg/clipseg_tiny_refined) as a Hugging Face folder:
 * config.json, model.safetensors, the truncated 1000-token vocabulary its text tower was made
 * for, and a preprocessor_config.json at its 64-pixel input.
 */
export function tinyClipSegFolder(): string {
  const src = join(ROOT, 'test/fixtures/clipseg/clipseg_tiny_refined');
  const dir = join(tempDir('clipseg'), 'clipseg_tiny_refined');
  mkdirSync(dir);
  copyFileSync(join(src, 'config.json'), join(dir, 'config.json'));
  copyFileSync(join(src, 'weights.safetensors'), join(dir, 'model.safetensors'));
  writeTinyVocab(dir);
  const image = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')).vision_config.image_size as number;
  const pre = { do_normalize: true, do_rescale: true, do_resize: true, image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225], resample: 2, rescale_factor: 1 / 255, size: { height: image, width: image } };
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(pre));
  return dir;
}

/**
 * The tiny golden CRIS (test/fixtures/cris_tiny) as a folder: weights.pth, its config as
 * config.json (at a 96-pixel input), and the truncated 1000-token vocabulary.
 */
export function tinyCrisFolder(): { dir: string; config: Record<string, unknown> } {
  const src = join(ROOT, 'test/fixtures/cris_tiny');
  const dir = join(tempDir('cris'), 'cris_tiny');
  mkdirSync(dir);
  copyFileSync(join(src, 'weights.pth'), join(dir, 'weights.pth'));
  const config = { ...JSON.parse(readFileSync(join(src, 'manifest.json'), 'utf8')).config, input_size: 96 };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeTinyVocab(dir);
  return { dir, config };
}

function writeTinyVocab(dir: string): void {
  const { vocabJson, mergesTxt } = truncatedClipVocab();
  writeFileSync(join(dir, 'vocab.json'), vocabJson);
  writeFileSync(join(dir, 'merges.txt'), mergesTxt);
}

/**
 * A tiny CLIPSeg segmenter checkpoint made by Node: the golden tiny config with CLIP's full
 * 49408-token vocabulary (segmenter checkpoints use the shipped tokenizer), seeded random weights.
 */
export async function nodeCheckpoint(dir: string): Promise<string> {
  const config = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/clipseg/clipseg_tiny_refined/config.json'), 'utf8'));
  config.text_config.vocab_size = 49408;
  const seg = new ClipSegSegmenter(config, { tokenizer, device: cpu, rng: createRng(7) });
  const bytes = await encodeSegmenterCheckpoint(seg);
  seg.module.dispose();
  const path = join(dir, 'tiny-segmenter.safetensors');
  writeFileSync(path, bytes);
  return path;
}
