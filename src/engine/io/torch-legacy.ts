/**
 * The legacy (non-zip) PyTorch format: `torch.save` before 1.6 or with
 * `_use_new_zipfile_serialization=False`. The file is a sequence of pickles and then raw data:
 *
 *   1. the magic number 0x1950a86a20f9469cfc6c (protocol 2: bytes 80 02 8A 0A 6C FC 9C 46 F9 20 6A A8 50 19 2E)
 *   2. the protocol version 1001
 *   3. sys_info {protocol_version, little_endian, type_sizes}
 *   4. the object; persistent ids ('storage', torch.XStorage, root_key, location, numel, view_metadata)
 *      where view_metadata is None or (view_key, offset, size) for storage views
 *   5. the list of storage keys, in the order the storages follow
 *   6. per key: an int64 element count (in the writer's byte order), then count * itemsize bytes
 *
 * Browser-safe: no Node imports.
 */
import { PyObject, type PickleLimits, isTuple, unpickle } from './pickle.js';
import { type StorageRef, type TorchGlobalOptions, parseStoragePid, storageBytes, torchGlobalResolver } from './torch-globals.js';
import { CheckpointError, DTYPE_ITEMSIZE, type TensorDType } from './tensor-data.js';

export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
export const LEGACY_PROTOCOL_VERSION = 1001;
/** The first bytes of every legacy file (PROTO 2, LONG1 of the magic number). */
export const LEGACY_PREFIX = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

/**
 * Whether `bytes` start like a legacy file: the protocol-2 magic prefix, or (files saved with a
 * higher `pickle_protocol`) a first pickle whose value is the magic number.
 */
export function isTorchLegacy(bytes: Uint8Array): boolean {
  if (bytes.length >= 7 && LEGACY_PREFIX.slice(0, 7).every((b, i) => bytes[i] === b)) return true;
  if (bytes[0] !== 0x80 || bytes.length < 4) return false;
  try {
    const first = unpickle(bytes.subarray(0, 64), { source: 'magic', resolveGlobal: () => undefined });
    return first.value === LEGACY_MAGIC;
  } catch {
    return false;
  }
}

export interface TorchLegacyOptions extends TorchGlobalOptions {
  pickleLimits?: Partial<PickleLimits>;
}

export interface TorchLegacyPickle {
  root: unknown;
  littleEndian: boolean;
  /** Offset just past the last storage (trailing bytes are ignored, as torch does). */
  end: number;
}

interface LegacyStorage extends StorageRef {
  data: Uint8Array | null;
}

/** Reads a legacy-format checkpoint's object graph (tensors stay lazy until materialised). */
export function readTorchLegacy(bytes: Uint8Array, source: string, options: TorchLegacyOptions = {}): TorchLegacyPickle {
  const fail = (message: string): never => {
    throw new CheckpointError(`${source}: ${message}`);
  };
  const resolveGlobal = torchGlobalResolver(options);
  let pos = 0;
  const next = (what: string, persistentLoad?: (pid: unknown) => unknown): unknown => {
    const r = unpickle(bytes, { source: `${source} (${what})`, resolveGlobal, persistentLoad, start: pos, limits: options.pickleLimits });
    pos = r.end;
    return r.value;
  };

  if (next('magic number') !== LEGACY_MAGIC) fail('bad magic number: not a legacy PyTorch file');
  const version = next('protocol version');
  if (version !== LEGACY_PROTOCOL_VERSION) fail(`unsupported legacy protocol version ${String(version)} (expected 1001)`);
  const sysInfo = next('sys_info');
  let littleEndian = true;
  if (sysInfo instanceof Map && typeof sysInfo.get('little_endian') === 'boolean') littleEndian = sysInfo.get('little_endian') as boolean;

  const roots = new Map<string, LegacyStorage>();
  const views = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown): unknown => {
    if (isTuple(pid) && pid[0] === 'module') return new PyObject('legacy module', pid.slice(1));
    const p = parseStoragePid(pid);
    let root = roots.get(p.key);
    if (root) {
      if (root.dtype !== p.dtype || root.numel !== p.numel) {
        throw new Error(`storage '${p.key}' is used as ${root.numel} ${root.dtype} and as ${p.numel} ${p.dtype}`);
      }
    } else {
      const storage: LegacyStorage = {
        record: `${source} storage '${p.key}'`,
        dtype: p.dtype as TensorDType,
        numel: p.numel,
        littleEndian,
        data: null,
        bytes: () => storage.data ?? fail(`storage '${p.key}' has no data`),
      };
      root = storage;
      roots.set(p.key, root);
    }
    if (!p.view) return root;
    const { key, offset, numel } = p.view;
    if (offset + numel > root.numel) throw new Error(`storage view '${key}' (${offset}+${numel}) exceeds storage '${p.key}' (${root.numel})`);
    const known = views.get(key);
    if (known) return known;
    const base = root;
    const itemsize = DTYPE_ITEMSIZE[base.dtype];
    const view: StorageRef = {
      record: `${source} storage view '${key}'`,
      dtype: base.dtype,
      numel,
      littleEndian,
      bytes: () => base.bytes().subarray(offset * itemsize, (offset + numel) * itemsize),
    };
    views.set(key, view);
    return view;
  };
  const root = next('object', persistentLoad);
  const keys = next('storage keys');
  if (!Array.isArray(keys)) fail(`storage key list is ${typeof keys}, not a list`);

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const key of keys as unknown[]) {
    const storage = typeof key === 'string' ? roots.get(key) : undefined;
    if (!storage) fail(`storage key ${JSON.stringify(key)} is listed but no tensor uses it`);
    if (storage!.data) fail(`storage key '${String(key)}' is listed twice`);
    if (pos + 8 > bytes.length) fail(`truncated file: storage '${String(key)}' element count missing at byte ${pos}`);
    const count = Number(view.getBigInt64(pos, littleEndian));
    if (count !== storage!.numel) fail(`storage '${String(key)}' holds ${count} elements, but the pickle says ${storage!.numel}`);
    const nbytes = storageBytes(storage!.dtype, count);
    pos += 8;
    if (pos + nbytes > bytes.length) fail(`truncated file: storage '${String(key)}' needs ${nbytes} bytes at byte ${pos}, ${bytes.length - pos} left`);
    storage!.data = bytes.subarray(pos, pos + nbytes);
    pos += nbytes;
  }
  for (const [key, storage] of roots) {
    if (!storage.data) fail(`storage '${key}' is used by a tensor but missing from the storage key list`);
  }
  return { root, littleEndian, end: pos };
}
