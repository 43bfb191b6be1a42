import { afterEach, describe, expect, it, vi } from 'vitest';
import { PipelineCache } from '../../src/engine/device/pipeline-cache.js';
import * as E from '../../src/engine/index.js';
import { elementwiseKernel } from '../../src/kernels/elementwise/elementwise.js';
import type { KernelSpec } from '../../src/kernels/kernel-spec.js';
import { testDevices, webgpuDevice } from '../helpers/devices.js';

/** A do-nothing 1-D kernel whose workgroup count the test chooses (never dispatched: it throws first). */
const hugeDispatch: KernelSpec<{ workgroups: number | [number, number, number] }> = {
  name: 'huge',
  key: () => 'test:huge',
  source: () => `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = 1.0; }`,
  bindings: () => [{ name: 'out', access: 'read_write', type: 'f32' }],
  uniforms: () => [],
  workgroupSize: () => 1,
  dispatch: (p) => p.workgroups,
  reference: () => {},
};

const gpu = await webgpuDevice();

describe.each(await testDevices())('device %s', (_name, device) => {
  it('refuses a tensor larger than maxBindingBytes with a clear error', () => {
    const before = device.stats().liveBuffers;
    const elements = device.maxBindingBytes / 4 + 1;
    expect(() => E.Tensor.empty([elements], 'f32', device)).toThrow(/exceeds .*(limit|storage binding)/);
    expect(device.stats().liveBuffers).toBe(before);
  });

  it('refuses to bind one buffer twice when one binding is writable', () => {
    const a = E.Tensor.full([4], 1, { device });
    const b = E.Tensor.full([4], 2, { device });
    const params = { fn: 'add' as const, shape: [4], inputStrides: [[1], [1]], flat: true };
    expect(() => device.run(elementwiseKernel, params, [a.storage, b.storage, a.storage])).toThrow(
      /elementwise:add:2:flat: buffer bound to both 'a' and 'out' while one is writable/,
    );
    expect(() => device.run(elementwiseKernel, params, [a.storage, b.storage])).toThrow(/expected 3 buffers, got 2/);
    // Two read-only bindings of one buffer are fine.
    const twice = E.add(a, a);
    twice.dispose();
    a.dispose();
    b.dispose();
  });

  it('runs ops on zero-size tensors', async () => {
    const before = device.stats().liveBuffers;
    E.scope(() => {
      const empty = E.Tensor.zeros([0, 3], { device });
      const row = E.Tensor.fromArray([1, 2, 3], [3], { device });
      expect(E.add(empty, row).shape).toEqual([0, 3]);
      expect(E.exp(empty).shape).toEqual([0, 3]);
      expect(E.reshape(empty, [3, 0]).shape).toEqual([3, 0]);
      expect(E.permute(empty, [1, 0]).shape).toEqual([3, 0]);
    });
    const [colSums, total, joined, product] = E.scope(() => {
      const empty = E.Tensor.zeros([0, 3], { device });
      const full = E.Tensor.fromArray([1, 2, 3, 4, 5, 6], [2, 3], { device });
      const a = E.Tensor.zeros([2, 0], { device });
      const b = E.Tensor.zeros([0, 3], { device });
      return [E.sum(empty, 0), E.sum(empty), E.concat([empty, full, empty], 0), E.matmul(a, b)];
    });
    expect(Array.from(await colSums!.read())).toEqual([0, 0, 0]);
    expect(await total!.item()).toBe(0);
    expect(Array.from(await joined!.read())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(product!.shape).toEqual([2, 3]);
    expect(Array.from(await product!.read())).toEqual([0, 0, 0, 0, 0, 0]);
    [colSums, total, joined, product].forEach((t) => t!.dispose());
    expect(device.stats().liveBuffers).toBe(before);
  });

  it('caches pipelines by key, not by shape', () => {
    const run = (shape: number[]) =>
      E.scope(() => {
        E.mul(E.Tensor.ones(shape, { device }), E.Tensor.ones(shape, { device }));
      });
    run([3]);
    const after = device.stats().pipelines;
    for (const shape of [[7], [2, 5], [3, 1, 4], [1000], [2, 2, 2, 2, 2]]) run(shape);
    expect(device.stats().pipelines).toBe(after);
  });

  it('buffer accounting returns to the baseline after releases', () => {
    const before = device.stats();
    const ts = [1, 10, 100, 1000].map((n) => E.Tensor.zeros([n], { device }));
    expect(device.stats().liveBuffers).toBe(before.liveBuffers + 4);
    ts.forEach((t) => t.dispose());
    const after = device.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  });

});

describe.runIf(gpu !== null)('webgpu only: dispatch folding, pool, pipeline cache', () => {
  const device = gpu!;
  afterEach(() => {
    vi.restoreAllMocks();
    delete process.env.WEBVLSM_DUMP_WGSL;
  });

  it('folds a 1-D dispatch over 65535 workgroups into 2-D, correctly', async () => {
    // 65535 workgroups of 256 cover 16776960 elements; go past that so the device must fold.
    const n = 65535 * 256 + 1000;
    const host = new Float32Array(n);
    for (let i = 0; i < n; i++) host[i] = i % 4093;
    const out = E.scope(() => E.addScalar(E.Tensor.fromArray(host, [n], { device }), 1));
    const got = (await out.read()) as Float32Array;
    out.dispose();
    let bad = -1;
    for (let i = 0; i < n; i++) {
      if (got[i] !== (i % 4093) + 1) {
        bad = i;
        break;
      }
    }
    expect(bad, `first wrong element at ${bad}: ${got[bad]}`).toBe(-1);
  });

  it('refuses dispatches beyond what folding can reach', () => {
    const t = E.Tensor.zeros([1], { device });
    expect(() => device.run(hugeDispatch, { workgroups: 65536 * 65536 }, [t.storage])).toThrow(/test:huge: 4294967296 workgroups exceed 65535x65535/);
    expect(() => device.run(hugeDispatch, { workgroups: [1, 70000, 1] }, [t.storage])).toThrow(/exceeds 65535 workgroups per dimension/);
    device.flush();
    t.dispose();
  });

  it('returns a released buffer to the pool only after the submit that used it', async () => {
    const bufferOf = (t: E.Tensor) => (t.storage as unknown as { buffer: GPUBuffer }).buffer;
    // Drain buffers released earlier: they wait for a submit, and a flush with nothing recorded is none.
    E.scope(() => {
      E.addScalar(E.Tensor.zeros([1], { device }), 1);
    });
    await device.sync();
    const a = E.Tensor.full([1000], 1, { device });
    const aBuffer = bufferOf(a);
    const b = E.addScalar(a, 1); // recorded, not yet submitted: it still reads a's buffer
    const pooled = device.stats().pooledBuffers;
    a.dispose();
    expect(device.stats().pooledBuffers).toBe(pooled);
    // A same-size allocation before the submit must not get a's buffer back.
    const c = E.Tensor.empty([1000], 'f32', device);
    expect(bufferOf(c)).not.toBe(aBuffer);
    const beforeSubmit = device.stats().pooledBuffers;
    device.flush();
    expect(device.stats().pooledBuffers).toBe(beforeSubmit + 1);
    // After the submit it is reused.
    const d = E.Tensor.empty([1000], 'f32', device);
    expect(bufferOf(d)).toBe(aBuffer);
    expect(Array.from(await b.read())).toEqual(new Array(1000).fill(2));
    [b, c, d].forEach((t) => t.dispose());
  });

  it('defers dispatch-count submits while new pipelines are recorded, then submits every flushEvery', async () => {
    // A second engine device on the same GPUDevice starts with an empty pipeline cache. (Not
    // destroyed at the end: that would destroy the shared GPUDevice.)
    const fresh = new E.WebGpuDevice(device.gpu, device.description, { flushEvery: 4 });
    const x = E.Tensor.full([16], 1, { device: fresh });
    const chain = (from: E.Tensor) => E.scope(() => {
      let y = from;
      for (let i = 0; i < 12; i++) y = E.addScalar(y, 1);
      return y;
    });
    const submits = () => fresh.stats().submits;
    const before = submits();
    // 12 dispatches and more, of pipelines new to this device: no submit before the read.
    const y = chain(x);
    expect(submits()).toBe(before);
    expect(Array.from(await y.read())).toEqual(new Array(16).fill(13));
    // Every pipeline known now: a submit every 4 dispatches.
    const afterRead = submits();
    const z = chain(y);
    expect(submits()).toBe(afterRead + 3);
    expect(Array.from(await z.read())).toEqual(new Array(16).fill(25));
    [x, y, z].forEach((t) => t.dispose());
  });

  it('compiles each key once and dumps WGSL when WEBVLSM_DUMP_WGSL is set', () => {
    process.env.WEBVLSM_DUMP_WGSL = 'elementwise:neg';
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const cache = new PipelineCache(device.gpu);
    const params = (shape: number[]) => ({ fn: 'neg' as const, shape, inputStrides: [[1]], flat: true });
    const first = cache.get(elementwiseKernel, params([4]));
    expect(cache.get(elementwiseKernel, params([99]))).toBe(first);
    expect(cache.size).toBe(1);
    cache.get(elementwiseKernel, { fn: 'exp', shape: [4], inputStrides: [[1]], flat: true });
    expect(cache.keys()).toEqual(['elementwise:neg:1:flat', 'elementwise:exp:1:flat']);
    // Only the key matching the filter was printed, once.
    expect(log).toHaveBeenCalledTimes(1);
    expect(String(log.mock.calls[0]![0])).toMatch(/WGSL for pipeline elementwise:neg:1:flat[\s\S]*@compute/);
  });
});
