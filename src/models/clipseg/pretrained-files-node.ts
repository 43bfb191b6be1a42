/**
 * Node only: a model folder on disk as ModelFiles (pretrained-files.ts imports this module lazily,
 * only when `fromPretrained` is given a path, so browser bundles never load it). Weights are read
 * with positioned reads through a file handle: a 600 MB safetensors file is streamed tensor by
 * tensor, never held whole. Links (the Hugging Face cache's blobs) are followed.
 */
import { type FileHandle, open, readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ByteSource, CheckpointError } from '../../engine/index.js';
import { type ModelFiles, MAX_TEXT_BYTES, SHIPPED_VOCAB_FILE, decodeUtf8 } from './pretrained-files.js';

function why(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a folder';
  return (err as Error).message;
}

async function fileSource(path: string): Promise<ByteSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new CheckpointError(`${path}: cannot open the file (${why(err)})`, { cause: err });
  }
  let size: number;
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CheckpointError(`${path}: not a regular file`);
    size = st.size;
  } catch (err) {
    await handle.close();
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${path}: cannot read the file (${why(err)})`, { cause: err });
  }
  let closed = false;
  return {
    name: path,
    size,
    async read(offset, length) {
      if (closed) throw new CheckpointError(`${path}: read after close()`);
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new CheckpointError(`${path}: read of ${length} bytes at ${offset} goes past the end of the ${size}-byte file (truncated?)`);
      }
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new CheckpointError(`${path}: the file ended after ${offset + done} bytes (it shrank while being read?)`);
        done += bytesRead;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

/** The folder's entries as ModelFiles; throws a CheckpointError when it cannot be listed. */
export async function folderFiles(dir: string): Promise<ModelFiles> {
  const abs = resolve(dir);
  let names: string[];
  try {
    const st = await stat(abs);
    if (!st.isDirectory()) throw new CheckpointError(`${abs}: not a folder (expected a Hugging Face model folder with config.json and the weights)`);
    names = (await readdir(abs)).sort();
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    throw new CheckpointError(`${abs}: cannot read the model folder (${why(err)})`, { cause: err });
  }
  const present = new Set(names);
  const pathOf = (name: string) => join(abs, name);
  const bytes = async (name: string): Promise<Uint8Array> => {
    const path = pathOf(name);
    try {
      const st = await stat(path);
      if (st.isDirectory()) throw new CheckpointError(`${path}: is a folder, not a file`);
      if (name.endsWith('.json') || name.endsWith('.txt')) {
        if (st.size > MAX_TEXT_BYTES) throw new CheckpointError(`${path}: ${st.size} bytes is too large for a text file`);
      }
      return new Uint8Array(await readFile(path));
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      throw new CheckpointError(`${path}: cannot read the file (${why(err)})`, { cause: err });
    }
  };
  return {
    label: abs,
    names: () => [...names],
    has: (name) => present.has(name),
    pathOf,
    bytes,
    text: async (name) => decodeUtf8(await bytes(name), pathOf(name)),
    byteSource: (name) => fileSource(pathOf(name)),
  };
}

/** Reads the shipped merges file (a file: URL next to the sources). */
export async function readShippedVocabulary(url: URL): Promise<Uint8Array> {
  const path = fileURLToPath(url);
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new CheckpointError(`${path}: cannot read the shipped CLIP vocabulary ${SHIPPED_VOCAB_FILE} (${why(err)})`, { cause: err });
  }
}
