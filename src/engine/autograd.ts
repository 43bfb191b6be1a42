/**
 * The tape: each recorded op output points to a Node holding its parents, the tensors its backward
 * needs (retained views, so scopes may dispose the originals) and the backward function.
 *
 * - Nodes are refcounted by the tensors that point to them and by child nodes; when the last
 *   reference goes, the node frees its saved tensors, so a forward pass that is never
 *   differentiated leaks nothing.
 * - `backward()` walks the graph in iterative topological order (no recursion depth limit),
 *   accumulates gradients of shared inputs, adds into leaf `.grad`, and frees the tape afterwards.
 * - Backward runs with recording off (no higher-order gradients).
 */
import { keep, scope } from './scope.js';
import { Tensor, type GraphNode } from './tensor.js';
import { formatShape, sameShape } from './shape.js';

/**
 * Gradients of the op's inputs given the gradient of its output. Returns one entry per input;
 * null where `needsGrad[i]` is false (backward functions skip that work).
 */
export type BackwardFn = (dOut: Tensor, saved: Tensor[], needsGrad: boolean[]) => (Tensor | null)[];

type Parent = { node: Node } | { leaf: Tensor } | null;

let recording = true;

export function isRecording(): boolean {
  return recording;
}

/** Runs fn without recording any op on the tape (inference, optimizer steps, metrics). */
export function noGrad<T>(fn: () => T): T {
  const prev = recording;
  recording = false;
  try {
    return fn();
  } finally {
    recording = prev;
  }
}

export class Node implements GraphNode {
  private refs = 0;
  private freed = false;

  constructor(
    readonly op: string,
    private parents: Parent[],
    private readonly inputShapes: (readonly number[])[],
    private saved: Tensor[],
    private backwardFn: BackwardFn | null,
  ) {}

  incRef(): void {
    this.refs++;
  }

  decRef(): void {
    if (--this.refs === 0) this.free();
  }

  get parentNodes(): Node[] {
    const out: Node[] = [];
    for (const p of this.parents) if (p !== null && 'node' in p) out.push(p.node);
    return out;
  }

  /** Frees saved tensors and drops parent references, iteratively (graphs can be deep). */
  free(): void {
    const work: Node[] = [this];
    while (work.length > 0) {
      const node = work.pop()!;
      if (node.freed) continue;
      node.freed = true;
      for (const t of node.saved) t.dispose();
      node.saved = [];
      node.backwardFn = null;
      for (const p of node.parents) {
        if (p !== null && 'node' in p && --p.node.refs === 0) work.push(p.node);
      }
      node.parents = [];
    }
  }

  /** Runs this node's backward and hands each input gradient to `deliver`. */
  propagate(dOut: Tensor, deliver: (parent: Parent, grad: Tensor) => void): void {
    if (this.freed || !this.backwardFn) {
      throw new Error(`backward through '${this.op}' whose graph was already freed (by an earlier backward or dispose)`);
    }
    const needs = this.parents.map((p) => p !== null);
    const fn = this.backwardFn;
    // Temporaries of the backward die with this scope; the returned gradients survive it.
    const grads = scope(() => fn(dOut, this.saved, needs));
    // Check every shape before delivering anything, so that a faulty backward leaks nothing.
    grads.forEach((g, i) => {
      const want = this.inputShapes[i]!;
      if (g && this.parents[i] && !sameShape(g.shape, want)) {
        for (const t of grads) if (t && t !== dOut && !this.saved.includes(t)) t.dispose();
        throw new Error(`${this.op} backward: gradient ${formatShape(g.shape)} for input ${i} of shape ${formatShape(want)}`);
      }
    });
    const delivered = new Set<Tensor>();
    grads.forEach((returned, i) => {
      if (!returned) return;
      // A backward may pass dOut or a saved tensor straight through, or return one tensor for two
      // inputs: each delivered gradient gets its own view, since accumulation disposes it.
      const shared = returned === dOut || this.saved.includes(returned) || delivered.has(returned);
      const g = shared ? returned.detach() : returned;
      delivered.add(returned);
      const parent = this.parents[i] ?? null;
      if (parent === null) g.dispose();
      else deliver(parent, g);
    });
  }
}

