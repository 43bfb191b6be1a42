/**
 * The benchmark machinery is correct (no speed assertions): the hand-written ONNX protobuf runs
 * through onnxruntime-node's CPU EP and gives the right numbers, the peer graphs compute the same
 * math as independent float64 references, and the harness interleaves, takes medians, computes
 * ratios and writes RESULTS.md sections as documented.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BenchCase,
  GpuTimer,
  MIN_REPS,
  type Runner,
  measure,
  measureInterleaved,
  measurements,
  median,
  oursRunner,
} from '../../bench/harness.js';
import { onnxModel } from '../../bench/peers/onnx.js';
import { type PeerOp, opInputs, permuteHost, relativeError } from '../../bench/peers/ops.js';
import { ortProgram, ortRunner } from '../../bench/peers/ort.js';
import { REFERENCE_DESIGN, referenceDesignRunner } from '../../bench/peers/reference.js';
import { resultsTable, writeResults } from '../../bench/report.js';
import * as E from '../../src/engine/index.js';
import { expectClose } from '../helpers/allclose.js';
import { cpuDevice, webgpuDevice } from '../helpers/devices.js';

async function runCpu(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'] });
  try {
    return (await session.run(feeds)) as Record<string, ort.Tensor>;
  } finally {
    await session.release();
  }
}

describe('ONNX protobuf writer', () => {
  it('writes a 2x2 MatMul graph that onnxruntime-node CPU EP runs exactly', async () => {
    const model = onnxModel({
      inputs: [
        { name: 'A', shape: [2, 2] },
        { name: 'B', shape: [2, 2] },
      ],
      outputs: [{ name: 'Y', shape: [2, 2] }],
      nodes: [{ op: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'] }],
    });
    const out = await runCpu(model, {
      A: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [2, 2]),
      B: new ort.Tensor('float32', new Float32Array([5, 6, 7, 8]), [2, 2]),
    });
    expect(out['Y']!.dims).toEqual([2, 2]);
    expect(Array.from(out['Y']!.data as Float32Array)).toEqual([19, 22, 43, 50]);
  });

  it('writes initializers, negative int, int-list and float attributes', async () => {
    // Y = Softmax(Transpose(A) * 2, axis = -1) with the factor as a scalar initializer.
    const model = onnxModel({
      inputs: [{ name: 'A', shape: [2, 3] }],
      outputs: [{ name: 'Y', shape: [3, 2] }],
      nodes: [
        { op: 'Transpose', inputs: ['A'], outputs: ['T'], attributes: { perm: [1, 0] } },
        { op: 'Mul', inputs: ['T', 'two'], outputs: ['M'] },
        { op: 'Softmax', inputs: ['M'], outputs: ['Y'], attributes: { axis: -1 } },
      ],
      initializers: [{ name: 'two', shape: [], data: new Float32Array([2]) }],
    });
    const a = [0, 1, 2, 3, 4, 5];
    const out = await runCpu(model, { A: new ort.Tensor('float32', new Float32Array(a), [2, 3]) });
    const expected: number[] = [];
    for (let j = 0; j < 3; j++) {
      const row = [a[j]! * 2, a[3 + j]! * 2];
      const m = Math.max(...row);
      const s = row.reduce((acc, v) => acc + Math.exp(v - m), 0);
      expected.push(...row.map((v) => Math.exp(v - m) / s));
    }
    expectClose(out['Y']!.data as Float32Array, expected, 1e-6, 1e-5, 'softmax');

    // LayerNormalization's epsilon is a float attribute: a huge epsilon must change the result.
    const ln = (eps: number) =>
      onnxModel({
        inputs: [{ name: 'X', shape: [1, 4] }],
        outputs: [{ name: 'Y', shape: [1, 4] }],
        nodes: [{ op: 'LayerNormalization', inputs: ['X', 'W'], outputs: ['Y'], attributes: { axis: -1, epsilon: { float: eps } } }],
        initializers: [{ name: 'W', shape: [4], data: new Float32Array([1, 1, 1, 1]) }],
      });
    const x = new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [1, 4]);
    const y = (await runCpu(ln(3.75), { X: x }))['Y']!.data as Float32Array;
    // mean 2.5, variance 1.25: (x - 2.5) / sqrt(1.25 + 3.75) = (x - 2.5) / sqrt(5).
    expectClose(y, [1, 2, 3, 4].map((v) => (v - 2.5) / Math.sqrt(5)), 1e-6, 1e-5, 'layer_norm eps');
  });
});

/** Independent float64 references in our layouts. */
function reference(op: PeerOp): number[] {
  const inputs = opInputs(op).map((t) => Array.from(t.data));
  switch (op.kind) {
    case 'matmul': {
      const [a, b] = inputs as [number[], number[]];
      const out: number[] = [];
      for (let i = 0; i < op.m; i++) {
        for (let j = 0; j < op.n; j++) {
          let s = 0;
          for (let p = 0; p < op.k; p++) s += a[i * op.k + p]! * b[p * op.n + j]!;
          out.push(s);
        }
      }
      return out;
    }
    case 'attention': {
      const [q, k, v] = inputs as [number[], number[], number[]];
      const { heads, seq, dim } = op;
      const out: number[] = [];
      for (let h = 0; h < heads; h++) {
        const at = (t: number[], i: number, d: number) => t[(h * seq + i) * dim + d]!;
        for (let i = 0; i < seq; i++) {
          const s = [...Array(seq).keys()].map((j) => {
            let dot = 0;
            for (let d = 0; d < dim; d++) dot += at(q, i, d) * at(k, j, d);
            return dot / Math.sqrt(dim);
          });
          const m = Math.max(...s);
          const e = s.map((x) => Math.exp(x - m));
          const z = e.reduce((acc, x) => acc + x, 0);
          for (let d = 0; d < dim; d++) out.push(e.reduce((acc, w, j) => acc + (w / z) * at(v, j, d), 0));
        }
      }
      return out;
    }
    case 'conv2d': {
      const [x, w, b] = inputs as [number[], number[], number[]];
      const { cin, cout, kernel, size, padding } = op;
      const outSize = size + 2 * padding - kernel + 1;
      const out: number[] = [];
      for (let o = 0; o < cout; o++) {
        for (let y = 0; y < outSize; y++) {
          for (let xx = 0; xx < outSize; xx++) {
            let s = b[o]!;
            for (let c = 0; c < cin; c++) {
              for (let ky = 0; ky < kernel; ky++) {
                for (let kx = 0; kx < kernel; kx++) {
                  const iy = y + ky - padding;
                  const ix = xx + kx - padding;
                  if (iy < 0 || ix < 0 || iy >= size || ix >= size) continue;
                  s += x[(c * size + iy) * size + ix]! * w[((o * cin + c) * kernel + ky) * kernel + kx]!;
                }
              }
            }
            out.push(s);
          }
        }
      }
      return out;
    }
    case 'layer_norm': {
      const [x, w, b] = inputs as [number[], number[], number[]];
      const out: number[] = [];
      for (let r = 0; r < op.rows; r++) {
        const row = x.slice(r * op.cols, (r + 1) * op.cols);
        const mean = row.reduce((a, v) => a + v, 0) / op.cols;
        const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / op.cols;
        row.forEach((v, c) => out.push(((v - mean) / Math.sqrt(variance + op.eps)) * w[c]! + b[c]!));
      }
      return out;
    }
    case 'softmax': {
      const [x] = inputs as [number[]];
      const n = op.shape[op.shape.length - 1]!;
      const out: number[] = [];
      for (let r = 0; r < x.length / n; r++) {
        const row = x.slice(r * n, (r + 1) * n);
        const m = Math.max(...row);
        const z = row.reduce((a, v) => a + Math.exp(v - m), 0);
        out.push(...row.map((v) => Math.exp(v - m) / z));
      }
      return out;
    }
  }
}

