/**
 * conv2d forward, depthwise fast path: groups == Cin (each output channel co reads only input
 * channel co / m, m = Cout / Cin, the channel multiplier), NCHW, zero padding:
 *
 *   out[n, co, oy, ox] = bias[co] + sum_{kh, kw} X[n, co/m, oy*sH - pH + kh*dH, ox*sW - pW + kw*dW] * W[co, 0, kh, kw]
 *
 * Why a kernel of its own: the direct gather (conv2d.ts) spends two loads and two bounds tests on
 * every tap, and on lavapipe every storage load is a per-lane loop (see matmul-sg.ts), so it is
 * load-bound. Here one thread computes a TILE_Y x TILE_X block of outputs of one channel: it loads
 * the block's input window once (neighbouring outputs share most of it: for 3x3, stride 1, a 4x4
 * block reads a 6x6 window, 36 loads for 144 multiply-adds) and the channel's kH*kW weights once.
 * The window is unrolled, so the tap geometry (kernel, stride, dilation) is part of the key; the
 * op uses this kernel only for small windows (conv2dDepthwiseSupported) and the direct gather
 * otherwise. Padding and sizes stay in the uniforms. Out-of-range inputs read a clamped (valid)
 * address and are zeroed by select, so no load is conditional.
 * Summation order per output: taps in (kh, kw) order, then the bias, as the direct kernel does.
 *
 * `flip` reads tap (kh, kw) from W[co, 0, kH-1-kh, kW-1-kw]: with stride 1 and multiplier 1 that
 * makes this kernel the input gradient of a depthwise conv (padding from conv2dGemmFlipPadding),
 * as conv2d-gemm.ts's flip does for ungrouped ones. Against the direct 'transposed' gather
 * (scratch/lab-dw.ts with TR=1): 3x3 144x56^2 50.7 -> 4.3 ms, 7x7 96x56^2 135 -> 12.9 ms.
 *
 * Bindings: x read f32, w read f32, (bias read f32), out read_write f32.
 * Uniform `Params` (u32): batch, Cin, H, W, Cout, Ho, Wo, pH, pW, tilesX, tilesY, total (threads),
 *   4 pad words.
 * Dispatch: ceil(total / 64) workgroups of 64, 1-D (the device folds > 65535 into 2-D).
 * `activation` is applied to each output after the bias, as in conv2d-gemm.ts.
 * Key: `conv2d:dw:k<kH>x<kW>:s<sH>x<sW>:d<dH>x<dW>:t<TILE_Y>x<TILE_X>[:bias][:flip][:<activation>]`.
 * Limits: tensors under 2^32 elements.
 */
import { type KernelSpec, type UniformWord, ceilDiv } from '../kernel-spec.js';
import { activationFnWgsl } from '../elementwise/elementwise.ops.js';
import { linearIndexFn, storageDecls, u32, uniformDecl } from '../wgsl.js';
import { conv2dDepthwiseReference } from './conv2d-depthwise.ref.js';
import type { Conv2dGemmParams } from './conv2d-gemm.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
/** Threads per workgroup of both depthwise kernels. */
export const DEPTHWISE_WORKGROUP = 64;
const WORKGROUP = DEPTHWISE_WORKGROUP;

/** The implicit-GEMM conv's geometry (a = X's [Cin, H, W], b = out's [Cout, Ho, Wo], Cout a multiple of Cin) and a tile. */
export interface Conv2dDepthwiseParams extends Omit<Conv2dGemmParams, 'rows' | 'flip'> {
  /** Output rows per thread. Default 4. */
  tileY?: number;
  /** Output columns per thread. Default 4. */
  tileX?: number;
  /** Read the taps in reverse order (see the file head). */
  flip?: boolean;
}

// 4x4 outputs per thread: against the direct gather at 3x3 s1 144x56^2 (scratch/lab-dw.ts, GPU
// timestamps, one process) 22.2 ms direct, 5.9 ms at 2x4, 4.7-4.9 at 4x4, 3.8 at 4x8 and 3.3 at
// 8x8; at 7x7 s1 96x88^2 107 ms direct, 30 at 2x4, 18.7 at 4x4, 20.8 at 2x8. Larger tiles leave
// small images with few threads, so 4x4 is the default everywhere.
const tileYOf = (p: { tileY?: number }): number => p.tileY ?? 4;
const tileXOf = (p: { tileX?: number }): number => p.tileX ?? 4;

/** Largest unrolled input window (rows x columns) a pipeline may load per thread (7x7, stride 2, 4x4 tile: 13x13). */
const MAX_WINDOW = 196;

