/**
 * 2-D pooling (NCHW, PyTorch semantics): avgPool2d, maxPool2d, adaptiveAvgPool2d, forward and
 * backward side by side. Backward kernels gather from the output (deterministic, no atomics).
 */
import { type PoolParams, type PoolVariant, poolKernel } from '../../kernels/pool/pool.js';
import { record } from '../autograd.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { Pair } from './conv.js';
import { expectDtype, expectRank, launch, output } from './run.js';

export interface AvgPool2dOptions {
  kernelSize: Pair;
  /** Defaults to kernelSize. */
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
  /** Divide by the full window including zero padding (default true), else by the elements inside. */
  countIncludePad?: boolean;
}

export interface MaxPool2dOptions {
  kernelSize: Pair;
  /** Defaults to kernelSize. */
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

type Geometry = Omit<PoolParams, 'variant'>;

function pair(op: string, name: string, value: Pair | undefined, fallback: Pair, min: number): [number, number] {
  const given = value ?? fallback;
  const v: [number, number] = typeof given === 'number' ? [given, given] : given;
  if (v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: ${name} ${JSON.stringify(value)} must be an integer >= ${min} or a pair of them`);
  }
  return [v[0], v[1]];
}

function checkInput(op: string, x: Tensor): [number, number, number, number] {
  expectRank(op, x, 4);
  expectDtype(op, x, 'f32');
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (h === 0 || w === 0) throw new Error(`${op}: input ${formatShape(x.shape)} has an empty spatial dim`);
  return [n, c, h, w];
}

/** PyTorch's pooling_output_shape: floor or ceil, and in ceil mode the last window starts inside. */
function poolOutSize(inSize: number, k: number, pad: number, stride: number, dilation: number, ceilMode: boolean): number {
  let out = Math.floor((inSize + 2 * pad - dilation * (k - 1) - 1 + (ceilMode ? stride - 1 : 0)) / stride) + 1;
  if (ceilMode && (out - 1) * stride >= inSize + pad) out--;
  return out;
}

/** Shared window checks (PyTorch's pool2d_shape_check); returns the geometry. */
function windowGeometry(
  op: string,
  x: Tensor,
  o: { kernelSize: Pair; stride?: Pair; padding?: Pair; dilation?: Pair; ceilMode?: boolean },
  countIncludePad: boolean,
): Geometry {
  const [n, c, h, w] = checkInput(op, x);
  const kernel = pair(op, 'kernelSize', o.kernelSize, 1, 1);
  const stride = pair(op, 'stride', o.stride, kernel, 1);
  const padding = pair(op, 'padding', o.padding, 0, 0);
  const dilation = pair(op, 'dilation', o.dilation, 1, 1);
  if (padding[0] > Math.floor(kernel[0] / 2) || padding[1] > Math.floor(kernel[1] / 2)) {
    throw new Error(`${op}: padding [${padding.join(', ')}] must be at most half of kernelSize [${kernel.join(', ')}]`);
  }
  const ceilMode = o.ceilMode ?? false;
  const outH = poolOutSize(h, kernel[0], padding[0], stride[0], dilation[0], ceilMode);
  const outW = poolOutSize(w, kernel[1], padding[1], stride[1], dilation[1], ceilMode);
  if (outH < 1 || outW < 1) {
    throw new Error(`${op}: input ${formatShape(x.shape)} is too small for kernelSize [${kernel.join(', ')}] (output ${outH}x${outW})`);
  }
  return { planes: n * c, inH: h, inW: w, outH, outW, kernel, stride, padding, dilation, countIncludePad };
}

/** Runs one single-output pool variant (no autograd) into a new tensor of `shape`. */
function poolRaw(variant: PoolVariant, geom: Geometry, inputs: Tensor[], shape: readonly number[]): Tensor {
  const out = output(`pool:${variant}`, inputs[0]!, shape);
  launch(poolKernel, { ...geom, variant }, [...inputs, out], out);
  return out;
}

/** Average pooling over kH x kW windows (avg_pool2d; no divisor override). */
export function avgPool2d(x: Tensor, o: AvgPool2dOptions): Tensor {
  const op = 'avgPool2d';
  const geom = windowGeometry(op, x, { ...o, dilation: 1 }, o.countIncludePad ?? true);
  const [n, c] = x.shape as [number, number];
  const out = poolRaw('avg', geom, [x], [n, c, geom.outH, geom.outW]);
  const xShape = x.shape;
  return record(op, out, [x], [], (dOut) => [poolRaw('avg_grad', geom, [dOut], xShape)]);
}

/**
 * Max pooling with -inf padding and dilation (max_pool2d). The gradient goes to the first maximum
 * of each window, as in PyTorch.
 */
export function maxPool2d(x: Tensor, o: MaxPool2dOptions): Tensor {
  const op = 'maxPool2d';
  const geom = windowGeometry(op, x, o, false);
  const [n, c] = x.shape as [number, number];
  const shape = [n, c, geom.outH, geom.outW];
  const out = output(op, x, shape);
  const idx = output(op, x, shape, 'i32');
  launch(poolKernel, { ...geom, variant: 'max' }, [x, out, idx], out);
  const xShape = x.shape;
  record(op, out, [x], [idx], (dOut, [sIdx]) => {
    const dIn = output('pool:max_grad', dOut, xShape);
    launch(poolKernel, { ...geom, variant: 'max_grad' }, [dOut, sIdx!, dIn], dIn);
    return [dIn];
  });
  idx.dispose(); // the tape keeps its own reference when it needs the indices
  return out;
}

/**
 * Adaptive average pooling to `outputSize` (adaptive_avg_pool2d): output cell (i, j) averages rows
 * floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1 and columns likewise; the output may exceed the input.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  const op = 'adaptiveAvgPool2d';
  const [n, c, h, w] = checkInput(op, x);
  const [outH, outW] = pair(op, 'outputSize', outputSize, 1, 1);
  const geom: Geometry = {
    planes: n * c, inH: h, inW: w, outH, outW,
    kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], countIncludePad: true,
  };
  const out = poolRaw('adaptive_avg', geom, [x], [n, c, outH, outW]);
  const xShape = x.shape;
  return record(op, out, [x], [], (dOut) => [poolRaw('adaptive_avg_grad', geom, [dOut], xShape)]);
}
