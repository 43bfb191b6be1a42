/**
 * Node-only parts of lazy safetensors I/O (safetensors-lazy.ts stays browser-safe):
 *
 * - `openSafetensorsFile(path)`: reads the header through a file handle; each tensor's bytes are
 *   read with positioned reads when asked, so a 600 MB file is never held in memory as a whole.
 *   Call `close()` when done (the handle stays open until then).
 * - `writeSafetensorsAtomic(path, tensors, metadata)`: writes TensorData bit-exactly (stored dtypes,
 *   raw bytes) straight from the tensors' arrays into a temporary file in the target's folder, then
 *   renames it over the target, so readers never see a half-written file and a failed write leaves
 *   nothing behind.
 *
 * Errors are CheckpointErrors naming the path.
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type ByteSource, type LazySafetensors, encodeSafetensorsHeader, littleEndianBytes, openSafetensorsSource } from './safetensors-lazy.js';
import { CheckpointError, type TensorData } from './tensor-data.js';

/** A ByteSource over an open file handle (positioned reads; `close()` releases the handle). */
export async function fileSource(path: string): Promise<ByteSource> {
  let handle: FileHandle;
  let size: number;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new CheckpointError(`${path}: cannot open the file (${(err as Error).message})`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CheckpointError(`${path}: not a regular file`);
    size = st.size;
  } catch (err) {
    await handle.close();
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${path}: cannot stat the file (${(err as Error).message})`, { cause: err });
  }
  const stats = { reads: 0, bytesRead: 0 };
  let closed = false;
  return {
    name: path,
    size,
    stats,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${path}: read after close()`);
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
        throw new CheckpointError(`${path}: invalid read of ${length} bytes at ${offset}`);
      }
      if (offset + length > size) {
        throw new CheckpointError(`${path}: read of ${length} bytes at ${offset} goes past the end of the ${size}-byte file (truncated?)`);
      }
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new CheckpointError(`${path}: the file ended after ${offset + done} bytes (it shrank while being read?)`);
        done += bytesRead;
      }
      stats.reads++;
      stats.bytesRead += length;
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** Opens a .safetensors file lazily: validates the header now, reads tensors on demand. */
export async function openSafetensorsFile(path: string): Promise<LazySafetensors> {
  const source = await fileSource(path);
  try {
    return await openSafetensorsSource(source);
  } catch (err) {
    await source.close?.();
    throw err;
  }
}

/** A unique temporary path next to `path` (same folder, so rename is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done);
    done += bytesWritten;
  }
}

/**
 * Writes `path` atomically: `fill` writes into a temporary file in the same folder, which is then
 * flushed to disk and renamed over `path`. On any error the temporary file is removed.
 */
export async function writeFileAtomic(path: string, fill: (handle: FileHandle) => Promise<void>): Promise<void> {
  const temp = tempPathFor(path);
  // A holder, so that the catch block sees the handle whatever the try block reached.
  const open_: { handle: FileHandle | null } = { handle: null };
  try {
    try {
      open_.handle = await open(temp, 'wx');
    } catch (err) {
      throw new CheckpointError(`${path}: cannot create a temporary file in its folder (${(err as Error).message})`, { cause: err });
    }
    await fill(open_.handle);
    await open_.handle.sync();
    await open_.handle.close();
    open_.handle = null;
    await rename(temp, path);
  } catch (err) {
    await open_.handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${path}: write failed (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Writes tensors (stored dtypes, raw bytes: bit-exact) to a .safetensors file, atomically. Tensor
 * bytes go straight from each tensor's array to the file (no serialized copy in memory).
 */
export async function writeSafetensorsAtomic(
  path: string,
  tensors: Map<string, TensorData>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { header } = encodeSafetensorsHeader(tensors, metadata);
  await writeFileAtomic(path, async (handle) => {
    await writeAll(handle, header);
    for (const t of tensors.values()) await writeAll(handle, littleEndianBytes(t));
  });
}
