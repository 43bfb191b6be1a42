/**
 * conv2d weight gradient, depthwise (the geometry of conv2d-depthwise.ts): for every output
 * channel co and tap (kh, kw),
 *
 *   dW[co, 0, kh, kw] = sum_{n, oy, ox} dOut[n, co, oy, ox] * X[n, co/m, oy*sH - pH + kh*dH, ox*sW - pW + kw*dW]
 *
 * Why a kernel of its own: the direct gather (conv2d.ts 'weight') gives each of the C*kH*kW
 * weights one thread that walks every image pixel with two loads per multiply-add. Here a thread
 * owns one TILE_Y x TILE_X block of output pixels of one channel of one image: it loads the
 * block's dOut values and its input window once (the same window as the forward kernel) and
 * forms all kH*kW taps' sums (for 3x3 and 4x4 blocks: 144 multiply-adds per 52 loads), written
 * to `partial[n, co, block, tap]`; the op sums them over images and blocks (the reduce kernel), so
 * nothing needs atomics and the result is deterministic. A loop over the images inside the
 * thread (partials per channel and block only) ran 3x slower on lavapipe, whose masked loops
 * blend every loop-carried accumulator; with no loop (scratch/lab-dw.ts WT=1, GPU timestamps,
 * partials without their reduce) 3x3 144x56^2 took 4.1 ms against the direct gather's 8.8, and
 * 7x7 96x56^2 7.1 against 32.3.
 *
 * Bindings: x read f32, g (dOut) read f32, partial read_write f32 ([N, Cout, tilesY*tilesX, kH*kW]).
 * Uniform `Params`: conv2d-depthwise.ts's (total = N * Cout * tilesY * tilesX threads).
 * Dispatch: ceil(total / 64) workgroups of 64, 1-D (the device folds > 65535 into 2-D).
 * Key: `conv2d:dw-weight:k<kH>x<kW>:s<sH>x<sW>:d<dH>x<dW>:t<TILE_Y>x<TILE_X>`.
 */
import { type KernelSpec, ceilDiv } from '../kernel-spec.js';
import { linearIndexFn, storageDecls, uniformDecl } from '../wgsl.js';
import { conv2dDepthwiseWeightReference } from './conv2d-depthwise.ref.js';
import {
  type Conv2dDepthwiseParams, DEPTHWISE_WORKGROUP, depthwiseBlockPrologue, depthwiseKeyGeometry, depthwiseParamsStruct,
  depthwiseTiles, depthwiseUniforms, depthwiseWindow,
} from './conv2d-depthwise.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export type Conv2dDepthwiseWeightParams = Omit<Conv2dDepthwiseParams, 'bias' | 'flip' | 'activation'>;

/** Shape of the partial sums the kernel writes: [N, Cout, blocks per channel plane, kH*kW]. */
export function conv2dDepthwiseWeightPartialShape(p: Conv2dDepthwiseWeightParams): [number, number, number, number] {
  const t = depthwiseTiles({ ...p, bias: false }, false);
  return [p.batch, p.b[0], t.tilesX * t.tilesY, p.kernel[0] * p.kernel[1]];
}

export const conv2dDepthwiseWeightKernel: KernelSpec<Conv2dDepthwiseWeightParams> = {
  name: 'conv2d',
  key: (p) => `conv2d:dw-weight:${depthwiseKeyGeometry({ ...p, bias: false })}`,
  bindings: () => [
    { name: 'x', access: 'read', type: 'f32' },
    { name: 'g', access: 'read', type: 'f32' },
    { name: 'partial', access: 'read_write', type: 'f32' },
  ],
  uniforms: (p) => depthwiseUniforms({ ...p, bias: false }, true),
  workgroupSize: () => DEPTHWISE_WORKGROUP,
  dispatch: (p) => ceilDiv(depthwiseTiles({ ...p, bias: false }, true).total, DEPTHWISE_WORKGROUP),
  source: (p) => {
    const params = { ...p, bias: false };
    const [kH, kW] = p.kernel;
    const TY = p.tileY ?? 4;
    const TX = p.tileX ?? 4;
    const window = depthwiseWindow(params, conv2dDepthwiseWeightKernel.key(p));
    const grads: string[] = [];
    for (const ty of range(TY)) {
      for (const tx of range(TX)) {
        grads.push(`    let g${ty}_${tx} = select(0.0, g[(gPlane + min(oy0 + ${ty}u, u.Ho - 1u)) * u.Wo + min(ox0 + ${tx}u, u.Wo - 1u)], ` +
          `oy0 + ${ty}u < u.Ho && ox0 + ${tx}u < u.Wo);`);
      }
    }
    const sums: string[] = [];
    for (const kh of range(kH)) {
      for (const kw of range(kW)) {
        const terms = range(TY).flatMap((ty) => range(TX).map((tx) => `g${ty}_${tx} * ${window.tapInput(ty, tx, kh, kw)}`));
        sums.push(`    let acc${kh}_${kw} = ${terms.join(' + ')};`);
      }
    }
    const taps = range(kH).flatMap((kh) => range(kW).map((kw) => [kh, kw] as const));
    const bindings = conv2dDepthwiseWeightKernel.bindings(p);
    return /* wgsl */ `
${depthwiseParamsStruct}
${storageDecls(bindings)}
${uniformDecl(bindings.length)}
${linearIndexFn}

@compute @workgroup_size(${DEPTHWISE_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linearWorkgroupIndex(wid, nwg) * ${DEPTHWISE_WORKGROUP}u + lid;
  if (i >= u.total) { return; }
${depthwiseBlockPrologue(params)}
  let n = r / u.Cout;
  let plane = (n * u.Cin + ci) * u.H;
  let gPlane = (n * u.Cout + co) * u.Ho;
${window.lines.join('\n')}
${grads.map((l) => l.slice(2)).join('\n')}
${sums.map((l) => l.slice(2)).join('\n')}
${taps.map(([kh, kw]) => `  partial[i * ${kH * kW}u + ${kh * kW + kw}u] = acc${kh}_${kw};`).join('\n')}
}
`;
  },
  reference: conv2dDepthwiseWeightReference,
};