/** Distinct input offsets (relative to the block's first tap) of one dim: t*stride + k*dilation. */
function offsets(tile: number, kernel: number, stride: number, dilation: number): number[] {
  const set = new Set<number>();
  for (const t of range(tile)) for (const k of range(kernel)) set.add(t * stride + k * dilation);
  return [...set].sort((x, y) => x - y);
}

/**
 * Whether this kernel runs the geometry: depthwise (groups == Cin >= 2, Cout a multiple of Cin)
 * with an unrolled window of at most MAX_WINDOW inputs and at most 7x7 taps at the default tile.
 * An ungrouped conv of one input channel (groups == Cin == 1) is the same relation, but it keeps
 * the ungrouped paths: routing it here changed the summation order of existing models' gradients
 * (the CLIPSeg head's last transposed conv has one output channel, i.e. aC = 1), and with it the
 * demo's finetuned Dice (0.802 -> 0.797), for no speed that any of our models would see.
 */
export function conv2dDepthwiseSupported(p: Omit<Conv2dDepthwiseParams, 'bias'> & { groups: number }): boolean {
  const [cin] = p.a;
  const [cout] = p.b;
  if (p.groups !== cin || cin < 2 || cout % cin !== 0) return false;
  if (p.kernel[0] * p.kernel[1] > 49) return false;
  const rows = offsets(tileYOf(p), p.kernel[0], p.stride[0], p.dilation[0]).length;
  const cols = offsets(tileXOf(p), p.kernel[1], p.stride[1], p.dilation[1]).length;
  return rows * cols <= MAX_WINDOW;
}

/** Output blocks per channel plane, and threads: one per block of every (image,) channel plane. */
export function depthwiseTiles(p: Conv2dDepthwiseParams, perImage = true): { tilesX: number; tilesY: number; total: number } {
  const [cout, ho, wo] = p.b;
  const tilesX = ceilDiv(wo, tileXOf(p));
  const tilesY = ceilDiv(ho, tileYOf(p));
  return { tilesX, tilesY, total: (perImage ? p.batch : 1) * cout * tilesX * tilesY };
}

/** The uniform words of both depthwise kernels (the `Params` of depthwiseParamsStruct). */
export function depthwiseUniforms(p: Conv2dDepthwiseParams, perImage: boolean): UniformWord[] {
  const t = depthwiseTiles(p, perImage);
  return [
    u32(p.batch), u32(p.a[0]), u32(p.a[1]), u32(p.a[2]), u32(p.b[0]), u32(p.b[1]), u32(p.b[2]),
    u32(p.padding[0]), u32(p.padding[1]), u32(t.tilesX), u32(t.tilesY), u32(t.total),
    u32(0), u32(0), u32(0), u32(0),
  ];
}

export const depthwiseParamsStruct = /* wgsl */ `
struct Params {
  batch: u32, Cin: u32, H: u32, W: u32, Cout: u32, Ho: u32, Wo: u32,
  pH: u32, pW: u32, tilesX: u32, tilesY: u32, total: u32,
  _p0: u32, _p1: u32, _p2: u32, _p3: u32,
}`;

/**
 * WGSL that loads one block's input window into `v<ry>_<rx>` (ry, rx: offsets from the block's
 * first tap, as used by `tapInput`), zero outside X; needs `plane` (the X channel plane's first
 * row), `yBase` and `xBase` in scope. Throws, naming `key`, for a window it will not unroll.
 */
export function depthwiseWindow(p: Conv2dDepthwiseParams, key: string): { lines: string[]; tapInput: (ty: number, tx: number, kh: number, kw: number) => string } {
  const [kH, kW] = p.kernel;
  const [sH, sW] = p.stride;
  const [dH, dW] = p.dilation;
  const TY = tileYOf(p);
  const TX = tileXOf(p);
  if (![kH, kW, sH, sW, dH, dW, TY, TX].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new Error(`conv2d depthwise: kernel, stride, dilation and tile must be positive integers (${key})`);
  }
  const rows = offsets(TY, kH, sH, dH);
  const cols = offsets(TX, kW, sW, dW);
  if (rows.length * cols.length > MAX_WINDOW) {
    throw new Error(`conv2d depthwise: window ${rows.length}x${cols.length} exceeds ${MAX_WINDOW} inputs (${key})`);
  }
  const lines: string[] = [];
  for (const ry of rows) {
    lines.push(`  let iy${ry} = yBase + ${ry};`);
    lines.push(`  let row${ry} = (plane + u32(clamp(iy${ry}, 0, i32(u.H) - 1))) * u.W;`);
    lines.push(`  let rowOk${ry} = iy${ry} >= 0 && iy${ry} < i32(u.H);`);
  }
  for (const rx of cols) {
    lines.push(`  let ix${rx} = xBase + ${rx};`);
    lines.push(`  let col${rx} = u32(clamp(ix${rx}, 0, i32(u.W) - 1));`);
    lines.push(`  let colOk${rx} = ix${rx} >= 0 && ix${rx} < i32(u.W);`);
  }
  for (const ry of rows) {
    for (const rx of cols) lines.push(`  let v${ry}_${rx} = select(0.0, x[row${ry} + col${rx}], rowOk${ry} && colOk${rx});`);
  }
  return { lines, tapInput: (ty, tx, kh, kw) => `v${ty * sH + kh * dH}_${tx * sW + kw * dW}` };
}

