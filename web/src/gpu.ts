/**
 * The page's GPU: a WebGPU device from navigator.gpu (engine/platform/browser.ts), with messages a
 * person can act on when there is none, and the checks that a model fits the adapter's limits.
 */
import { CpuDevice, type Device, WebGpuDevice, openSafetensors } from '../../src/engine/index.js';
import { autotune, indexedDbTuningStore } from '../../src/engine/device/tuning.js';
import { requestBrowserDevice } from '../../src/engine/platform/browser.js';

export type GpuStatus =
  | { ok: true; device: WebGpuDevice; adapter: string; limits: Record<string, number> }
  | { ok: false; reason: string; help: string };

/** The limits a model's size runs into (shown in the status and checked before loading). */
const SHOWN_LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const;

/** Where WebGPU is missing: what to do about it, for the browser at hand. */
function noWebGpuHelp(): string {
  if (!globalThis.isSecureContext) {
    return 'WebGPU needs a secure context: open the app at http://127.0.0.1 or http://localhost (npm run serve), or over https.';
  }
  return (
    'Use a browser with WebGPU: Chrome or Edge 113 or later, Safari 26 or later, or Firefox 141 or later on Windows. ' +
    'On Linux, Chromium needs the flag --enable-unsafe-webgpu (or chrome://flags/#enable-unsafe-webgpu); chrome://gpu shows why WebGPU is off.'
  );
}

/** Asks the browser for a WebGPU device; never throws. */
export async function initGpu(onError: (message: string) => void): Promise<GpuStatus> {
  let result: Awaited<ReturnType<typeof requestBrowserDevice>>;
  try {
    result = await requestBrowserDevice();
  } catch (err) {
    return { ok: false, reason: `the WebGPU adapter refused to create a device (${(err as Error).message})`, help: noWebGpuHelp() };
  }
  if (!result.device) {
    const help =
      result.reason.includes('no adapter')
        ? 'The browser supports WebGPU but found no usable GPU adapter (a blocklisted driver, or GPU access disabled). chrome://gpu explains why.'
        : noWebGpuHelp();
    return { ok: false, reason: result.reason, help };
  }
  const device = result.device;
  // Validation errors (a pipeline over the limits, say) would otherwise only reach the console.
  device.gpu.addEventListener('uncapturederror', (event) => {
    onError(`WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  void device.gpu.lost.then((info) => {
    if (info.reason !== 'destroyed') onError(`The WebGPU device was lost (${info.message || info.reason}): reload the page.`);
  });
  await tuneKernels(device);
  const limits: Record<string, number> = {};
  for (const name of SHOWN_LIMITS) limits[name] = device.gpu.limits[name];
  return { ok: true, device, adapter: device.description, limits };
}

/**
 * Picks the fastest kernel variants for this adapter (measured on the first visit, then cached in
 * IndexedDB; engine/device/tuning.ts). `?tuning=off` in the page address skips it (ops then use
 * their defaults), `?tuning=retune` measures again. Tuning never blocks the app: failures are logged.
 */
async function tuneKernels(device: WebGpuDevice): Promise<void> {
  const asked = new URLSearchParams(globalThis.location?.search ?? '').get('tuning');
  const mode = asked === 'off' ? 'off' : asked === 'retune' ? 'retune' : 'auto';
  try {
    await autotune(device, { store: indexedDbTuningStore(), mode, log: (line) => console.info(line) });
  } catch (err) {
    console.warn(`tuning: failed (${(err as Error).message}); kernels use their defaults`);
  }
}

/** A CPU device for browsers without WebGPU: every kernel's TypeScript reference (slow). */
export function cpuFallback(): Device {
  return new CpuDevice();
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** A model that does not fit the adapter's limits, with the tensor and limit named. */
export class LimitsError extends Error {}

/** The binding and buffer limits of a WebGPU device (none for the CPU device). */
function bufferLimits(device: Device): { binding: number; buffer: number } | null {
  if (!(device instanceof WebGpuDevice)) return null;
  return { binding: device.gpu.limits.maxStorageBufferBindingSize, buffer: device.gpu.limits.maxBufferSize };
}

/**
 * Checks every weight of a safetensors file (read from its header only) against the device's
 * largest storage binding and buffer; throws LimitsError naming the largest offender. Float
 * weights are held as f32 on the device, so f16/bf16 count twice their stored size.
 */
export async function checkSafetensorsFit(file: Blob | Uint8Array, name: string, device: Device): Promise<void> {
  const limits = bufferLimits(device);
  if (!limits) return;
  const st = await openSafetensors(file, { name });
  try {
    let worst: { key: string; bytes: number; shape: number[] } | null = null;
    for (const key of st.keys()) {
      const info = st.info(key);
      const count = info.shape.reduce((a, b) => a * b, 1);
      const bytes = count * 4;
      if (!worst || bytes > worst.bytes) worst = { key, bytes, shape: [...info.shape] };
    }
    if (worst) checkTensorBytes(worst.key, worst.shape, worst.bytes, name, limits);
  } finally {
    await st.close();
  }
}

function checkTensorBytes(key: string, shape: number[], bytes: number, file: string, limits: { binding: number; buffer: number }): void {
  const limit = Math.min(limits.binding, limits.buffer);
  if (bytes <= limit) return;
  const which = limits.binding <= limits.buffer ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
  throw new LimitsError(
    `This model is too large for this GPU adapter: ${file} holds ${key} [${shape.join(', ')}], ${formatBytes(bytes)} as f32, ` +
      `but the adapter's ${which} is ${formatBytes(limit)}. Use a smaller model, or a browser/GPU with larger limits.`,
  );
}

/**
 * Errors the engine raises when a tensor exceeds the device limits, in words that fit a page (the
 * engine's own advice to split batches does not apply to weights).
 */
export function explainLoadError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof LimitsError) return message;
  const over = /exceeds this adapter's storage binding limit of (\d+) bytes/.exec(message);
  if (over) {
    return `This model is too large for this GPU adapter (maxStorageBufferBindingSize ${formatBytes(Number(over[1]))}): ${message}`;
  }
  return message;
}
