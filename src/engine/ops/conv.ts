/**
 * Convolutions (NCHW, zero padding, groups, PyTorch cross-correlation): conv2d and
 * convTranspose2d, forward and backward side by side.
 *
 * Both are the conv2d kernel family's relation between an input side A, an output side B and a
 * weight W [bC, aC/groups, kH, kW] (see kernels/conv2d/conv2d.ts), gathered towards one tensor:
 *   conv2d:          A = x, B = out.  forward = 'forward', dX = 'transposed', dW = 'weight'(x, dOut).
 *   convTranspose2d: A = out, B = x.  forward = 'transposed', dX = 'forward', dW = 'weight'(dOut, x).
 * dB is the sum of dOut over N, H, W (the reduce kernel).
 *
 * Ungrouped convolutions on adapters with 8-wide subgroups run the implicit-GEMM kernels instead
 * of the direct gathers: 'forward' as conv2d-gemm.ts, 'weight' as conv2d-gemm-weight.ts, and
 * 'transposed' at stride 1 as conv2d-gemm.ts with flipped taps (conv2dGemmFlipPadding).
 * Depthwise 'forward' gathers (groups == Cin, taps up to 7x7: conv2d forward, and the input
 * gradient of a depthwise convTranspose2d) run conv2d-depthwise.ts on every device, and so do
 * depthwise 'transposed' gathers at stride 1 with multiplier 1 (flipped taps), on every device.
 * conv2d's optional activation is fused into the implicit-GEMM and depthwise kernels' stores when
 * no gradient is recorded (elsewhere it is the activation op after the conv).
 */
