/**
 * CPU device: storages are ArrayBuffers and every launch runs the kernel's plain-TypeScript
 * reference on typed views. It is the reference the WebGPU device is tested against, and the
 * fallback where no adapter exists.
 */
import type { HostArray, KernelSpec } from '../../kernels/kernel-spec.js';
import { type Device, type DeviceStats, type Storage, roundAllocSize, validateLaunch } from './device.js';

interface CpuStorage extends Storage {
  data: ArrayBuffer | null;
}

let nextId = 1;

export class CpuDevice implements Device {
  readonly kind = 'cpu' as const;
  readonly description = 'cpu (kernel references in TypeScript)';
  readonly maxBindingBytes = 2 ** 31 - 4;
  readonly shaderF16 = true;
  private live = 0;
  private liveBytes = 0;
  private created = 0;
  private dispatches = 0;
  private specs = new Set<string>();

  alloc(byteSize: number, _label?: string): Storage {
    const size = roundAllocSize(byteSize);
    if (size > this.maxBindingBytes) {
      throw new Error(`cpu: allocation of ${byteSize} bytes exceeds the ${this.maxBindingBytes}-byte limit`);
    }
    this.live++;
    this.liveBytes += size;
    this.created++;
    const s: CpuStorage = { byteSize: size, refs: 1, id: nextId++, data: new ArrayBuffer(size) };
    return s;
  }

  release(storage: Storage): void {
    const s = storage as CpuStorage;
    if (s.data === null) throw new Error(`cpu: storage #${s.id} released twice`);
    s.data = null;
    this.live--;
    this.liveBytes -= s.byteSize;
  }

  write(storage: Storage, data: HostArray): void {
    const dst = new Uint8Array(this.bufferOf(storage));
    dst.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  async read(storage: Storage, byteSize: number): Promise<ArrayBuffer> {
    return this.bufferOf(storage).slice(0, byteSize);
  }

  run<P>(spec: KernelSpec<P>, params: P, storages: Storage[]): void {
    validateLaunch(spec, params, storages);
    this.specs.add(spec.key(params));
    this.dispatches++;
    const decls = spec.bindings(params);
    const views: HostArray[] = storages.map((s, i) => {
      const buf = this.bufferOf(s);
      switch (decls[i]!.type) {
        case 'f32':
          return new Float32Array(buf);
        case 'i32':
          return new Int32Array(buf);
        case 'u32':
          return new Uint32Array(buf);
        case 'f16':
          return new Uint16Array(buf);
      }
    });
    spec.reference(params, views);
  }

  flush(): void {}

  async sync(): Promise<void> {}

  stats(): DeviceStats {
    return {
      liveBuffers: this.live,
      liveBytes: this.liveBytes,
      pooledBuffers: 0,
      pooledBytes: 0,
      created: this.created,
      pipelines: this.specs.size,
      dispatches: this.dispatches,
      submits: 0,
    };
  }

  destroy(): void {}

  private bufferOf(storage: Storage): ArrayBuffer {
    const data = (storage as CpuStorage).data;
    if (data === null) throw new Error(`cpu: storage #${storage.id} used after release`);
    return data;
  }
}
