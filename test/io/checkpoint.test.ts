import { describe, expect, it } from 'vitest';
import { detectFormat, readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { readCheckpointFile } from '../../src/engine/io/checkpoint-node.js';
import { serializeSafetensors } from '../../src/engine/io/safetensors.js';
import {
  CheckpointError,
  type TensorData,
  bfloat16BitsToFloat32,
  halfBitsToFloat32,
  int64ToInt32,
  toEngineTensor,
  toFloat32,
} from '../../src/engine/io/tensor-data.js';
import { CRIS_TINY_DIR, crisTiny } from './helpers/fixtures.js';
import { PickleWriter, type TensorSpec } from './helpers/pickle-writer.js';
import { f32Bytes, torchZip } from './helpers/zip-writer.js';

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    return err as Error;
  }
  throw new Error('expected an error');
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('format detection', () => {
  it('recognises each fixture by its magic bytes', () => {
    expect(detectFormat(crisTiny('weights.pth'))).toBe('torch-zip');
    expect(detectFormat(crisTiny('proj_legacy_format.pth'))).toBe('torch-legacy');
    expect(detectFormat(crisTiny('weights.safetensors'))).toBe('safetensors');
    expect(detectFormat(new Uint8Array(100))).toBeNull();
  });

  it('explains what an unknown file looks like, naming it', () => {
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /empty/],
      [Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0]), /gzip-compressed/],
      [text('<!DOCTYPE html><html><body>Not found</body></html>'), /HTML/],
      [text('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n'), /Git LFS pointer/],
      [new PickleWriter(2).emptyDict().done(), /bare pickle/],
      [Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Array<number>(18).fill(0)]), /zip file without a local file header/],
      [Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), /unrecognised first bytes 01 02 03 04/],
    ];
    for (const [bytes, pattern] of cases) {
      const message = errorOf(() => readCheckpoint(bytes, 'mystery.bin')).message;
      expect(message).toMatch(/^mystery\.bin: not a checkpoint this reader knows: /);
      expect(message).toMatch(pattern);
    }
  });
});

describe('safetensors through readCheckpoint', () => {
  it('keeps stored dtypes and metadata', () => {
    const bytes = serializeSafetensors(
      { a: { dtype: 'F16', shape: [2], data: [1, -2] }, b: { dtype: 'I64', shape: [1], data: [5] } },
      { note: 'x' },
    );
    const ckpt = readCheckpoint(bytes, 'small.safetensors', { float32: true });
    expect(ckpt.format).toBe('safetensors');
    expect(ckpt.metadata).toEqual({ note: 'x' });
    expect(Array.from(ckpt.tensors.get('a')!.data as Float32Array)).toEqual([1, -2]);
    expect(ckpt.tensors.get('b')!.dtype).toBe('i64');
  });

  it('bad headers become CheckpointErrors naming the file', () => {
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
    huge[8] = 0x7b;
    expect(errorOf(() => readCheckpoint(huge, 'huge.safetensors')).message).toMatch(
      /^safetensors huge\.safetensors: header length \d+ exceeds the 100000000-byte limit/,
    );
    const good = serializeSafetensors({ a: { dtype: 'F32', shape: [4], data: [1, 2, 3, 4] } });
    expect(errorOf(() => readCheckpoint(good.subarray(0, good.length - 4), 'cut.safetensors')).message).toMatch(
      /safetensors cut\.safetensors: .*data_offsets \[0, 16\] go beyond/,
    );
  });
});

