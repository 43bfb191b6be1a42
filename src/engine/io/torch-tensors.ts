/**
 * From unpickled PyTorch objects to TensorData: materialising strided views of storages, and
 * walking a (possibly nested) object graph to collect tensors under dotted names.
 *
 * Materialising: element (i0, ..., ik) of a view is storage[offset + sum(i_d * stride_d)] (offsets
 * and strides in elements); contiguous views of aligned little-endian storages are returned as
 * typed-array views (no copy); anything else is gathered into a fresh row-major array and
 * byte-swapped when the file is big-endian. Views were bounds-checked when they were unpickled.
 *
 * Browser-safe: no Node imports.
 */
import { PyObject } from './pickle.js';
import { PickledTensor } from './torch-globals.js';
import {
  CheckpointError,
  DTYPE_ITEMSIZE,
  HOST_LITTLE_ENDIAN,
  type TensorData,
  arrayFromBytes,
  numelOf,
  swapBytes,
  typedView,
} from './tensor-data.js';

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/** Copies the strided view into a fresh row-major buffer (items moved as 1/2/4-byte words). */
function gather(t: PickledTensor, raw: Uint8Array, itemsize: number, numel: number): Uint8Array {
  const word = Math.min(itemsize, 4);
  const perItem = itemsize / word;
  let src = raw;
  if (src.byteOffset % word !== 0) src = raw.slice();
  const out = new Uint8Array(numel * itemsize);
  const wordArray = (bytes: Uint8Array): Uint8Array | Uint16Array | Uint32Array =>
    word === 4
      ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      : word === 2
        ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)
        : bytes;
  const from = wordArray(src.subarray(0, src.byteLength - (src.byteLength % word)));
  const to = wordArray(out);
  const rank = t.shape.length;
  const index = new Array<number>(rank).fill(0);
  let at = t.offset;
  for (let i = 0; i < numel; i++) {
    const s = at * perItem;
    const o = i * perItem;
    for (let w = 0; w < perItem; w++) to[o + w] = from[s + w]!;
    for (let d = rank - 1; d >= 0; d--) {
      index[d]!++;
      at += t.stride[d]!;
      if (index[d]! < t.shape[d]!) break;
      at -= t.stride[d]! * t.shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}

/** The tensor's elements, row-major, in its stored dtype. `name` is used in error messages. */
export function materializeTensor(t: PickledTensor, name: string): TensorData {
  const dtype = t.dtype;
  const itemsize = DTYPE_ITEMSIZE[dtype];
  const numel = numelOf(t.shape);
  const shape = [...t.shape];
  if (numel === 0) return { dtype, shape, data: typedView(dtype, new ArrayBuffer(0), 0, 0) };
  const raw = t.storage.bytes();
  if (raw.byteLength < t.storage.numel * itemsize) {
    throw new CheckpointError(`${t.storage.record} holds ${raw.byteLength} bytes, fewer than its ${t.storage.numel} elements need (tensor '${name}')`);
  }
  if (isContiguous(t.shape, t.stride)) {
    const bytes = raw.subarray(t.offset * itemsize, (t.offset + numel) * itemsize);
    return { dtype, shape, data: arrayFromBytes(dtype, bytes, t.storage.littleEndian) };
  }
  const out = gather(t, raw, itemsize, numel);
  if (t.storage.littleEndian !== HOST_LITTLE_ENDIAN) swapBytes(out, itemsize);
  return { dtype, shape, data: typedView(dtype, out.buffer, 0, numel) };
}

export interface CollectLimits {
  /** Deepest nesting walked. */
  maxDepth: number;
  /** Most containers visited (bounds shared sub-graphs reached along many paths). */
  maxNodes: number;
}

const DEFAULT_COLLECT_LIMITS: CollectLimits = { maxDepth: 64, maxNodes: 1_000_000 };

export interface CollectedTensors {
  tensors: Map<string, PickledTensor>;
  /** Names seen twice (the first one is kept). */
  duplicates: string[];
}

interface Frame {
  entries: [string, unknown][];
  next: number;
  prefix: string;
  node: object;
}

function pushEntries(entries: [string, unknown][], map: Map<unknown, unknown>): void {
  for (const [k, v] of map) {
    if (typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint') entries.push([String(k), v]);
  }
}

/**
 * The named children of a dict or object. A pickled torch.nn.Module (read with
 * `unknownGlobals: 'placeholder'`) contributes its `_parameters`, `_buffers` and `_modules` the way
 * `state_dict()` names them; other objects contribute their attribute dict (TorchScript modules).
 */
function childEntries(node: unknown): [string, unknown][] | null {
  let map: unknown = node;
  if (node instanceof PyObject) map = node.state;
  if (!(map instanceof Map)) return null;
  const entries: [string, unknown][] = [];
  const params = map.get('_parameters');
  const modules = map.get('_modules');
  if (node instanceof PyObject && params instanceof Map && modules instanceof Map) {
    pushEntries(entries, params);
    const buffers = map.get('_buffers');
    if (buffers instanceof Map) pushEntries(entries, buffers);
    pushEntries(entries, modules);
    return entries;
  }
  pushEntries(entries, map);
  return entries;
}

/**
 * Every tensor reachable from `root` through dicts and object attributes (the BUILD state of
 * PyObjects), named by the dotted path of keys, in insertion order (what `state_dict()` reports
 * for a module graph). Lists, tuples and other values are not entered.
 */
export function collectTensors(root: unknown, source: string, limits: Partial<CollectLimits> = {}): CollectedTensors {
  const { maxDepth, maxNodes } = { ...DEFAULT_COLLECT_LIMITS, ...limits };
  const tensors = new Map<string, PickledTensor>();
  const duplicates: string[] = [];
  if (root instanceof PickledTensor) {
    tensors.set('', root);
    return { tensors, duplicates };
  }
  const rootEntries = childEntries(root);
  if (!rootEntries) return { tensors, duplicates };
  const stack: Frame[] = [{ entries: rootEntries, next: 0, prefix: '', node: root as object }];
  const onPath = new Set<object>([root as object]);
  let visited = 1;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next >= frame.entries.length) {
      onPath.delete(frame.node);
      stack.pop();
      continue;
    }
    const [key, value] = frame.entries[frame.next++]!;
    const name = frame.prefix + key;
    if (value instanceof PickledTensor) {
      if (tensors.has(name)) duplicates.push(name);
      else tensors.set(name, value);
      continue;
    }
    if (typeof value !== 'object' || value === null || onPath.has(value)) continue;
    const entries = childEntries(value);
    if (!entries) continue;
    if (stack.length >= maxDepth) throw new CheckpointError(`${source}: objects nested deeper than ${maxDepth} levels at '${name}'`);
    if (++visited > maxNodes) throw new CheckpointError(`${source}: more than ${maxNodes} nested objects`);
    onPath.add(value);
    stack.push({ entries, next: 0, prefix: `${name}.`, node: value });
  }
  return { tensors, duplicates };
}
