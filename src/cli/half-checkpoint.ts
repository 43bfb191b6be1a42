/**
 * Re-stores a webvlsm segmenter checkpoint with F16 tensors (half the file; values rounded to
 * f16), keeping its metadata; used to ship weights/demo/clipseg-tiny-synthetic.safetensors:
 *   node --import ./scripts/register-ts.mjs src/cli/half-checkpoint.ts <in.safetensors> <out.safetensors>
 */
import { readFile } from 'node:fs/promises';
import { type TensorToWrite, parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.js';
import { writeBytesAtomic } from '../train/checkpoint-node.js';
import { readCheckpointHeader } from '../train/checkpoint.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: half-checkpoint.ts <in.safetensors> <out.safetensors>');
  process.exit(2);
}
const bytes = await readFile(input);
readCheckpointHeader(bytes, input); // refuses anything but a segmenter checkpoint
const file = parseSafetensors(bytes, input);
const tensors: Record<string, TensorToWrite> = {};
for (const key of file.keys()) {
  const t = file.get(key);
  tensors[key] = { dtype: t.dtype === 'f32' ? 'F16' : 'I32', shape: t.shape, data: t.data };
}
const out = serializeSafetensors(tensors, { ...file.metadata });
await writeBytesAtomic(output, out);
console.log(`wrote ${output}: ${file.keys().length} tensors, ${out.byteLength} bytes (from ${bytes.byteLength})`);
