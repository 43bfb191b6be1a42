/**
 * Measuring one tuning problem: set it up once, run every candidate once as a warm-up (which
 * compiles its pipelines; a candidate that throws or raises a WebGPU error there is skipped with
 * the reason), then time the survivors in interleaved rounds (a b a b ..., so that drift in a
 * shared machine's load hits all of them alike) and pick the lowest median.
 *
 * Time is GPU time where the device has 'timestamp-query': two empty compute passes that write
 * timestamps bracket everything submitted in between (queue order keeps them around the work; the
 * GpuTimer of device/gpu-timer.ts, shared with the bench). Otherwise, or when the timestamps read back as zero, wall time from
 * the launch to the finished work.
 */
import type { Device } from './device.js';
import { scope } from '../scope.js';
import type { TunableProblem } from './tuning.js';
import { GpuTimer } from './gpu-timer.js';
import { WebGpuDevice } from './webgpu.js';

export interface ProblemMeasurement {
  name: string;
  shapeClass: string;
  /** The fastest candidate, or null when none could run (or setup failed). */
  choice: string | null;
  /** Median per candidate that ran. */
  ms: Record<string, number>;
  /** Candidates (or '*' for the whole problem) that failed, with the reason. */
  skipped: Record<string, string>;
  timing: 'gpu' | 'wall';
  /** Timed runs per candidate actually made. */
  reps: number;
}

export interface MeasureOptions {
  reps?: number | undefined;
  budgetMs?: number | undefined;
  log: (line: string) => void;
}

const MAX_REPS = 9;

const ERROR_FILTERS: GPUErrorFilter[] = ['validation', 'out-of-memory', 'internal'];

/**
 * Runs `fn` and submits its work; with a GPUDevice, inside error scopes so that a shader that does
 * not compile (reported asynchronously, not thrown) surfaces here as an Error.
 */
async function runChecked(device: Device, fn: () => void): Promise<void> {
  const gpu = device instanceof WebGpuDevice ? device.gpu : null;
  if (!gpu) {
    fn();
    return;
  }
  for (const f of ERROR_FILTERS) gpu.pushErrorScope(f);
  let thrown: unknown = null;
  try {
    fn();
    device.flush();
  } catch (err) {
    thrown = err;
  }
  const errors: (GPUError | null)[] = [];
  for (let i = 0; i < ERROR_FILTERS.length; i++) errors.push(await gpu.popErrorScope());
  if (thrown) throw thrown;
  const first = errors.find((e) => e !== null);
  if (first) throw new Error(first.message.split('\n')[0] || 'WebGPU error');
  await device.sync();
}

/** Median of a list (NaN when empty); the bench uses it too. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const reason = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

/** Measures every candidate of one problem; never throws (failures are skipped and logged). */
export async function measureProblem(
  device: Device,
  name: string,
  candidates: readonly string[],
  problem: TunableProblem,
  options: MeasureOptions,
): Promise<ProblemMeasurement> {
  const label = `${name}[${problem.shapeClass}]`;
  const out: ProblemMeasurement = { name, shapeClass: problem.shapeClass, choice: null, ms: {}, skipped: {}, timing: 'wall', reps: 0 };
  let instance: ReturnType<TunableProblem['setup']>;
  try {
    instance = problem.setup(device);
  } catch (err) {
    out.skipped['*'] = `setup failed: ${reason(err)}`;
    options.log(`tuning: ${label}: skipped, ${out.skipped['*']}`);
    return out;
  }
  const gpu = device instanceof WebGpuDevice && device.gpu.features.has('timestamp-query') ? device.gpu : null;
  const timer = gpu ? new GpuTimer(gpu) : null;
  try {
    const live: string[] = [];
    for (const c of candidates) {
      try {
        await runChecked(device, () => scope(() => instance.run(c)));
        live.push(c);
      } catch (err) {
        out.skipped[c] = reason(err);
        options.log(`tuning: ${label}: candidate '${c}' skipped: ${out.skipped[c]}`);
      }
    }
    const samples = new Map<string, { gpu: number[]; wall: number[] }>(live.map((c) => [c, { gpu: [], wall: [] }]));
    const reps = Math.min(MAX_REPS, Math.max(1, Math.floor(options.reps ?? 3)));
    const budgetMs = options.budgetMs ?? 2000;
    const started = performance.now();
    for (let r = 0; r < reps && samples.size > 0; r++) {
      if (r > 0 && performance.now() - started > budgetMs) break;
      for (const [c, s] of samples) {
        try {
          device.flush();
          timer?.begin();
          const t0 = performance.now();
          scope(() => instance.run(c));
          device.flush();
          if (timer) {
            timer.end();
            s.gpu.push(await timer.read());
          }
          else await device.sync();
          s.wall.push(performance.now() - t0);
        } catch (err) {
          out.skipped[c] = reason(err);
          options.log(`tuning: ${label}: candidate '${c}' skipped: ${out.skipped[c]}`);
          samples.delete(c);
        }
      }
      out.reps = r + 1;
    }
    // Timestamps that read back as zero (an implementation that does not really count) mean nothing.
    const useGpu = timer !== null && samples.size > 0 && [...samples.values()].every((s) => s.gpu.length > 0 && s.gpu.every((ms) => ms > 0));
    out.timing = useGpu ? 'gpu' : 'wall';
    let best = Infinity;
    for (const [c, s] of samples) {
      const ms = median(useGpu ? s.gpu : s.wall);
      out.ms[c] = ms;
      if (ms < best) {
        best = ms;
        out.choice = c;
      }
    }
  } finally {
    timer?.destroy();
    try {
      instance.dispose();
    } catch (err) {
      options.log(`tuning: ${label}: dispose failed: ${reason(err)}`);
    }
  }
  if (out.choice === null && !out.skipped['*']) options.log(`tuning: ${label}: no candidate ran; the op keeps its default`);
  return out;
}
