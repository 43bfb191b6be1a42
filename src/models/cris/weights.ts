/**
 * Loading weights into CRIS (docs/architectures.md §3.9, §5.4-5.5):
 *
 * - CRIS checkpoints: a bare state dict (`weights.pth`, medvlsm `cris.pt`, safetensors) or a
 *   train.py checkpoint dict ({epoch, ..., state_dict}) whose keys carry DistributedDataParallel's
 *   `module.` prefix. readCheckpoint unwraps the dict and strips the prefix; keys that still start
 *   with `module.` (read with `stripPrefixes: []`) are accepted here too. Strict by default.
 * - An OpenAI CLIP ResNet archive (`RN50.pt`, `RN101.pt`: TorchScript, mostly float16) for the
 *   backbone of an untrained CRIS: the same names without `backbone.`; the scalars
 *   `input_resolution`, `context_length`, `vocab_size` are dropped; `visual.attnpool.connect.*`
 *   (CRIS's own branch) keeps its initial values. CRIS's build_model casts Conv/Linear weights and
 *   biases, MultiheadAttention in-projections and `text_projection` to float16 before loading and
 *   back to float32 afterwards: that round trip is reproduced (values already stored as float16
 *   are unchanged by it).
 */
import {
  type LoadStateOptions,
  type LoadStateReport,
  type Module,
  type StateEntry,
  type StateSource,
  type TensorData,
  Tensor,
  loadState,
} from '../../engine/index.js';
import { MultiheadAttention } from '../clip/multihead-attention.js';
import { OpenAiClipResNet } from '../clip/openai-clip.js';
import { Conv2d, Linear } from '../nn/index.js';

/** Scalars stored in OpenAI CLIP archives that are not weights. */
export const CLIP_ARCHIVE_SCALARS = ['input_resolution', 'context_length', 'vocab_size'] as const;

/** The nearest float16 value of `x` (round half to even; overflow to ±inf), as a number. */
export function roundToFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp;
  const lo = Math.floor(q);
  const frac = q - lo;
  const r = frac > 0.5 || (frac === 0.5 && lo % 2 === 1) ? lo + 1 : lo;
  return Math.sign(x) * r * ulp;
}

/**
 * The backbone state-dict names CRIS's build_model casts to float16 (clip.py convert_weights):
 * Conv2d / Linear weights and biases, MultiheadAttention in_proj_weight / in_proj_bias, and
 * text_projection. Names are relative to `backbone`.
 */
export function float16RoundTripNames(backbone: OpenAiClipResNet): Set<string> {
  const names = new Set<string>(['text_projection']);
  for (const [prefix, m] of backbone.namedModules()) {
    const at = (n: string) => (prefix ? `${prefix}.${n}` : n);
    if (m instanceof Conv2d || m instanceof Linear) {
      names.add(at('weight'));
      if (m.bias) names.add(at('bias'));
    } else if (m instanceof MultiheadAttention) {
      names.add(at('in_proj_weight'));
      names.add(at('in_proj_bias'));
    }
  }
  return names;
}

function entries(tensors: StateSource): [string, StateEntry][] {
  return tensors instanceof Map ? [...tensors] : Object.entries(tensors);
}

/** Loads a CRIS state dict (see the file header); returns loadState's report. */
export function loadCrisWeights(model: Module, tensors: StateSource, options: LoadStateOptions = {}): LoadStateReport {
  const rename = options.rename;
  return loadState(model, tensors, {
    ...options,
    rename: (name) => {
      const bare = name.startsWith('module.') ? name.slice('module.'.length) : name;
      if (!rename) return bare;
      if (typeof rename === 'function') {
        const out = rename(bare);
        return out === undefined ? bare : out;
      }
      return Object.hasOwn(rename, bare) ? rename[bare]! : bare;
    },
  });
}

export interface ClipBackboneReport extends LoadStateReport {
  /** Names whose float32 values were rounded through float16 (the build_model round trip). */
  roundedThroughFloat16: string[];
}

/**
 * Loads an OpenAI CLIP ResNet state dict (RN50.pt / RN101.pt as read by readCheckpoint, keys
 * without `backbone.`) into `backbone`. Every backbone tensor except `visual.attnpool.connect.*`
 * must be present and no other key may be (the archive scalars are dropped).
 */
export function loadClipBackbone(backbone: OpenAiClipResNet, tensors: StateSource): ClipBackboneReport {
  const roundTrip = float16RoundTripNames(backbone);
  const rounded: string[] = [];
  const prepared = new Map<string, StateEntry>();
  for (const [key, value] of entries(tensors)) {
    if ((CLIP_ARCHIVE_SCALARS as readonly string[]).includes(key)) continue;
    if (roundTrip.has(key) && !(value instanceof Tensor) && value.dtype === 'f32') {
      const data = Float32Array.from(value.data as Float32Array, roundToFloat16);
      prepared.set(key, { dtype: 'f32', shape: value.shape, data } as TensorData);
      rounded.push(key);
    } else {
      prepared.set(key, value);
    }
  }
  // Key checks first, so that a wrong file leaves the backbone untouched (loadState checks shapes).
  const targets = backbone.stateDict();
  const missing = [...targets].filter(([k]) => !prepared.has(k) && !k.startsWith('visual.attnpool.connect.'));
  const unexpected = [...prepared].filter(([k]) => !targets.has(k));
  const problems = [
    ...missing.map(([k, t]) => `missing '${k}' [${t.shape.join(', ')}]`),
    ...unexpected.map(([k, v]) => `unexpected '${k}' [${v.shape.join(', ')}]`),
  ];
  if (problems.length > 0) {
    throw new Error(`loadClipBackbone: the file is not a CLIP ResNet of this size (${problems.length} problems; nothing was loaded): ${problems.slice(0, 8).join('; ')}`);
  }
  const report = loadState(backbone, prepared, { strict: false });
  return { ...report, roundedThroughFloat16: rounded };
}
