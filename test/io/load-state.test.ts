import { describe, expect, it } from 'vitest';
import * as E from '../../src/engine/index.js';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { LoadStateError, type LoadStateReport, formatLoadReport, loadState, loadStateFromSafetensors } from '../../src/engine/io/load-state.js';
import { serializeSafetensors } from '../../src/engine/io/safetensors.js';
import { openSafetensors } from '../../src/engine/io/safetensors-lazy.js';
import { openSafetensorsFile } from '../../src/engine/io/safetensors-lazy-node.js';
import { type TensorData, toEngineTensor } from '../../src/engine/io/tensor-data.js';
import { cpuDevice, testDevices } from '../helpers/devices.js';
import { CRIS_TINY_DIR, crisTiny } from './helpers/fixtures.js';

type Spec = [name: string, shape: number[], dtype?: 'f32' | 'i32'];

const BUFFER = /(running_mean|running_var|num_batches_tracked)$/;

/** A module tree with zero-filled parameters (f32) and buffers (i32 or BN statistics) at dotted names. */
function moduleFor(specs: Spec[], device: E.Device): E.Module {
  const root = new E.Module();
  const modules = new Map<string, E.Module>([['', root]]);
  for (const [name, shape, dtype = 'f32'] of specs) {
    const parts = name.split('.');
    let path = '';
    let owner = root;
    for (const part of parts.slice(0, -1)) {
      const next = path ? `${path}.${part}` : part;
      let child = modules.get(next);
      if (!child) {
        child = owner.registerModule(part, new E.Module());
        modules.set(next, child);
      }
      owner = child;
      path = next;
    }
    const t = E.Tensor.zeros(shape, { device, dtype });
    const leaf = parts[parts.length - 1]!;
    if (dtype === 'i32' || BUFFER.test(name)) owner.registerBuffer(leaf, t);
    else owner.registerParameter(leaf, t);
  }
  return root;
}

/** The model a checkpoint's keys describe: i64 tensors become i32 buffers, floats f32. */
function moduleForCheckpoint(tensors: Map<string, TensorData>, device: E.Device): E.Module {
  return moduleFor([...tensors].map(([k, t]): Spec => [k, [...t.shape], t.dtype === 'i64' ? 'i32' : 'f32']), device);
}

async function values(m: E.Module): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const [k, t] of m.stateDict()) out.set(k, Array.from(await t.read()));
  return out;
}

function f32(shape: number[], data: number[]): TensorData {
  return { dtype: 'f32', shape, data: Float32Array.from(data) };
}

function errorOf(fn: () => unknown): LoadStateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LoadStateError);
    return err as LoadStateError;
  }
  throw new Error('expected a LoadStateError');
}

