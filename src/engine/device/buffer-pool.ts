/**
 * Pool of storage buffers keyed by size bucket, with bounded caching.
 *
 * - Sizes round up to buckets (multiples of 256 below 4 KiB, then four steps per power of two) so
 *   that buffers of nearby sizes are reused.
 * - A released buffer is "pending" until the submit that used it has been handed to the queue: a
 *   queue.writeBuffer into a buffer that recorded-but-unsubmitted work still reads would overtake
 *   that work. `onSubmit()` moves pending buffers to the free lists.
 * - At most `maxCachedBytes` in total and `maxPerBucket` buffers per bucket are kept; the rest are
 *   destroyed. When creating a buffer fails (out of memory), the cache is dropped and it is tried once
 *   more (as tinygrad's LRU allocator does).
 */

export interface PoolStats {
  pooledBuffers: number;
  pooledBytes: number;
  created: number;
}

const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x4 /* COPY_SRC */ | 0x8; /* COPY_DST */

export function bucketSize(byteSize: number): number {
  if (byteSize <= 4096) return Math.max(256, Math.ceil(byteSize / 256) * 256);
  const pow = 2 ** Math.floor(Math.log2(byteSize));
  const step = pow / 4;
  return Math.ceil(byteSize / step) * step;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  /** Bytes of the released buffers that wait for the next submit. */
  pendingBytes = 0;
  private pooledBytes = 0;
  private pooledCount = 0;
  created = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly maxCachedBytes = 512 * 1024 * 1024,
    // Training steps free hundreds of same-size temporaries (per-layer activations and gradients);
    // a low cap destroyed and recreated them every step. Memory stays bounded by maxCachedBytes.
    private readonly maxPerBucket = 1024,
  ) {}

  acquire(byteSize: number, label: string): GPUBuffer {
    const size = bucketSize(byteSize);
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused) {
      this.pooledBytes -= size;
      this.pooledCount--;
      reused.label = label;
      return reused;
    }
    return this.create(size, label);
  }

  /** The buffer may still be read by recorded work: it becomes reusable at the next submit. */
  release(buffer: GPUBuffer): void {
    this.pending.push(buffer);
    this.pendingBytes += buffer.size;
  }

  /** Called right after queue.submit(): pending buffers are now safe to hand out again. */
  onSubmit(): void {
    for (const buffer of this.pending) {
      const size = buffer.size;
      const list = this.free.get(size) ?? [];
      if (list.length >= this.maxPerBucket || this.pooledBytes + size > this.maxCachedBytes) {
        buffer.destroy();
        continue;
      }
      list.push(buffer);
      this.free.set(size, list);
      this.pooledBytes += size;
      this.pooledCount++;
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Destroys every cached buffer (pending ones stay until their submit). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.pooledBytes = 0;
    this.pooledCount = 0;
  }

  stats(): PoolStats {
    return { pooledBuffers: this.pooledCount, pooledBytes: this.pooledBytes, created: this.created };
  }

  private create(size: number, label: string): GPUBuffer {
    try {
      this.created++;
      return this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
    } catch (err) {
      if (this.pooledCount === 0) throw err;
      this.trim();
      return this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
    }
  }
}
