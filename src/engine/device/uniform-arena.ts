/**
 * One uniform buffer per batch of dispatches, with aligned slots (ggml's param arena): each launch
 * packs its uniform words into the next slot of a host-side staging array; at flush the used part
 * is written with one queue.writeBuffer right before the submit. Reusing the same GPU buffer for the
 * next batch is safe because queue writes and submits execute in queue order.
 */
import type { UniformWord } from '../../kernels/kernel-spec.js';

export class UniformArena {
  readonly buffer: GPUBuffer;
  private readonly host: ArrayBuffer;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly f32: Float32Array;
  private used = 0;

  constructor(
    device: GPUDevice,
    readonly capacity: number,
    private readonly alignment: number,
  ) {
    this.buffer = device.createBuffer({
      label: 'uniform-arena',
      size: capacity,
      usage: 0x40 /* UNIFORM */ | 0x8 /* COPY_DST */,
    });
    this.host = new ArrayBuffer(capacity);
    this.u32 = new Uint32Array(this.host);
    this.i32 = new Int32Array(this.host);
    this.f32 = new Float32Array(this.host);
  }

  /** Bytes a slot for these words takes (uniform blocks are at least 16 bytes). */
  slotBytes(words: UniformWord[]): number {
    const bytes = Math.max(16, Math.ceil((words.length * 4) / 16) * 16);
    return Math.ceil(bytes / this.alignment) * this.alignment;
  }

  fits(words: UniformWord[]): boolean {
    return this.used + this.slotBytes(words) <= this.capacity;
  }

  /** Packs the words; returns the binding's offset and size. */
  push(words: UniformWord[]): { offset: number; size: number } {
    const offset = this.used;
    const size = Math.max(16, Math.ceil((words.length * 4) / 16) * 16);
    let w = offset / 4;
    for (const word of words) {
      if ('u32' in word) this.u32[w] = word.u32;
      else if ('i32' in word) this.i32[w] = word.i32;
      else this.f32[w] = word.f32;
      w++;
    }
    this.used += this.slotBytes(words);
    return { offset, size };
  }

  /** Writes the used slots to the GPU buffer; call right before queue.submit. */
  upload(queue: GPUQueue): void {
    if (this.used > 0) queue.writeBuffer(this.buffer, 0, this.host, 0, this.used);
    this.used = 0;
  }
}
