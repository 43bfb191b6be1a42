/**
 * `webvlsm segment --model <dir> --image <file> --prompt "..." [--prompt ...] --out <mask.png>
 *  [--overlay <png>] [--threshold t] [--device cpu|webgpu] [--precision f32|f16] [--model-type clipseg|cris]
 *  [--config cris-r50|cris-r101|<config.json>] [--word-len N] [--input-size S]`: segmentation of
 * one PNG or JPEG image with a CLIPSeg checkpoint folder (models/clipseg/api.ts) or a CRIS
 * checkpoint (models/cris/api.ts; `--config` and `--word-len` are needed because CRIS checkpoints
 * store neither the variant nor word_len). Both APIs return the same result shape.
 *
 * Outputs (PNG, each written atomically: a temporary file in the same folder, then a rename):
 * - `--out` with one prompt: an 8-bit grey mask, 255 where the probability exceeds the threshold;
 *   with several prompts: an 8-bit grey label map, 0 = background, k = the k-th prompt (from 1)
 *   where it is the most likely one above the threshold (all prompts run in one batch);
 * - `--overlay`: the image with the mask (or each label) blended in colour, RGBA.
 * Every input is checked before the model loads (readable image, writable output folders), so
 * mistakes fail fast. Warnings (truncated or empty prompts, no WebGPU adapter) go to stderr.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Device } from '../../engine/index.js';
import { writeFileAtomic } from '../../engine/io/safetensors-lazy-node.js';
import { CLIPSeg, type SegmentationResult } from '../../models/clipseg/api.js';
import { CRIS } from '../../models/cris/api.js';
import { CRIS_THRESHOLD } from '../../models/cris/postprocess.js';
import { PALETTE, applyOrientation, decodeImage, encodePng, overlay, overlayLabels } from '../../models/image/index.js';
import { openCliDevice } from '../gpu.js';
import { type CliIo, type Command, EXIT_OK, UsageError, parseCommandArgs } from './command.js';
import { fileErrorReason, parseInputSize, parseIntFlag, readCrisConfig } from './cris-options.js';

/** A failure that is not a usage error (exit 1), with a plain message. */
class SegmentError extends Error {}

async function readImageFile(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new SegmentError(`${path}: cannot read the image (${fileErrorReason(err)})`);
  }
}

/** The output's folder must exist and be a folder (checked before the slow part). */
async function checkOutputFolder(path: string, what: string): Promise<void> {
  const folder = dirname(resolve(path));
  try {
    if (!(await stat(folder)).isDirectory()) throw new SegmentError(`${path}: cannot write the ${what}: ${folder} is not a folder`);
  } catch (err) {
    if (err instanceof SegmentError) throw err;
    throw new SegmentError(`${path}: cannot write the ${what}: its folder ${folder} does not exist`);
  }
  try {
    if ((await stat(path)).isDirectory()) throw new SegmentError(`${path}: cannot write the ${what}: it is a folder`);
  } catch (err) {
    if (err instanceof SegmentError) throw err;
  }
}

/** The CLI's device (tuned for the adapter, see cli/gpu.ts); its errors are this command's usage errors. */
async function openDevice(which: string | undefined, io: CliIo): Promise<{ device: Device; owned: boolean }> {
  try {
    return await openCliDevice(which, io);
  } catch (err) {
    throw new SegmentError((err as Error).message);
  }
}

function parseThreshold(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const t = Number(text);
  if (text.trim() === '' || !Number.isFinite(t) || t < 0 || t > 1) throw new UsageError(`segment: --threshold must be a number in [0, 1], got '${text}'`);
  return t;
}

function percent(part: number, total: number): string {
  return `${((100 * part) / total).toFixed(2)}%`;
}