describe.each(await testDevices())('loadState on %s', (_name, device) => {
  it('loads f32, f16 -> f32 and i64 -> i32 values in place, with a report', async () => {
    const m = moduleFor([['fc.weight', [2, 2]], ['fc.bias', [2]], ['bn.num_batches_tracked', [], 'i32']], device);
    const weight = m.stateDict().get('fc.weight')!;
    const report = loadState(m, new Map<string, TensorData>([
      ['fc.weight', f32([2, 2], [1, 2, 3, 4])],
      ['fc.bias', { dtype: 'f16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) }], // 1, -2
      ['bn.num_batches_tracked', { dtype: 'i64', shape: [], data: BigInt64Array.from([7n]) }],
    ]));
    expect(report.loaded).toEqual(['fc.weight', 'fc.bias', 'bn.num_batches_tracked']);
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.converted).toEqual([
      { name: 'fc.bias', from: 'f16', to: 'f32' },
      { name: 'bn.num_batches_tracked', from: 'i64', to: 'i32' },
    ]);
    expect(m.stateDict().get('fc.weight')).toBe(weight); // same tensor object, new values
    expect(Object.fromEntries(await values(m))).toEqual({ 'fc.weight': [1, 2, 3, 4], 'fc.bias': [1, -2], 'bn.num_batches_tracked': [7] });
    m.dispose();
  });

  it('loads the cris_tiny checkpoints (zip, training format, legacy) into a model with their keys', async () => {
    const reference = readCheckpoint(crisTiny('proj_legacy_format.reference.safetensors'), 'ref');
    const m = moduleForCheckpoint(reference.tensors, device);
    const report = loadState(m, readCheckpoint(crisTiny('proj_legacy_format.pth'), 'legacy').tensors);
    expect(report.loaded).toHaveLength(16);
    const got = await values(m);
    for (const [k, t] of reference.tensors) expect(got.get(k)).toEqual(Array.from(toEngineTensor(t, k).data));
    m.dispose();
  });
});

describe('loadState on cpu: problems, partial loads, renames', () => {
  const device = cpuDevice;
  const specs: Spec[] = [['enc.w', [2, 3]], ['enc.b', [2]], ['dec.w', [3]], ['dec.steps', [1], 'i32']];

  it('strict mode throws one error listing every problem, and writes nothing', async () => {
    const m = moduleFor(specs, device);
    const err = errorOf(() =>
      loadState(m, {
        'enc.w': f32([3, 2], [1, 2, 3, 4, 5, 6]), // transposed: shape mismatch
        'dec.w': f32([3], [1, 2, 3]),
        'dec.steps': { dtype: 'i64', shape: [1], data: BigInt64Array.from([2n ** 40n]) }, // out of i32 range
        'extra.bias': f32([4], [0, 0, 0, 0]),
      }),
    );
    expect(err.problems).toEqual([
      "missing: 'enc.b' [2]",
      "unexpected: 'extra.bias' [4] f32",
      "shape: 'enc.w' is [3, 2] in the checkpoint, [2, 3] in the model",
      "dtype: 'dec.steps' (i64 -> i32): i64 value 1099511627776 at index 0 does not fit in i32",
    ]);
    expect(err.message).toMatch(/^loadState\(Module\): 4 problems; nothing was loaded\n {2}missing: 'enc\.b' \[2\]\n/);
    expect(err.report.shapeMismatch).toEqual([{ name: 'enc.w', key: 'enc.w', expected: [2, 3], actual: [3, 2] }]);
    expect((await values(m)).get('dec.w')).toEqual([0, 0, 0]); // untouched
    m.dispose();
  });

  it('refuses floats into i32 tensors and inexact integers into f32 ones', () => {
    const m = moduleFor(specs, device);
    const err = errorOf(() =>
      loadState(m, {
        'enc.w': { dtype: 'i64', shape: [2, 3], data: BigInt64Array.from([1n, 2n, 3n, 4n, 5n, 2n ** 25n + 1n]) },
        'enc.b': f32([2], [0, 0]),
        'dec.w': f32([3], [0, 0, 0]),
        'dec.steps': f32([1], [1]),
      }),
    );
    expect(err.problems).toEqual([
      "dtype: 'enc.w' (i64 -> f32): i64 value 33554433 at index 5 is not exact in f32 (|v| > 2^24)",
      "dtype: 'dec.steps' (f32 -> i32): a f32 tensor cannot be loaded into an i32 tensor",
    ]);
    m.dispose();
  });

  it('non-strict loads a part (prefix) and reports missing, unexpected and ignored keys', async () => {
    const dec = moduleFor([['w', [3]], ['steps', [1], 'i32'], ['norm.bias', [3]]], device);
    const ckpt = new Map<string, TensorData>([
      ['enc.w', f32([2, 3], [1, 2, 3, 4, 5, 6])],
      ['dec.w', f32([3], [7, 8, 9])],
      ['dec.steps', { dtype: 'i32', shape: [1], data: Int32Array.from([5]) }],
      ['dec.extra', f32([1], [0])],
    ]);
    expect(() => loadState(dec, ckpt, { prefix: 'dec' })).toThrow(/2 problems; nothing was loaded\n {2}missing: 'norm\.bias' \[3\]\n {2}unexpected: 'extra' \[1\] f32 \(checkpoint key 'dec\.extra'\)/);
    const report = loadState(dec, ckpt, { prefix: 'dec.', strict: false });
    expect(report).toEqual<LoadStateReport>({
      loaded: ['w', 'steps'],
      missing: [{ name: 'norm.bias', shape: [3] }],
      unexpected: [{ name: 'extra', key: 'dec.extra', shape: [1], dtype: 'f32' }],
      shapeMismatch: [],
      dtypeMismatch: [],
      converted: [],
      ignored: ['enc.w'],
    });
    expect(Object.fromEntries(await values(dec))).toEqual({ w: [7, 8, 9], steps: [5], 'norm.bias': [0, 0, 0] });
    expect(formatLoadReport(report)).toBe(
      'loaded 2 tensors\nmissing 1: norm.bias\nunexpected 1: extra\nignored 1 keys outside the prefix or dropped by rename',
    );
    // Shape problems still throw without strict, unless skipMismatched.
    const wrong = new Map([['dec.w', f32([1, 3], [1, 2, 3])]]);
    expect(() => loadState(dec, wrong, { prefix: 'dec', strict: false })).toThrow(/shape: 'w' is \[1, 3\] in the checkpoint \(key 'dec\.w'\), \[3\] in the model/);
    const skipped = loadState(dec, wrong, { prefix: 'dec', strict: false, skipMismatched: true });
    expect(skipped.loaded).toEqual([]);
    expect(skipped.shapeMismatch).toHaveLength(1);
    dec.dispose();
  });

  it('renames with a function or a table, drops keys with null, and refuses two keys for one name', async () => {
    const m = moduleFor([['layers.0.weight', [2]], ['layers.1.weight', [2]]], device);
    const ckpt = { 'blocks.0.w': f32([2], [1, 2]), 'blocks.1.w': f32([2], [3, 4]), position_ids: f32([2], [0, 1]) };
    const report = loadState(m, ckpt, {
      rename: (k) => (k === 'position_ids' ? null : k.replace(/^blocks\.(\d+)\.w$/, 'layers.$1.weight')),
    });
    expect(report.loaded).toEqual(['layers.0.weight', 'layers.1.weight']);
    expect(report.ignored).toEqual(['position_ids']);
    expect([...(await values(m)).values()]).toEqual([[1, 2], [3, 4]]);
    const table = loadState(m, ckpt, { rename: { 'blocks.0.w': 'layers.0.weight', 'blocks.1.w': 'layers.1.weight', position_ids: null } });
    expect(table.loaded).toHaveLength(2);
    const err = errorOf(() => loadState(m, ckpt, { rename: () => 'layers.0.weight' }));
    expect(err.problems[0]).toBe("duplicate: checkpoint keys 'blocks.0.w' and 'blocks.1.w' both map to 'layers.0.weight'");
    m.dispose();
  });

  it('accepts engine Tensors of the same dtype and device', async () => {
    const m = moduleFor([['w', [3]]], device);
    const t = E.Tensor.fromArray([4, 5, 6], [3], { device });
    expect(loadState(m, new Map([['w', t]])).loaded).toEqual(['w']);
    expect(Array.from(await m.stateDict().get('w')!.read())).toEqual([4, 5, 6]);
    const i = E.Tensor.fromArray(Int32Array.from([1, 2, 3]), [3], { device });
    expect(() => loadState(m, new Map([['w', i]]))).toThrow(/engine tensor of dtype i32; it is not converted/);
    [t, i].forEach((x) => x.dispose());
    m.dispose();
  });

  it('streams from a lazy safetensors file: same result as the eager load', async () => {
    const eager = readCheckpoint(crisTiny('weights.safetensors'), 'eager');
    const a = moduleForCheckpoint(eager.tensors, device);
    const b = moduleForCheckpoint(eager.tensors, device);
    const fromMap = loadState(a, readCheckpoint(crisTiny('weights.pth'), 'pth').tensors);
    const lazy = await openSafetensorsFile(`${CRIS_TINY_DIR}weights.safetensors`);
    const fromFile = await loadStateFromSafetensors(b, lazy);
    await lazy.close();
    expect(fromFile).toEqual(fromMap);
    expect(fromMap.loaded).toHaveLength(302);
    expect(fromMap.converted.filter((c) => c.from === 'i64')).toHaveLength(35);
    expect(await values(b)).toEqual(await values(a));
    a.dispose();
    b.dispose();
  });

  it('lazy loads convert F16 and check everything before writing', async () => {
    const bytes = serializeSafetensors({
      'dec.w': { dtype: 'F16', shape: [3], data: [0.5, 1, -1] },
      'dec.steps': { dtype: 'I64', shape: [1], data: [2 ** 33] },
    });
    const m = moduleFor([['w', [3]], ['steps', [1], 'i32']], device);
    const lazy = await openSafetensors(new Blob([bytes.slice()]));
    await expect(loadStateFromSafetensors(m, lazy, { prefix: 'dec' })).rejects.toThrow(/i64 value 8589934592 at index 0 does not fit in i32/);
    expect((await values(m)).get('w')).toEqual([0, 0, 0]);
    const report = await loadStateFromSafetensors(m, lazy, { prefix: 'dec', rename: { steps: null }, strict: false });
    expect(report.loaded).toEqual(['w']);
    expect(report.converted).toEqual([{ name: 'w', from: 'f16', to: 'f32' }]);
    expect((await values(m)).get('w')).toEqual([0.5, 1, -1]);
    m.dispose();
  });
});
