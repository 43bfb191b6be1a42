/**
 * `webvlsm inspect <file|folder> [--json]`: what a checkpoint holds, without loading a model.
 *
 * Prints the format, the file size, the tensor count, element and parameter counts, each dtype's
 * share, the steps taken to reach the state dict (training-checkpoint unwrapping, `module.` prefix
 * stripping, shard merging), metadata, and one line per tensor: name, dtype, shape. `--json` prints
 * the same as one JSON object.
 *
 * "parameters" counts the elements of float tensors whose names are not known buffers (BatchNorm
 * running statistics, position_ids, attn_mask); compare it with the parameter counts in
 * weights/manifest.json. A heuristic: a state dict does not say which tensors are buffers.
 */
import { type TensorInfo, describeInput } from './input.js';
import { type CliIo, type Command, EXIT_OK, UsageError, formatCount, parseCommandArgs } from './command.js';

const FLOAT = new Set(['f64', 'f32', 'f16', 'bf16']);
const BUFFER_NAME = /(^|\.)(running_mean|running_var|num_batches_tracked|position_ids|attn_mask)$/;

export interface TensorSummary {
  tensors: number;
  elements: number;
  parameters: number;
  byDtype: Record<string, { tensors: number; elements: number }>;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function summarizeTensors(tensors: readonly TensorInfo[]): TensorSummary {
  const summary: TensorSummary = { tensors: tensors.length, elements: 0, parameters: 0, byDtype: {} };
  for (const t of tensors) {
    const n = numel(t.shape);
    summary.elements += n;
    if (FLOAT.has(t.dtype) && !BUFFER_NAME.test(t.name)) summary.parameters += n;
    const d = (summary.byDtype[t.dtype] ??= { tensors: 0, elements: 0 });
    d.tensors++;
    d.elements += n;
  }
  return summary;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'list the tensors of a checkpoint file or model folder (format, keys, dtypes, shapes, counts)',
  help: [
    'usage: webvlsm inspect <file|folder> [--json]',
    '',
    '  <file>     a .safetensors, PyTorch .pth/.bin/.pt (zip or legacy) or TorchScript archive',
    '  <folder>   a Hugging Face model folder (config.json + model.safetensors or pytorch_model.bin)',
    '  --json     print one JSON object instead of text',
  ].join('\n'),
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs('inspect', args, { json: { type: 'boolean' } });
    if (values.help) {
      io.out(`${inspectCommand.help}\n`);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError(`inspect: expected one file or folder, got ${positionals.length} arguments`);
    const input = await describeInput(positionals[0]!);
    const summary = summarizeTensors(input.tensors);
    if (values.json) {
      const json = {
        path: input.path,
        kind: input.kind,
        format: input.format,
        bytes: input.bytes,
        ...summary,
        report: input.report,
        metadata: input.metadata,
        ...(input.folder ? { config: input.folder.configPath, weights: input.folder.weights.files, tokenizer: input.folder.tokenizer } : {}),
        keys: input.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
      };
      io.out(`${JSON.stringify(json, null, 2)}\n`);
      return EXIT_OK;
    }
    const lines: string[] = [];
    lines.push(`${input.kind === 'folder' ? 'folder' : 'file'}: ${input.path}`);
    lines.push(`format: ${input.format}`);
    lines.push(`size: ${formatCount(input.bytes)} bytes`);
    if (input.folder) {
      const cfg = input.folder.config;
      lines.push(`config: ${input.folder.configPath}${typeof cfg.model_type === 'string' ? ` (model_type ${cfg.model_type})` : ''}`);
      lines.push(`weights: ${input.folder.weights.files.join(', ')}`);
      const tok = Object.values(input.folder.tokenizer);
      lines.push(`tokenizer files: ${tok.length > 0 ? tok.join(', ') : 'none'}`);
    }
    lines.push(`tensors: ${formatCount(summary.tensors)}`);
    const dtypes = Object.entries(summary.byDtype).map(([d, s]) => `${d} ${formatCount(s.elements)} in ${s.tensors} tensors`);
    lines.push(`elements: ${formatCount(summary.elements)}${dtypes.length > 0 ? ` (${dtypes.join('; ')})` : ''}`);
    lines.push(`parameters: ${formatCount(summary.parameters)} (float tensors, without running_mean/var, num_batches_tracked, position_ids, attn_mask)`);
    if (input.report.length > 0) lines.push('state dict:', ...input.report.map((r) => `  ${r}`));
    const meta = Object.entries(input.metadata);
    if (meta.length > 0) lines.push('metadata:', ...meta.map(([k, v]) => `  ${k}: ${String(v)}`));
    lines.push(`keys (${input.tensors.length}):`);
    const width = Math.min(72, Math.max(4, ...input.tensors.map((t) => t.name.length)));
    for (const t of input.tensors) lines.push(`  ${t.name.padEnd(width)}  ${t.dtype.padEnd(4)}  ${shapeText(t.shape)}`);
    io.out(`${lines.join('\n')}\n`);
    return EXIT_OK;
  },
};
