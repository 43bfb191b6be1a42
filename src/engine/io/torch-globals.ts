/**
 * The whitelist of Python globals a PyTorch checkpoint pickle may use, and what each stands for.
 * Everything here is inert TypeScript; nothing from the file is ever run.
 *
 *   collections.OrderedDict / Counter / defaultdict    -> Map
 *   builtins.set / frozenset                           -> Set;  builtins.bytearray, _codecs.encode -> bytes
 *   torch._utils._rebuild_tensor(_v2)                  -> PickledTensor (a strided view of a storage)
 *   torch._utils._rebuild_parameter(_with_state)       -> its first argument
 *   torch._tensor._rebuild_from_type_v2                -> calls its (whitelisted) function argument
 *   torch.<X>Storage                                   -> StorageType (a dtype marker)
 *   torch.Size / torch.device / torch.<dtype>          -> tuple / 'cuda:0' string / 'torch.float32' string
 *   torch.jit._pickle.build_*list, restore_type_tag    -> their first argument
 *   argparse.Namespace, numpy dtype/ndarray, pathlib paths, torch.Tensor / Parameter (type markers),
 *   builtins.complex, and `__torch__.*` classes in TorchScript archives -> inert PyObject placeholders
 *   numpy.core.multiarray.scalar                       -> number (decoded from its bytes)
 *
 * Anything else is refused (the pickle machine names it), unless the caller opts into
 * `unknownGlobals: 'placeholder'`; globals that can run code when Python unpickles them (os,
 * subprocess, eval, exec, getattr, ...) are refused in every mode.
 */
import { PyCallable, PyObject, describeValue, isTuple } from './pickle.js';
import { DTYPE_ITEMSIZE, type TensorDType } from './tensor-data.js';

/** A `torch.<X>Storage` marker; `dtype` is null for storage types this reader cannot decode. */
export class StorageType {
  constructor(
    readonly qualname: string,
    readonly dtype: TensorDType | null,
  ) {}
}

/** A storage a pickle refers to through a persistent id; its bytes are fetched lazily. */
export interface StorageRef {
  /** Where the bytes live, for messages (e.g. `archive/data/3`). */
  readonly record: string;
  readonly dtype: TensorDType;
  readonly numel: number;
  /** false for big-endian files. */
  readonly littleEndian: boolean;
  /** The raw bytes, numel * itemsize of them, in the file's byte order. */
  bytes(): Uint8Array;
}

export function isStorageRef(value: unknown): value is StorageRef {
  return typeof value === 'object' && value !== null && 'record' in value && 'numel' in value && 'bytes' in value;
}

/** `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a strided view, materialised later. */
export class PickledTensor {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}

  get dtype(): TensorDType {
    return this.storage.dtype;
  }
}

/** Tensors may read past their storage only by repeating elements (stride 0) up to this many. */
export const MAX_EXPANDED_ELEMENTS = 1 << 24;
const MAX_RANK = 64;

const STORAGE_DTYPES: Readonly<Record<string, TensorDType>> = {
  FloatStorage: 'f32',
  DoubleStorage: 'f64',
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  LongStorage: 'i64',
  IntStorage: 'i32',
  ShortStorage: 'i16',
  CharStorage: 'i8',
  ByteStorage: 'u8',
  BoolStorage: 'bool',
};

const TORCH_DTYPE_NAMES = new Set([
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int64', 'long', 'int32', 'int',
  'int16', 'short', 'int8', 'uint8', 'bool', 'complex64', 'complex128', 'cfloat', 'cdouble',
]);

/** Modules whose globals can run code when Python unpickles them: refused in every mode. */
const DENIED_MODULES = [
  'os', 'posix', 'nt', 'subprocess', 'sys', 'shutil', 'socket', 'importlib', 'runpy', 'pickle', '_pickle',
  'marshal', 'ctypes', 'pty', 'commands', 'webbrowser', 'code', 'codeop', 'multiprocessing', 'threading',
  'asyncio', 'io', 'types', 'functools', 'operator', 'inspect', 'pdb', 'timeit', 'signal', 'tempfile',
  'glob', 'platform', 'builtins', '__builtin__', 'torch.serialization', 'torch.hub', 'torch.jit._script',
];

/** builtins that are plain data constructors (everything else in builtins is refused). */
const SAFE_BUILTINS = new Set(['set', 'frozenset', 'bytearray', 'complex']);

