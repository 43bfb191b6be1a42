/** Builds a Segmenter of any kind from its config JSON (checkpoints, train configs). */
import type { Device } from '../../engine/index.js';
import type { ClipTokenizer } from '../../models/clip/tokenizer.js';
import type { Segmenter, SegmenterKind } from '../segmenter.js';
import { ClipSegSegmenter } from './clipseg.js';
import { CrisSegmenter } from './cris.js';
import { UNetSegmenter } from './unet.js';

export interface CreateSegmenterOptions {
  device?: Device;
  /** Allocate parameters without initial values (weights are loaded right after). */
  empty?: boolean;
  /** Seeded init source (models/nn/init.ts). */
  rng?: () => number;
  /** CLIPSeg and CRIS need the CLIP tokenizer. */
  tokenizer?: ClipTokenizer | undefined;
}

export function createSegmenter(kind: SegmenterKind, config: Record<string, unknown>, options: CreateSegmenterOptions, source = 'the model config'): Segmenter {
  const init = { device: options.device, empty: options.empty, rng: options.rng };
  switch (kind) {
    case 'clipseg':
      if (!options.tokenizer) throw new Error(`${source}: a CLIPSeg model needs the CLIP tokenizer (weights/vocab/bpe_simple_vocab_16e6.txt.gz)`);
      return new ClipSegSegmenter(config, { ...init, tokenizer: options.tokenizer });
    case 'cris':
      if (!options.tokenizer) throw new Error(`${source}: a CRIS model needs the CLIP tokenizer (weights/vocab/bpe_simple_vocab_16e6.txt.gz)`);
      return new CrisSegmenter(config, { ...init, tokenizer: options.tokenizer });
    case 'unet':
      return new UNetSegmenter(config, { ...(options.device ? { device: options.device } : {}), init });
    default:
      throw new Error(`${source}: model kind '${kind}' cannot be built yet`);
  }
}
