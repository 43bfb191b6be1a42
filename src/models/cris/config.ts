/**
 * CRIS configuration (docs/architectures.md §3.1): the CRIS.pytorch `TRAIN` fields that shape the
 * model, plus the CLIP backbone's dimensions, which CRIS derives from the CLIP weights
 * (model/clip.py `build_model`). The JSON form is the golden manifests' `config`:
 *
 *   { "clip": { "embed_dim", "image_resolution", "vision_layers", "vision_width", "vocab_size",
 *               "transformer_width", "transformer_layers", ["context_length", "transformer_heads",
 *               "vision_heads"] },
 *     "word_len", "word_dim", "vis_dim", "fpn_in", "fpn_out", "num_layers", "num_head", "dim_ffn",
 *     ["dropout", "input_size"] }
 *
 * Derived defaults as build_model: context_length 77, transformer_heads = width / 64 (at least 1),
 * vision_heads = vision_width * 32 / 64. `word_len` is not stored in checkpoints: it must be the
 * value the model was trained with (17 RefCOCO/RefCOCO+, 22 RefCOCOg).
 */
import type { OpenAiClipResNetDims } from '../clip/openai-clip.js';

export interface CrisConfig {
  clip: OpenAiClipResNetDims;
  /** Text length (tokens per prompt, incl. BOS/EOS/padding). */
  wordLen: number;
  /** Sentence-state width fed to the Projector (= clip.embedDim). */
  wordDim: number;
  /** Decoder width (= fpnOut[1] = text transformer width). */
  visDim: number;
  /** Channels of v3, v4, v5. */
  fpnIn: [number, number, number];
  fpnOut: [number, number, number];
  numLayers: number;
  numHead: number;
  dimFfn: number;
  /** Training only (dropout is inactive in eval). */
  dropout: number;
  /** Square network input used by CRIS preprocessing (416). */
  inputSize: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses (and checks) the JSON form above; `where` names the source in errors. */
export function parseCrisConfig(raw: unknown, where = 'CRIS config'): CrisConfig {
  const bad = (m: string): never => {
    throw new Error(`${where}: ${m}`);
  };
  if (!isObject(raw)) bad('must be a JSON object');
  const r = raw as Record<string, unknown>;
  if (!isObject(r.clip)) bad(`'clip' must be an object with the CLIP backbone dimensions`);
  const clip = r.clip as Record<string, unknown>;
  const int = (obj: Record<string, unknown>, key: string, prefix: string, fallback?: number): number => {
    const v = obj[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(`'${prefix}${key}' must be a positive integer (got ${JSON.stringify(v)})`);
    return v as number;
  };
  const ints = (obj: Record<string, unknown>, key: string, prefix: string, n: number): number[] => {
    const v = obj[key];
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => Number.isInteger(x) && x >= 1)) {
      bad(`'${prefix}${key}' must be a list of ${n} positive integers (got ${JSON.stringify(v)})`);
    }
    return v as number[];
  };
  const width = int(clip, 'vision_width', 'clip.');
  const transformerWidth = int(clip, 'transformer_width', 'clip.');
  const embedDim = int(clip, 'embed_dim', 'clip.');
  const dims: OpenAiClipResNetDims = {
    embedDim,
    vision: {
      layers: ints(clip, 'vision_layers', 'clip.', 4) as [number, number, number, number],
      width,
      heads: int(clip, 'vision_heads', 'clip.', Math.floor((width * 32) / 64)),
      inputResolution: int(clip, 'image_resolution', 'clip.'),
    },
    contextLength: int(clip, 'context_length', 'clip.', 77),
    vocabSize: int(clip, 'vocab_size', 'clip.'),
    transformerWidth,
    transformerHeads: int(clip, 'transformer_heads', 'clip.', Math.max(1, Math.floor(transformerWidth / 64))),
    transformerLayers: int(clip, 'transformer_layers', 'clip.'),
  };
  const dropout = r.dropout ?? 0.1;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) bad(`'dropout' must be a number in [0, 1)`);
  const c: CrisConfig = {
    clip: dims,
    wordLen: int(r, 'word_len', ''),
    wordDim: int(r, 'word_dim', ''),
    visDim: int(r, 'vis_dim', ''),
    fpnIn: ints(r, 'fpn_in', '', 3) as [number, number, number],
    fpnOut: ints(r, 'fpn_out', '', 3) as [number, number, number],
    numLayers: int(r, 'num_layers', ''),
    numHead: int(r, 'num_head', ''),
    dimFfn: int(r, 'dim_ffn', ''),
    dropout: dropout as number,
    inputSize: int(r, 'input_size', '', 416),
  };
  checkCrisConfig(c, where);
  return c;
}

/** The consistency rules the CRIS modules rely on (each names the fields involved). */
export function checkCrisConfig(c: CrisConfig, where = 'CRIS config'): void {
  const bad = (m: string): never => {
    throw new Error(`${where}: ${m}`);
  };
  const w = c.clip.vision.width;
  if (w % 2 !== 0) bad(`'clip.vision_width' (${w}) must be even`);
  if (c.clip.vision.inputResolution % 32 !== 0) bad(`'clip.image_resolution' (${c.clip.vision.inputResolution}) must be a multiple of 32`);
  if ((w * 32) % c.clip.vision.heads !== 0) bad(`the attention pool's heads (${c.clip.vision.heads}) must divide its width ${w * 32}`);
  if (c.clip.transformerWidth % c.clip.transformerHeads !== 0) {
    bad(`'clip.transformer_heads' (${c.clip.transformerHeads}) must divide 'clip.transformer_width' (${c.clip.transformerWidth})`);
  }
  if (c.fpnIn[0] !== 8 * w) bad(`'fpn_in'[0] (${c.fpnIn[0]}) must be the layer2 width 8 * vision_width = ${8 * w}`);
  if (c.fpnIn[1] !== 16 * w) bad(`'fpn_in'[1] (${c.fpnIn[1]}) must be the layer3 width 16 * vision_width = ${16 * w}`);
  if (c.fpnIn[2] !== c.clip.embedDim) bad(`'fpn_in'[2] (${c.fpnIn[2]}) must be the CLIP embed dim ${c.clip.embedDim} (v5 and the sentence state)`);
  if (c.wordDim !== c.clip.embedDim) bad(`'word_dim' (${c.wordDim}) must be the CLIP embed dim ${c.clip.embedDim}`);
  if (c.fpnOut[1] !== c.visDim) bad(`'fpn_out'[1] (${c.fpnOut[1]}) must equal 'vis_dim' (${c.visDim}): the neck feeds the decoder`);
  if (c.clip.transformerWidth !== c.visDim) {
    bad(`'clip.transformer_width' (${c.clip.transformerWidth}) must equal 'vis_dim' (${c.visDim}): word features are the decoder's keys`);
  }
  if (c.visDim % 4 !== 0) bad(`'vis_dim' (${c.visDim}) must be a multiple of 4 (2-D sine position encoding)`);
  if (c.visDim % c.numHead !== 0) bad(`'num_head' (${c.numHead}) must divide 'vis_dim' (${c.visDim})`);
  if (c.wordLen > c.clip.contextLength) bad(`'word_len' (${c.wordLen}) exceeds the CLIP context length ${c.clip.contextLength}`);
}
