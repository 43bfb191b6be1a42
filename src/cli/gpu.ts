/**
 * How the command-line tools obtain the WebGPU device: Dawn through engine/platform/node.
 * Without an adapter they fall back to the CPU device with a loud notice, except with CI=true,
 * where a missing adapter is an error (CI must exercise the GPU path).
 */
import { nodeAutotune } from '../engine/device/tuning-node.js';
import { CpuDevice, type Device, type WebGpuDevice } from '../engine/index.js';
import { INSTALL_DRIVER_HINT, requestNodeDevice } from '../engine/platform/node.js';

export function isCi(): boolean {
  return process.env.CI === 'true';
}

export function loudNotice(lines: string[]): void {
  const bar = '*'.repeat(78);
  console.error(`\n${bar}\n${lines.map((l) => `*** ${l}`).join('\n')}\n${bar}\n`);
}

/** The WebGPU device, or null (with the notice printed) when there is none and CI is not set. */
export async function webgpuOrNull(purpose: string): Promise<WebGpuDevice | null> {
  const { device, reason } = await requestNodeDevice();
  if (device) return device;
  if (isCi()) throw new Error(`CI=true but no WebGPU adapter is available: ${reason}. To fix: ${INSTALL_DRIVER_HINT}`);
  loudNotice([
    `NO WEBGPU ADAPTER: ${reason}.`,
    `${purpose} runs on the CPU reference device only.`,
    `To run on WebGPU, ${INSTALL_DRIVER_HINT}.`,
  ]);
  return null;
}

/**
 * The WebGPU device when available, tuned for this adapter (engine/device/tuning-node.ts: measured
 * once, then cached; WEBVLSM_TUNING=off skips it), else the CPU device (with the notice).
 */
export async function pickDevice(purpose: string): Promise<Device> {
  const gpu = await webgpuOrNull(purpose);
  if (!gpu) return new CpuDevice();
  await nodeAutotune(gpu);
  return gpu;
}

/**
 * The device of a CLI command: `which` = 'cpu' or 'webgpu' (an error without an adapter), or
 * undefined for WebGPU when there is an adapter, else the CPU device with a warning on `io`.
 * A WebGPU device is tuned for its adapter first (see pickDevice), logging on `io`.
 * `owned`: the caller destroys the device when done.
 */
export async function openCliDevice(which: string | undefined, io: { err(text: string): void }): Promise<{ device: Device; owned: boolean }> {
  if (which === 'cpu') return { device: new CpuDevice(), owned: false };
  const { device, reason } = await requestNodeDevice();
  if (device) {
    try {
      await nodeAutotune(device, (line) => io.err(`${line}\n`));
    } catch (err) {
      device.destroy(); // a bad WEBVLSM_TUNING value: the caller never gets the device to destroy
      throw err;
    }
    return { device, owned: true };
  }
  if (which === 'webgpu') throw new Error(`--device webgpu was asked for, but there is no WebGPU adapter: ${reason}. To fix: ${INSTALL_DRIVER_HINT}`);
  if (isCi()) throw new Error(`CI=true but no WebGPU adapter is available: ${reason}. To fix: ${INSTALL_DRIVER_HINT}`);
  io.err(`warning: no WebGPU adapter (${reason}); running on the CPU reference device (slow). To use WebGPU, ${INSTALL_DRIVER_HINT}\n`);
  return { device: new CpuDevice(), owned: false };
}
