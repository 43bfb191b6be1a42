/** Browser platform: obtains a GPUDevice from navigator.gpu. */
import type { WebGpuDevice, WebGpuDeviceOptions } from '../device/webgpu.js';
import { deviceFromAdapter } from './gpu-device.js';

export async function requestBrowserDevice(
  options: WebGpuDeviceOptions = {},
): Promise<{ device: WebGpuDevice | null; reason: string }> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) return { device: null, reason: 'this browser does not expose navigator.gpu' };
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { device: null, reason: 'navigator.gpu returned no adapter' };
  return { device: await deviceFromAdapter(adapter, options), reason: '' };
}
