/**
 * Elementwise ops with broadcasting: forward and backward side by side.
 * Composite ops (sub, div, pow, ...) express their gradients with other elementwise ops; the
 * activations get one fused `*_grad` kernel each.
 */
import { elementwiseKernel } from '../../kernels/elementwise/elementwise.js';
import type { ElementwiseOp } from '../../kernels/elementwise/elementwise.ops.js';
import { record } from '../autograd.js';
import { broadcastShapes, broadcastStrides, contiguousStrides, formatShape, sameShape } from '../shape.js';
import { Tensor } from '../tensor.js';
import { sumToShape } from './reduce.js';
import { deviceOf, expectDtype, launch, output } from './run.js';

/** Runs one elementwise function over broadcast inputs (no autograd). */
export function elementwiseRaw(fn: ElementwiseOp, inputs: Tensor[], s0 = 0, s1 = 0): Tensor {
  deviceOf(fn, inputs);
  for (const t of inputs) expectDtype(fn, t, 'f32');
  let shape: readonly number[] = inputs[0]!.shape;
  for (const t of inputs.slice(1)) shape = broadcastShapes(fn, shape, t.shape);
  const out = output(fn, inputs[0]!, shape);
  const flat = inputs.every((t) => sameShape(t.shape, shape));
  const inputStrides = inputs.map((t) => (flat ? contiguousStrides(shape) : broadcastStrides(t.shape, shape)));
  launch(elementwiseKernel, { fn, shape, inputStrides, flat, s0, s1 }, [...inputs, out], out);
  return out;
}

/** Copies x broadcast to `shape` (no autograd; `expand` in movement.ts is the recorded op). */
export function broadcastRaw(x: Tensor, shape: readonly number[]): Tensor {
  const target = broadcastShapes('expand', x.shape, shape);
  if (!sameShape(target, shape)) {
    throw new Error(`expand: ${formatShape(x.shape)} cannot be expanded to ${formatShape(shape)}`);
  }
  expectDtype('expand', x, 'f32');
  const out = output('expand', x, shape);
  const inputStrides = [broadcastStrides(x.shape, shape)];
  launch(elementwiseKernel, { fn: 'copy', shape, inputStrides, flat: sameShape(x.shape, shape) }, [x, out], out);
  return out;
}

// ---- binary arithmetic -------------------------------------------------------------------------