function isDenied(module: string, name: string): boolean {
  const builtins = module === 'builtins' || module === '__builtin__';
  if (builtins && SAFE_BUILTINS.has(name)) return false;
  return DENIED_MODULES.some((m) => module === m || module.startsWith(`${m}.`)) || name.includes('__');
}

function int(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what} is ${describeValue(value)}, not a non-negative integer`);
  }
  return value;
}

function intList(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) throw new Error(`${what} is ${describeValue(value)}, not a tuple`);
  if (value.length > MAX_RANK) throw new Error(`${what} has rank ${value.length} (limit ${MAX_RANK})`);
  return value.map((v, i) => int(v, `${what}[${i}]`));
}

/** Validates a strided view against its storage and returns the tensor description. */
export function rebuildTensor(args: readonly unknown[]): PickledTensor {
  const [storage, offsetArg, sizeArg, strideArg] = args;
  if (!isStorageRef(storage)) throw new Error(`storage argument is ${describeValue(storage)}, not a storage`);
  const offset = int(offsetArg, 'storage offset');
  const shape = intList(sizeArg, 'size');
  const stride = intList(strideArg, 'stride');
  if (shape.length !== stride.length) {
    throw new Error(`size [${shape.join(', ')}] and stride [${stride.join(', ')}] differ in rank`);
  }
  let numel = 1;
  let last = offset;
  for (let i = 0; i < shape.length; i++) {
    numel *= shape[i]!;
    if (shape[i]! > 0) last += (shape[i]! - 1) * stride[i]!;
  }
  if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(last)) throw new Error(`size [${shape.join(', ')}] is too large`);
  if (numel > 0 && last >= storage.numel) {
    throw new Error(
      `view (offset ${offset}, size [${shape.join(', ')}], stride [${stride.join(', ')}]) reaches element ${last} ` +
        `of ${storage.record}, which holds ${storage.numel} elements`,
    );
  }
  if (numel > storage.numel && numel > MAX_EXPANDED_ELEMENTS) {
    throw new Error(`size [${shape.join(', ')}] expands ${storage.record} (${storage.numel} elements) beyond ${MAX_EXPANDED_ELEMENTS} elements`);
  }
  return new PickledTensor(storage, offset, shape, stride);
}

function iterableItems(value: unknown, what: string): unknown[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value;
  if (value instanceof Set) return [...value];
  if (value instanceof Map) return [...value.keys()];
  throw new Error(`${what}: cannot iterate ${describeValue(value)}`);
}

function toMap(args: readonly unknown[], what: string): Map<unknown, unknown> {
  const init = args[0];
  if (init === undefined || init === null) return new Map();
  if (init instanceof Map) return new Map(init);
  const map = new Map<unknown, unknown>();
  for (const pair of iterableItems(init, what)) {
    if (!Array.isArray(pair) || pair.length !== 2) throw new Error(`${what}: item ${describeValue(pair)} is not a pair`);
    map.set(pair[0], pair[1]);
  }
  return map;
}

function latin1(text: string, what: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 255) throw new Error(`${what}: character ${c} is not latin-1`);
    out[i] = c;
  }
  return out;
}

function codecsEncode(args: readonly unknown[]): Uint8Array {
  const [text, encoding = 'utf-8'] = args;
  if (typeof text !== 'string' || typeof encoding !== 'string') throw new Error('expects (str, encoding)');
  const enc = encoding.toLowerCase().replace('_', '-');
  if (enc === 'latin1' || enc === 'latin-1' || enc === 'iso-8859-1') return latin1(text, '_codecs.encode');
  if (enc === 'utf-8' || enc === 'utf8') return new TextEncoder().encode(text);
  throw new Error(`unsupported encoding '${encoding}'`);
}

function bytearray(args: readonly unknown[]): Uint8Array {
  const [init, encoding] = args;
  if (init === undefined) return new Uint8Array(0);
  if (init instanceof Uint8Array) return init.slice();
  if (typeof init === 'string') return codecsEncode([init, encoding ?? 'utf-8']);
  return Uint8Array.from(iterableItems(init, 'bytearray'), (v) => int(v, 'bytearray item') & 0xff);
}

const NUMPY_SCALAR_KINDS: Readonly<Record<string, [TensorDType, boolean]>> = {
  f8: ['f64', true], f4: ['f32', true], i8: ['i64', false], i4: ['i32', false], i2: ['i16', false],
  i1: ['i8', false], u1: ['u8', false], b1: ['bool', false],
};

/** numpy.core.multiarray.scalar(dtype, bytes): decodes common numeric scalars, else a placeholder. */
function numpyScalar(qualname: string, args: readonly unknown[]): unknown {
  const [dtype, raw] = args;
  if (dtype instanceof PyObject && raw instanceof Uint8Array && typeof dtype.args[0] === 'string') {
    const kind = NUMPY_SCALAR_KINDS[dtype.args[0]];
    const state = dtype.state;
    const little = !(Array.isArray(state) && state[1] === '>');
    if (kind && raw.length === DTYPE_ITEMSIZE[kind[0]]) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.length);
      switch (kind[0]) {
        case 'f64': return view.getFloat64(0, little);
        case 'f32': return view.getFloat32(0, little);
        case 'i64': {
          const v = view.getBigInt64(0, little);
          return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
        }
        case 'i32': return view.getInt32(0, little);
        case 'i16': return view.getInt16(0, little);
        case 'i8': return view.getInt8(0);
        case 'u8': return view.getUint8(0);
        case 'bool': return view.getUint8(0) !== 0;
      }
    }
  }
  return new PyObject(qualname, args);
}

function unsupported(kind: string): (args: readonly unknown[]) => never {
  return () => {
    throw new Error(`${kind} are not supported`);
  };
}

function firstArg(args: readonly unknown[]): unknown {
  return args[0] ?? null;
}

const FUNCTIONS: Readonly<Record<string, (args: readonly unknown[]) => unknown>> = {
  'collections.OrderedDict': (args) => toMap(args, 'OrderedDict'),
  'collections.Counter': (args) => toMap(args, 'Counter'),
  'collections.defaultdict': () => new Map(),
  'builtins.set': (args) => new Set(iterableItems(args[0], 'set')),
  'builtins.frozenset': (args) => new Set(iterableItems(args[0], 'frozenset')),
  'builtins.bytearray': bytearray,
  '__builtin__.set': (args) => new Set(iterableItems(args[0], 'set')),
  '_codecs.encode': codecsEncode,
  'torch._utils._rebuild_tensor_v2': rebuildTensor,
  'torch._utils._rebuild_tensor': rebuildTensor,
  'torch._utils._rebuild_parameter': firstArg,
  'torch._utils._rebuild_parameter_with_state': firstArg,
  'torch._utils._rebuild_qtensor': unsupported('quantized tensors'),
  'torch._utils._rebuild_sparse_tensor': unsupported('sparse tensors'),
  'torch._utils._rebuild_sparse_csr_tensor': unsupported('sparse tensors'),
  'torch._utils._rebuild_meta_tensor_no_storage': unsupported('meta tensors (no data)'),
  'torch._utils._rebuild_wrapper_subclass': unsupported('tensor wrapper subclasses'),
  'torch._utils._rebuild_nested_tensor': unsupported('nested tensors'),
  'torch.Size': (args) => Object.freeze(intList(args[0] ?? [], 'torch.Size')),
  'torch.device': (args) => (args[1] === undefined || args[1] === null ? String(args[0]) : `${String(args[0])}:${String(args[1])}`),
  'torch.torch_version.TorchVersion': (args) => String(args[0] ?? ''),
  'torch.jit._pickle.build_intlist': firstArg,
  'torch.jit._pickle.build_tensorlist': firstArg,
  'torch.jit._pickle.build_doublelist': firstArg,
  'torch.jit._pickle.build_boollist': firstArg,
  'torch.jit._pickle.restore_type_tag': firstArg,
  'torch.jit._pickle.build_tensor_from_id': unsupported('tensor-table references (RPC pickles)'),
};

/** Classes whose instances are kept as inert PyObject placeholders. */
const INERT_CLASSES = new Set([
  'argparse.Namespace',
  'builtins.complex',
  'torch.Tensor',
  'torch._tensor.Tensor',
  'torch.nn.parameter.Parameter',
  'numpy.dtype',
  'numpy.ndarray',
  'numpy.core.multiarray._reconstruct',
  'numpy._core.multiarray._reconstruct',
  'pathlib.PosixPath',
  'pathlib.WindowsPath',
  'pathlib.PurePosixPath',
  'pathlib.PureWindowsPath',
]);

export interface TorchGlobalOptions {
  /** TorchScript archive: `__torch__.*` classes become placeholders. */
  torchscript?: boolean;
  /**
   * What to do with a global that is not on the whitelist: 'refuse' (default) throws naming it;
   * 'placeholder' reads it as an inert PyObject (never for os, subprocess, eval, ... which are
   * always refused).
   */
  unknownGlobals?: 'refuse' | 'placeholder';
  /** Extra qualified names (`module.name`) to read as inert placeholders. */
  allowGlobals?: readonly string[];
}

function inert(qualname: string): PyCallable {
  return new PyCallable(qualname, (args) => new PyObject(qualname, args));
}

/** The `resolveGlobal` hook for `unpickle`: returns the stand-in for a global, or undefined. */
export function torchGlobalResolver(options: TorchGlobalOptions = {}): (module: string, name: string) => unknown {
  const extra = new Set(options.allowGlobals ?? []);
  return (module, name) => {
    const qualname = `${module}.${name}`;
    const fn = FUNCTIONS[qualname];
    if (fn) return new PyCallable(qualname, fn);
    if (module === 'torch' && /^[A-Za-z0-9_]+Storage$/.test(name)) {
      return new StorageType(qualname, STORAGE_DTYPES[name] ?? null);
    }
    if (module === 'torch' && TORCH_DTYPE_NAMES.has(name)) return qualname;
    if (qualname === 'numpy.core.multiarray.scalar' || qualname === 'numpy._core.multiarray.scalar') {
      return new PyCallable(qualname, (args) => numpyScalar(qualname, args));
    }
    if (qualname === 'torch._tensor._rebuild_from_type_v2' || qualname === 'torch.tensor._rebuild_from_type_v2') {
      return new PyCallable(qualname, rebuildFromType);
    }
    // TorchScript classes (names may carry `___torch_mangle_N` atoms) are only ever placeholders.
    if (options.torchscript && (module === '__torch__' || module.startsWith('__torch__.'))) return inert(qualname);
    if (isDenied(module, name)) return undefined;
    if (INERT_CLASSES.has(qualname) || extra.has(qualname)) return inert(qualname);
    if (options.unknownGlobals === 'placeholder') return inert(qualname);
    return undefined;
  };
}

/** `_rebuild_from_type_v2(func, type, args, state)`: func(*args); type and state are ignored. */
function rebuildFromType(args: readonly unknown[]): unknown {
  const [func, , fnArgs] = args;
  if (!(func instanceof PyCallable)) throw new Error(`function argument ${describeValue(func)} is not an allowed callable`);
  if (!Array.isArray(fnArgs)) throw new Error(`arguments are ${describeValue(fnArgs)}, not a tuple`);
  return func.invoke(fnArgs);
}

export interface StoragePid {
  type: StorageType;
  dtype: TensorDType;
  key: string;
  numel: number;
  /** Legacy format storage views: (view key, element offset, element count). */
  view: { key: string; offset: number; numel: number } | null;
}

/** Parses a `('storage', torch.XStorage, key, location, numel[, view_metadata])` persistent id. */
export function parseStoragePid(pid: unknown): StoragePid {
  if (!isTuple(pid) || pid.length < 5 || pid[0] !== 'storage') {
    throw new Error(`persistent id ${describeValue(pid)} is not a ('storage', type, key, location, numel) tuple`);
  }
  const [, type, key, , numelArg, viewArg] = pid;
  if (!(type instanceof StorageType)) throw new Error(`storage type ${describeValue(type)} is not a torch storage type`);
  if (type.dtype === null) throw new Error(`storage type ${type.qualname} is not supported`);
  if (typeof key !== 'string') throw new Error(`storage key ${describeValue(key)} is not a string`);
  const numel = int(numelArg, `numel of storage '${key}'`);
  let view: StoragePid['view'] = null;
  if (viewArg !== undefined && viewArg !== null) {
    if (!Array.isArray(viewArg) || viewArg.length !== 3 || typeof viewArg[0] !== 'string') {
      throw new Error(`view metadata of storage '${key}' is ${describeValue(viewArg)}, not (key, offset, size)`);
    }
    view = { key: viewArg[0], offset: int(viewArg[1], 'view offset'), numel: int(viewArg[2], 'view size') };
  }
  return { type, dtype: type.dtype, key, numel, view };
}

/** Bytes a storage of `numel` elements of `dtype` occupies (throws past 2^53). */
export function storageBytes(dtype: TensorDType, numel: number): number {
  const n = numel * DTYPE_ITEMSIZE[dtype];
  if (!Number.isSafeInteger(n)) throw new Error(`storage of ${numel} elements is too large`);
  return n;
}
