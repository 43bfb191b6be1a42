/**
 * Node-only helper: reads a checkpoint file from disk (the readers themselves take bytes and stay
 * browser-safe). Error messages name the path.
 */
import { readFile } from 'node:fs/promises';
import { type Checkpoint, type ReadCheckpointOptions, readCheckpoint } from './checkpoint.js';
import { CheckpointError } from './tensor-data.js';

/** Reads and parses any supported checkpoint file (safetensors, torch zip / legacy, TorchScript). */
export async function readCheckpointFile(path: string, options: ReadCheckpointOptions = {}): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new CheckpointError(`${path}: cannot read the file (${(err as Error).message})`, { cause: err });
  }
  return readCheckpoint(bytes, path, options);
}
