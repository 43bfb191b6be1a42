/**
 * The reference design as a pseudo-peer of the matmul cases: kernels/matmul/matmul.ts with
 * tile 8, i.e. "a scalar kernel with 8x8 outputs per thread and NO workgroup memory", which the
 * issue's facts measured at 10.0 GFLOP/s at 1024^3 on this machine. It runs on our device,
 * interleaved with ours in the same rounds, so its column shows how fast the machine was while
 * the table was measured (lavapipe's speed drifts severalfold over an hour here).
 */
import * as E from '../../src/engine/index.js';
import { type MatmulParams, matmulKernel } from '../../src/kernels/matmul/matmul.js';
import { type Runner, oursRunner } from '../harness.js';
import { type PeerOp, opInputs } from './ops.js';

export const REFERENCE_DESIGN = 'issue-ref-t8';

export async function referenceDesignRunner(device: E.Device, op: PeerOp, timestamps: boolean): Promise<Runner> {
  if (op.kind !== 'matmul') throw new Error(`${REFERENCE_DESIGN}: only matmul cases, not ${op.kind}`);
  const [a, b] = opInputs(op).map((t) => E.keep(E.Tensor.fromArray(t.data, t.shape, { device }))) as [E.Tensor, E.Tensor];
  const params: MatmulParams = {
    transA: false, transB: false, bias: false, M: op.m, N: op.n, K: op.k,
    batchShape: [], aBatchStrides: [], bBatchStrides: [], alpha: 1, tile: 8,
  };
  const launch = (): E.Tensor => {
    const out = E.keep(E.Tensor.empty([op.m, op.n], 'f32', device));
    device.run(matmulKernel, params, [a.storage, b.storage, out.storage]);
    return out;
  };
  const runner = await oursRunner(device, {
    name: 'matmul',
    shape: `${op.m}x${op.k}x${op.n}`,
    setup: () => ({
      run: () => launch().dispose(),
      output: async () => {
        const out = launch();
        const data = (await out.read()) as Float32Array;
        out.dispose();
        return data;
      },
      dispose: () => [a, b].forEach((t) => t.dispose()),
    }),
  }, { timestamps });
  return { ...runner, system: REFERENCE_DESIGN };
}
