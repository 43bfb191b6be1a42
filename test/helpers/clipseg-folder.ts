/**
 * A tiny Hugging Face-style CLIPSeg folder for API and CLI tests, built from the golden
 * `clipseg_tiny_plain` model (test/fixtures/clipseg): config.json, model.safetensors (its
 * weights.safetensors), and a 1000-token vocab.json + merges.txt.
 *
 * The tiny text tower has 1000 ids with BOS 998 and EOS 999 (the golden README). The CLIP
 * vocabulary is built as 256 byte symbols, 256 with `</w>`, one token per merge, then BOS and EOS;
 * keeping only the first 486 merges of the real bpe_simple_vocab_16e6.txt.gz gives exactly such a
 * vocabulary: 512 + 486 = 998 tokens, BOS = 998, EOS = 999 (the largest id, as the config's legacy
 * argmax pooling needs). Any text still tokenizes (rarer words split into more, shorter pieces).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, strFromU8 } from 'fflate';
import { bytesToUnicode } from '../../src/models/clip/tokenizer.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TINY_PLAIN_DIR = join(ROOT, 'test/fixtures/clipseg/clipseg_tiny_plain');
export const SHIPPED_VOCAB = join(ROOT, 'weights/vocab/bpe_simple_vocab_16e6.txt.gz');

/** Merges kept so that the vocabulary has 1000 ids with BOS 998 and EOS 999. */
export const TINY_MERGES = 1000 - 512 - 2;

/** vocab.json and merges.txt texts of the first `numMerges` CLIP merges. */
export function truncatedClipVocab(numMerges = TINY_MERGES): { vocabJson: string; mergesTxt: string } {
  const lines = strFromU8(gunzipSync(readFileSync(SHIPPED_VOCAB))).split('\n').slice(1, numMerges + 1);
  const { byteToChar, order } = bytesToUnicode();
  const tokens = order.map((b) => byteToChar[b]!);
  tokens.push(...tokens.map((c) => `${c}</w>`));
  for (const line of lines) tokens.push(line.replace(' ', ''));
  tokens.push('<|startoftext|>', '<|endoftext|>');
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return { vocabJson: JSON.stringify(vocab), mergesTxt: `#version: 0.2\n${lines.join('\n')}\n` };
}

export interface TinyFolderOptions {
  /** Write preprocessor_config.json with this square size (absent: the CIDAS default 352 applies). */
  size?: number;
  /** Leave out vocab.json / merges.txt. */
  noTokenizer?: boolean;
  /** Replace config.json by this object. */
  config?: Record<string, unknown>;
}

/** Writes the tiny model folder into `dir` (created) and returns `dir`. */
export function makeTinyClipSegFolder(dir: string, options: TinyFolderOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const config = options.config ?? JSON.parse(readFileSync(join(TINY_PLAIN_DIR, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  copyFileSync(join(TINY_PLAIN_DIR, 'weights.safetensors'), join(dir, 'model.safetensors'));
  if (!options.noTokenizer) {
    const { vocabJson, mergesTxt } = truncatedClipVocab();
    writeFileSync(join(dir, 'vocab.json'), vocabJson);
    writeFileSync(join(dir, 'merges.txt'), mergesTxt);
  }
  if (options.size !== undefined) {
    const pre = {
      do_normalize: true,
      do_rescale: true,
      do_resize: true,
      image_mean: [0.485, 0.456, 0.406],
      image_std: [0.229, 0.224, 0.225],
      image_processor_type: 'ViTImageProcessor',
      processor_class: 'CLIPSegProcessor',
      resample: 2,
      rescale_factor: 1 / 255,
      size: { height: options.size, width: options.size },
    };
    writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(pre, null, 1));
  }
  return dir;
}
