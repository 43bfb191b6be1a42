/**
 * PyTorch zip checkpoints (`torch.save`, PyTorch >= 1.6; HF `pytorch_model.bin`):
 *
 *   <prefix>/data.pkl     pickle of the saved object (protocol 2 by default, up to 5)
 *   <prefix>/data/<key>   raw bytes of each storage, numel * itemsize, named by its persistent-id key
 *   <prefix>/byteorder    'little' | 'big' (absent: little)
 *   <prefix>/version, .data/...   ignored
 *
 * `<prefix>` is whatever directory holds data.pkl (the saved file's base name, or `archive`).
 * Storages shared by several tensors are read once; views (offsets, strides) are materialised by
 * torch-tensors.ts. TorchScript archives use the same layout plus constants.pkl (torchscript.ts).
 *
 * Browser-safe: no Node imports.
 */
import { type PickleLimits, unpickle } from './pickle.js';
import { type StorageRef, type TorchGlobalOptions, parseStoragePid, storageBytes, torchGlobalResolver } from './torch-globals.js';
import { CheckpointError, type TensorDType } from './tensor-data.js';
import { ZipArchive, type ZipLimits } from './zip.js';

export interface TorchZipOptions extends TorchGlobalOptions {
  pickleLimits?: Partial<PickleLimits>;
  zipLimits?: Partial<ZipLimits>;
}

export interface TorchArchivePickle {
  /** The unpickled object (tensors are PickledTensor views, not yet materialised). */
  root: unknown;
  /** The directory holding data.pkl, with a trailing slash ('' for none). */
  prefix: string;
  littleEndian: boolean;
  protocol: number;
}

/** The directory that holds `data.pkl` (with a trailing slash), or null if there is none. */
export function findArchivePrefix(zip: ZipArchive): string | null {
  let best: string | null = null;
  for (const name of zip.entries.keys()) {
    if (name !== 'data.pkl' && !name.endsWith('/data.pkl')) continue;
    const prefix = name.slice(0, name.length - 'data.pkl'.length);
    if (best === null || prefix.split('/').length < best.split('/').length) best = prefix;
  }
  return best;
}

/** The archive prefix, or an error listing a few entries when the zip is not a PyTorch archive. */
export function requireArchivePrefix(zip: ZipArchive): string {
  const prefix = findArchivePrefix(zip);
  if (prefix === null) {
    const shown = [...zip.entries.keys()].slice(0, 5).join(', ');
    throw new CheckpointError(`${zip.source}: zip has no <prefix>/data.pkl, so it is not a PyTorch checkpoint (entries: ${shown || 'none'})`);
  }
  return prefix;
}

function readByteorder(zip: ZipArchive, prefix: string): boolean {
  const name = `${prefix}byteorder`;
  if (!zip.has(name)) return true;
  const text = new TextDecoder().decode(zip.read(name)).trim();
  if (text === 'little') return true;
  if (text === 'big') return false;
  throw new CheckpointError(`${zip.source}: ${name} says '${text.slice(0, 20)}', expected 'little' or 'big'`);
}

/**
 * A persistent-id loader for storages kept as zip records `<prefix><dir><key>`; storages with
 * the same key are the same object (shared storages are read once).
 */
export function zipStorageLoader(zip: ZipArchive, prefix: string, dir: string, littleEndian: boolean): (pid: unknown) => StorageRef {
  const storages = new Map<string, StorageRef>();
  return (pid) => {
    const { key, dtype, numel } = parseStoragePid(pid);
    const known = storages.get(key);
    if (known) {
      if (known.dtype !== dtype || known.numel !== numel) {
        throw new Error(`storage '${key}' is used as ${known.numel} ${known.dtype} and as ${numel} ${dtype}`);
      }
      return known;
    }
    const name = `${prefix}${dir}${key}`;
    if (!zip.has(name)) throw new Error(`missing record '${name}' (storage '${key}' of a tensor)`);
    const expected = storageBytes(dtype, numel);
    const size = zip.entry(name).size;
    if (size !== expected) {
      throw new Error(`record '${name}' holds ${size} bytes, but storage '${key}' of ${numel} ${dtype} elements needs ${expected}`);
    }
    let bytes: Uint8Array | null = null;
    const ref: StorageRef = {
      record: `${zip.source}/${name}`,
      dtype: dtype as TensorDType,
      numel,
      littleEndian,
      bytes: () => (bytes ??= zip.read(name)),
    };
    storages.set(key, ref);
    return ref;
  };
}

/** Unpickles `<prefix><pickleName>` with storages from `<prefix><tensorDir><key>`. */
export function unpickleArchiveRecord(
  zip: ZipArchive,
  prefix: string,
  pickleName: string,
  tensorDir: string,
  littleEndian: boolean,
  options: TorchZipOptions,
): { value: unknown; protocol: number } {
  const name = `${prefix}${pickleName}`;
  const pickle = zip.read(name);
  const result = unpickle(pickle, {
    source: `${zip.source}/${name}`,
    resolveGlobal: torchGlobalResolver(options),
    persistentLoad: zipStorageLoader(zip, prefix, tensorDir, littleEndian),
    limits: options.pickleLimits,
  });
  return { value: result.value, protocol: result.protocol };
}

/** Reads a PyTorch zip checkpoint's object graph (tensors stay lazy until materialised). */
export function readTorchZip(input: Uint8Array | ZipArchive, source: string, options: TorchZipOptions = {}): TorchArchivePickle {
  const zip = input instanceof ZipArchive ? input : new ZipArchive(input, source, options.zipLimits);
  const prefix = requireArchivePrefix(zip);
  const littleEndian = readByteorder(zip, prefix);
  const { value, protocol } = unpickleArchiveRecord(zip, prefix, 'data.pkl', 'data/', littleEndian, options);
  return { root: value, prefix, littleEndian, protocol };
}
