/**
 * Seeded fuzzing of the checkpoint readers: a fixture is mutated many times (bit flips, random and
 * boundary bytes, 32-bit boundary words, bursts, truncation), mostly inside its structural regions
 * (pickles, headers, zip directory). Every mutation must either load or throw a CheckpointError
 * whose message names the file, within a bounded time; nothing else (no TypeError/RangeError, no
 * hang, no crash) is acceptable.
 */
import { expect } from 'vitest';
import { readCheckpoint } from '../../../src/engine/io/checkpoint.js';
import { CheckpointError } from '../../../src/engine/io/tensor-data.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BOUNDARY_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x2e, 0x28, 0x52];
const BOUNDARY_WORDS = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0, 0x10000];

export interface Target {
  name: string;
  bytes: Uint8Array;
  mutations: number;
  /** [start, end) byte ranges holding structure (most mutations land here). */
  hot: [number, number][];
}

export interface Outcome {
  loaded: number;
  rejected: number;
  slowestMs: number;
}

export function fuzz(target: Target, seed: number): Outcome {
  const rand = mulberry32(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  const original = target.bytes;
  const work = original.slice();
  const outcome: Outcome = { loaded: 0, rejected: 0, slowestMs: 0 };
  const position = (): number => {
    if (rand() < 0.8) {
      const [a, b] = target.hot[pick(target.hot.length)]!;
      return Math.min(original.length - 1, a + pick(Math.max(1, b - a)));
    }
    return pick(original.length);
  };
  for (let m = 0; m < target.mutations; m++) {
    const touched: number[] = [];
    const set = (at: number, value: number): void => {
      if (at < 0 || at >= work.length) return;
      touched.push(at);
      work[at] = value;
    };
    let length = work.length;
    const kind = pick(6);
    const at = position();
    if (kind === 0) set(at, work[at]! ^ (1 << pick(8)));
    else if (kind === 1) set(at, pick(256));
    else if (kind === 2) set(at, BOUNDARY_BYTES[pick(BOUNDARY_BYTES.length)]!);
    else if (kind === 3) {
      const word = BOUNDARY_WORDS[pick(BOUNDARY_WORDS.length)]!;
      for (let i = 0; i < 4; i++) set(at + i, (word >>> (8 * i)) & 0xff);
    } else if (kind === 4) {
      const burst = 2 + pick(7);
      for (let i = 0; i < burst; i++) set(position(), pick(256));
    } else {
      length = at;
    }
    const start = performance.now();
    try {
      const ckpt = readCheckpoint(work.subarray(0, length), target.name);
      for (const [key, t] of ckpt.tensors) {
        if (t.data.length !== t.shape.reduce((n, d) => n * d, 1)) throw new Error(`${target.name}: tensor ${key} has a wrong length`);
      }
      outcome.loaded++;
    } catch (err) {
      if (!(err instanceof CheckpointError)) {
        throw new Error(`mutation ${m} (kind ${kind} at ${at}, length ${length}) of ${target.name} threw ${String(err)}`, { cause: err });
      }
      if (!err.message.startsWith(target.name) && !err.message.startsWith(`safetensors ${target.name}`)) {
        throw new Error(`mutation ${m} of ${target.name}: error does not name the file: ${err.message}`);
      }
      outcome.rejected++;
    }
    outcome.slowestMs = Math.max(outcome.slowestMs, performance.now() - start);
    for (const i of touched) work[i] = original[i]!;
  }
  return outcome;
}

export function tail(bytes: Uint8Array, n: number): [number, number] {
  return [Math.max(0, bytes.length - n), bytes.length];
}

/** Runs `fuzz` and checks the outcome: all mutations accounted for, enough rejected, none slow. */
export function expectFuzzClean(target: Target, seed: number): void {
  const outcome = fuzz(target, seed);
  expect(outcome.loaded + outcome.rejected).toBe(target.mutations);
  expect(outcome.rejected).toBeGreaterThan(target.mutations / 10);
  expect(outcome.slowestMs).toBeLessThan(1500);
}
