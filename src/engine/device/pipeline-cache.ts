/**
 * Compiled pipelines keyed by KernelSpec.key: one per distinct WGSL text, never one per shape.
 * Layouts are explicit (not 'auto', which would drop bindings a variant leaves unused).
 * WEBVLSM_DUMP_WGSL=1 (or a substring of the key) prints the WGSL of each new pipeline.
 */
import type { KernelSpec } from '../../kernels/kernel-spec.js';

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  hasUniforms: boolean;
}

function envFlag(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}

export class PipelineCache {
  private cache = new Map<string, CachedPipeline>();
  private readonly dumpFilter = envFlag('WEBVLSM_DUMP_WGSL');
  readonly debug = envFlag('WEBVLSM_DEBUG') === '1';

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.cache.size;
  }

  keys(): string[] {
    return [...this.cache.keys()];
  }

  get<P>(spec: KernelSpec<P>, params: P): CachedPipeline {
    const key = spec.key(params);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const code = spec.source(params);
    if (this.dumpFilter && (this.dumpFilter === '1' || key.includes(this.dumpFilter))) {
      console.log(`// ---- WGSL for pipeline ${key}\n${code}`);
    }
    const hasUniforms = spec.uniforms(params).length > 0;
    const entries: GPUBindGroupLayoutEntry[] = spec.bindings(params).map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' },
    }));
    if (hasUniforms) {
      entries.push({ binding: entries.length, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    }
    const layout = this.device.createBindGroupLayout({ label: key, entries });
    if (this.debug) this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label: key, code });
    // NOTE: synchronous creation keeps `run` synchronous; Mesa caches compiled shaders on disk.
    const pipeline = this.device.createComputePipeline({
      label: key,
      layout: this.device.createPipelineLayout({ label: key, bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    if (this.debug) {
      void this.device.popErrorScope().then((err) => {
        if (err) console.error(`pipeline ${key} failed: ${err.message}\n${code}`);
      });
    }
    const entry = { pipeline, layout, hasUniforms };
    this.cache.set(key, entry);
    return entry;
  }
}
