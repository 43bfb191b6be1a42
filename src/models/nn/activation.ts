/** Activation functions by their HF/PyTorch config names (`hidden_act`). */
import { type MatmulActivation, type Tensor, gelu, geluTanh, quickGelu, relu } from '../../engine/index.js';

export type ActivationName = 'quick_gelu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'relu';

const ACTIVATIONS: Record<ActivationName, (x: Tensor) => Tensor> = {
  quick_gelu: quickGelu,
  gelu,
  gelu_new: geluTanh,
  gelu_pytorch_tanh: geluTanh,
  relu,
};

/** The same functions as a matmul epilogue names them (Linear.forward's fused activation). */
export const FUSED_ACTIVATIONS: Record<ActivationName, MatmulActivation> = {
  quick_gelu: 'quick_gelu',
  gelu: 'gelu_erf',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  relu: 'relu',
};

export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as ActivationName[];

export function isActivationName(name: unknown): name is ActivationName {
  return typeof name === 'string' && Object.hasOwn(ACTIVATIONS, name);
}

/** The function for `name`; throws listing the known names. */
export function activationFn(name: string): (x: Tensor) => Tensor {
  if (!isActivationName(name)) {
    throw new Error(`unknown activation '${name}' (known: ${ACTIVATION_NAMES.join(', ')})`);
  }
  return ACTIVATIONS[name];
}
