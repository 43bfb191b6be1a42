/**
 * WebGPU device: takes any GPUDevice (Dawn in Node, navigator.gpu in a browser) and never imports
 * Dawn itself; engine/platform/* obtains the device.
 *
 * Launches are recorded into one command encoder and one compute pass, and submitted on every read,
 * every `flushEvery` dispatches, or when the uniform arena is full.
 *
 * While the recording holds a pipeline created since the last submit, the dispatch-count flush
 * waits until the buffers released since that submit (which only a submit lets the pool reuse)
 * exceed COLD_PENDING_BYTES; the uniform arena is sized for such long recordings. Why: on lavapipe
 * (Dawn in Node) the shader JIT runs when submitted work first executes, under the queue's lock,
 * and createComputePipeline on the JS thread waits for that lock. A first CRIS forward on a cold
 * Mesa shader cache that submitted every 64 dispatches blocked the JS thread for 50 s (vitest's
 * worker RPC gives up after 60 s); recorded whole, it blocked 1.0 s and compiled while the read
 * awaited. Once every pipeline is known, submits come every `flushEvery` dispatches again.
 */
import type { HostArray, KernelSpec } from '../../kernels/kernel-spec.js';
import { BufferPool } from './buffer-pool.js';
import { type Device, type DeviceStats, type Storage, roundAllocSize, validateLaunch } from './device.js';
import { PipelineCache } from './pipeline-cache.js';
import { GpuProfiler } from './profiler.js';
import { UniformArena } from './uniform-arena.js';

interface GpuStorage extends Storage {
  buffer: GPUBuffer | null;
}

export interface WebGpuDeviceOptions {
  /** Submit after this many recorded dispatches (tfjs uses 15, ORT 16, ggml 64). */
  flushEvery?: number;
  /** Time every kernel with GPU timestamps (also WEBVLSM_PROFILE=1): see profiler.ts. */
  profile?: boolean;
  /** Upper bound for buffers the pool keeps. */
  maxPooledBytes?: number;
}

let nextId = 1;

/** Released bytes at which a recording with new pipelines is submitted anyway (see above). */
const COLD_PENDING_BYTES = 256 * 1024 * 1024;
/** Uniform slots of the arena: dispatches one recording can hold. */
const ARENA_SLOTS = 8192;

export class WebGpuDevice implements Device {
  readonly kind = 'webgpu' as const;
  readonly maxBindingBytes: number;
  readonly shaderF16: boolean;
  private readonly pool: BufferPool;
  private readonly pipelines: PipelineCache;
  private readonly arena: UniformArena;
  private readonly flushEvery: number;
  private readonly maxWorkgroupsPerDim: number;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private recorded = 0;
  /** A pipeline was created since the last submit. */
  private newPipelineRecorded = false;
  private live = 0;
  private liveBytes = 0;
  private dispatches = 0;
  private submits = 0;
  /** Per-kernel GPU time when profiling (WEBVLSM_PROFILE=1). */
  readonly profiler: GpuProfiler | null;

  constructor(
    readonly gpu: GPUDevice,
    readonly description: string,
    options: WebGpuDeviceOptions = {},
  ) {
    this.flushEvery = options.flushEvery ?? 64;
    this.maxBindingBytes = gpu.limits.maxStorageBufferBindingSize;
    // platform/gpu-device.ts requests 'shader-f16' whenever the adapter offers it.
    this.shaderF16 = gpu.features.has('shader-f16');
    this.maxWorkgroupsPerDim = gpu.limits.maxComputeWorkgroupsPerDimension;
    this.pool = new BufferPool(gpu, options.maxPooledBytes);
    this.pipelines = new PipelineCache(gpu);
    const align = gpu.limits.minUniformBufferOffsetAlignment;
    this.arena = new UniformArena(gpu, align * Math.max(ARENA_SLOTS, this.flushEvery * 2), align);
    const profile = options.profile ?? (typeof process !== 'undefined' && process.env?.['WEBVLSM_PROFILE'] === '1');
    this.profiler = profile && GpuProfiler.supported(gpu) ? new GpuProfiler(gpu) : null;
  }

  alloc(byteSize: number, label = 'tensor'): Storage {
    const size = roundAllocSize(byteSize);
    if (size > this.maxBindingBytes) {
      throw new Error(
        `webgpu: a ${byteSize}-byte tensor (${label}) exceeds this adapter's storage binding limit of ` +
          `${this.maxBindingBytes} bytes; split the work into smaller batches`,
      );
    }
    const buffer = this.pool.acquire(size, label);
    this.live++;
    this.liveBytes += size;
    const s: GpuStorage = { byteSize: size, refs: 1, id: nextId++, buffer };
    return s;
  }

  release(storage: Storage): void {
    const s = storage as GpuStorage;
    if (s.buffer === null) throw new Error(`webgpu: storage #${s.id} released twice`);
    this.pool.release(s.buffer);
    s.buffer = null;
    this.live--;
    this.liveBytes -= s.byteSize;
  }