/** WGSL: the thread's block (tx, ty), channel co and its input channel ci, first output and first tap row/column. */
export function depthwiseBlockPrologue(p: Conv2dDepthwiseParams): string {
  return `  let tx = i % u.tilesX;
  var r = i / u.tilesX;
  let ty = r % u.tilesY;
  r = r / u.tilesY;
  let co = r % u.Cout;
  let ci = co / (u.Cout / u.Cin);
  let oy0 = ty * ${tileYOf(p)}u;
  let ox0 = tx * ${tileXOf(p)}u;
  let yBase = i32(oy0 * ${p.stride[0]}u) - i32(u.pH);
  let xBase = i32(ox0 * ${p.stride[1]}u) - i32(u.pW);`;
}

/** The tap geometry part of both depthwise kernels' keys. */
export function depthwiseKeyGeometry(p: Conv2dDepthwiseParams): string {
  return `k${p.kernel[0]}x${p.kernel[1]}:s${p.stride[0]}x${p.stride[1]}:d${p.dilation[0]}x${p.dilation[1]}:t${tileYOf(p)}x${tileXOf(p)}`;
}

export const conv2dDepthwiseKernel: KernelSpec<Conv2dDepthwiseParams> = {
  name: 'conv2d',
  key: (p) => `conv2d:dw:${depthwiseKeyGeometry(p)}${p.bias ? ':bias' : ''}${p.flip ? ':flip' : ''}${p.activation ? `:${p.activation}` : ''}`,
  bindings: (p) => [
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'w', access: 'read', type: 'f32' },
    ...(p.bias ? [{ name: 'bias', access: 'read' as const, type: 'f32' as const }] : []),
    { name: 'out', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => depthwiseUniforms(p, true),
  workgroupSize: () => WORKGROUP,
  dispatch: (p) => ceilDiv(depthwiseTiles(p).total, WORKGROUP),
  source: (p) => {
    const [kH, kW] = p.kernel;
    const window = depthwiseWindow(p, conv2dDepthwiseKernel.key(p));
    const weights: string[] = [];
    for (const kh of range(kH)) {
      for (const kw of range(kW)) {
        const tap = p.flip ? (kH - 1 - kh) * kW + (kW - 1 - kw) : kh * kW + kw;
        weights.push(`  let w${kh}_${kw} = w[wBase + ${tap}u];`);
      }
    }
    const store = (value: string) => (p.activation ? `activate(${value})` : value);
    const stores: string[] = [];
    for (const ty of range(tileYOf(p))) {
      for (const tx of range(tileXOf(p))) {
        const terms = range(kH).flatMap((kh) => range(kW).map((kw) => `${window.tapInput(ty, tx, kh, kw)} * w${kh}_${kw}`));
        stores.push(`  if (oy0 + ${ty}u < u.Ho && ox0 + ${tx}u < u.Wo) {
    var acc = 0.0;
${terms.map((t) => `    acc += ${t};`).join('\n')}
    out[(outPlane + oy0 + ${ty}u) * u.Wo + ox0 + ${tx}u] = ${store(`acc${p.bias ? ' + bias[co]' : ''}`)};
  }`);
      }
    }
    const bindings = conv2dDepthwiseKernel.bindings(p);
    return /* wgsl */ `
${depthwiseParamsStruct}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}
${p.activation ? activationFnWgsl(p.activation) : ''}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= u.total) { return; }
${depthwiseBlockPrologue(p)}
  let n = r / u.Cout;
  let plane = (n * u.Cin + ci) * u.H;
  let wBase = co * ${kH * kW}u;
  let outPlane = (n * u.Cout + co) * u.Ho;
${window.lines.join('\n')}
${weights.join('\n')}
${stores.join('\n')}
}
`;
  },
  reference: conv2dDepthwiseReference,
};
