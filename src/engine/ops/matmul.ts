/**
 * Matrix products: matmul (torch.matmul semantics, with in-place transposes) and linear.
 *
 * Both run the one matmul kernel family (kernels/matmul). Forward and backward share a `Plan`: the
 * kernel geometry (M, N, K, output batch dims and each operand's batch strides) of the forward
 * product. Backward is two more products of the same family with the transposes in the key:
 *   C = op(A)·op(B):  dA = dC·op(B)ᵀ (or op(B)·dCᵀ when A is read transposed),
 *                     dB = op(A)ᵀ·dC (or dCᵀ·op(A) when B is read transposed),
 * each summed over the batch dims its operand was broadcast along (sumToShape).
 *
 * When B is a plain matrix (rank 2) and A is not read transposed, A's leading dims are folded into
 * M ([B, T, K]·[K, N] is one [B*T, K]·[K, N] product), so dB needs no batch reduction afterwards.
 */
import { MATMUL_ACTIVATIONS, type MatmulActivation, type MatmulParams, matmulKernel } from '../../kernels/matmul/matmul.js';
import { SUBGROUP, matmulSgKernel } from '../../kernels/matmul/matmul-sg.js';
import { matmulSharedKernel } from '../../kernels/matmul/matmul-shared.js';
import { isRecording, record } from '../autograd.js';
import type { Device } from '../device/device.js';
import { tunedRows, tunedVariant } from '../device/tuning.js';
import { scope } from '../scope.js';
import { broadcastShapes, broadcastStrides, formatShape, numel, sameShape } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { add, gelu, geluTanh, quickGelu, relu } from './elementwise.js';
import { permuteRaw, reshape } from './movement.js';
import { SPLIT_K_TARGET_WORKGROUPS, splitKSlices } from './matmul-split.js';
import { sumRaw, sumToShape } from './reduce.js';
import { deviceOf, expectDtype, launch, output, requireShaderF16 } from './run.js';

export interface MatmulOptions {
  /** Read `a` transposed over its last two dims (no copy). */
  transA?: boolean;
  /** Read `b` transposed over its last two dims (no copy). */
  transB?: boolean;
  /** Scales the product: alpha * a·b (attention folds 1/sqrt(D) in here). Default 1. */
  alpha?: number;
}

export { MATMUL_ACTIVATIONS, type MatmulActivation };

/**
 * Which kernel variants the ops may use. 'auto' picks per device: the subgroup variants where the
 * adapter has `subgroups` with exactly 8 invocations per subgroup (lavapipe), the register-tiled
 * ones otherwise. 'portable' always uses the variants without subgroups (tests use it to cover
 * both paths on one device).
 */
export const kernelVariants: { mode: 'auto' | 'portable' } = { mode: 'auto' };

const subgroupCache = new WeakMap<object, boolean>();

/**
 * True when `device` runs the subgroup kernel variants: a WebGPU device with the `subgroups`
 * feature whose subgroups are always exactly SUBGROUP (8) invocations.
 */
export function useSubgroupKernels(device: Device): boolean {
  if (kernelVariants.mode !== 'auto' || device.kind !== 'webgpu') return false;
  let hit = subgroupCache.get(device);
  if (hit === undefined) {
    const gpu = (device as unknown as { gpu?: GPUDevice }).gpu;
    const info = (gpu as unknown as { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } })?.adapterInfo;
    hit = !!gpu?.features.has('subgroups') && info?.subgroupMinSize === SUBGROUP && info?.subgroupMaxSize === SUBGROUP;
    subgroupCache.set(device, hit);
  }
  return hit;
}

/**
 * Rows of the subgroup matmul's rows x 32 tile, from the adapter's tuning ('matmul-sg', measured
 * among 16/24/32 by engine/device/tuning.ts), 24 by default. All row counts sum each output over k in the same order, so the choice never changes a
 * result. The kernel also takes wider tiles (`groups` > 1: 32 x 128 and the like), which reuse each
 * load for more FMAs, but the op does not pick them: with column-tile-major workgroups they
 * measured equal to 24 x 32 at 1024^3 (231 vs 237 ms) and within noise at 485x768x2304 (162 vs
 * 179 ms) on lavapipe, while LLVM takes 30 s to several minutes to compile each of their variants.
 */
