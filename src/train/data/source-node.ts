/**
 * Node file access for datasets: a folder in MedVLSM's layout as a DatasetSource, and a writer for
 * generated file sets (the synthetic dataset, prompt annotations).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { DatasetSource } from './source.js';

/** A dataset folder (`anns/`, `images/`, `masks/` under `root`). */
export function folderSource(root: string): DatasetSource {
  const base = resolve(root);
  return {
    location: base,
    read: async (path) => {
      try {
        return new Uint8Array(await readFile(join(base, ...path.split('/'))));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return null;
        throw error;
      }
    },
  };
}

/**
 * Writes `files` (paths relative to `root`, '/'-separated) under `root`, creating folders. Each
 * file is written to a temporary name and renamed, so a reader never sees half a file.
 */
export async function writeFiles(root: string, files: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const base = resolve(root);
  const made = new Set<string>();
  for (const [path, bytes] of files) {
    const target = join(base, ...path.split('/'));
    const dir = dirname(target);
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true });
      made.add(dir);
    }
    const tmp = `${target}.tmp-${process.pid}`;
    await writeFile(tmp, bytes);
    await rename(tmp, target);
  }
}