import { type Conv2dParams, type Conv2dVariant, conv2dKernel } from '../../kernels/conv2d/conv2d.js';
import { conv2dDepthwiseKernel, conv2dDepthwiseSupported } from '../../kernels/conv2d/conv2d-depthwise.js';
import { conv2dDepthwiseWeightKernel, conv2dDepthwiseWeightPartialShape } from '../../kernels/conv2d/conv2d-depthwise-weight.js';
import { conv2dGemmFlipPadding, conv2dGemmKernel } from '../../kernels/conv2d/conv2d-gemm.js';
import { conv2dGemmWeightKernel, conv2dGemmWeightSplits } from '../../kernels/conv2d/conv2d-gemm-weight.js';
import { copyKernel } from '../../kernels/copy/copy.js';
import { isRecording, record } from '../autograd.js';
import type { Device } from '../device/device.js';
import { tunedRows } from '../device/tuning.js';
import { scope } from '../scope.js';
import { formatShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { type MatmulActivation, activationOp, checkActivation, matmulRaw, useSubgroupKernels } from './matmul.js';
import { permuteRaw } from './movement.js';
import { sum, sumRaw } from './reduce.js';
import { deviceOf, expectDtype, expectRank, launch, output } from './run.js';

/** A size given once for both spatial dims, or as [h, w]. */
export type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

/** conv2d's options: Conv2dOptions and an activation applied to the output after the bias. */
export interface Conv2dFusedOptions extends Conv2dOptions {
  /**
   * Fused into the kernel's store (implicit-GEMM and depthwise paths) when no gradient is
   * recorded; under autograd it is the recorded activation op after the conv, whose backward
   * needs the pre-activation values the fused kernel never writes.
   */
  activation?: MatmulActivation;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns added to one side of the output; must be < stride or < dilation. */
  outputPadding?: Pair;
}

/** Geometry shared by the forward launch and the backward closures (no Tensor captured). */
type Geometry = Omit<Conv2dParams, 'variant' | 'bias'>;

function pair(op: string, name: string, value: Pair | undefined, fallback: number, min: number): [number, number] {
  const v: [number, number] = value === undefined ? [fallback, fallback] : typeof value === 'number' ? [value, value] : value;
  if (v.length !== 2 || !v.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: ${name} ${JSON.stringify(value)} must be an integer >= ${min} or a pair of them`);
  }
  return [v[0], v[1]];
}

function checkGroups(op: string, groups: number | undefined): number {
  const g = groups ?? 1;
  if (!Number.isInteger(g) || g < 1) throw new Error(`${op}: groups ${g} must be a positive integer`);
  return g;
}

function checkInputs(op: string, x: Tensor, weight: Tensor, bias: Tensor | null | undefined): void {
  deviceOf(op, bias ? [x, weight, bias] : [x, weight]);
  expectRank(op, x, 4);
  expectRank(op, weight, 4, 'weight');
  expectDtype(op, x, 'f32');
  expectDtype(op, weight, 'f32', 'weight');
  if (bias) expectDtype(op, bias, 'f32', 'bias');
}

function checkBias(op: string, bias: Tensor | null | undefined, channels: number): void {
  if (bias && (bias.rank !== 1 || bias.shape[0] !== channels)) {
    throw new Error(`${op}: bias ${formatShape(bias.shape)} must have shape [${channels}]`);
  }
}

/** Runs one conv2d-family gather (no autograd) into a new tensor of `shape`. */
function convRaw(variant: Conv2dVariant, geom: Geometry, inputs: Tensor[], shape: readonly number[]): Tensor {
  const out = output(`conv2d:${variant}`, inputs[0]!, shape);
  const bias = inputs.length === 3;
  launch(conv2dKernel, { ...geom, variant, bias }, [...inputs, out], out);
  return out;
}


/**
 * conv2d forward (no autograd). Ungrouped convolutions on adapters with 8-wide subgroups run as an
 * implicit GEMM (kernels/conv2d/conv2d-gemm.ts) over the weight transposed to [Cin*kH*kW, Cout];
 * depthwise ones (groups == Cin, taps up to 7x7) run kernels/conv2d/conv2d-depthwise.ts on every
 * device; everything else runs the direct gather kernel.
 */
function conv2dForward(geom: Geometry, inputs: Tensor[], shape: readonly number[], activation?: MatmulActivation): Tensor {
  const [x, weight] = inputs as [Tensor, Tensor];
  const act = activation ? { activation } : {};
  if (conv2dDepthwiseSupported(geom)) {
    const out = output('conv2d', x, shape);
    launch(conv2dDepthwiseKernel, { ...geom, bias: inputs.length === 3, ...act }, [...inputs, out], out);
    return out;
  }
  if (geom.groups !== 1 || !useSubgroupKernels(x.device)) {
    const out = convRaw('forward', geom, inputs, shape);
    if (!activation) return out;
    const activated = activationOp(activation)(out);
    out.dispose();
    return activated;
  }
  const out = output('conv2d', x, shape);
  if (out.size === 0) return out;
  const [cout, cin, kh, kw] = weight.shape as [number, number, number, number];
  // A 2-D transpose (fast tile copy), not a 4-D permute: 1.4x the whole RN50 layer4 conv.
  const wt = permuteRaw(weight.view([cout, cin * kh * kw]), [1, 0]);
  const bias = inputs.length === 3;
  launch(conv2dGemmKernel, { ...geom, bias, rows: conv2dGemmRows(x.device), ...act }, bias ? [x, wt, inputs[2]!, out] : [x, wt, out], out);
  wt.dispose();
  return out;
}

/** Tunable name of the implicit-GEMM conv's pixels per workgroup (registered in ops/tunables.ts). */
export const CONV2D_GEMM_TUNABLE = 'conv2d-gemm';

/** Pixels per workgroup of the implicit-GEMM conv: the adapter's tuned choice ('r16', 'r24', 'r32'), else 24. */
function conv2dGemmRows(device: Device): number {
  return tunedRows(device, CONV2D_GEMM_TUNABLE, 24);
}

/** Whether `geom` runs the implicit-GEMM kernels on `device` (ungrouped, 8-wide subgroups). */
function useGemm(geom: Geometry, t: Tensor): boolean {
  return geom.groups === 1 && useSubgroupKernels(t.device);
}

/**
 * The 'transposed' gather (no autograd): A [N, aC, aH, aW] from B and W (+ bias[ca]). At stride 1
 * under useGemm it is the implicit GEMM over B with flipped taps and W permuted to
 * [bC, kH, kW, aC]; otherwise the direct kernel.
 */
function conv2dTransposed(geom: Geometry, inputs: Tensor[], shape: readonly number[]): Tensor {
  const [b, weight, bias] = inputs as [Tensor, Tensor, Tensor | undefined];
  const flipPadding = conv2dGemmFlipPadding(geom.kernel, geom.padding, geom.dilation);
  const unitStride = geom.stride[0] === 1 && geom.stride[1] === 1;
  // Depthwise, multiplier 1, stride 1: the depthwise kernel over B with flipped taps.
  const flipped = flipPadding && { ...geom, a: geom.b, b: geom.a, padding: flipPadding };
  if (unitStride && flipped && geom.a[0] === geom.b[0] && conv2dDepthwiseSupported(flipped)) {
    const out = output('conv2d', b, shape);
    launch(conv2dDepthwiseKernel, { ...flipped, bias: bias !== undefined, flip: true }, [...inputs, out], out);
    return out;
  }
  if (!useGemm(geom, b) || !unitStride || !flipPadding) return convRaw('transposed', geom, inputs, shape);
  const out = output('conv2d', b, shape);
  if (out.size === 0) return out;
  const wt = permuteRaw(weight, [0, 2, 3, 1]);
  const params = {
    batch: geom.batch, a: geom.b, b: geom.a, kernel: geom.kernel, stride: geom.stride,
    padding: flipPadding, dilation: geom.dilation, bias: bias !== undefined, flip: true, rows: conv2dGemmRows(b.device),
  };
  launch(conv2dGemmKernel, params, bias ? [b, wt, bias, out] : [b, wt, out], out);
  wt.dispose();
  return out;
}

/**
 * The 'weight' gather (no autograd): W [bC, aC, kH, kW] from A and B; conv2d-depthwise-weight.ts
 * for depthwise geometries, the implicit GEMM under useGemm, else the direct kernel.
 */
function conv2dWeight(geom: Geometry, a: Tensor, b: Tensor, shape: readonly number[]): Tensor {
  if (conv2dDepthwiseSupported(geom)) {
    // Every tap's partial sum per image and block, summed over both (zeros for an empty batch).
    const partial = output('conv2d', a, conv2dDepthwiseWeightPartialShape(geom));
    launch(conv2dDepthwiseWeightKernel, geom, [a, b, partial], partial);
    const total = sumRaw(partial, [0, 2]);
    partial.dispose();
    const out = total.view(shape);
    total.dispose();
    return out;
  }
  if (!useGemm(geom, a)) return convRaw('weight', geom, [a, b], shape);
  const { groups: _groups, ...base } = geom;
  const splits = conv2dGemmWeightSplits(base);
  const out = output('conv2d', a, splits === 1 ? shape : [splits, ...shape]);
  launch(conv2dGemmWeightKernel, { ...base, splits }, [a, b, out], out);
  if (splits === 1) return out;
  // Split-K: the image ranges' partial weight gradients summed.
  const total = sumRaw(out, [0]);
  out.dispose();
  return total;
}

/**
 * 2-D convolution: x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], bias [Cout] -> out
 * [N, Cout, Ho, Wo] with Ho = floor((H + 2*pad - dilation*(kH-1) - 1) / stride) + 1.
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dFusedOptions = {}): Tensor {
  const op = 'conv2d';
  checkInputs(op, x, weight, bias);
  const { activation, ...plain } = o;
  checkActivation(op, activation);
  if (activation && isRecording() && [x, weight, bias].some((t) => t?.requiresGrad)) {
    return scope(() => activationOp(activation)(conv2d(x, weight, bias, plain)));
  }
  const [n, cIn, h, w] = x.shape as [number, number, number, number];
  const [cOut, cInPerGroup, kH, kW] = weight.shape as [number, number, number, number];
  const groups = checkGroups(op, o.groups);
  if (cInPerGroup * groups !== cIn || cOut % groups !== 0) {
    throw new Error(
      `${op}: input ${formatShape(x.shape)} and weight ${formatShape(weight.shape)} do not fit groups=${groups} ` +
        `(need Cin = weight[1] * groups and Cout divisible by groups)`,
    );
  }
  checkBias(op, bias, cOut);
  const stride = pair(op, 'stride', o.stride, 1, 1);
  const padding = pair(op, 'padding', o.padding, 0, 0);
  const dilation = pair(op, 'dilation', o.dilation, 1, 1);
  const hOut = Math.floor((h + 2 * padding[0] - dilation[0] * (kH - 1) - 1) / stride[0]) + 1;
  const wOut = Math.floor((w + 2 * padding[1] - dilation[1] * (kW - 1) - 1) / stride[1]) + 1;
  if (hOut < 1 || wOut < 1) {
    throw new Error(`${op}: input ${formatShape(x.shape)} is too small for kernel [${kH}, ${kW}] (output ${hOut}x${wOut})`);
  }
  const geom: Geometry = {
    batch: n, groups, a: [cIn, h, w], b: [cOut, hOut, wOut],
    kernel: [kH, kW], stride, padding, dilation,
  };
  const inputs = bias ? [x, weight, bias] : [x, weight];
  // With an activation nothing needs a gradient here (see above): nothing to record.
  if (activation) return conv2dForward(geom, inputs, [n, cOut, hOut, wOut], activation);
  const out = conv2dForward(geom, inputs, [n, cOut, hOut, wOut]);
  const xShape = x.shape;
  const wShape = weight.shape;
  return record(op, out, inputs, [x, weight], (dOut, [sx, sw], needs) => [
    needs[0] ? conv2dTransposed(geom, [dOut, sw!], xShape) : null,
    needs[1] ? conv2dWeight(geom, sx!, dOut, wShape) : null,
    needs[2] ? sum(dOut, [0, 2, 3]) : null,
  ]);
}

/**
 * Transposed conv whose windows do not overlap (stride == kernel, no padding, dilation 1, no output
 * padding, groups 1; the CLIPSeg heads): every output pixel gets exactly one tap, so per image
 *   out[co, py*kH + ky, px*kW + kx] = bias[co] + sum_ci x[ci, py, px] * w[ci, co, ky, kx],
 * one product xᵀ [H*W, Cin] · w [Cin, Cout*kH*kW] (bias expanded along the columns) whose `scatter`
 * epilogue writes element (py*W + px, (co*kH + ky)*kW + kx) straight to its interleaved place.
 */
function isNonOverlapping(geom: Geometry, outputPadding: readonly number[]): boolean {
  return (
    geom.groups === 1 &&
    geom.stride[0] === geom.kernel[0] && geom.stride[1] === geom.kernel[1] &&
    geom.padding[0] === 0 && geom.padding[1] === 0 &&
    geom.dilation[0] === 1 && geom.dilation[1] === 1 &&
    outputPadding[0] === 0 && outputPadding[1] === 0
  );
}

function convTransposeNonOverlapping(geom: Geometry, inputs: Tensor[], shape: readonly number[]): Tensor {
  const [x, weight, bias] = inputs as [Tensor, Tensor, Tensor | undefined];
  const n = geom.batch;
  const [cIn, h, w] = geom.b;
  const cOut = geom.a[0];
  const [kH, kW] = geom.kernel;
  const taps = kH * kW;
  const cols = cOut * taps;
  let wideBias: Tensor | null = null;
  if (bias) {
    // bias[co] repeated for each of the co's kH*kW columns: a copy reading with stride 0.
    wideBias = output('convTranspose2d', bias, [cols]);
    launch(copyKernel, {
      shape: [cOut, taps], srcShape: [cOut, taps], srcStrides: [1, 0], srcStep: [1, 1], srcOffset: 0,
      dstStrides: [taps, 1], dstOffset: 0,
    }, [bias, wideBias], wideBias);
  }
  // Row p = py*W + px and column j = (co*kH + ky)*kW + kx land on out[co, py*kH + ky, px*kW + kx].
  const out = matmulRaw(x, weight, {
    transA: true, transB: false, M: h * w, N: cols, K: cIn,
    batchShape: [n], aBatchStrides: [cIn * h * w], bBatchStrides: [0],
    scatter: { R0: w, S1: kH * w * kW, S0: kW, C1: kH, C0: kW, T2: h * kH * w * kW, T1: w * kW, T0: 1 },
  }, shape, wideBias);
  wideBias?.dispose();
  return out;
}

/**
 * Transposed 2-D convolution (the gradient of conv2d w.r.t. its input): x [N, Cin, H, W],
 * weight [Cin, Cout/groups, kH, kW], bias [Cout] -> out [N, Cout, Ho, Wo] with
 * Ho = (H-1)*stride - 2*pad + dilation*(kH-1) + outputPadding + 1.
 */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: ConvTranspose2dOptions = {}): Tensor {
  const op = 'convTranspose2d';
  checkInputs(op, x, weight, bias);
  const [n, cIn, h, w] = x.shape as [number, number, number, number];
  const [wIn, cOutPerGroup, kH, kW] = weight.shape as [number, number, number, number];
  const groups = checkGroups(op, o.groups);
  if (wIn !== cIn || cIn % groups !== 0) {
    throw new Error(
      `${op}: input ${formatShape(x.shape)} and weight ${formatShape(weight.shape)} do not fit groups=${groups} ` +
        `(need weight[0] = Cin, divisible by groups)`,
    );
  }
  const cOut = cOutPerGroup * groups;
  checkBias(op, bias, cOut);
  const stride = pair(op, 'stride', o.stride, 1, 1);
  const padding = pair(op, 'padding', o.padding, 0, 0);
  const dilation = pair(op, 'dilation', o.dilation, 1, 1);
  const outputPadding = pair(op, 'outputPadding', o.outputPadding, 0, 0);
  for (const d of [0, 1]) {
    if (outputPadding[d]! >= stride[d]! && outputPadding[d]! >= dilation[d]!) {
      throw new Error(
        `${op}: outputPadding [${outputPadding.join(', ')}] must be smaller than stride [${stride.join(', ')}] ` +
          `or dilation [${dilation.join(', ')}]`,
      );
    }
  }
  const hOut = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kH - 1) + outputPadding[0] + 1;
  const wOut = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kW - 1) + outputPadding[1] + 1;
  if (hOut < 1 || wOut < 1) {
    throw new Error(`${op}: input ${formatShape(x.shape)} with kernel [${kH}, ${kW}] gives an empty output ${hOut}x${wOut}`);
  }
  const geom: Geometry = {
    batch: n, groups, a: [cOut, hOut, wOut], b: [cIn, h, w],
    kernel: [kH, kW], stride, padding, dilation,
  };
  const inputs = bias ? [x, weight, bias] : [x, weight];
  const out = isNonOverlapping(geom, outputPadding)
    ? convTransposeNonOverlapping(geom, inputs, [n, cOut, hOut, wOut])
    : conv2dTransposed(geom, inputs, [n, cOut, hOut, wOut]);
  const xShape = x.shape;
  const wShape = weight.shape;
  return record(op, out, inputs, [x, weight], (dOut, [sx, sw], needs) => [
    needs[0] ? conv2dForward(geom, [dOut, sw!], xShape) : null,
    needs[1] ? conv2dWeight(geom, dOut, sx!, wShape) : null,
    needs[2] ? sum(dOut, [0, 2, 3]) : null,
  ]);
}