  write(storage: Storage, data: HostArray): void {
    if (data.byteLength === 0) return;
    this.gpu.queue.writeBuffer(this.bufferOf(storage), 0, data.buffer, data.byteOffset, data.byteLength);
  }

  async read(storage: Storage, byteSize: number): Promise<ArrayBuffer> {
    const size = roundAllocSize(byteSize);
    const staging = this.gpu.createBuffer({
      label: 'readback',
      size,
      usage: 0x1 /* MAP_READ */ | 0x8 /* COPY_DST */,
    });
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(this.bufferOf(storage), 0, staging, 0, size);
    this.flush();
    await staging.mapAsync(0x1 /* GPUMapMode.READ */);
    const out = staging.getMappedRange().slice(0, byteSize);
    staging.unmap();
    staging.destroy();
    return out;
  }

  run<P>(spec: KernelSpec<P>, params: P, storages: Storage[]): void {
    validateLaunch(spec, params, storages);
    const known = this.pipelines.size;
    const { pipeline, layout, hasUniforms } = this.pipelines.get(spec, params);
    if (this.pipelines.size !== known) this.newPipelineRecorded = true;
    const words = spec.uniforms(params);
    if (hasUniforms && !this.arena.fits(words)) this.flush();
    const entries: GPUBindGroupEntry[] = storages.map((s, i) => ({
      binding: i,
      resource: { buffer: this.bufferOf(s), size: s.byteSize },
    }));
    if (hasUniforms) {
      const slot = this.arena.push(words);
      entries.push({
        binding: storages.length,
        resource: { buffer: this.arena.buffer, offset: slot.offset, size: slot.size },
      });
    }
    const key = spec.key(params);
    const bindGroup = this.gpu.createBindGroup({ label: key, layout, entries });
    if (this.profiler?.full) this.flush();
    const pass = this.profiler ? this.ensureEncoder().beginComputePass(this.profiler.passFor(key)) : this.ensurePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y, z] = this.fold(spec.dispatch(params), key);
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) pass.end();
    this.dispatches++;
    if (++this.recorded >= this.flushEvery && (!this.newPipelineRecorded || this.pool.pendingBytes > COLD_PENDING_BYTES)) this.flush();
  }

  flush(): void {
    this.endPass();
    if (!this.encoder) {
      // Nothing recorded since the last submit: no unsubmitted work can read the pending buffers.
      this.pool.onSubmit();
      return;
    }
    this.arena.upload(this.gpu.queue);
    const afterSubmit = this.profiler?.beforeSubmit(this.encoder) ?? null;
    this.gpu.queue.submit([this.encoder.finish()]);
    afterSubmit?.();
    this.encoder = null;
    this.recorded = 0;
    this.newPipelineRecorded = false;
    this.submits++;
    this.pool.onSubmit();
  }

  async sync(): Promise<void> {
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
  }

  stats(): DeviceStats {
    const pool = this.pool.stats();
    return {
      liveBuffers: this.live,
      liveBytes: this.liveBytes,
      pooledBuffers: pool.pooledBuffers,
      pooledBytes: pool.pooledBytes,
      created: pool.created,
      pipelines: this.pipelines.size,
      dispatches: this.dispatches,
      submits: this.submits,
    };
  }

  /** Keys of every pipeline compiled so far (tests bound how many one model pass builds). */
  pipelineKeys(): string[] {
    return this.pipelines.keys();
  }

  destroy(): void {
    this.flush();
    this.pool.trim();
    this.gpu.destroy();
  }

  /** 1-D launches above the per-dimension limit are folded into 2-D; kernels guard the overrun. */
  private fold(dispatch: number | [number, number, number], key: string): [number, number, number] {
    const max = this.maxWorkgroupsPerDim;
    if (typeof dispatch !== 'number') {
      if (dispatch.some((d) => d > max)) {
        throw new Error(`${key}: dispatch [${dispatch.join(', ')}] exceeds ${max} workgroups per dimension`);
      }
      return dispatch;
    }
    if (dispatch <= max) return [dispatch, 1, 1];
    const y = Math.ceil(dispatch / max);
    if (y > max) throw new Error(`${key}: ${dispatch} workgroups exceed ${max}x${max}`);
    return [Math.ceil(dispatch / y), y, 1];
  }

  private ensureEncoder(): GPUCommandEncoder {
    this.encoder ??= this.gpu.createCommandEncoder({ label: 'webvlsm-batch' });
    return this.encoder;
  }

  private ensurePass(): GPUComputePassEncoder {
    this.pass ??= this.ensureEncoder().beginComputePass({ label: 'webvlsm-pass' });
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private bufferOf(storage: Storage): GPUBuffer {
    const buffer = (storage as GpuStorage).buffer;
    if (buffer === null) throw new Error(`webgpu: storage #${storage.id} used after release`);
    return buffer;
  }
}