export function add(a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('add', [a, b]);
  return record('add', out, [a, b], [], (dOut, _s, needs) => [
    needs[0] ? sumToShape(dOut, a.shape) : null,
    needs[1] ? sumToShape(dOut, b.shape) : null,
  ]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('sub', [a, b]);
  return record('sub', out, [a, b], [], (dOut, _s, needs) => [
    needs[0] ? sumToShape(dOut, a.shape) : null,
    needs[1] ? sumToShape(elementwiseRaw('neg', [dOut]), b.shape) : null,
  ]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('mul', [a, b]);
  return record('mul', out, [a, b], [a, b], (dOut, [sa, sb], needs) => [
    needs[0] ? sumToShape(elementwiseRaw('mul', [dOut, sb!]), a.shape) : null,
    needs[1] ? sumToShape(elementwiseRaw('mul', [dOut, sa!]), b.shape) : null,
  ]);
}

export function div(a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('div', [a, b]);
  return record('div', out, [a, b], [a, b], (dOut, [sa, sb], needs) => [
    needs[0] ? sumToShape(elementwiseRaw('div', [dOut, sb!]), a.shape) : null,
    // d(a/b)/db = -a / b^2
    needs[1]
      ? sumToShape(elementwiseRaw('neg', [elementwiseRaw('div', [elementwiseRaw('mul', [dOut, sa!]), elementwiseRaw('mul', [sb!, sb!])])]), b.shape)
      : null,
  ]);
}

/** a ** b elementwise (broadcast). */
export function pow(a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('pow', [a, b]);
  return record('pow', out, [a, b], [a, b, out], (dOut, [sa, sb, y], needs) => [
    // d/da = b * a^(b-1)
    needs[0]
      ? sumToShape(elementwiseRaw('mul', [dOut, elementwiseRaw('mul', [sb!, elementwiseRaw('pow', [sa!, elementwiseRaw('add_scalar', [sb!], -1)])])]), a.shape)
      : null,
    // d/db = a^b * log(a)
    needs[1] ? sumToShape(elementwiseRaw('mul', [dOut, elementwiseRaw('mul', [y!, elementwiseRaw('log', [sa!])])]), b.shape) : null,
  ]);
}

export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('maximum', [a, b]);
  // Ties send the gradient to `a`, as a stable convention.
  return record('maximum', out, [a, b], [a, b], (dOut, [sa, sb], needs) => {
    const takeB = elementwiseRaw('greater', [sb!, sa!]);
    return [
      needs[0] ? sumToShape(elementwiseRaw('where', [takeB, elementwiseRaw('mul_scalar', [dOut], 0), dOut]), a.shape) : null,
      needs[1] ? sumToShape(elementwiseRaw('mul', [dOut, takeB]), b.shape) : null,
    ];
  });
}

// ---- scalar forms ------------------------------------------------------------------------------

export function mulScalar(a: Tensor, s: number): Tensor {
  const out = elementwiseRaw('mul_scalar', [a], s);
  return record('mul_scalar', out, [a], [], (dOut) => [elementwiseRaw('mul_scalar', [dOut], s)]);
}

export function addScalar(a: Tensor, s: number): Tensor {
  const out = elementwiseRaw('add_scalar', [a], s);
  return record('add_scalar', out, [a], [], (dOut) => [dOut]);
}

export function powScalar(a: Tensor, e: number): Tensor {
  const out = elementwiseRaw('pow_scalar', [a], e);
  return record('pow_scalar', out, [a], [a], (dOut, [sa]) => [
    elementwiseRaw('mul', [dOut, elementwiseRaw('mul_scalar', [elementwiseRaw('pow_scalar', [sa!], e - 1)], e)]),
  ]);
}

export function clamp(a: Tensor, min: number, max: number): Tensor {
  const out = elementwiseRaw('clamp', [a], min, max);
  // Gradient passes where min <= a <= max (PyTorch's convention at the bounds).
  return record('clamp', out, [a], [a], (dOut, [sa]) => {
    const inside = elementwiseRaw('equal', [elementwiseRaw('clamp', [sa!], min, max), sa!]);
    return [elementwiseRaw('mul', [dOut, inside])];
  });
}

// ---- unary ---------------------------------------------------------------------------------------

export function neg(a: Tensor): Tensor {
  const out = elementwiseRaw('neg', [a]);
  return record('neg', out, [a], [], (dOut) => [elementwiseRaw('neg', [dOut])]);
}

export function exp(a: Tensor): Tensor {
  const out = elementwiseRaw('exp', [a]);
  return record('exp', out, [a], [out], (dOut, [y]) => [elementwiseRaw('mul', [dOut, y!])]);
}

export function log(a: Tensor): Tensor {
  const out = elementwiseRaw('log', [a]);
  return record('log', out, [a], [a], (dOut, [sa]) => [elementwiseRaw('div', [dOut, sa!])]);
}

export function sqrt(a: Tensor): Tensor {
  const out = elementwiseRaw('sqrt', [a]);
  // d sqrt(a) = 0.5 / sqrt(a)
  return record('sqrt', out, [a], [out], (dOut, [y]) => [elementwiseRaw('mul_scalar', [elementwiseRaw('div', [dOut, y!])], 0.5)]);
}

export function rsqrt(a: Tensor): Tensor {
  const out = elementwiseRaw('rsqrt', [a]);
  // d a^-1/2 = -0.5 * a^-3/2 = -0.5 * y^3
  return record('rsqrt', out, [a], [out], (dOut, [y]) => [
    elementwiseRaw('mul', [dOut, elementwiseRaw('mul_scalar', [elementwiseRaw('pow_scalar', [y!], 3)], -0.5)]),
  ]);
}

export function abs(a: Tensor): Tensor {
  const out = elementwiseRaw('abs', [a]);
  return record('abs', out, [a], [a], (dOut, [sa]) => [elementwiseRaw('mul', [dOut, elementwiseRaw('sign', [sa!])])]);
}

/** Activation whose backward is one fused kernel `gradFn(x or y, dOut)`. */
function activation(fn: ElementwiseOp, gradFn: ElementwiseOp, savesOutput: boolean) {
  return (a: Tensor): Tensor => {
    const out = elementwiseRaw(fn, [a]);
    return record(fn, out, [a], [savesOutput ? out : a], (dOut, [s]) => [elementwiseRaw(gradFn, [s!, dOut])]);
  };
}

export const relu = activation('relu', 'relu_grad', false);
export const sigmoid = activation('sigmoid', 'sigmoid_grad_y', true);
export const tanh = activation('tanh', 'tanh_grad_y', true);
/** GELU with erf (PyTorch's default, approximate='none'). */
export const gelu = activation('gelu_erf', 'gelu_erf_grad', false);
export const geluTanh = activation('gelu_tanh', 'gelu_tanh_grad', false);
/** CLIP's QuickGELU: x * sigmoid(1.702 x). */
export const quickGelu = activation('quick_gelu', 'quick_gelu_grad', false);

// ---- selection -----------------------------------------------------------------------------------

/** cond ? a : b, elementwise with broadcasting; cond is nonzero/zero. No gradient to cond. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const out = elementwiseRaw('where', [cond, a, b]);
  return record('where', out, [cond, a, b], [cond], (dOut, [c], needs) => {
    const zero = elementwiseRaw('mul_scalar', [dOut], 0);
    return [
      null,
      needs[1] ? sumToShape(elementwiseRaw('where', [c!, dOut, zero]), a.shape) : null,
      needs[2] ? sumToShape(elementwiseRaw('where', [c!, zero, dOut]), b.shape) : null,
    ];
  });
}

/** 1 where a > b else 0 (no gradient). */
export function greater(a: Tensor, b: Tensor): Tensor {
  return elementwiseRaw('greater', [a, b]);
}

export function less(a: Tensor, b: Tensor): Tensor {
  return elementwiseRaw('less', [a, b]);
}

export function equal(a: Tensor, b: Tensor): Tensor {
  return elementwiseRaw('equal', [a, b]);
}

/** Identity with a fresh storage (used where a copy must not alias its input). */
export function copy(a: Tensor): Tensor {
  const out = elementwiseRaw('copy', [a]);
  return record('copy', out, [a], [], (dOut) => [dOut]);
}
