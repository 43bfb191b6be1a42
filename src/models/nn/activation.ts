/**
 * Activation functions by their HF/PyTorch config names (`hidden_act`), each mapped to the engine's
 * name for it, which is both a matmul epilogue (Linear.forward fuses it) and a recorded op.
 */
import { type MatmulActivation, type Tensor, activationOp } from '../../engine/index.js';

export type ActivationName = 'quick_gelu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'relu';

const ENGINE_NAMES: Record<ActivationName, MatmulActivation> = {
  quick_gelu: 'quick_gelu',
  gelu: 'gelu_erf',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  relu: 'relu',
};

export const ACTIVATION_NAMES = Object.keys(ENGINE_NAMES) as ActivationName[];

export function isActivationName(name: unknown): name is ActivationName {
  return typeof name === 'string' && Object.hasOwn(ENGINE_NAMES, name);
}

/** The engine's name of `name` (for Linear.forward's fused activation); throws listing the known names. */
export function fusedActivation(name: string): MatmulActivation {
  if (!isActivationName(name)) {
    throw new Error(`unknown activation '${name}' (known: ${ACTIVATION_NAMES.join(', ')})`);
  }
  return ENGINE_NAMES[name];
}

/** The function for `name`; throws listing the known names. */
export function activationFn(name: string): (x: Tensor) => Tensor {
  return activationOp(fusedActivation(name));
}
