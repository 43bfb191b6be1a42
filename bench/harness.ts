/**
 * Benchmark harness: runners (ours or a peer) timed interleaved in one process, medians, JSON
 * lines. Benchmarks are not tests: nothing here asserts.
 *
 * Timing: where the GPUDevice has 'timestamp-query', a runner on it brackets its work between two
 * empty compute passes that write GPU timestamps (a GpuTimer), which measures every submit in
 * between, through public WebGPU APIs only; wall time (launch to finished work) is always measured
 * too. Ratios compare like with like: GPU time where both sides have it, wall time otherwise.
 */
import { type Device, WebGpuDevice } from '../src/engine/index.js';
import type { PeerOp } from './peers/ops.js';

export interface BenchCase {
  name: string;
  shape: string;
  /** Floating-point operations of one run (for GFLOP/s), when meaningful. */
  flops?: number;
  /** Bytes moved by one run (for GB/s), when meaningful. */
  bytes?: number;
  /** Overrides of the run's warm-up and repetition counts (slow model cases want fewer). */
  warmup?: number;
  reps?: number;
  /** The operation in peer terms: with --peers, tfjs and ONNX Runtime run it on the same data. */
  op?: PeerOp;
  /** Builds inputs once; returns the function to time and a cleanup. */
  setup(device: Device): CaseInstance | Promise<CaseInstance>;
}

export interface CaseInstance {
  /** Records the work on the device (the harness submits and waits). */
  run(): void;
  dispose(): void;
  /** Runs once more and reads the result (for the cross-check against the peers). */
  output?(): Promise<Float32Array>;
  /** Extra figures for the case's JSON line (e.g. peak memory), read after the repetitions. */
  metrics?(): Record<string, number>;
}

export interface Timing {
  /** GPU time between the two timestamps, when the device has timestamp queries. */
  gpuMs?: number;
  /** Host time from the launch until the work has finished. */
  wallMs: number;
}

/** One system's way of running one case: ours, tfjs-webgpu, ort-webgpu, ... */
export interface Runner {
  system: string;
  /** Runs once and waits for the work to finish. */
  time(): Promise<Timing>;
  /** Runs once and returns the output in our layout (for the cross-check), where available. */
  output?(): Promise<Float32Array>;
  /** Extra figures for the JSON line (ours: CaseInstance.metrics). */
  metrics?(): Record<string, number>;
  dispose(): void | Promise<void>;
}

export interface Summary {
  system: string;
  /** Medians over the repetitions. */
  gpuMs?: number;
  wallMs: number;
  reps: number;
}

export { median } from '../src/engine/device/tuning-measure.js';
import { median } from '../src/engine/device/tuning-measure.js';

// The GPU timer lives with the engine (tuning measures with it too); re-exported for the peers.
export { GpuTimer } from '../src/engine/device/gpu-timer.js';
import { GpuTimer } from '../src/engine/device/gpu-timer.js';

/** Options shared by the runners: timestamps can be turned off (wall time only). */
export interface RunnerOptions {
  timestamps?: boolean;
}

/** Our engine running one case on `device`. */
export async function oursRunner(device: Device, c: BenchCase, options: RunnerOptions = {}): Promise<Runner> {
  const instance = await c.setup(device);
  const gpu = device instanceof WebGpuDevice ? device.gpu : null;
  const timer = gpu && options.timestamps !== false && GpuTimer.supported(gpu) ? new GpuTimer(gpu) : null;
  return {
    system: 'ours',
    async time() {
      device.flush();
      const t0 = performance.now();
      timer?.begin();
      instance.run();
      device.flush();
      timer?.end();
      await device.sync();
      const wallMs = performance.now() - t0;
      return timer ? { wallMs, gpuMs: await timer.read() } : { wallMs };
    },
    output: instance.output ? () => instance.output!() : undefined,
    metrics: instance.metrics ? () => instance.metrics!() : undefined,
    dispose() {
      instance.dispose();
      timer?.destroy();
    },
  };
}

/**
 * Warm-up, then `reps` rounds; each round runs every runner once in turn (ours, peer, peer, ours,
 * ...), so that the machine's drift hits all of them alike. Returns one summary per runner.
 * With `budgetMs`, a slow case gets fewer repetitions (never under MIN_REPS): the last warm-up
 * round's time (or the first round's, without warm-up) decides how many rounds fit.
 */