/**
 * Records `out = op(inputs)` on the tape when recording is on and some input needs a gradient.
 * `save` lists the tensors backward needs; they are retained, so the caller may dispose them.
 * Returns `out`.
 */
export function record(op: string, out: Tensor, inputs: Tensor[], save: Tensor[], backward: BackwardFn): Tensor {
  if (!recording || !inputs.some((t) => t.requiresGrad)) return out;
  const half = inputs.find((t) => t.requiresGrad && t.dtype === 'f16');
  if (half) {
    throw new Error(`${op}: input ${half} is f16 and requires a gradient; f16 tensors are inference-only (keep the model at f32 precision to train it)`);
  }
  const parents: Parent[] = inputs.map((t) => {
    if (!t.requiresGrad) return null;
    if (t.node instanceof Node) {
      t.node.incRef();
      return { node: t.node };
    }
    return { leaf: t };
  });
  const saved = save.map((t) => keep(t.detach()));
  const node = new Node(op, parents, inputs.map((t) => t.shape), saved, backward);
  node.incRef();
  out.node = node;
  out.requiresGrad = true;
  return out;
}

/** Gradient accumulation helper, injected by ops/index.ts to avoid an import cycle with ops. */
let addTensors: ((a: Tensor, b: Tensor) => Tensor) | null = null;

export function setGradientAdder(add: (a: Tensor, b: Tensor) => Tensor): void {
  addTensors = add;
}

function accumulate(existing: Tensor | null, g: Tensor): Tensor {
  if (!existing) return g;
  if (!addTensors) throw new Error('autograd: no gradient adder registered (import the engine index)');
  const sum = keep(addTensors(existing, g));
  existing.dispose();
  g.dispose();
  return sum;
}

/**
 * Backpropagates from `root`. `dOut` defaults to ones (a scalar loss gives 1). Leaf tensors with
 * requiresGrad get their gradient added into `.grad`. The tape below `root` is freed afterwards.
 */
export function backward(root: Tensor, dOut?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward: ${root} does not require a gradient`);
  if (dOut && !sameShape(dOut.shape, root.shape)) {
    throw new Error(`backward: gradient ${formatShape(dOut.shape)} does not match output ${formatShape(root.shape)}`);
  }
  noGrad(() => {
    const seed = keep(dOut ? dOut.detach() : Tensor.ones(root.shape, { device: root.device }));
    const rootNode = root.node;
    if (!(rootNode instanceof Node)) {
      root.grad = accumulate(root.grad, seed);
      return;
    }
    const order = topologicalOrder(rootNode);
    const grads = new Map<Node, Tensor>([[rootNode, seed]]);
    try {
      for (const node of order) {
        const g = grads.get(node);
        if (!g) continue;
        grads.delete(node);
        try {
          node.propagate(g, (parent, grad) => {
            keep(grad);
            if (parent === null) return;
            if ('node' in parent) grads.set(parent.node, accumulate(grads.get(parent.node) ?? null, grad));
            else if (parent.leaf.disposed) grad.dispose();
            else parent.leaf.grad = accumulate(parent.leaf.grad, grad);
          });
        } finally {
          g.dispose();
        }
      }
    } finally {
      // Gradients still pending (all of them when a backward threw) are dropped, and so is the
      // tape: every node below root frees its saved tensors now.
      for (const g of grads.values()) g.dispose();
      for (const node of order) node.free();
    }
  });
}

/** Nodes reachable from root, each after all nodes that consume it (reverse post-order, iterative). */
function topologicalOrder(root: Node): Node[] {
  const post: Node[] = [];
  const visited = new Set<Node>([root]);
  const stack: { node: Node; next: number; parents: Node[] }[] = [{ node: root, next: 0, parents: root.parentNodes }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.parents.length) {
      const p = top.parents[top.next++]!;
      if (!visited.has(p)) {
        visited.add(p);
        stack.push({ node: p, next: 0, parents: p.parentNodes });
      }
    } else {
      post.push(top.node);
      stack.pop();
    }
  }
  return post.reverse();
}