export function subgroupMatmulRows(device: Device): number {
  return tunedRows(device, MATMUL_SG_TUNABLE, 24);
}

/** Tunable names (registered in ops/tunables.ts). */
export const MATMUL_SG_TUNABLE = 'matmul-sg';
export const MATMUL_TILED_TUNABLE = 'matmul-tiled';

/**
 * The matmul variant on adapters without 8-wide subgroups: the register-tiled kernel with 4x4 or
 * 8x8 outputs per thread, or the workgroup-memory kernel ('shared'), as tuned per adapter; else
 * 8x8 for products of 64x64 and more.
 */
function tiledMatmulChoice(device: Device, M: number, N: number): { shared: boolean; tile: 4 | 8 } {
  // 8x8 outputs per thread ran 1.2-1.8x faster than 4x4 on lavapipe at the CLIP shapes; small
  // products keep 4x4 so that they still spread over several workgroups.
  if (M < 64 || N < 64) return { shared: false, tile: 4 };
  const tuned = tunedVariant(device, MATMUL_TILED_TUNABLE, 'default');
  return { shared: tuned === 'shared', tile: tuned === 't4' ? 4 : 8 };
}

/** Geometry of one product C = op(A)·op(B) in kernel terms. */
interface Plan {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  batchShape: number[];
  aBatchStrides: number[];
  bBatchStrides: number[];
  outShape: number[];
}

/** One operand of a product: a tensor, how it is read, and its batch strides over the output batch. */
interface Operand {
  t: Tensor;
  trans: boolean;
  batchStrides: readonly number[];
}

/** Launches one product with explicit geometry and allocates `outShape` for it (no autograd). */
function product(
  a: Operand,
  b: Operand,
  geo: { M: number; N: number; K: number; batchShape: readonly number[]; scatter?: MatmulParams['scatter'] },
  outShape: readonly number[],
  alpha: number,
  bias: Tensor | null = null,
  epilogue: { activation?: MatmulActivation; residual?: Tensor | null } = {},
): Tensor {
  const residual = epilogue.residual ?? null;
  // K = 0 binds zero-size operands (4-byte buffers), too small for the subgroup kernel's vec4 views.
  const subgroups = geo.K > 0 && useSubgroupKernels(a.t.device);
  const choice = subgroups ? null : tiledMatmulChoice(a.t.device, geo.M, geo.N);
  const params: MatmulParams = {
    transA: a.trans,
    transB: b.trans,
    bias: bias !== null,
    M: geo.M,
    N: geo.N,
    K: geo.K,
    batchShape: geo.batchShape,
    aBatchStrides: a.batchStrides,
    bBatchStrides: b.batchStrides,
    alpha,
    ...(choice ? { tile: choice.tile } : {}),
    bF16: b.t.dtype === 'f16',
    ...(geo.scatter ? { scatter: geo.scatter } : {}),
    ...(epilogue.activation ? { activation: epilogue.activation } : {}),
    ...(residual ? { residual: true } : {}),
  };
  const spec = !choice ? matmulSgKernel : choice.shared ? matmulSharedKernel : matmulKernel;
  const launchParams = !choice ? { ...params, rows: subgroupMatmulRows(a.t.device) } : params;
  // Split-K only where the register-tiled kernels run on a WebGPU adapter (see matmul-split.ts).
  const splitTarget = subgroups || a.t.device.kind !== 'webgpu' ? 0 : SPLIT_K_TARGET_WORKGROUPS;
  const slices = splitTarget > 0 && splittable(params, outShape)
    ? splitKSlices(geo.K, workgroupCount(spec.dispatch(launchParams)), splitTarget)
    : 1;
  if (slices > 1) return splitKProduct(a, b, geo, slices, alpha);
  const out = output('matmul', a.t, outShape);
  const tensors = [a.t, b.t, ...(bias ? [bias] : []), ...(residual ? [residual] : []), out];
  launch(spec, launchParams, tensors, out);
  return out;
}

const workgroupCount = (d: number | readonly number[]): number => (typeof d === 'number' ? d : d.reduce((x, y) => x * y, 1));

/** Whether a product may run split-K (engine/ops/matmul-split.ts): one 2-D Aᵀ·B without epilogue. */
function splittable(p: MatmulParams, outShape: readonly number[]): boolean {
  return p.transA && !p.transB && p.batchShape.length === 0 && !p.scatter && !p.bias && !p.activation && !p.residual &&
    outShape.length === 2 && outShape[0] === p.M && outShape[1] === p.N;
}

