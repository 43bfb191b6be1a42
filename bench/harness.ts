/**
 * Benchmark harness: times a function on a device (warm-up, then repetitions; median), and prints
 * one JSON line per measurement. Benchmarks are not tests: nothing here asserts.
 */
import type { Device } from '../src/engine/index.js';

export interface Measurement {
  name: string;
  shape: string;
  device: string;
  ours_ms: number;
  ours_gflops?: number;
  ours_gbps?: number;
  reps: number;
}

export interface BenchCase {
  name: string;
  shape: string;
  /** Floating-point operations of one run (for GFLOP/s), when meaningful. */
  flops?: number;
  /** Bytes moved by one run (for GB/s), when meaningful. */
  bytes?: number;
  /** Builds inputs once; returns the function to time and a cleanup. */
  setup(device: Device): { run(): void; dispose(): void };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Wall time per run, waiting for the device to finish each repetition. */
export async function measure(device: Device, c: BenchCase, warmup = 2, reps = 5): Promise<Measurement> {
  const { run, dispose } = c.setup(device);
  for (let i = 0; i < warmup; i++) {
    run();
    await device.sync();
  }
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    await device.sync();
    times.push(performance.now() - t0);
  }
  dispose();
  const ms = median(times);
  const m: Measurement = { name: c.name, shape: c.shape, device: device.description, ours_ms: +ms.toFixed(3), reps };
  if (c.flops) m.ours_gflops = +(c.flops / ms / 1e6).toFixed(3);
  if (c.bytes) m.ours_gbps = +(c.bytes / ms / 1e6).toFixed(3);
  return m;
}
