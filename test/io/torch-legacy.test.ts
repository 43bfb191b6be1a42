import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { LEGACY_MAGIC, LEGACY_PREFIX, readTorchLegacy } from '../../src/engine/io/torch-legacy.js';
import { CheckpointError, type TensorData, tensorsBitEqual } from '../../src/engine/io/tensor-data.js';
import { crisTiny } from './helpers/fixtures.js';
import { PickleWriter } from './helpers/pickle-writer.js';

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    return err as Error;
  }
  throw new Error('expected an error');
}

interface LegacyTensor {
  name: string;
  key: string;
  numel: number;
  shape: number[];
  stride: number[];
  offset?: number;
  view?: [string, number, number];
}

/** Builds a legacy-format file: magic, 1001, sys_info, object, keys, storages (f32). */
function legacyFile(
  tensors: LegacyTensor[],
  storages: [string, number[]][],
  options: { littleEndian?: boolean; version?: number; magicProtocol?: number; countFor?: (key: string, n: number) => number } = {},
): Uint8Array {
  const little = options.littleEndian ?? true;
  const parts: Uint8Array[] = [];
  parts.push(new PickleWriter(options.magicProtocol ?? 2).long(LEGACY_MAGIC).done());
  parts.push(new PickleWriter(2).int(options.version ?? 1001).done());
  const sys = new PickleWriter(2).emptyDict().mark().str('protocol_version').int(1001).str('little_endian').bool(little);
  sys.str('type_sizes').emptyDict().mark().str('short').int(2).str('int').int(4).str('long').int(4).setitems().setitems();
  parts.push(sys.done());
  const obj = new PickleWriter(2).orderedDict().mark();
  for (const t of tensors) {
    obj.str(t.name).global('torch._utils', '_rebuild_tensor_v2').mark();
    obj.mark().str('storage').global('torch', 'FloatStorage').str(t.key).str('cpu').int(t.numel);
    if (t.view) obj.str(t.view[0]).int(t.view[1]).int(t.view[2]).tuple(3);
    else obj.none();
    obj.tuple().persid().int(t.offset ?? 0).mark();
    for (const d of t.shape) obj.int(d);
    obj.tuple().mark();
    for (const s of t.stride) obj.int(s);
    obj.tuple().bool(false).orderedDict().tuple().reduce();
  }
  parts.push(obj.setitems().done());
  const keys = new PickleWriter(2).emptyList().mark();
  for (const [key] of storages) keys.str(key);
  parts.push(keys.appends().done());
  for (const [key, values] of storages) {
    const block = new Uint8Array(8 + values.length * 4);
    const view = new DataView(block.buffer);
    view.setBigInt64(0, BigInt(options.countFor?.(key, values.length) ?? values.length), little);
    values.forEach((v, i) => view.setFloat32(8 + i * 4, v, little));
    parts.push(block);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const f32 = (t: TensorData | undefined): number[] => Array.from(t!.data as Float32Array);

describe('legacy torch format', () => {
  it('proj_legacy_format.pth matches its reference safetensors bit for bit', () => {
    const legacy = readCheckpoint(crisTiny('proj_legacy_format.pth'), 'proj_legacy_format.pth');
    const reference = readCheckpoint(crisTiny('proj_legacy_format.reference.safetensors'), 'ref.safetensors');
    expect(legacy.format).toBe('torch-legacy');
    expect(legacy.tensors.size).toBe(16);
    expect([...legacy.tensors.keys()]).toEqual([...reference.tensors.keys()]);
    for (const [key, t] of reference.tensors) expect(tensorsBitEqual(legacy.tensors.get(key)!, t), key).toBe(true);
    expect(legacy.tensors.get('vis.1.0.weight')!.shape).toEqual([64, 64, 3, 3]);
  });

  it('starts with the documented magic bytes', () => {
    const bytes = crisTiny('proj_legacy_format.pth');
    expect(Array.from(bytes.subarray(0, LEGACY_PREFIX.length))).toEqual(LEGACY_PREFIX);
  });

  it('reads storage views, shared storages and strides', () => {
    const bytes = legacyFile(
      [
        { name: 'a', key: 's0', numel: 6, shape: [2, 3], stride: [3, 1] },
        { name: 'aT', key: 's0', numel: 6, shape: [3, 2], stride: [1, 3] },
        { name: 'v', key: 's0', numel: 6, shape: [2], stride: [1], offset: 1, view: ['s0v', 2, 3] },
      ],
      [['s0', [0, 1, 2, 3, 4, 5]]],
    );
    const t = readCheckpoint(bytes, 'views.pth').tensors;
    expect(f32(t.get('a'))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(f32(t.get('aT'))).toEqual([0, 3, 1, 4, 2, 5]);
    expect(f32(t.get('v'))).toEqual([3, 4]);
  });

  it('reads big-endian files', () => {
    const bytes = legacyFile([{ name: 'a', key: 'k', numel: 3, shape: [3], stride: [1] }], [['k', [1.5, -2, 1e-3]]], { littleEndian: false });
    expect(readTorchLegacy(bytes, 'be.pth').littleEndian).toBe(false);
    expect(f32(readCheckpoint(bytes, 'be.pth').tensors.get('a'))).toEqual([1.5, -2, Math.fround(1e-3)]);
  });

  it('detects legacy files whose pickles use a higher protocol', () => {
    const bytes = legacyFile([{ name: 'a', key: 'k', numel: 2, shape: [2], stride: [1] }], [['k', [7, 8]]], { magicProtocol: 4 });
    expect(bytes[1]).toBe(4);
    const ckpt = readCheckpoint(bytes, 'p4.pth');
    expect(ckpt.format).toBe('torch-legacy');
    expect(f32(ckpt.tensors.get('a'))).toEqual([7, 8]);
  });

  it('rejects bad versions, count mismatches and unknown or missing storages', () => {
    const one: LegacyTensor[] = [{ name: 'a', key: 'k', numel: 3, shape: [3], stride: [1] }];
    expect(errorOf(() => readCheckpoint(legacyFile(one, [['k', [1, 2, 3]]], { version: 1000 }), 'v.pth')).message).toMatch(
      /v\.pth: unsupported legacy protocol version 1000/,
    );
    const count = legacyFile(one, [['k', [1, 2, 3]]], { countFor: () => 2 ** 40 });
    expect(errorOf(() => readCheckpoint(count, 'n.pth')).message).toMatch(/n\.pth: storage 'k' holds 1099511627776 elements, but the pickle says 3/);
    const extra = legacyFile(one, [['k', [1, 2, 3]], ['zz', [1]]]);
    expect(errorOf(() => readCheckpoint(extra, 'x.pth')).message).toMatch(/storage key "zz" is listed but no tensor uses it/);
    const missing = legacyFile(one, []);
    expect(errorOf(() => readCheckpoint(missing, 'm.pth')).message).toMatch(/storage 'k' is used by a tensor but missing from the storage key list/);
    const badMagic = crisTiny('proj_legacy_format.pth');
    badMagic[12] = badMagic[12]! ^ 1;
    expect(errorOf(() => readCheckpoint(badMagic, 'magic.pth')).message).toMatch(/magic\.pth: bad magic number/);
  });

  it('every truncation of the fixture is a clear error naming the file', () => {
    const bytes = crisTiny('proj_legacy_format.pth');
    const cuts = [8, 15, 20, 100, 137, 1000, 1936, 2216, 2220, 2300, bytes.length >> 1, bytes.length - 1];
    for (const cut of cuts) {
      const message = errorOf(() => readCheckpoint(bytes.subarray(0, cut), 'cut.pth')).message;
      expect(message).toMatch(/^cut\.pth/);
      if (cut >= 2216) expect(message).toMatch(/truncated file: storage/);
    }
  });
});