describe('state dict extraction', () => {
  const spec: TensorSpec = { storageType: 'FloatStorage', key: '0', numel: 2, shape: [2] };
  const storages = { 0: f32Bytes([1, 2]) };

  it("unwraps a 'model' entry and strips a custom prefix", () => {
    const w = new PickleWriter(2).emptyDict().mark().str('model').emptyDict().mark();
    w.str('net.encoder.w').tensor(spec).str('net.encoder.b').tensor(spec).setitems();
    w.str('step').int(12).str('name').str('run-1').str('flag').bool(true).str('hist').emptyList().setitems();
    const ckpt = readCheckpoint(torchZip(w.done(), storages), 'lightning.ckpt', { stripPrefixes: ['module.', 'net.'] });
    expect([...ckpt.tensors.keys()]).toEqual(['encoder.w', 'encoder.b']);
    expect(ckpt.metadata).toEqual({ step: 12, name: 'run-1', flag: true });
    expect(ckpt.report).toEqual(["took entry 'model' of the checkpoint dict (skipped step, name, flag, hist)", "stripped prefix 'net.' from 2 keys"]);
    // Both tensors view one storage: its bytes are read once and not copied.
    const [a, b] = [ckpt.tensors.get('encoder.w')!.data, ckpt.tensors.get('encoder.b')!.data];
    expect(a.buffer).toBe(b.buffer);
    expect(a.byteOffset).toBe(b.byteOffset);
  });

  it('flattens nested dicts, keeps a partial module. prefix, and skips non-tensor values', () => {
    const w = new PickleWriter(2).emptyDict().mark();
    w.str('module.a').tensor(spec).str('b').emptyDict().mark().str('c').tensor(spec).int(3).tensor(spec).setitems();
    w.str('lr').float(0.1).setitems();
    const ckpt = readCheckpoint(torchZip(w.done(), storages), 'nested.pth');
    expect([...ckpt.tensors.keys()]).toEqual(['module.a', 'b.c', 'b.3']);
    expect(ckpt.report).toEqual([]);
  });

  it('a bare tensor is returned under the name "tensor"; no tensors is reported', () => {
    const single = readCheckpoint(torchZip(new PickleWriter(2).tensor(spec).done(), storages), 't.pth');
    expect([...single.tensors.keys()]).toEqual(['tensor']);
    const none = readCheckpoint(torchZip(new PickleWriter(2).emptyDict().done(), {}), 'e.pth');
    expect(none.tensors.size).toBe(0);
    expect(none.report).toEqual(['no tensors found']);
  });

  it('a pickled whole nn.Module is refused by default and read with state_dict names as placeholders', () => {
    const module = (w: PickleWriter, cls: string, params: [string, TensorSpec][], buffers: [string, TensorSpec][], children: (() => void)[]): void => {
      const dot = cls.lastIndexOf('.');
      w.global(cls.slice(0, dot), cls.slice(dot + 1)).emptyTuple().newobj().emptyDict().mark();
      w.str('training').bool(false);
      w.str('_parameters').orderedDict().mark();
      for (const [n, t] of params) w.str(n).tensor(t);
      w.setitems().str('_buffers').orderedDict().mark();
      for (const [n, t] of buffers) w.str(n).tensor(t);
      w.setitems().str('_modules').orderedDict().mark();
      for (const child of children) child();
      w.setitems().setitems().build();
    };
    const w = new PickleWriter(2);
    module(w, 'model.net.Net', [['w', spec]], [['running', spec]], [
      () => {
        w.str('fc');
        module(w, 'torch.nn.modules.linear.Linear', [['weight', spec]], [], []);
      },
    ]);
    const bytes = torchZip(w.done(), storages);
    expect(errorOf(() => readCheckpoint(bytes, 'whole.pth')).message).toMatch(/whole\.pth\/archive\/data\.pkl: refused global model\.net\.Net/);
    const ckpt = readCheckpoint(bytes, 'whole.pth', { unknownGlobals: 'placeholder' });
    expect([...ckpt.tensors.keys()]).toEqual(['w', 'running', 'fc.weight']);
  });

  it('bounds the depth of nested containers', () => {
    const w = new PickleWriter(2);
    for (let i = 0; i < 70; i++) w.emptyDict().str('x');
    w.tensor(spec);
    for (let i = 0; i < 70; i++) w.setitem();
    expect(errorOf(() => readCheckpoint(torchZip(w.done(), storages), 'deep.pth')).message).toMatch(/deep\.pth: objects nested deeper than 64 levels/);
  });
});

describe('dtype conversions', () => {
  const t = (dtype: TensorData['dtype'], data: TensorData['data']): TensorData => ({ dtype, shape: [data.length], data });

  it('converts half and bfloat16 bit patterns exactly', () => {
    const half = halfBitsToFloat32(Uint16Array.from([0x3c00, 0x3555, 0x0400, 0x03ff, 0xfc00, 0x7e00]));
    expect(Array.from(half.subarray(0, 5))).toEqual([1, 0.333251953125, 2 ** -14, 1023 * 2 ** -24, -Infinity]);
    expect(Number.isNaN(half[5])).toBe(true);
    expect(Array.from(bfloat16BitsToFloat32(Uint16Array.from([0x4049, 0xff80])))).toEqual([3.140625, -Infinity]);
    expect(toFloat32(t('f64', Float64Array.from([1 / 3]))).data[0]).toBe(Math.fround(1 / 3));
    expect(() => toFloat32(t('i32', Int32Array.from([1])))).toThrow(/not a float dtype/);
  });

  it('narrows int64 with a range check, and maps everything to engine dtypes', () => {
    expect(Array.from(int64ToInt32(t('i64', BigInt64Array.from([-5n, 2147483647n]))).data)).toEqual([-5, 2147483647]);
    expect(() => int64ToInt32(t('i64', BigInt64Array.from([0n, 2n ** 31n])), 'position_ids')).toThrow(
      /position_ids: i64 value 2147483648 at index 1 does not fit in i32/,
    );
    expect(toEngineTensor(t('bool', Uint8Array.from([0, 2]))).data).toEqual(Int32Array.from([0, 1]));
    expect(toEngineTensor(t('u8', Uint8Array.from([255]))).data).toEqual(Int32Array.from([255]));
    expect(toEngineTensor(t('f16', Uint16Array.from([0x3c00]))).data).toEqual(Float32Array.from([1]));
  });
});

describe('readCheckpointFile (Node)', () => {
  it('reads a fixture from disk and names a missing file', async () => {
    const ckpt = await readCheckpointFile(`${CRIS_TINY_DIR}proj_legacy_format.pth`);
    expect(ckpt.tensors.size).toBe(16);
    await expect(readCheckpointFile(`${CRIS_TINY_DIR}nope.pth`)).rejects.toThrow(/nope\.pth: cannot read the file/);
  });
});
