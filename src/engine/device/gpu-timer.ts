/**
 * GpuTimer: GPU time of the work submitted between begin() and end() on one queue, for the bench
 * (bench/harness.ts) and the kernel tuning (device/tuning-measure.ts). Public WebGPU calls only, so
 * it works with or without WEBVLSM_PROFILE.
 */
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const QUERY_RESOLVE = 0x200;

/**
 * GPU timestamps around everything submitted between begin() and end() on one queue: each writes
 * a timestamp from an empty compute pass (queue order keeps them around the work in between).
 */
export class GpuTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly readBuffer: GPUBuffer;

  static supported(gpu: GPUDevice): boolean {
    return gpu.features.has('timestamp-query');
  }

  constructor(private readonly gpu: GPUDevice) {
    this.querySet = gpu.createQuerySet({ type: 'timestamp', count: 2, label: 'gpu-timer' });
    this.resolveBuffer = gpu.createBuffer({ size: 16, usage: QUERY_RESOLVE | COPY_SRC, label: 'gpu-timer-resolve' });
    this.readBuffer = gpu.createBuffer({ size: 16, usage: MAP_READ | COPY_DST, label: 'gpu-timer-read' });
  }

  begin(): void {
    const encoder = this.gpu.createCommandEncoder({ label: 'gpu-timer-begin' });
    encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0 } }).end();
    this.gpu.queue.submit([encoder.finish()]);
  }

  end(): void {
    const encoder = this.gpu.createCommandEncoder({ label: 'gpu-timer-end' });
    encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: 1 } }).end();
    encoder.resolveQuerySet(this.querySet, 0, 2, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, this.readBuffer, 0, 16);
    this.gpu.queue.submit([encoder.finish()]);
  }

  /** Milliseconds between the last begin() and end(); waits for the end() submit. */
  async read(): Promise<number> {
    await this.readBuffer.mapAsync(MAP_READ);
    const t = new BigUint64Array(this.readBuffer.getMappedRange().slice(0));
    this.readBuffer.unmap();
    return Number(t[1]! - t[0]!) / 1e6;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuffer.destroy();
    this.readBuffer.destroy();
  }
}
