/**
 * Segmentation losses. bceWithLogits has fused per-element kernels (kernels/losses) and a mean
 * from the reduce family; softDiceLoss is composite (sigmoid, mul, sum, ...), so autograd comes
 * from those ops. Both return a 0-d tensor (shape []).
 */
import { lossesKernel } from '../../kernels/losses/losses.js';
import { noGrad, record } from '../autograd.js';
import { scope } from '../scope.js';
import { formatShape, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, addScalar, div, mul, mulScalar, neg, sigmoid } from './elementwise.js';
import { mean, sum } from './reduce.js';
import { deviceOf, expectDtype, launch, output } from './run.js';

function expectPair(op: string, logits: Tensor, target: Tensor): void {
  expectDtype(op, logits, 'f32', 'logits');
  expectDtype(op, target, 'f32', 'target');
  if (!sameShape(logits.shape, target.shape)) {
    throw new Error(`${op}: target ${formatShape(target.shape)} must have the shape of logits ${formatShape(logits.shape)}`);
  }
  deviceOf(op, [logits, target]);
}

/**
 * Binary cross-entropy on logits, mean over ALL elements (torch's reduction='mean'):
 * mean(max(x, 0) - x * t + log(1 + exp(-|x|))). Gradients: dx = (sigmoid(x) - t) / n,
 * dt = -x / n (only when target requires a gradient).
 */
export function bceWithLogits(logits: Tensor, target: Tensor): Tensor {
  const op = 'bceWithLogits';
  expectPair(op, logits, target);
  const n = logits.size;
  const elems = output(op, logits, logits.shape);
  launch(lossesKernel, { fn: 'bce_forward', n }, [logits, target, elems], elems);
  const loss = noGrad(() => mean(elems));
  elems.dispose();
  const scale = 1 / n;
  return record(op, loss, [logits, target], [logits, target], (dOut, [x, t], needs) => [
    needs[0] ? gradLaunch(op, x!, [x!, t!, dOut], 'bce_grad_logits', scale) : null,
    needs[1] ? gradLaunch(op, x!, [x!, dOut], 'bce_grad_target', scale) : null,
  ]);
}

function gradLaunch(op: string, like: Tensor, inputs: Tensor[], fn: 'bce_grad_logits' | 'bce_grad_target', scale: number): Tensor {
  const g = output(`${op}_backward`, like, like.shape);
  launch(lossesKernel, { fn, n: like.size, scale }, [...inputs, g], g);
  return g;
}

/**
 * Soft Dice loss with global sums over every element (batch included):
 * p = sigmoid(logits); 1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth).
 */
export function softDiceLoss(logits: Tensor, target: Tensor, smooth = 1): Tensor {
  expectPair('softDiceLoss', logits, target);
  return scope(() => {
    const p = sigmoid(logits);
    const numerator = addScalar(mulScalar(sum(mul(p, target)), 2), smooth);
    const denominator = addScalar(add(sum(p), sum(target)), smooth);
    return addScalar(neg(div(numerator, denominator)), 1);
  });
}
