/**
 * `webvlsm convert <in> <out.safetensors> [--float32] [--force]`: any supported checkpoint (or a
 * Hugging Face model folder) to one safetensors file.
 *
 * - The state dict is extracted as `inspect` shows it (training wrappers unwrapped, `module.`
 *   stripped, shards merged); tensors keep their stored dtype and bytes (a bit-exact copy),
 *   except with `--float32` (f16 / bf16 / f64 -> f32) and i16 / i8 tensors, which become i32
 *   (safetensors writers here do not emit I16 / I8).
 * - Written atomically: a temporary file in the output's folder, flushed, then renamed over the
 *   output. The input is never overwritten (same path or same file through a link); an existing
 *   output is replaced only with `--force`.
 * - The output's __metadata__: the input's own (safetensors) or its scalar training-checkpoint
 *   entries (epoch, best_iou, ...) as strings, plus `format: pt` when absent and
 *   `webvlsm.source_format`.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openSafetensorsFile, writeSafetensorsAtomic } from '../../engine/io/safetensors-lazy-node.js';
import { CheckpointError, type TensorData } from '../../engine/io/tensor-data.js';
import { readInput } from './input.js';
import { type CliIo, type Command, EXIT_OK, UsageError, formatCount, parseCommandArgs } from './command.js';

async function fileId(path: string): Promise<{ dev: number; ino: number } | null> {
  try {
    const st = await stat(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return null;
  }
}

/** Throws when `out` is one of `inputs` (by path or by device + inode, which catches links). */
async function refuseInputOverwrite(out: string, inputs: string[]): Promise<void> {
  const outId = await fileId(out);
  for (const input of inputs) {
    const inId = await fileId(input);
    const samePath = resolve(out) === resolve(input);
    const sameFile = outId !== null && inId !== null && outId.dev === inId.dev && outId.ino === inId.ino;
    if (samePath || sameFile) {
      throw new CheckpointError(`${out}: refusing to overwrite the input file ${input}; choose another output path`);
    }
  }
}

/** i16 / i8 (no dtype in the writer) to i32; everything else as is. */
function writable(t: TensorData): TensorData {
  if (t.dtype !== 'i16' && t.dtype !== 'i8') return t;
  return { dtype: 'i32', shape: t.shape, data: Int32Array.from(t.data as Int16Array | Int8Array) };
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'convert a checkpoint file or model folder to one .safetensors file (atomic write)',
  help: [
    'usage: webvlsm convert <in> <out.safetensors> [--float32] [--force]',
    '',
    '  <in>         a checkpoint file (.safetensors, .pth/.bin/.pt zip or legacy, TorchScript) or a',
    '               Hugging Face model folder',
    '  <out>        the safetensors file to write (its folder must exist)',
    '  --float32    store f16 / bf16 / f64 tensors as f32 (default: keep the stored dtypes, bit-exact)',
    '  --force      replace <out> if it exists (never the input)',
  ].join('\n'),
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs('convert', args, {
      float32: { type: 'boolean' },
      force: { type: 'boolean' },
    });
    if (values.help) {
      io.out(`${convertCommand.help}\n`);
      return EXIT_OK;
    }
    if (positionals.length !== 2) throw new UsageError(`convert: expected <in> <out.safetensors>, got ${positionals.length} arguments`);
    const [input, out] = positionals as [string, string];
    if (!out.endsWith('.safetensors')) throw new UsageError(`convert: the output must be a .safetensors file, got '${out}'`);
    await refuseInputOverwrite(out, [input]);
    const ckpt = await readInput(input, { float32: values.float32 === true });
    await refuseInputOverwrite(out, ckpt.files);
    if (!values.force && (await fileId(out)) !== null) {
      throw new CheckpointError(`${out}: already exists; pass --force to replace it`);
    }
    const tensors = new Map<string, TensorData>();
    let widened = 0;
    for (const [k, t] of ckpt.tensors) {
      const w = writable(t);
      if (w !== t) widened++;
      tensors.set(k, w);
    }
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(ckpt.metadata)) metadata[k] = String(v);
    metadata.format ??= 'pt';
    metadata['webvlsm.source_format'] = ckpt.format;
    await writeSafetensorsAtomic(out, tensors, metadata);
    // Read the header back: the file on disk is a valid safetensors file with every tensor.
    const check = await openSafetensorsFile(out);
    const count = check.size;
    const bytes = check.byteLength;
    await check.close();
    if (count !== tensors.size) throw new CheckpointError(`${out}: wrote ${tensors.size} tensors but the file lists ${count}`);
    const lines = [`wrote ${out}: ${formatCount(count)} tensors, ${formatCount(bytes)} bytes (from ${ckpt.format} ${input})`];
    for (const r of ckpt.report) lines.push(`  ${r}`);
    if (widened > 0) lines.push(`  stored ${widened} i16/i8 tensors as i32`);
    io.out(`${lines.join('\n')}\n`);
    return EXIT_OK;
  },
};