const TINY_OPS: PeerOp[] = [
  { kind: 'matmul', m: 5, k: 7, n: 3 },
  { kind: 'attention', heads: 2, seq: 6, dim: 4 },
  { kind: 'conv2d', cin: 3, cout: 4, kernel: 3, size: 5, padding: 1 },
  { kind: 'conv2d', cin: 3, cout: 2, kernel: 1, size: 4, padding: 0 },
  { kind: 'layer_norm', rows: 3, cols: 8, eps: 1e-5 },
  { kind: 'softmax', shape: [2, 3, 7] },
];

describe('ONNX Runtime peer graphs (CPU EP)', () => {
  it.each(TINY_OPS.map((op) => [`${op.kind} ${JSON.stringify(op)}`, op] as const))('%s matches a float64 reference', async (_, op) => {
    const runner = await ortRunner(op, { provider: 'cpu' });
    try {
      expectClose(await runner.output!(), reference(op), 1e-5, 1e-4, op.kind);
      const t = await runner.time();
      expect(t.wallMs).toBeGreaterThanOrEqual(0);
      expect(t.gpuMs).toBeUndefined();
    } finally {
      await runner.dispose();
    }
  });

  it('the com.microsoft MultiHeadAttention variant matches too (layout [1, L, H*D] permuted back)', async () => {
    const op: PeerOp = { kind: 'attention', heads: 3, seq: 5, dim: 4 };
    const runner = await ortRunner(op, { provider: 'cpu', attention: 'mha' });
    try {
      expect(runner.system).toBe('ort-cpu:mha');
      expectClose(await runner.output!(), reference(op), 1e-5, 1e-4, 'mha');
    } finally {
      await runner.dispose();
    }
  });

  it('builds matmul weights as initializers (only activations are fed per run)', () => {
    const p = ortProgram({ kind: 'matmul', m: 2, k: 3, n: 4 });
    expect(p.graph.inputs.map((v) => v.name)).toEqual(['A']);
    expect(p.graph.initializers!.map((v) => [v.name, v.shape])).toEqual([['B', [3, 4]]]);
  });
});

