/**
 * Node-only safetensors file access (the engine proper stays browser-safe: safetensors.ts takes
 * bytes). Error messages name the file path.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { type SafetensorsFile, type TensorToWrite, parseSafetensors, serializeSafetensors } from './safetensors.js';

/** Reads and validates a .safetensors file. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new Error(`safetensors ${path}: cannot read the file (${(err as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

/** Writes tensors (and optional string metadata) to a .safetensors file. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFile(path, serializeSafetensors(tensors, metadata));
}