/** Aᵀ·B as `slices` partial products over consecutive K slices (one batched launch), then their sum. */
function splitKProduct(a: Operand, b: Operand, geo: { M: number; N: number; K: number }, slices: number, alpha: number): Tensor {
  const { M, N } = geo;
  const K = geo.K / slices;
  const partial = product({ ...a, batchStrides: [K * M] }, { ...b, batchStrides: [K * N] }, { M, N, K, batchShape: [slices] }, [slices, M, N], alpha);
  const total = sumRaw(partial, [0]);
  partial.dispose();
  return total;
}

/** Kernel geometry of one product, for ops in other files (conv, attention). */
export type MatmulGeometry = Omit<MatmulParams, 'bias' | 'tile'>;

/** One product alpha * op(a)·op(b) (+ bias[n]) with explicit kernel geometry into a new tensor (no autograd). */
export function matmulRaw(a: Tensor, b: Tensor, geo: MatmulGeometry, outShape: readonly number[], bias: Tensor | null = null): Tensor {
  const A: Operand = { t: a, trans: geo.transA, batchStrides: geo.aBatchStrides };
  const B: Operand = { t: b, trans: geo.transB, batchStrides: geo.bBatchStrides };
  return product(A, B, geo, outShape, geo.alpha ?? 1, bias);
}

function describe(aShape: readonly number[], bShape: readonly number[], transA: boolean, transB: boolean): string {
  return `${formatShape(aShape)}${transA ? 'ᵀ' : ''} x ${formatShape(bShape)}${transB ? 'ᵀ' : ''}`;
}

/**
 * Plans op(a)·op(b) for rank >= 2 operands (or a rank-1 `a` against a matrix `b`, which the
 * folded form handles: [K]·[K, N] -> [N]).
 */
