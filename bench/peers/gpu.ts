/**
 * The one Dawn GPU object of a bench process, shared by our device and tfjs (navigator.gpu).
 *
 * NOTE: like engine/platform/node.ts, the object `create()` returns must stay reachable for the
 * whole process (Dawn aborts if it is collected while a device is in use): it lives in a
 * module-level variable that is never cleared. onnxruntime-node brings its own native Dawn.
 */
import { type WebGpuDevice } from '../../src/engine/index.js';
import { describeAdapter, deviceFromAdapter } from '../../src/engine/platform/gpu-device.js';

let processGpu: GPU | null = null;

/** Installs the WebGPU globals (GPUBufferUsage, ...) once and returns the process-wide GPU object. */
export async function benchGpu(): Promise<GPU> {
  if (processGpu) return processGpu;
  const webgpu = (await import('webgpu')) as unknown as { create(flags: string[]): GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  processGpu = webgpu.create([]);
  return processGpu;
}

/** Our WebGPU device on the shared GPU object, or null with the reason. */
export async function benchDevice(): Promise<{ device: WebGpuDevice | null; adapter: string; reason: string }> {
  let gpu: GPU;
  try {
    gpu = await benchGpu();
  } catch (err) {
    return { device: null, adapter: '', reason: `the webgpu (Dawn) module failed to load: ${(err as Error).message}` };
  }
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { device: null, adapter: '', reason: 'no WebGPU adapter was found (no Vulkan driver?)' };
  return { device: await deviceFromAdapter(adapter), adapter: describeAdapter(adapter), reason: '' };
}
