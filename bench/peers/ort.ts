/**
 * Peer: onnxruntime-node with its native WebGPU execution provider (its own Dawn, inside the
 * native library), or its CPU EP (tests). Each op is a small ONNX graph written by ./onnx.ts:
 *   matmul      MatMul(A, B)                         B an initializer (a weight, as in a model)
 *   attention   Transpose(K) -> MatMul -> Mul(scale) -> Softmax -> MatMul(V)   ('graph')
 *               or com.microsoft MultiHeadAttention on [1, L, H*D] ('mha', ORT's fused op)
 *   conv2d      Conv(X, W, B)                        W, B initializers, NCHW
 *   layer_norm  LayerNormalization(X, scale, bias)   scale, bias initializers
 *   softmax     Softmax(X, axis = -1)
 * Timing is wall time of session.run(): ONNX Runtime's device is not reachable from JS, so its
 * time includes copying the activations in and the output back (small next to the work here).
 */
import type { Runner } from '../harness.js';
import { type OnnxGraph, onnxModel } from './onnx.js';
import { type HostTensor, type PeerOp, opInputs, outputShape, permuteHost } from './ops.js';

type Ort = typeof import('onnxruntime-node');

export type OrtProvider = 'webgpu' | 'cpu';
export type AttentionVariant = 'graph' | 'mha';

interface OrtProgram {
  graph: OnnxGraph;
  /** Activations fed per run, in graph-input order. */
  feeds: HostTensor[];
  toOurs: (data: Float32Array) => Float32Array;
}

const same = (d: Float32Array): Float32Array => d;

/** Builds the graph for `op`; exported for the tests. */
export function ortProgram(op: PeerOp, attention: AttentionVariant = 'graph'): OrtProgram {
  const host = opInputs(op);
  const init = (name: string, t: HostTensor) => ({ name, shape: t.shape, data: t.data });
  const y = { name: 'Y', shape: outputShape(op) };
  switch (op.kind) {
    case 'matmul': {
      const [a, b] = host as [HostTensor, HostTensor];
      const graph: OnnxGraph = {
        inputs: [{ name: 'A', shape: a.shape }],
        outputs: [y],
        nodes: [{ op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }],
        initializers: [init('B', b)],
      };
      return { graph, feeds: [a], toOurs: same };
    }
    case 'attention': {
      if (attention === 'mha') return multiHeadAttention(op, host);
      const s = host[0]!.shape;
      const graph: OnnxGraph = {
        inputs: ['Q', 'K', 'V'].map((name) => ({ name, shape: s })),
        outputs: [y],
        nodes: [
          { op: 'Transpose', inputs: ['K'], outputs: ['Kt'], attributes: { perm: [0, 2, 1] } },
          { op: 'MatMul', inputs: ['Q', 'Kt'], outputs: ['S'] },
          { op: 'Mul', inputs: ['S', 'scale'], outputs: ['Ss'] },
          { op: 'Softmax', inputs: ['Ss'], outputs: ['P'], attributes: { axis: -1 } },
          { op: 'MatMul', inputs: ['P', 'V'], outputs: ['Y'] },
        ],
        initializers: [{ name: 'scale', shape: [], data: new Float32Array([1 / Math.sqrt(op.dim)]) }],
      };
      return { graph, feeds: host, toOurs: same };
    }
    case 'conv2d': {
      const [x, w, b] = host as [HostTensor, HostTensor, HostTensor];
      const p = op.padding;
      const graph: OnnxGraph = {
        inputs: [{ name: 'X', shape: x.shape }],
        outputs: [y],
        nodes: [
          {
            op: 'Conv',
            inputs: ['X', 'W', 'B'],
            outputs: ['Y'],
            attributes: { kernel_shape: [op.kernel, op.kernel], pads: [p, p, p, p], strides: [1, 1], group: op.groups ?? 1 },
          },
        ],
        initializers: [init('W', w), init('B', b)],
      };
      return { graph, feeds: [x], toOurs: same };
    }
    case 'layer_norm': {
      const [x, w, b] = host as [HostTensor, HostTensor, HostTensor];
      const graph: OnnxGraph = {
        inputs: [{ name: 'X', shape: x.shape }],
        outputs: [y],
        nodes: [
          {
            op: 'LayerNormalization',
            inputs: ['X', 'W', 'B'],
            outputs: ['Y'],
            attributes: { axis: -1, epsilon: { float: op.eps } },
          },
        ],
        initializers: [init('W', w), init('B', b)],
      };
      return { graph, feeds: [x], toOurs: same };
    }
    case 'softmax': {
      const graph: OnnxGraph = {
        inputs: [{ name: 'X', shape: op.shape }],
        outputs: [y],
        nodes: [{ op: 'Softmax', inputs: ['X'], outputs: ['Y'], attributes: { axis: -1 } }],
      };
      return { graph, feeds: host, toOurs: same };
    }
  }
}

/** com.microsoft MultiHeadAttention: q, k, v [1, L, H*D] (ours [H, L, D] permuted to [L, H, D]). */
function multiHeadAttention(op: Extract<PeerOp, { kind: 'attention' }>, host: HostTensor[]): OrtProgram {
  const { heads, seq, dim } = op;
  const bsd = [1, seq, heads * dim];
  const feeds = host.map((t) => ({ shape: bsd, data: permuteHost(t, [1, 0, 2]).data }));
  const graph: OnnxGraph = {
    inputs: ['Q', 'K', 'V'].map((name) => ({ name, shape: bsd })),
    outputs: [{ name: 'Y', shape: bsd }],
    nodes: [
      {
        op: 'MultiHeadAttention',
        domain: 'com.microsoft',
        inputs: ['Q', 'K', 'V'],
        outputs: ['Y'],
        attributes: { num_heads: heads, scale: { float: 1 / Math.sqrt(dim) } },
      },
    ],
  };
  const toOurs = (d: Float32Array): Float32Array => permuteHost({ shape: [seq, heads, dim], data: d }, [1, 0, 2]).data;
  return { graph, feeds, toOurs };
}

let ortModule: Promise<Ort> | null = null;

export function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

export interface OrtRunnerOptions {
  provider?: OrtProvider;
  attention?: AttentionVariant;
  /** Name in the output; default `ort-<provider>` (plus `:mha` for the fused attention). */
  system?: string;
}

/** A runner for `op` on onnxruntime-node (wall time only). */
export async function ortRunner(op: PeerOp, options: OrtRunnerOptions = {}): Promise<Runner> {
  const ort = await loadOrt();
  const provider = options.provider ?? 'webgpu';
  const variant = options.attention ?? 'graph';
  const prog = ortProgram(op, variant);
  const session = await ort.InferenceSession.create(onnxModel(prog.graph), {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  const feeds: Record<string, import('onnxruntime-node').Tensor> = {};
  prog.graph.inputs.forEach((v, i) => {
    feeds[v.name] = new ort.Tensor('float32', prog.feeds[i]!.data, prog.feeds[i]!.shape);
  });
  const system = options.system ?? `ort-${provider}${op.kind === 'attention' && variant === 'mha' ? ':mha' : ''}`;
  const run = async (): Promise<Float32Array> => {
    const out = await session.run(feeds);
    return out['Y']!.data as Float32Array;
  };
  return {
    system,
    async time() {
      const t0 = performance.now();
      await run();
      return { wallMs: performance.now() - t0 };
    },
    async output() {
      return prog.toOurs(await run());
    },
    async dispose() {
      await session.release();
    },
  };
}
