/**
 * The browser app's entry point (bundled by scripts/build-web.mjs into web/dist/main.js): reads
 * what the build shipped (build.json), obtains the WebGPU device, or explains why there is none
 * and offers the CPU device, then wires the two tabs.
 */
import { setDefaultDevice } from '../../src/engine/index.js';
import { FinetuneTab } from './finetune-tab.js';
import { cpuFallback, initGpu } from './gpu.js';
import { SegmentTab } from './segment-tab.js';
import { AppContext, byId, errorText, published, showError } from './state.js';

interface BuildInfo {
  demo?: { checkpoint?: string | null; image?: string | null; prompts?: string[] };
}

async function readBuildInfo(): Promise<BuildInfo> {
  try {
    const response = await fetch(new URL('build.json', document.baseURI));
    return response.ok ? ((await response.json()) as BuildInfo) : {};
  } catch {
    return {};
  }
}

function setupTabs(): void {
  const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('.tab'));
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      for (const other of tabs) {
        const selected = other === tab;
        other.setAttribute('aria-selected', String(selected));
        byId(`panel-${other.dataset.tab}`).hidden = !selected;
      }
    });
  }
}

async function start(): Promise<void> {
  const appError = byId('app-error');
  const reportError = (message: string) => showError(appError, message);
  window.addEventListener('unhandledrejection', (event) => reportError(`Unexpected error: ${errorText(event.reason)}`));
  window.addEventListener('error', (event) => reportError(`Unexpected error: ${event.message}`));
  setupTabs();

  const build = await readBuildInfo();
  published.build = {
    demoCheckpoint: build.demo?.checkpoint ?? null,
    demoImage: build.demo?.image ?? null,
    demoPrompts: build.demo?.prompts ?? [],
  };
  const demoNote = 'Not part of this build: weights/demo/ had no demo files when the app was built.';
  for (const [id, available] of [
    ['load-demo-model', published.build.demoCheckpoint],
    ['load-demo-image', published.build.demoImage],
  ] as const) {
    if (!available) byId(id).title = demoNote;
  }

  const ctx = new AppContext();
  const badge = byId('gpu-status');
  const gpu = await initGpu(reportError);
  if (gpu.ok) {
    ctx.device = gpu.device;
    published.gpu = { ok: true, kind: 'webgpu', adapter: gpu.adapter, message: '', limits: gpu.limits };
    badge.dataset.state = 'ready';
    badge.textContent = `WebGPU: ${gpu.adapter}`;
    badge.title = Object.entries(gpu.limits)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n');
  } else {
    const message = `No WebGPU: ${gpu.reason}.\n${gpu.help}`;
    published.gpu = { ok: false, kind: null, adapter: '', message, limits: {} };
    badge.dataset.state = 'error';
    badge.textContent = 'no WebGPU';
    const box = byId('gpu-message');
    showError(box, message);
    const fallback = document.createElement('button');
    fallback.id = 'use-cpu';
    fallback.type = 'button';
    fallback.textContent = 'Use the CPU device instead (very slow: tiny models only)';
    fallback.addEventListener('click', () => {
      ctx.device = cpuFallback();
      setDefaultDevice(ctx.device);
      published.gpu.kind = 'cpu';
      badge.textContent = 'CPU device (no WebGPU)';
      fallback.remove();
    });
    box.append('\n', fallback);
  }
  if (ctx.device) setDefaultDevice(ctx.device);

  new SegmentTab(ctx);
  new FinetuneTab(ctx);
  published.ready = true;
  document.body.dataset.ready = 'true';
}

start().catch((err) => {
  console.error(err);
  showError(byId('app-error'), `The app failed to start: ${errorText(err)}`);
  published.ready = true;
});
