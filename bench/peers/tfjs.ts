/**
 * Peer: @tensorflow/tfjs-backend-webgpu on the process's Dawn GPU object.
 *
 * Set-up facts (measured on this machine): the `webgpu` globals must be on globalThis and
 * `navigator = { gpu }` set BEFORE the backend is imported (it registers itself only when it sees
 * navigator.gpu); outputs are read with `await data()` (dataSync cannot wait in Node); and tfjs
 * keeps a compute pass open between ops, so the pass is ended and the queue submitted before the
 * timed end. The backend makes its own GPUDevice on the same adapter; timing brackets its queue.
 *
 * Each op is the way a tfjs user writes it: matMul; attention as matMul -> mul -> softmax -> matMul
 * (tfjs has no fused attention); fused.conv2d with the bias in NHWC (tfjs's layout); layer norm as
 * moments + batchNorm; softmax.
 */
import { GpuTimer, type Runner, type RunnerOptions } from '../harness.js';
import { type PeerOp, type HostTensor, opInputs, permuteHost } from './ops.js';

type Tf = typeof import('@tensorflow/tfjs-core');
type TfTensor = import('@tensorflow/tfjs-core').Tensor;

/** The parts of tfjs's WebGPUBackend used here (public members of its class). */
interface WebGpuBackend {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsPeer {
  tf: Tf;
  backend: WebGpuBackend;
}

let loaded: Promise<TfjsPeer> | null = null;

/** Loads tfjs-core and the WebGPU backend on `gpu` (once per process). */
export function loadTfjs(gpu: GPU): Promise<TfjsPeer> {
  loaded ??= (async () => {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialise');
    await tf.ready();
    return { tf, backend: tf.backend() as unknown as WebGpuBackend };
  })();
  return loaded;
}

/** Ends tfjs's open compute pass and submits what it recorded. */
function submit(backend: WebGpuBackend): void {
  backend.endComputePassEncoder();
  if (backend.commandEncoder) backend.submitQueue();
}

interface Program {
  inputs: TfTensor[];
  f: () => TfTensor;
  /** Output (tfjs layout) back to our layout. */
  toOurs: (t: HostTensor) => Float32Array;
}

function program(tf: Tf, op: PeerOp): Program {
  const host = opInputs(op);
  const tensor = (t: HostTensor): TfTensor => tf.tensor(t.data, t.shape, 'float32');
  const same = (t: HostTensor): Float32Array => t.data;
  switch (op.kind) {
    case 'matmul': {
      const [a, b] = host.map(tensor) as [TfTensor, TfTensor];
      return { inputs: [a, b], f: () => tf.matMul(a, b), toOurs: same };
    }
    case 'attention': {
      const [q, k, v] = host.map(tensor) as [TfTensor, TfTensor, TfTensor];
      const scale = tf.scalar(1 / Math.sqrt(op.dim));
      const f = (): TfTensor => tf.matMul(tf.softmax(tf.mul(tf.matMul(q, k, false, true), scale)), v);
      return { inputs: [q, k, v, scale], f, toOurs: same };
    }
    case 'conv2d': {
      const x = tensor(permuteHost(host[0]!, [0, 2, 3, 1])) as import('@tensorflow/tfjs-core').Tensor4D;
      // tfjs filters: [kH, kW, in, out] for conv2d; [kH, kW, in, multiplier] for depthwise (ours: [C*m, 1, kH, kW]).
      const depthwise = (op.groups ?? 1) > 1;
      if (depthwise && (op.groups !== op.cin || op.cout !== op.cin)) throw new Error('tfjs peer: only depthwise (groups = cin = cout) among grouped convs');
      const filter = tensor(permuteHost(host[1]!, depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0])) as import('@tensorflow/tfjs-core').Tensor4D;
      const bias = tensor(host[2]!);
      const pad = op.padding === 0 ? 'valid' : 'same';
      const f = (): TfTensor => (depthwise ? tf.fused.depthwiseConv2d({ x, filter, bias, strides: 1, pad }) : tf.fused.conv2d({ x, filter, bias, strides: 1, pad }));
      return { inputs: [x, filter, bias], f, toOurs: (t) => permuteHost(t, [0, 3, 1, 2]).data };
    }
    case 'layer_norm': {
      // batchNorm wants mean and offset of equal rank: scale and bias as [1, C] next to mean [N, 1].
      const [x, w, b] = host.map((t, i) => tensor(i === 0 ? t : { shape: [1, op.cols], data: t.data })) as [TfTensor, TfTensor, TfTensor];
      const f = (): TfTensor => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.batchNorm(x, mean, variance, b, w, op.eps);
      };
      return { inputs: [x, w, b], f, toOurs: same };
    }
    case 'softmax': {
      const [x] = host.map(tensor) as [TfTensor];
      return { inputs: [x], f: () => tf.softmax(x), toOurs: same };
    }
  }
}

/** A runner for `op` on tfjs-backend-webgpu. */
export async function tfjsRunner(peer: TfjsPeer, op: PeerOp, options: RunnerOptions = {}): Promise<Runner> {
  const { tf, backend } = peer;
  const p = program(tf, op);
  const timer = options.timestamps !== false && GpuTimer.supported(backend.device) ? new GpuTimer(backend.device) : null;
  return {
    system: 'tfjs-webgpu',
    async time() {
      submit(backend);
      const t0 = performance.now();
      timer?.begin();
      tf.tidy(() => void p.f());
      submit(backend);
      timer?.end();
      await backend.device.queue.onSubmittedWorkDone();
      const wallMs = performance.now() - t0;
      return timer ? { wallMs, gpuMs: await timer.read() } : { wallMs };
    },
    async output() {
      const y = tf.tidy(() => p.f());
      const data = (await y.data()) as Float32Array;
      const shape = y.shape;
      y.dispose();
      return p.toOurs({ shape, data });
    },
    dispose() {
      p.inputs.forEach((t) => t.dispose());
      timer?.destroy();
    },
  };
}