export const segmentCommand: Command = {
  name: 'segment',
  summary: 'segment an image with text prompts using a CLIPSeg folder or CRIS checkpoint (mask / label map PNG)',
  help: [
    'usage: webvlsm segment --model <dir> --image <file> --prompt "..." [--prompt ...] --out <mask.png>',
    '                       [--overlay <overlay.png>] [--threshold t] [--device cpu|webgpu] [--precision f32|f16]',
    '                       [--model-type clipseg|cris] [--config <name|json>] [--word-len N] [--input-size S]',
    '',
    '  --model <dir>      a Hugging Face CLIPSeg folder (config.json + model.safetensors or',
    '                     pytorch_model.bin; vocab.json/merges.txt and preprocessor_config.json',
    '                     when present, else the shipped CLIP vocabulary and 352x352 ImageNet',
    '                     preprocessing), e.g. a download of CIDAS/clipseg-rd64-refined',
    '  --image <file>     a PNG or JPEG image (any size; EXIF orientation is applied)',
    '  --prompt <text>    a text prompt; repeat for several (run in one batch). An empty prompt is',
    '                     allowed (BOS + EOS); prompts over 77 tokens are truncated with a warning',
    '  --out <png>        one prompt: grey mask, 255 where probability > threshold, else 0;',
    '                     several prompts: grey label map, 0 background, k = k-th prompt (from 1)',
    '  --overlay <png>    also write the image with the mask / labels blended in colour (RGBA)',
    '  --threshold <t>    probability threshold in [0, 1] (default 0.5 CLIPSeg, 0.35 CRIS)',
    '  --device <d>       cpu or webgpu (default: webgpu when an adapter exists, else cpu)',
    '  --precision <p>    f32 (default) or f16: CLIPSeg keeps its Linear weights as f16 (half their',
    '                     memory and bandwidth; computed in f32, so only the weights\' rounding',
    '                     changes the result). Needs the WebGPU shader-f16 feature (cpu has it)',
    '  --model-type <m>   clipseg (default) or cris',
    '',
    'CRIS only (checkpoints store neither the variant nor word_len):',
    '  --model <path>     a CRIS checkpoint (.pth: zip or legacy, train.py dict with module. keys;',
    '                     or .safetensors), or a folder with one checkpoint and optionally',
    '                     vocab.json + merges.txt (else the shipped CLIP vocabulary is used)',
    '  --config <c>       cris-r50 or cris-r101 (default cris-r50), or a CRIS config .json',
    '  --word-len <N>     the word_len the checkpoint was trained with (default 17: RefCOCO/+;',
    '                     22 for RefCOCOg)',
    '  --input-size <S>   network side, a multiple of 32 (default: the config\'s, 416); the image is',
    '                     letterboxed to S x S keeping its aspect ratio, results are at its own size',
    '',
    'outputs are written atomically (temporary file + rename); existing files are replaced.',
  ].join('\n'),
  async run(args: string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs('segment', args, {
      model: { type: 'string' },
      image: { type: 'string' },
      prompt: { type: 'string', multiple: true },
      out: { type: 'string' },
      overlay: { type: 'string' },
      threshold: { type: 'string' },
      device: { type: 'string' },
      precision: { type: 'string' },
      'model-type': { type: 'string' },
      config: { type: 'string' },
      'word-len': { type: 'string' },
      'input-size': { type: 'string' },
    });
    if (values.help) {
      io.out(`${segmentCommand.help}\n`);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw new UsageError(`segment: unexpected argument '${positionals[0]}' (options take --name value)`);
    const prompts = (values.prompt as unknown as string[] | undefined) ?? [];
    const missing = ['model', 'image', 'out'].filter((k) => typeof values[k] !== 'string');
    if (prompts.length === 0) missing.push('prompt');
    if (missing.length > 0) throw new UsageError(`segment: missing ${missing.map((m) => `--${m}`).join(', ')}`);
    const modelDir = values.model as string;
    const imagePath = values.image as string;
    const out = values.out as string;
    const overlayPath = values.overlay as string | undefined;
    const modelType = (values['model-type'] as string | undefined) ?? 'clipseg';
    if (modelType !== 'clipseg' && modelType !== 'cris') throw new UsageError(`segment: --model-type must be clipseg or cris, got '${modelType}'`);
    if (modelType === 'clipseg') {
      const crisOnly = ['config', 'word-len', 'input-size'].filter((k) => values[k] !== undefined);
      if (crisOnly.length > 0) throw new UsageError(`segment: ${crisOnly.map((k) => `--${k}`).join(', ')} only apply to --model-type cris`);
    }
    const wordLen = parseIntFlag('segment', '--word-len', values['word-len'] as string | undefined, 2);
    const inputSize = parseInputSize('segment', values['input-size'] as string | undefined);
    const threshold = parseThreshold(values.threshold as string | undefined, modelType === 'cris' ? CRIS_THRESHOLD : 0.5);
    const deviceName = values.device as string | undefined;
    if (deviceName !== undefined && deviceName !== 'cpu' && deviceName !== 'webgpu') {
      throw new UsageError(`segment: --device must be cpu or webgpu, got '${deviceName}'`);
    }
    const precision = (values.precision as string | undefined) ?? 'f32';
    if (precision !== 'f32' && precision !== 'f16') throw new UsageError(`segment: --precision must be f32 or f16, got '${precision}'`);
    if (precision === 'f16' && modelType === 'cris') throw new UsageError('segment: --precision f16 applies to --model-type clipseg only');
    for (const [flag, path] of [['--out', out], ['--overlay', overlayPath]] as const) {
      if (path !== undefined && !path.toLowerCase().endsWith('.png')) throw new UsageError(`segment: ${flag} must name a .png file, got '${path}'`);
      if (path !== undefined && resolve(path) === resolve(imagePath)) throw new UsageError(`segment: ${flag} would overwrite the input image ${imagePath}`);
    }
    if (overlayPath !== undefined && resolve(overlayPath) === resolve(out)) throw new UsageError('segment: --out and --overlay name the same file');
    if (prompts.length > 255) throw new UsageError(`segment: at most 255 prompts, got ${prompts.length}`);

    const crisConfig = modelType === 'cris' ? await readCrisConfig('segment', '--config', (values.config as string | undefined) ?? 'cris-r50') : null;
    const decoded = decodeImage(await readImageFile(imagePath), imagePath);
    const image = applyOrientation(decoded, decoded.orientation);
    await checkOutputFolder(out, 'mask');
    if (overlayPath !== undefined) await checkOutputFolder(overlayPath, 'overlay');

    const { device, owned } = await openDevice(deviceName, io);
    let model: CLIPSeg | CRIS | null = null;
    try {
      let result: SegmentationResult;
      if (crisConfig !== null) {
        const cris = await CRIS.fromPretrained(modelDir, { config: crisConfig, wordLen, inputSize, device });
        model = cris;
        result = await cris.segment(image, prompts, { threshold, applyExifOrientation: false });
      } else {
        const clipseg = await CLIPSeg.fromPretrained(modelDir, { device, precision });
        model = clipseg;
        result = await clipseg.segment(image, prompts, { threshold, applyExifOrientation: false });
      }
      for (const w of result.warnings) io.err(`warning: ${w}\n`);
      const several = prompts.length > 1;
      await writeFileAtomic(out, async (h) => void (await h.write(encodePng(several ? result.labels : result.masks[0]!))));
      if (overlayPath !== undefined) {
        const blended = several ? overlayLabels(image, result.labels) : overlay(image, [{ mask: result.masks[0]!, color: PALETTE[0]! }]);
        await writeFileAtomic(overlayPath, async (h) => void (await h.write(encodePng(blended))));
      }
      const n = result.width * result.height;
      const lines = [`model: ${modelType === 'cris' ? 'CRIS ' : ''}${modelDir} on ${device.description}${precision === 'f16' ? ' (f16 weights)' : ''}`, `image: ${imagePath} (${result.width}x${result.height})`];
      result.prompts.forEach((p, i) => {
        const map = result.probabilities[i]!.data;
        let above = 0;
        let max = 0;
        for (let j = 0; j < n; j++) {
          if (map[j]! > threshold) above++;
          if (map[j]! > max) max = map[j]!;
        }
        const label = several ? `label ${i + 1}, ` : '';
        lines.push(`prompts[${i}] ${JSON.stringify(p)}: ${label}${result.tokens.lengths[i]} tokens, max p ${max.toFixed(4)}, ${percent(above, n)} of pixels > ${threshold}`);
      });
      lines.push(`wrote ${out} (${several ? `label map, ${prompts.length} prompts` : 'mask'}, ${result.width}x${result.height})`);
      if (overlayPath !== undefined) lines.push(`wrote ${overlayPath} (overlay)`);
      const t = result.timings;
      lines.push(`time: preprocess ${t.preprocessMs.toFixed(0)} ms, forward ${t.forwardMs.toFixed(0)} ms, postprocess ${t.postprocessMs.toFixed(0)} ms`);
      io.out(`${lines.join('\n')}\n`);
      return EXIT_OK;
    } finally {
      model?.dispose();
      if (owned) device.destroy();
    }
  },
};
