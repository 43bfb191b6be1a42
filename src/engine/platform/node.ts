/**
 * Node platform: obtains a GPUDevice from Dawn through the `webgpu` package.
 *
 * NOTE: the object `create()` returns must stay reachable for the whole process; if it is
 * garbage-collected while a device is in use, Dawn aborts the process. It is kept in a module-level
 * variable that is never cleared.
 */
import type { WebGpuDevice, WebGpuDeviceOptions } from '../device/webgpu.js';
import { deviceFromAdapter } from './gpu-device.js';

let dawnGpu: GPU | null = null;

/** Installs the WebGPU globals (GPUBufferUsage, ...) and returns the process-wide GPU object. */
async function dawn(): Promise<GPU> {
  if (dawnGpu) return dawnGpu;
  const webgpu = (await import('webgpu')) as unknown as {
    create(flags: string[]): GPU;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, webgpu.globals);
  dawnGpu = webgpu.create([]);
  return dawnGpu;
}

export const INSTALL_DRIVER_HINT =
  'install a software Vulkan driver with: bash .ci/install-driver.sh ' +
  '(Mesa lavapipe from Debian bookworm-backports)';

/** Returns a WebGPU device, or null with the reason when no adapter is available. */
export async function requestNodeDevice(
  options: WebGpuDeviceOptions = {},
): Promise<{ device: WebGpuDevice | null; reason: string }> {
  let gpu: GPU;
  try {
    gpu = await dawn();
  } catch (err) {
    return { device: null, reason: `the webgpu (Dawn) module failed to load: ${(err as Error).message}` };
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { device: null, reason: 'no WebGPU adapter was found (no Vulkan driver?)' };
  return { device: await deviceFromAdapter(adapter, options), reason: '' };
}
