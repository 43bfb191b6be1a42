/**
 * Seeded epoch order and batching. The order of epoch e is a permutation drawn from
 * hashSeed(seed, 'order', label, e): it depends on nothing else, so batch k of epoch e is the same
 * in a fresh run and in one resumed after an interruption.
 */
import { rngFor, shuffleInPlace } from './random.js';

export interface BatchOptions {
  batchSize: number;
  seed: number;
  epoch: number;
  /** Shuffle the order each epoch (default true; evaluation passes false). */
  shuffle?: boolean;
  /** Drop a last batch smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Keeps the orders of different sets apart (default ''). */
  label?: string;
}

/** Indices 0..count-1 in the order of one epoch. */
export function epochOrder(count: number, seed: number, epoch: number, shuffle = true, label = ''): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  return shuffle ? shuffleInPlace(order, rngFor(seed, 'order', label, epoch)) : order;
}

/** The batches (lists of indices into 0..count-1) of one epoch. */
export function epochBatches(count: number, options: BatchOptions): number[][] {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  }
  const order = epochOrder(count, options.seed, options.epoch, options.shuffle ?? true, options.label ?? '');
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    if (batch.length < batchSize && options.dropLast) break;
    batches.push(batch);
  }
  return batches;
}