function plan(op: string, aShape: readonly number[], bShape: readonly number[], transA: boolean, transB: boolean): Plan {
  const ra = aShape.length;
  const rb = bShape.length;
  const [K, M] = transA ? [aShape[ra - 2]!, aShape[ra - 1]!] : [aShape[ra - 1]!, ra >= 2 ? aShape[ra - 2]! : 1];
  const [N, Kb] = transB ? [bShape[rb - 2]!, bShape[rb - 1]!] : [bShape[rb - 1]!, bShape[rb - 2]!];
  if (K !== Kb) {
    throw new Error(`${op}: ${describe(aShape, bShape, transA, transB)}: inner dimensions ${K} and ${Kb} differ`);
  }
  if (rb === 2 && !transA) {
    // Fold A's leading dims into M: one 2-D product, output [...a.shape[:-1], N].
    return {
      transA, transB, M: numel(aShape.slice(0, -1)), N, K,
      batchShape: [], aBatchStrides: [], bBatchStrides: [],
      outShape: [...aShape.slice(0, -1), N],
    };
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batchShape = broadcastShapes(op, aBatch, bBatch);
  return {
    transA, transB, M, N, K, batchShape,
    aBatchStrides: broadcastStrides(aBatch, batchShape).map((s) => s * M * K),
    bBatchStrides: broadcastStrides(bBatch, batchShape).map((s) => s * K * N),
    outShape: [...batchShape, M, N],
  };
}

/** Gradients of C = alpha * op(A)·op(B) (+ bias) for A and B, per the plan. */
function productBackward(p: Plan, dC: Tensor, a: Tensor, b: Tensor, alpha: number, needs: [boolean, boolean]): [Tensor | null, Tensor | null] {
  const { M, N, K, batchShape } = p;
  const A: Operand = { t: a, trans: p.transA, batchStrides: p.aBatchStrides };
  const B: Operand = { t: b, trans: p.transB, batchStrides: p.bBatchStrides };
  // dC is contiguous over the output batch dims.
  const dCStrides = broadcastStrides(batchShape, batchShape).map((s) => s * M * N);
  const dCn: Operand = { t: dC, trans: false, batchStrides: dCStrides };
  const dCt: Operand = { ...dCn, trans: true };
  const flip = (o: Operand): Operand => ({ ...o, trans: !o.trans });
  const folded = batchShape.length === 0;
  let dA: Tensor | null = null;
  let dB: Tensor | null = null;
  if (needs[0]) {
    if (p.transA && b.dtype === 'f16') {
      // An f16 B binds only as a product's B operand (the kernels widen B alone), so op(B)·dCᵀ
      // is computed as its transpose dC·op(B)ᵀ and then transposed.
      const dAt = product(dCn, flip(B), { M, N: K, K: N, batchShape }, [...batchShape, M, K], alpha);
      const r = batchShape.length;
      dA = permuteRaw(dAt, [...batchShape.map((_, i) => i), r + 1, r]);
      dAt.dispose();
    } else {
      dA = p.transA
        ? product(B, dCt, { M: K, N: M, K: N, batchShape }, [...batchShape, K, M], alpha) // op(B)·dCᵀ
        : product(dCn, flip(B), { M, N: K, K: N, batchShape }, folded ? a.shape : [...batchShape, M, K], alpha); // dC·op(B)ᵀ
    }
    dA = sumToShape(dA, a.shape);
  }
  if (needs[1]) {
    dB = p.transB
      ? product(dCt, A, { M: N, N: K, K: M, batchShape }, [...batchShape, N, K], alpha) // dCᵀ·op(A)
      : product(flip(A), dCn, { M: K, N, K: M, batchShape }, [...batchShape, K, N], alpha); // op(A)ᵀ·dC
    dB = sumToShape(dB, b.shape);
  }
  return [dA, dB];
}

function checkOperands(op: string, a: Tensor, b: Tensor): void {
  deviceOf(op, [a, b]);
  expectDtype(op, a, 'f32', 'a');
  // b may be stored as f16 (weights at f16 precision, Module.toPrecision): read as f16, computed in f32.
  if (b.dtype === 'f16') requireShaderF16(op, b.device);
  else expectDtype(op, b, 'f32', 'b');
}

/** op(a)·op(b) for rank >= 2 operands, recorded. */
function matmulNd(a: Tensor, b: Tensor, transA: boolean, transB: boolean, alpha: number): Tensor {
  const p = plan('matmul', a.shape, b.shape, transA, transB);
  const out = product(
    { t: a, trans: transA, batchStrides: p.aBatchStrides },
    { t: b, trans: transB, batchStrides: p.bBatchStrides },
    p, p.outShape, alpha,
  );
  return record('matmul', out, [a, b], [a, b], (dOut, [sa, sb], needs) =>
    productBackward(p, dOut, sa!, sb!, alpha, [needs[0]!, needs[1]!]),
  );
}

/**
 * torch.matmul: batch dims broadcast ([4, 2, 5, 19]·[4, 1, 19, 7] -> [4, 2, 5, 7],
 * [2, 3, 9, 20]·[20, 6] -> [2, 3, 9, 6]). `transA`/`transB` read an operand transposed over its
 * last two dims without copying it. Rank-1 operands follow torch: a [K] acts as [1, K] and b [K]
 * as [K, 1], and that dim is dropped from the result (two vectors give a 0-d dot product); a
 * rank-1 operand cannot be read transposed.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const alpha = options.alpha ?? 1;
  checkOperands('matmul', a, b);
  if (a.rank === 0 || b.rank === 0) {
    throw new Error(`matmul: operands must have rank >= 1, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  }
  if ((transA && a.rank === 1) || (transB && b.rank === 1)) {
    throw new Error(`matmul: a rank-1 operand cannot be transposed (${describe(a.shape, b.shape, transA, transB)})`);
  }
  if (b.rank >= 2 && (a.rank >= 2 || b.rank === 2)) return matmulNd(a, b, transA, transB, alpha);
  // Vector cases through recorded reshapes (views: no copies).
  return scope(() => {
    const a2 = a.rank === 1 ? reshape(a, [1, a.shape[0]!]) : a;
    const b2 = b.rank === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
    const out = matmulNd(a2, b2, transA, transB, alpha);
    const shape = [...out.shape];
    if (b.rank === 1) shape.pop();
    if (a.rank === 1) shape.splice(shape.length - (b.rank === 1 ? 1 : 2), 1);
    return reshape(out, shape);
  });
}

/** What linear may fuse after x·Wᵀ + bias: y = residual + activation(x·Wᵀ + bias). */
export interface LinearEpilogue {
  /** torch: act(linear(x)); 'gelu_erf' is torch's default gelu. */
  activation?: MatmulActivation;
  /** Added last; must have the output's shape (a transformer block's skip connection). */
  residual?: Tensor | null;
}

const EPILOGUE_ACTIVATIONS: Record<MatmulActivation, (x: Tensor) => Tensor> = {
  relu, gelu_erf: gelu, gelu_tanh: geluTanh, quick_gelu: quickGelu,
};

/** Throws, naming `op`, unless `activation` is undefined or one of MATMUL_ACTIVATIONS. */
export function checkActivation(op: string, activation: unknown): void {
  if (activation !== undefined && !(MATMUL_ACTIVATIONS as readonly unknown[]).includes(activation)) {
    throw new Error(`${op}: activation '${String(activation)}' is not one of ${MATMUL_ACTIVATIONS.join(', ')}`);
  }
}

/** The recorded op an epilogue activation stands for (linear records it under autograd). */
export function activationOp(name: MatmulActivation): (x: Tensor) => Tensor {
  return EPILOGUE_ACTIVATIONS[name];
}

/**
 * torch.nn.functional.linear: y = x·Wᵀ + bias for x [..., in], weight [out, in], bias [out].
 * One fused kernel launch (bias added in the product's epilogue); x's leading dims are folded.
 * `epilogue` fuses an activation and a residual add into the same launch when no gradient is
 * recorded through them (inference); under autograd they are recorded as separate ops.
 * The weight may be stored as f16 (a model at f16 precision): the kernel loads it as f16 and
 * computes in f32, so the result equals linear with the f16 values as f32 weights. An f16 weight
 * takes no gradient; x still gets one.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, epilogue: LinearEpilogue = {}): Tensor {
  const op = 'linear';
  checkOperands(op, x, weight);
  if (weight.rank !== 2) throw new Error(`linear: weight ${formatShape(weight.shape)} must have rank 2 ([out, in])`);
  if (x.rank === 0) throw new Error(`linear: input ${formatShape(x.shape)} must have rank >= 1`);
  const [outFeatures, inFeatures] = weight.shape as [number, number];
  if (x.shape[x.rank - 1] !== inFeatures) {
    throw new Error(`linear: input ${formatShape(x.shape)} has ${x.shape[x.rank - 1]} features, weight ${formatShape(weight.shape)} expects ${inFeatures}`);
  }
  const b = bias ?? null;
  if (b) {
    deviceOf(op, [x, b]);
    expectDtype(op, b, 'f32', 'bias');
    if (b.rank !== 1 || b.shape[0] !== outFeatures) {
      throw new Error(`linear: bias ${formatShape(b.shape)} must be [${outFeatures}] for weight ${formatShape(weight.shape)}`);
    }
  }
  const p = plan(op, x.shape, weight.shape, false, true);
  const { activation } = epilogue;
  const residual = epilogue.residual ?? null;
  checkActivation(op, activation);
  if (residual) {
    deviceOf(op, [x, residual]);
    expectDtype(op, residual, 'f32', 'residual');
    if (!sameShape(residual.shape, p.outShape)) {
      throw new Error(`linear: residual ${formatShape(residual.shape)} must have the output's shape ${formatShape(p.outShape)}`);
    }
  }
  if ((activation || residual) && isRecording() && [x, weight, b, residual].some((t) => t?.requiresGrad)) {
    // Under autograd the epilogue is composed from recorded ops: the activation's backward needs
    // the pre-activation values, which the fused kernel never writes.
    return scope(() => {
      const y = linear(x, weight, b);
      const z = activation ? EPILOGUE_ACTIVATIONS[activation](y) : y;
      return residual ? add(z, residual) : z;
    });
  }
  const out = product(
    { t: x, trans: false, batchStrides: [] },
    { t: weight, trans: true, batchStrides: [] },
    p, p.outShape, 1, b, { ...(activation ? { activation } : {}), residual },
  );
  const inputs = b ? [x, weight, b] : [x, weight];
  return record(op, out, inputs, [x, weight], (dOut, [sx, sw], needs) => {
    const [dX, dW] = productBackward(p, dOut, sx!, sw!, 1, [needs[0]!, needs[1]!]);
    return b ? [dX, dW, needs[2] ? sumToShape(dOut, [outFeatures]) : null] : [dX, dW];
  });
}