describe('host helpers', () => {
  it('permuteHost matches index arithmetic', () => {
    const t = { shape: [2, 3, 4], data: Float32Array.from({ length: 24 }, (_, i) => i) };
    const p = permuteHost(t, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) expect(p.data[(a * 2 + b) * 3 + c]).toBe((b * 3 + c) * 4 + a);
    }
  });

  it('relativeError and median', () => {
    expect(relativeError(new Float32Array([1, 2]), new Float32Array([1, 4]))).toBe(0.5);
    expect(relativeError(new Float32Array([NaN]), new Float32Array([1]))).toBe(Infinity);
    expect(relativeError(new Float32Array(2), new Float32Array(3))).toBe(Infinity);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
});

/** A runner that returns scripted times and logs its calls. */
function fake(system: string, log: string[], wall: number[], gpu?: number[]): Runner {
  let i = 0;
  return {
    system,
    async time() {
      log.push(system);
      const k = i++;
      return gpu ? { wallMs: wall[k]!, gpuMs: gpu[k]! } : { wallMs: wall[k]! };
    },
    dispose() {},
  };
}

describe('harness', () => {
  it('interleaves the runners, drops the warm-up and takes medians', async () => {
    const log: string[] = [];
    const a = fake('ours', log, [100, 5, 1, 3], [100, 4, 2, 6]);
    const b = fake('peer', log, [100, 10, 30, 20]);
    const [sa, sb] = await measureInterleaved([a, b], 1, 3);
    expect(log).toEqual(['ours', 'peer', 'ours', 'peer', 'ours', 'peer', 'ours', 'peer']);
    expect(sa).toEqual({ system: 'ours', wallMs: 3, gpuMs: 4, reps: 3 });
    expect(sb).toEqual({ system: 'peer', wallMs: 20, reps: 3 });
  });

  it('a time budget cuts repetitions, never below MIN_REPS', async () => {
    const log: string[] = [];
    const slow: Runner = {
      system: 'ours',
      async time() {
        log.push('x');
        await new Promise((r) => setTimeout(r, 20));
        return { wallMs: 1 };
      },
      dispose() {},
    };
    const [s] = await measureInterleaved([slow], 1, 10, 1);
    expect(s!.reps).toBe(MIN_REPS);
    expect(log.length).toBe(1 + MIN_REPS);
    log.length = 0;
    const [s0] = await measureInterleaved([slow], 0, 10, 1);
    expect(s0!.reps).toBe(MIN_REPS);
    expect(log.length).toBe(MIN_REPS);
    const [few] = await measureInterleaved([slow], 0, 2, 1);
    expect(few!.reps).toBe(2);
  });

  it('ratios compare GPU with GPU time and wall with wall time', () => {
    const c: BenchCase = { name: 'matmul', shape: '2x2x2', flops: 16e6, setup: () => ({ run() {}, dispose() {} }) };
    const lines = measurements(
      c,
      'dev',
      [
        { system: 'ours', gpuMs: 2, wallMs: 4, reps: 5 },
        { system: 'tfjs-webgpu', gpuMs: 6, wallMs: 7, reps: 5 },
        { system: 'ort-webgpu', wallMs: 10, reps: 5 },
      ],
      new Map([['ort-webgpu', 1e-7]]),
    );
    expect(lines[0]).toMatchObject({ timing: 'gpu', ours_ms: 2, ours_wall_ms: 4, ours_gflops: 8 });
    expect(lines[0]!.peer).toBeUndefined();
    expect(lines[1]).toMatchObject({ peer: 'tfjs-webgpu', timing: 'gpu', ours_ms: 2, peer_ms: 6, ratio: 3, peer_gflops: 2.667 });
    expect(lines[2]).toMatchObject({ peer: 'ort-webgpu', timing: 'wall', ours_ms: 4, peer_ms: 10, ratio: 2.5, peer_rel_err: 1e-7 });
    const table = resultsTable(lines);
    expect(table).toContain('| matmul | 2x2x2 | 2.0 (gpu) | 4.0 | 8.00 GFLOP/s | 6.0 (gpu) | **3.00x** |');
    expect(table).toContain('| 10.0 (wall) | **2.50x** | 1.0e-7 |');
  });

  it('times our engine on the CPU device and returns its output', async () => {
    const c: BenchCase = {
      name: 'matmul',
      shape: '2x2x2',
      setup(device) {
        const a = E.keep(E.Tensor.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2], { device }));
        const b = E.keep(E.Tensor.fromArray(new Float32Array([5, 6, 7, 8]), [2, 2], { device }));
        const f = () => E.matmul(a, b);
        return {
          run: () => E.noGrad(() => E.scope(() => void f())),
          output: async () => {
            const y = E.noGrad(() => E.keep(f()));
            const data = (await y.read()) as Float32Array;
            y.dispose();
            return data;
          },
          dispose: () => [a, b].forEach((t) => t.dispose()),
        };
      },
    };
    const before = cpuDevice.stats().liveBuffers;
    const runner = await oursRunner(cpuDevice, c);
    expect(Array.from(await runner.output!())).toEqual([19, 22, 43, 50]);
    const t = await runner.time();
    expect(t.gpuMs).toBeUndefined();
    await runner.dispose();
    expect(cpuDevice.stats().liveBuffers).toBe(before);
    const m = await measure(cpuDevice, c, 1, 3);
    expect(m).toMatchObject({ name: 'matmul', shape: '2x2x2', device: cpuDevice.description, timing: 'wall', reps: 3 });
  });

  it("the issue's reference design runs matmul.ts tile 8 on the same inputs as the peers and frees them", async () => {
    const op: PeerOp = { kind: 'matmul', m: 13, k: 9, n: 11 };
    const [a, b] = opInputs(op);
    const want = new Float64Array(13 * 11);
    for (let m = 0; m < 13; m++)
      for (let n = 0; n < 11; n++)
        for (let k = 0; k < 9; k++) want[m * 11 + n]! += a!.data[m * 9 + k]! * b!.data[k * 11 + n]!;
    const before = cpuDevice.stats().liveBuffers;
    const runner = await referenceDesignRunner(cpuDevice, op, false);
    expect(runner.system).toBe(REFERENCE_DESIGN);
    expectClose(await runner.output!(), want, 1e-6, 1e-5, 'reference design output');
    await runner.time();
    await runner.dispose();
    expect(cpuDevice.stats().liveBuffers).toBe(before);
    await expect(referenceDesignRunner(cpuDevice, { kind: 'softmax', shape: [2, 3] }, false)).rejects.toThrow(/only matmul cases, not softmax/);
  });

  it('GpuTimer brackets submitted work on a WebGPU device with timestamp queries', async () => {
    const device = await webgpuDevice();
    if (!device || !GpuTimer.supported(device.gpu)) return;
    const timer = new GpuTimer(device.gpu);
    try {
      timer.begin();
      const x = E.Tensor.fromArray(new Float32Array(4096).fill(1), [64, 64], { device });
      const y = E.noGrad(() => E.matmul(x, x));
      device.flush();
      timer.end();
      const ms = await timer.read();
      expect(Number.isFinite(ms)).toBe(true);
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(Array.from(((await y.read()) as Float32Array).slice(0, 2))).toEqual([64, 64]);
      x.dispose();
      y.dispose();
    } finally {
      timer.destroy();
    }
  });
});

