/**
 * Per-kernel GPU time, for finding the slow kernels of a workload (WEBVLSM_PROFILE=1, or
 * `new WebGpuDevice(gpu, name, { profile: true })`). Each dispatch then gets its own compute pass
 * that writes a timestamp at its start and end (the 'timestamp-query' feature); at every submit
 * the timestamps are resolved and read back asynchronously, and summed per kernel key. Profiling
 * serialises passes, so the total is an upper bound of unprofiled time; the split between kernels
 * is what it is for. `report()` waits for outstanding readbacks.
 */
export interface KernelTime {
  key: string;
  count: number;
  ms: number;
}

const SLOTS = 1024; // dispatches per submit at most (the device flushes every 64 by default)

export class GpuProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private keys: string[] = [];
  private readonly totals = new Map<string, KernelTime>();
  private pending: Promise<void>[] = [];

  constructor(private readonly gpu: GPUDevice) {
    this.querySet = gpu.createQuerySet({ type: 'timestamp', count: 2 * SLOTS, label: 'profiler' });
    this.resolveBuffer = gpu.createBuffer({ label: 'profiler-resolve', size: 16 * SLOTS, usage: 0x200 /* QUERY_RESOLVE */ | 0x4 /* COPY_SRC */ });
  }

  static supported(gpu: GPUDevice): boolean {
    return gpu.features.has('timestamp-query');
  }

  /** True when the current submit has no free slot left (the device flushes first). */
  get full(): boolean {
    return this.keys.length >= SLOTS;
  }

  /** The descriptor of the pass of one dispatch of `key`. */
  passFor(key: string): GPUComputePassDescriptor {
    const slot = this.keys.length;
    this.keys.push(key);
    return { label: key, timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * slot, endOfPassWriteIndex: 2 * slot + 1 } };
  }

  /** Called with the encoder about to be submitted: resolves this submit's timestamps. */
  beforeSubmit(encoder: GPUCommandEncoder): (() => void) | null {
    const keys = this.keys;
    if (keys.length === 0) return null;
    this.keys = [];
    const bytes = 16 * keys.length;
    const staging = this.gpu.createBuffer({ label: 'profiler-read', size: bytes, usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */ });
    encoder.resolveQuerySet(this.querySet, 0, 2 * keys.length, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, staging, 0, bytes);
    return () => {
      this.pending.push(staging.mapAsync(0x1).then(() => {
        const t = new BigUint64Array(staging.getMappedRange().slice(0));
        staging.destroy();
        keys.forEach((key, i) => {
          const ns = Number(t[2 * i + 1]! - t[2 * i]!);
          const e = this.totals.get(key) ?? { key, count: 0, ms: 0 };
          e.count++;
          e.ms += ns / 1e6;
          this.totals.set(key, e);
        });
      }));
    };
  }

  /** Kernel times so far, slowest first; `reset` clears them. */
  async report(reset = false): Promise<KernelTime[]> {
    await Promise.all(this.pending);
    this.pending = [];
    const out = [...this.totals.values()].map((e) => ({ ...e })).sort((a, b) => b.ms - a.ms);
    if (reset) this.totals.clear();
    return out;
  }
}
