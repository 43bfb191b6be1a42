/**
 * Opening what a user names on the command line: a checkpoint file (any supported format) or a
 * Hugging Face model folder. Shared by `inspect` and `convert` (and later `segment`).
 *
 * - describeInput: names, dtypes and shapes only. A safetensors file is read lazily (header only),
 *   so inspecting a 600 MB file is instant; pickle formats are parsed whole.
 * - readInput: every tensor's data (for conversion or loading).
 */
import { stat } from 'node:fs/promises';
import { detectFormat, type Checkpoint, type CheckpointFormat, type ReadCheckpointOptions } from '../../engine/io/checkpoint.js';
import { readCheckpointFile } from '../../engine/io/checkpoint-node.js';
import { type HfFolder, readHfFolder, readHfWeights } from '../../engine/io/hf-folder-node.js';
import { SAFETENSORS_TO_TENSOR_DTYPE } from '../../engine/io/safetensors-lazy.js';
import { fileSource, openSafetensorsFile } from '../../engine/io/safetensors-lazy-node.js';
import { CheckpointError, type TensorDType } from '../../engine/io/tensor-data.js';

export interface TensorInfo {
  name: string;
  dtype: TensorDType;
  shape: readonly number[];
}

export interface DescribedInput {
  path: string;
  kind: 'file' | 'folder';
  format: CheckpointFormat;
  /** Size of the file, or of all weight files of a folder. */
  bytes: number;
  tensors: TensorInfo[];
  /** What was done to reach the state dict (unwrapping, prefix stripping, shard merging). */
  report: string[];
  metadata: Record<string, string | number | boolean>;
  folder?: HfFolder;
}

/** stat() with an error that names the path and says plainly what is wrong. */
export async function statInput(path: string): Promise<{ isDirectory: boolean; size: number }> {
  try {
    const st = await stat(path);
    return { isDirectory: st.isDirectory(), size: st.size };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file or folder' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new CheckpointError(`${path}: ${why}`, { cause: err });
  }
}

async function sniff(path: string): Promise<CheckpointFormat | null> {
  const source = await fileSource(path);
  try {
    const head = await source.read(0, Math.min(source.size ?? 0, 64));
    return detectFormat(head);
  } finally {
    await source.close?.();
  }
}

function infosOf(tensors: Checkpoint['tensors']): TensorInfo[] {
  return [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
}

async function describeSafetensors(path: string): Promise<{ tensors: TensorInfo[]; metadata: Record<string, string> }> {
  const st = await openSafetensorsFile(path);
  try {
    const tensors = st.keys().map((name) => {
      const info = st.info(name);
      return { name, dtype: SAFETENSORS_TO_TENSOR_DTYPE[info.dtype], shape: info.shape };
    });
    return { tensors, metadata: { ...st.metadata } };
  } finally {
    await st.close();
  }
}

async function sizeOf(files: string[]): Promise<number> {
  let total = 0;
  for (const f of files) total += (await stat(f)).size;
  return total;
}

/** Names, dtypes and shapes of a checkpoint file or model folder. */
export async function describeInput(path: string): Promise<DescribedInput> {
  const st = await statInput(path);
  if (st.isDirectory) {
    const folder = await readHfFolder(path);
    const bytes = await sizeOf(folder.weights.files);
    if (folder.weights.format === 'safetensors' && (await sniff(folder.weights.files[0]!)) === 'safetensors') {
      const tensors: TensorInfo[] = [];
      const metadata: Record<string, string> = {};
      for (const file of folder.weights.files) {
        const d = await describeSafetensors(file);
        tensors.push(...d.tensors);
        Object.assign(metadata, d.metadata);
      }
      const report = folder.weights.index ? [`merged ${folder.weights.files.length} shards listed in ${folder.weights.index.path}`] : [];
      return { path, kind: 'folder', format: 'safetensors', bytes, tensors, report: [...folder.notes, ...report], metadata, folder };
    }
    const ckpt = await readHfWeights(folder);
    return { path, kind: 'folder', format: ckpt.format, bytes, tensors: infosOf(ckpt.tensors), report: [...folder.notes, ...ckpt.report], metadata: ckpt.metadata, folder };
  }
  if ((await sniff(path)) === 'safetensors') {
    const d = await describeSafetensors(path);
    return { path, kind: 'file', format: 'safetensors', bytes: st.size, tensors: d.tensors, report: [], metadata: d.metadata };
  }
  const ckpt = await readCheckpointFile(path);
  return { path, kind: 'file', format: ckpt.format, bytes: st.size, tensors: infosOf(ckpt.tensors), report: ckpt.report, metadata: ckpt.metadata };
}

export interface ReadInput extends Checkpoint {
  kind: 'file' | 'folder';
  /** Every file the tensors came from (the input file, or a folder's weight files). */
  files: string[];
  folder?: HfFolder;
}

/** Every tensor of a checkpoint file or model folder. */
export async function readInput(path: string, options: ReadCheckpointOptions = {}): Promise<ReadInput> {
  const st = await statInput(path);
  if (st.isDirectory) {
    const folder = await readHfFolder(path);
    const ckpt = await readHfWeights(folder, options);
    return { ...ckpt, report: [...folder.notes, ...ckpt.report], kind: 'folder', files: folder.weights.files, folder };
  }
  return { ...(await readCheckpointFile(path, options)), kind: 'file', files: [path] };
}
