/**
 * Shared by both platforms: asks an adapter for the limits and features this engine uses and wraps
 * the resulting GPUDevice. Only engine/platform/* obtains GPU objects.
 */
import { WebGpuDevice, type WebGpuDeviceOptions } from '../device/webgpu.js';

const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
] as const;

const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'timestamp-query', 'subgroups' as GPUFeatureName];

export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info;
  const parts = [info?.description, info?.device, info?.vendor, info?.architecture].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  return parts.length > 0 ? parts.join(' / ') : 'unknown adapter';
}

export async function deviceFromAdapter(
  adapter: GPUAdapter,
  options: WebGpuDeviceOptions = {},
): Promise<WebGpuDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const gpu = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'webvlsm' });
  void gpu.lost.then((info) => {
    if (info.reason !== 'destroyed') console.error(`webvlsm: WebGPU device lost: ${info.message}`);
  });
  gpu.addEventListener('uncapturederror', (event) => {
    console.error(`webvlsm: uncaptured WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  return new WebGpuDevice(gpu, describeAdapter(adapter), options);
}
