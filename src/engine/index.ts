/**
 * The engine's public surface: tensors, autograd, scopes, devices and ops. Models and training
 * import only from here (never a kernel or a GPU object).
 */
import { setGradientAdder } from './autograd.js';
import { elementwiseRaw } from './ops/elementwise.js';

// Gradient accumulation adds tensors; autograd.ts cannot import ops (they import autograd).
setGradientAdder((a, b) => elementwiseRaw('add', [a, b]));

export { Tensor, setDefaultDevice, getDefaultDevice, type TensorOptions } from './tensor.js';
export { backward, noGrad, isRecording, record, type BackwardFn } from './autograd.js';
export { scope, scopeAsync, exclusiveScopeAsync, keep, scopeDepth } from './scope.js';
export type { Device, DeviceStats, DType, Storage } from './device/device.js';
export { CpuDevice } from './device/cpu.js';
export { WebGpuDevice } from './device/webgpu.js';
export * as shape from './shape.js';
export * from './ops/index.js';
export {
  Module,
  ModuleList,
  asParameter,
  type Parameter,
  type Precision,
  type StateValue,
  type StateDictInput,
  type LoadStateDictOptions,
  type LoadStateDictResult,
} from './module.js';
export * from './io/tensor-data.js';
export * from './io/checkpoint.js';
export * from './io/safetensors-lazy.js';
export * from './io/load-state.js';
export * from './io/hf-folder.js';
