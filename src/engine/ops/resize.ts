/**
 * interpolate: F.interpolate for 4-D NCHW input (nearest, bilinear, bicubic; no antialias), with
 * PyTorch's exact coordinate rules (docs/architectures.md §0.2), forward and backward together.
 * The backward kernel gathers from the output (deterministic, no atomics).
 */
import { type ResizeMode, type ResizeParams, resizeKernel } from '../../kernels/resize/resize.js';
import { record } from '../autograd.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { expectDtype, expectRank, launch, output } from './run.js';

export interface InterpolateOptions {
  /** Output [H, W]; give exactly one of size and scaleFactor. */
  size?: [number, number];
  /** Output = floor(in * scale); the kernels then use 1/scale as the ratio (PyTorch). */
  scaleFactor?: number | [number, number];
  /** Default 'nearest' (PyTorch's legacy nearest: src = floor(o * in/out)). */
  mode?: ResizeMode;
  /** bilinear/bicubic only: src = o * (in-1)/(out-1). */
  alignCorners?: boolean;
}

/**
 * The f32 ratio PyTorch's CPU kernels use along one axis (area_pixel_compute_scale and
 * nearest_idx): scale is the user's scale factor when one was given.
 */
function axisRatio(mode: ResizeMode, alignCorners: boolean, inLen: number, outLen: number, scale: number | undefined): number {
  if (mode === 'nearest') {
    if (outLen === inLen) return 1;
    if (outLen === 2 * inLen) return 0.5; // PyTorch shifts the index: o >> 1
  }
  if (alignCorners) return outLen > 1 ? Math.fround((inLen - 1) / (outLen - 1)) : 0;
  return scale !== undefined && scale > 0 ? Math.fround(1 / scale) : Math.fround(inLen / outLen);
}

/** Resizes the H, W dims of x [N, C, H, W]. */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  const op = 'interpolate';
  expectRank(op, x, 4);
  expectDtype(op, x, 'f32');
  const mode = o.mode ?? 'nearest';
  if (!['nearest', 'bilinear', 'bicubic'].includes(mode)) throw new Error(`${op}: unknown mode '${mode}'`);
  const alignCorners = o.alignCorners ?? false;
  if (alignCorners && mode === 'nearest') throw new Error(`${op}: alignCorners can only be set with bilinear or bicubic`);
  if ((o.size === undefined) === (o.scaleFactor === undefined)) {
    throw new Error(`${op}: give exactly one of size and scaleFactor`);
  }
  const [n, c, h, w] = x.shape as [number, number, number, number];
  let scales: [number, number] | undefined;
  let size: [number, number];
  if (o.scaleFactor !== undefined) {
    scales = typeof o.scaleFactor === 'number' ? [o.scaleFactor, o.scaleFactor] : o.scaleFactor;
    if (scales.length !== 2 || !scales.every((s) => Number.isFinite(s) && s > 0)) {
      throw new Error(`${op}: scaleFactor ${JSON.stringify(o.scaleFactor)} must be positive`);
    }
    size = [Math.floor(h * scales[0]), Math.floor(w * scales[1])];
  } else {
    size = o.size!;
  }
  if (size.length !== 2 || !size.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new Error(`${op}: output size ${JSON.stringify(size)} of input ${formatShape(x.shape)} must be positive integers`);
  }
  if (h === 0 || w === 0) throw new Error(`${op}: input ${formatShape(x.shape)} has an empty spatial dim`);
  const [outH, outW] = size;
  const params: Omit<ResizeParams, 'grad'> = {
    mode, alignCorners, planes: n * c, inH: h, inW: w, outH, outW,
    ratioH: axisRatio(mode, alignCorners, h, outH, scales?.[0]),
    ratioW: axisRatio(mode, alignCorners, w, outW, scales?.[1]),
  };
  const out = output(op, x, [n, c, outH, outW]);
  launch(resizeKernel, { ...params, grad: false }, [x, out], out);
  const xShape = x.shape;
  return record(op, out, [x], [], (dOut) => {
    const dIn = output(`${op}:grad`, dOut, xShape);
    launch(resizeKernel, { ...params, grad: true }, [dOut, dIn], dIn);
    return [dIn];
  });
}