describe('RESULTS.md', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces its adapter section and keeps the others', () => {
    const path = join(dir, 'RESULTS.md');
    const line = (ms: number) => ({ name: 'softmax', shape: '4', device: 'd', timing: 'wall' as const, ours_ms: ms, reps: 3 });
    const suite = 'kernels vs peers';
    writeResults(path, { date: 'd1', adapter: 'gpu A', suite, command: 'c', notes: ['n1'] }, [line(1)]);
    writeResults(path, { date: 'd2', adapter: 'gpu B', suite, command: 'c', notes: [] }, [line(2)]);
    writeResults(path, { date: 'd4', adapter: 'gpu A', suite: 'models', command: 'c', notes: [] }, [line(4)]);
    writeResults(path, { date: 'd3', adapter: 'gpu A', suite, command: 'c', notes: [] }, [line(3)]);
    const text = readFileSync(path, 'utf8');
    expect(text.match(/^# Benchmark results/gm)!.length).toBe(1);
    expect(text.match(/^## gpu A: kernels vs peers$/gm)!.length).toBe(1);
    expect(text).toContain('## gpu A: models');
    expect(text).toContain('## gpu B: kernels vs peers');
    expect(text).toContain('- date: d4');
    expect(text).toContain('- date: d3');
    expect(text).not.toContain('- date: d1');
    expect(text).toContain('"ours_ms":2');
    writeFileSync(path, '');
  });
});
