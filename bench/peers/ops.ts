/**
 * The operations the peers are measured on, described once so that ours, tfjs and ONNX Runtime run
 * the same math on the same data. Inputs are generated on the host in OUR layouts (row-major,
 * NCHW, [O, I, kH, kW] weights, [H, L, D] heads); each peer permutes them into its own layout and
 * permutes its output back for the cross-check.
 */

export type PeerOp =
  | { kind: 'matmul'; m: number; k: number; n: number }
  /** softmax(q·kᵀ / sqrt(D))·v with q, k, v [heads, seq, dim]. */
  | { kind: 'attention'; heads: number; seq: number; dim: number }
  /** Square input, square kernel, stride 1, output channels with a bias; `groups` (default 1) = cin is depthwise. */
  | { kind: 'conv2d'; cin: number; cout: number; kernel: number; size: number; padding: number; groups?: number }
  | { kind: 'layer_norm'; rows: number; cols: number; eps: number }
  /** Over the last axis. */
  | { kind: 'softmax'; shape: number[] };

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

/** Deterministic values in [-0.5, 0.5]; `seed` separates the inputs of one op. */
export function hostData(shape: number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  const offset = seed * 7919;
  for (let i = 0; i < n; i++) data[i] = Math.sin((i + offset) * 12.9898) * 0.5;
  return { shape, data };
}

/** Input shapes in our layouts. */
export function inputShapes(op: PeerOp): number[][] {
  switch (op.kind) {
    case 'matmul':
      return [[op.m, op.k], [op.k, op.n]];
    case 'attention': {
      const s = [op.heads, op.seq, op.dim];
      return [s, s, s];
    }
    case 'conv2d':
      return [[1, op.cin, op.size, op.size], [op.cout, op.cin / (op.groups ?? 1), op.kernel, op.kernel], [op.cout]];
    case 'layer_norm':
      return [[op.rows, op.cols], [op.cols], [op.cols]];
    case 'softmax':
      return [op.shape];
  }
}

/** The op's inputs, in our layouts. */
export function opInputs(op: PeerOp): HostTensor[] {
  return inputShapes(op).map((s, i) => hostData(s, i + 1));
}

/** Output shape in our layout. */
export function outputShape(op: PeerOp): number[] {
  switch (op.kind) {
    case 'matmul':
      return [op.m, op.n];
    case 'attention':
      return [op.heads, op.seq, op.dim];
    case 'conv2d': {
      const out = op.size + 2 * op.padding - op.kernel + 1;
      return [1, op.cout, out, out];
    }
    case 'layer_norm':
      return [op.rows, op.cols];
    case 'softmax':
      return op.shape;
  }
}

/** Host-side permute of a row-major tensor (like torch.permute followed by contiguous()). */
export function permuteHost(t: HostTensor, perm: number[]): HostTensor {
  const rank = t.shape.length;
  const shape = perm.map((p) => t.shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= t.shape[d]!;
  }
  const strides = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(t.data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let i = 0; i < out.length; i++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d]! * strides[d]!;
    out[i] = t.data[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { shape, data: out };
}

/** max |a - b| / max |b|: the cross-check figure (0 = identical). */
export function relativeError(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return Number.isFinite(diff) ? diff / (scale || 1) : Infinity;
}