export async function measureInterleaved(runners: Runner[], warmup = 2, reps = 5, budgetMs = Infinity): Promise<Summary[]> {
  const samples = runners.map(() => ({ gpu: [] as number[], wall: [] as number[] }));
  let rounds = warmup + reps;
  for (let round = 0; round < rounds; round++) {
    const t0 = performance.now();
    for (let i = 0; i < runners.length; i++) {
      const t = await runners[i]!.time();
      if (round < warmup) continue;
      samples[i]!.wall.push(t.wallMs);
      if (t.gpuMs !== undefined) samples[i]!.gpu.push(t.gpuMs);
    }
    if (round === Math.max(warmup - 1, 0) && Number.isFinite(budgetMs)) {
      const fit = Math.floor(budgetMs / (performance.now() - t0));
      rounds = warmup + Math.max(Math.min(reps, MIN_REPS), Math.min(reps, fit));
    }
  }
  return runners.map((r, i) => {
    const n = samples[i]!.wall.length;
    const s: Summary = { system: r.system, wallMs: median(samples[i]!.wall), reps: n };
    if (samples[i]!.gpu.length === n) s.gpuMs = median(samples[i]!.gpu);
    return s;
  });
}

/** The fewest repetitions a time budget may cut a case to. */
export const MIN_REPS = 3;

/** One JSON line of output. */
export interface Measurement {
  name: string;
  shape: string;
  device: string;
  /** 'gpu' (timestamps) or 'wall': how ours_ms (and peer_ms, ratio) were measured. */
  timing: 'gpu' | 'wall';
  ours_ms: number;
  ours_gflops?: number;
  ours_gbps?: number;
  peer?: string;
  peer_ms?: number;
  peer_gflops?: number;
  peer_gbps?: number;
  /** peer_ms / ours_ms: above 1 means ours is faster. */
  ratio?: number;
  /** max |peer - ours| / max |ours| on one output (the cross-check). */
  peer_rel_err?: number;
  /** Ours' wall time (launch to finished work), for reference next to GPU time. */
  ours_wall_ms?: number;
  reps: number;
  /** CaseInstance.metrics() figures (ours' line only). */
  [metric: string]: unknown;
}

const round3 = (x: number): number => +x.toFixed(3);

function rate(amount: number | undefined, ms: number): number | undefined {
  return amount ? round3(amount / ms / 1e6) : undefined;
}

/** Our own line, and one line per peer with the ratio on the timing both sides have. */
export function measurements(c: BenchCase, device: string, summaries: Summary[], errors: Map<string, number> = new Map()): Measurement[] {
  const ours = summaries.find((s) => s.system === 'ours');
  if (!ours) throw new Error('measurements: no summary for ours');
  const oursTiming = ours.gpuMs !== undefined ? 'gpu' : 'wall';
  const oursMs = ours.gpuMs ?? ours.wallMs;
  const base = { name: c.name, shape: c.shape, device };
  const lines: Measurement[] = [];
  const own: Measurement = { ...base, timing: oursTiming, ours_ms: round3(oursMs), reps: ours.reps };
  if (c.flops) own.ours_gflops = rate(c.flops, oursMs);
  if (c.bytes) own.ours_gbps = rate(c.bytes, oursMs);
  if (oursTiming === 'gpu') own.ours_wall_ms = round3(ours.wallMs);
  lines.push(own);
  for (const p of summaries) {
    if (p === ours) continue;
    const timing = p.gpuMs !== undefined && ours.gpuMs !== undefined ? 'gpu' : 'wall';
    const o = timing === 'gpu' ? ours.gpuMs! : ours.wallMs;
    const q = timing === 'gpu' ? p.gpuMs! : p.wallMs;
    const m: Measurement = { ...base, timing, ours_ms: round3(o), peer: p.system, peer_ms: round3(q), ratio: round3(q / o), reps: p.reps };
    if (c.flops) {
      m.ours_gflops = rate(c.flops, o);
      m.peer_gflops = rate(c.flops, q);
    }
    if (c.bytes) {
      m.ours_gbps = rate(c.bytes, o);
      m.peer_gbps = rate(c.bytes, q);
    }
    if (errors.has(p.system)) m.peer_rel_err = +errors.get(p.system)!.toPrecision(3);
    lines.push(m);
  }
  return lines;
}

/** Ours alone on one case (kept for simple uses): warm-up, repetitions, one measurement. */
export async function measure(device: Device, c: BenchCase, warmup = 2, reps = 5): Promise<Measurement> {
  const runner = await oursRunner(device, c);
  try {
    const [summary] = await measureInterleaved([runner], c.warmup ?? warmup, c.reps ?? reps);
    return measurements(c, device.description, [summary!])[0]!;
  } finally {
    await runner.dispose();
  }
}
