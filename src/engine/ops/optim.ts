/**
 * Optimizer ops: fused in-place parameter updates. They are not recorded on the tape (an update is
 * not differentiable); train/optim.ts wraps them in optimizer classes.
 */
import { type AdamwHyper, adamwConstants, adamwKernel } from '../../kernels/adamw/adamw.js';
import { formatShape, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { deviceOf, expectDtype, launch } from './run.js';

export type AdamwStepOptions = AdamwHyper;

function checkHyper(h: AdamwStepOptions): void {
  const bad = (what: string, value: number) => new Error(`adamwStep: ${what} (got ${value})`);
  if (!Number.isInteger(h.step) || h.step < 1) throw bad('step must be an integer >= 1', h.step);
  if (!(h.lr >= 0)) throw bad('lr must be >= 0', h.lr);
  if (!(h.beta1 >= 0 && h.beta1 < 1)) throw bad('beta1 must be in [0, 1)', h.beta1);
  if (!(h.beta2 >= 0 && h.beta2 < 1)) throw bad('beta2 must be in [0, 1)', h.beta2);
  if (!(h.eps >= 0)) throw bad('eps must be >= 0', h.eps);
  if (!(h.weightDecay >= 0)) throw bad('weightDecay must be >= 0', h.weightDecay);
}

/**
 * One torch.optim.AdamW step, in place: updates `param`, `expAvg` (m) and `expAvgSq` (v) from
 * `grad`. `h.step` is the 1-based step number this update is (bias corrections use it).
 * The four tensors must share a shape and be four distinct storages.
 */
export function adamwStep(param: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, h: AdamwStepOptions): void {
  const op = 'adamwStep';
  const named: [string, Tensor][] = [['param', param], ['grad', grad], ['expAvg', expAvg], ['expAvgSq', expAvgSq]];
  deviceOf(op, named.map(([, t]) => t));
  for (const [name, t] of named) {
    expectDtype(op, t, 'f32', name);
    if (!sameShape(t.shape, param.shape)) {
      throw new Error(`${op}: ${name} ${formatShape(t.shape)} does not match param ${formatShape(param.shape)}`);
    }
  }
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      if (named[i]![1].storage === named[j]![1].storage) {
        throw new Error(
          `${op}: ${named[i]![0]} and ${named[j]![0]} share one storage; the in-place update needs four ` +
            `distinct buffers (WebGPU forbids aliasing a writable binding)`,
        );
      }
    }
  }
  checkHyper(h);
  launch(adamwKernel, adamwConstants(param.size, h), [param, grad, expAvg, expAvgSq], param);
}
