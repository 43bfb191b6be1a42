import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/engine/io/checkpoint.js';
import { parseSafetensors } from '../../src/engine/io/safetensors.js';
import { readTorchZip } from '../../src/engine/io/torch-zip.js';
import { CheckpointError, type TensorData, tensorBytes, tensorsBitEqual } from '../../src/engine/io/tensor-data.js';
import { ZipArchive } from '../../src/engine/io/zip.js';
import { crisTiny } from './helpers/fixtures.js';
import { PickleWriter, type TensorSpec, stateDictPickle } from './helpers/pickle-writer.js';
import { f32Bytes, stateDictZip, torchZip, writeZip } from './helpers/zip-writer.js';

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CheckpointError);
    return err as Error;
  }
  throw new Error('expected an error');
}

function expectSameTensors(actual: Map<string, TensorData>, expected: Map<string, TensorData>): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, e] of expected) {
    const a = actual.get(key)!;
    if (!tensorsBitEqual(a, e)) {
      expect({ key, dtype: a.dtype, shape: a.shape }).toEqual({ key, dtype: e.dtype, shape: e.shape });
      expect(tensorBytes(a)).toEqual(tensorBytes(e));
    }
  }
}

const values = (t: TensorData): number[] => Array.from(t.data as Float32Array);

describe('cris_tiny fixtures', () => {
  const reference = readCheckpoint(crisTiny('weights.safetensors'), 'weights.safetensors');

  it('weights.safetensors has the CRIS state dict with f32 and i64 tensors', () => {
    expect(reference.format).toBe('safetensors');
    expect(reference.tensors.size).toBe(302);
    expect(reference.metadata.format).toBe('pt');
    expect(reference.tensors.get('backbone.positional_embedding')?.shape).toEqual([77, 64]);
    const nbt = [...reference.tensors.entries()].find(([k]) => k.endsWith('num_batches_tracked'))![1];
    expect(nbt.dtype).toBe('i64');
    expect(nbt.shape).toEqual([]);
    // Cross-check against the safetensors reader's own decoding.
    const file = parseSafetensors(crisTiny('weights.safetensors'), 'weights.safetensors');
    const key = 'neck.f1_v_proj.0.weight';
    expect(values(reference.tensors.get(key)!)).toEqual(Array.from(file.get(key).data));
  });

  it('weights.pth (torch zip) loads to bit-identical tensors', () => {
    const ckpt = readCheckpoint(crisTiny('weights.pth'), 'weights.pth');
    expect(ckpt.format).toBe('torch-zip');
    expect(ckpt.report).toEqual([]);
    expectSameTensors(ckpt.tensors, reference.tensors);
    // Same order as the safetensors header (both follow state_dict() order).
    expect([...ckpt.tensors.keys()]).toEqual(parseSafetensors(crisTiny('weights.safetensors')).keys());
  });

  it('checkpoint_train_format.pth is unwrapped, its module. prefix stripped, and loads bit-identically', () => {
    const ckpt = readCheckpoint(crisTiny('checkpoint_train_format.pth'), 'checkpoint_train_format.pth');
    expect(ckpt.format).toBe('torch-zip');
    expect(ckpt.report).toEqual([
      "took entry 'state_dict' of the checkpoint dict (skipped epoch, cur_iou, best_iou, prec)",
      "stripped prefix 'module.' from 302 keys",
    ]);
    expect(ckpt.metadata).toEqual({ epoch: 7, cur_iou: 0.25, best_iou: 0.5 });
    expectSameTensors(ckpt.tensors, reference.tensors);
  });

  it('without unwrapping, keys keep their full dotted path', () => {
    const ckpt = readCheckpoint(crisTiny('checkpoint_train_format.pth'), 'c.pth', { unwrap: false });
    expect([...ckpt.tensors.keys()][0]).toBe('state_dict.module.backbone.positional_embedding');
  });

  it('reads the archive prefix from the file (weights/...)', () => {
    const parsed = readTorchZip(crisTiny('weights.pth'), 'weights.pth');
    expect(parsed.prefix).toBe('weights/');
    expect(parsed.protocol).toBe(2);
    expect(parsed.littleEndian).toBe(true);
  });
});

describe('synthetic torch zip archives', () => {
  const storage = f32Bytes(Array.from({ length: 24 }, (_, i) => i));
  const spec = (over: Partial<TensorSpec>): TensorSpec => ({ storageType: 'FloatStorage', key: '0', numel: 24, shape: [24], ...over });

  it('materialises offsets, strides, shared storages, scalars, zero-size and expanded views', () => {
    const bytes = stateDictZip(
      [
        ['full', spec({ shape: [4, 6] })],
        ['transposed', spec({ shape: [6, 4], stride: [1, 6] })],
        ['slice', spec({ shape: [2, 3], stride: [6, 1], offset: 7 })],
        ['stepped', spec({ shape: [3], stride: [5], offset: 2 })],
        ['scalar', spec({ shape: [], stride: [], offset: 5 })],
        ['empty', spec({ shape: [0, 3], stride: [3, 1] })],
        ['expanded', spec({ shape: [2, 3], stride: [0, 1], offset: 1 })],
      ],
      { 0: storage },
    );
    const t = readCheckpoint(bytes, 'views.pth').tensors;
    expect(values(t.get('full')!)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(t.get('transposed')!.shape).toEqual([6, 4]);
    expect(values(t.get('transposed')!).slice(0, 8)).toEqual([0, 6, 12, 18, 1, 7, 13, 19]);
    expect(values(t.get('slice')!)).toEqual([7, 8, 9, 13, 14, 15]);
    expect(values(t.get('stepped')!)).toEqual([2, 7, 12]);
    expect(t.get('scalar')!.shape).toEqual([]);
    expect(values(t.get('scalar')!)).toEqual([5]);
    expect(t.get('empty')!.data.length).toBe(0);
    expect(values(t.get('expanded')!)).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it('decodes every storage dtype and converts floats to f32 on request', () => {
    const u16 = (xs: number[]): Uint8Array => new Uint8Array(Uint16Array.from(xs).buffer);
    const bytes = stateDictZip(
      [
        ['half', { storageType: 'HalfStorage', key: 'h', numel: 6, shape: [6] }],
        ['bf16', { storageType: 'BFloat16Storage', key: 'b', numel: 2, shape: [2] }],
        ['f64', { storageType: 'DoubleStorage', key: 'd', numel: 2, shape: [2] }],
        ['i64', { storageType: 'LongStorage', key: 'l', numel: 2, shape: [2] }],
        ['i32', { storageType: 'IntStorage', key: 'i', numel: 2, shape: [2] }],
        ['i16', { storageType: 'ShortStorage', key: 's', numel: 2, shape: [2] }],
        ['i8', { storageType: 'CharStorage', key: 'c', numel: 2, shape: [2] }],
        ['u8', { storageType: 'ByteStorage', key: 'u', numel: 2, shape: [2] }],
        ['mask', { storageType: 'BoolStorage', key: 'm', numel: 2, shape: [2] }],
        ['half_t', { storageType: 'HalfStorage', key: 'h', numel: 6, shape: [3, 2], stride: [1, 3] }],
      ],
      {
        h: u16([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000]),
        b: u16([0x3f80, 0xc0a0]),
        d: new Uint8Array(Float64Array.from([0.1, -2]).buffer),
        l: new Uint8Array(BigInt64Array.from([-1n, 2n ** 40n]).buffer),
        i: new Uint8Array(Int32Array.from([-7, 7]).buffer),
        s: new Uint8Array(Int16Array.from([-300, 300]).buffer),
        c: new Uint8Array(Int8Array.from([-3, 3]).buffer),
        u: Uint8Array.from([0, 255]),
        m: Uint8Array.from([1, 0]),
      },
    );
    const raw = readCheckpoint(bytes, 'dtypes.pth').tensors;
    expect(raw.get('half')!.dtype).toBe('f16');
    expect(Array.from(raw.get('half')!.data as Uint16Array)).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000]);
    expect(Array.from(raw.get('half_t')!.data as Uint16Array)).toEqual([0x3c00, 0x0001, 0xc000, 0x7c00, 0x7bff, 0x8000]);
    expect(Array.from(raw.get('i64')!.data as BigInt64Array)).toEqual([-1n, 2n ** 40n]);
    expect(Array.from(raw.get('i32')!.data as Int32Array)).toEqual([-7, 7]);
    expect(Array.from(raw.get('i16')!.data as Int16Array)).toEqual([-300, 300]);
    expect(Array.from(raw.get('i8')!.data as Int8Array)).toEqual([-3, 3]);
    expect(Array.from(raw.get('u8')!.data as Uint8Array)).toEqual([0, 255]);
    expect(raw.get('mask')!.dtype).toBe('bool');
    const f = readCheckpoint(bytes, 'dtypes.pth', { float32: true });
    expect(f.report).toContain('converted 4 f16/bf16/f64 tensors to f32');
    const half = values(f.tensors.get('half')!);
    expect(half.slice(0, 5)).toEqual([1, -2, 65504, 2 ** -24, Infinity]);
    expect(Object.is(half[5], -0)).toBe(true);
    expect(values(f.tensors.get('bf16')!)).toEqual([1, -5]);
    expect(values(f.tensors.get('f64')!)).toEqual([Math.fround(0.1), -2]);
    expect(f.tensors.get('i64')!.dtype).toBe('i64');
  });

  it('byte-swaps big-endian archives', () => {
    const be = new Uint8Array(16);
    const view = new DataView(be.buffer);
    [1.5, -2, 3, 4.25].forEach((v, i) => view.setFloat32(i * 4, v, false));
    const pickle = stateDictPickle([
      ['a', { storageType: 'FloatStorage', key: '0', numel: 4, shape: [4] }],
      ['t', { storageType: 'FloatStorage', key: '0', numel: 4, shape: [2, 2], stride: [1, 2] }],
    ]);
    const t = readCheckpoint(torchZip(pickle, { 0: be }, { byteorder: 'big' }), 'be.pth').tensors;
    expect(values(t.get('a')!)).toEqual([1.5, -2, 3, 4.25]);
    expect(values(t.get('t')!)).toEqual([1.5, 3, -2, 4.25]);
    const bad = torchZip(pickle, { 0: be }, { byteorder: 'middle' as 'big' });
    expect(errorOf(() => readCheckpoint(bad, 'be.pth')).message).toMatch(/be\.pth: archive\/byteorder says 'middle'/);
  });

  it('reads protocol-5 pickles (medvlsm cris.pt), deflated data.pkl and ZIP64 archives', () => {
    const entries: [string, TensorSpec][] = [['w', { storageType: 'FloatStorage', key: '0', numel: 3, shape: [3] }]];
    // As pickle protocol 5 writes it: STACK_GLOBAL, MEMOIZE, SHORT_BINUNICODE.
    const p5 = new PickleWriter(5);
    p5.stackGlobal('collections', 'OrderedDict').memoize().emptyTuple().reduce().memoize().mark();
    p5.str('w', 0x8c).memoize().stackGlobal('torch._utils', '_rebuild_tensor_v2').memoize();
    p5.mark().mark().str('storage', 0x8c).stackGlobal('torch', 'FloatStorage').str('0', 0x8c).str('cpu', 0x8c).int(3).tuple();
    p5.persid().int(0).int(3).tuple(1).int(1).tuple(1).bool(false).binget(0).emptyTuple().reduce().tuple();
    const done = p5.reduce().setitems().done();
    const data = f32Bytes([1, 2, 3]);
    expect(values(readCheckpoint(torchZip(done, { 0: data }), 'cris.pt').tensors.get('w')!)).toEqual([1, 2, 3]);
    const deflated = writeZip([
      { name: 'archive/data.pkl', data: stateDictPickle(entries), method: 8 },
      { name: 'archive/data/0', data },
    ]);
    expect(values(readCheckpoint(deflated, 'deflated.pth').tensors.get('w')!)).toEqual([1, 2, 3]);
    const zip64 = torchZip(stateDictPickle(entries), { 0: data }, { zip64: true });
    expect(values(readCheckpoint(zip64, 'zip64.pth').tensors.get('w')!)).toEqual([1, 2, 3]);
  });
});

describe('bad torch zip archives', () => {
  const data = f32Bytes([1, 2, 3, 4]);
  const entries: [string, TensorSpec][] = [
    ['a', { storageType: 'FloatStorage', key: '0', numel: 4, shape: [4] }],
    ['b', { storageType: 'FloatStorage', key: '1', numel: 4, shape: [4] }],
  ];

  it('a missing data/N record is an error naming the file and the record', () => {
    const bytes = stateDictZip(entries, { 0: data });
    expect(errorOf(() => readCheckpoint(bytes, 'missing.pth')).message).toMatch(/missing\.pth\/archive\/data\.pkl: missing record 'archive\/data\/1'/);
  });

  it('a record of the wrong size, a view past its storage, and unsupported storages are errors', () => {
    const short = stateDictZip(entries, { 0: data, 1: data.subarray(0, 12) });
    expect(errorOf(() => readCheckpoint(short, 's.pth')).message).toMatch(/record 'archive\/data\/1' holds 12 bytes, but storage '1' of 4 f32 elements needs 16/);
    const past = stateDictZip([['a', { storageType: 'FloatStorage', key: '0', numel: 4, shape: [2, 2], offset: 1 }]], { 0: data });
    expect(errorOf(() => readCheckpoint(past, 'p.pth')).message).toMatch(/reaches element 4 of p\.pth\/archive\/data\/0, which holds 4 elements/);
    const complex = stateDictZip([['a', { storageType: 'ComplexFloatStorage', key: '0', numel: 2, shape: [2] }]], { 0: data });
    expect(errorOf(() => readCheckpoint(complex, 'c.pth')).message).toMatch(/storage type torch\.ComplexFloatStorage is not supported/);
    const quant = torchZip(new PickleWriter(2).global('torch._utils', '_rebuild_qtensor').emptyTuple().reduce().done(), {});
    expect(errorOf(() => readCheckpoint(quant, 'q.pth')).message).toMatch(/quantized tensors are not supported/);
  });

  it('a zip without data.pkl is not a checkpoint', () => {
    const bytes = writeZip([{ name: 'readme.txt', data: new Uint8Array(3) }]);
    expect(errorOf(() => readCheckpoint(bytes, 'other.zip')).message).toMatch(/other\.zip: zip has no <prefix>\/data\.pkl.*readme\.txt/);
  });

  it('refuses a zip bomb that declares a huge size before inflating anything', () => {
    const bomb = writeZip([{ name: 'archive/data.pkl', data: new Uint8Array(10), method: 8, declaredSize: 0xfffffff0 }]);
    const start = performance.now();
    expect(errorOf(() => readCheckpoint(bomb, 'bomb.pth')).message).toMatch(/bomb\.pth: zip entry 'archive\/data\.pkl' declares 4294967280 inflated bytes .*zip bomb/);
    const bomb64 = writeZip([{ name: 'archive/data.pkl', data: new Uint8Array(10), method: 8, declaredSize: 2 ** 50 }], { zip64: true });
    expect(errorOf(() => readCheckpoint(bomb64, 'bomb64.pth')).message).toMatch(/declares 1125899906842624 inflated bytes/);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('stops inflating an entry that lies about its size, in bounded time', () => {
    const zeros = new Uint8Array(8 << 20);
    const liar = writeZip([{ name: 'archive/data.pkl', data: zeros, method: 8, declaredSize: 1000 }]);
    expect(liar.length).toBeLessThan(100_000);
    const start = performance.now();
    expect(errorOf(() => readCheckpoint(liar, 'liar.pth')).message).toMatch(/liar\.pth: zip entry 'archive\/data\.pkl' inflates past its declared 1000 bytes/);
    expect(performance.now() - start).toBeLessThan(2000);
    // Plausible but over the archive budget.
    const zip = new ZipArchive(writeZip([{ name: 'a', data: new Uint8Array(1 << 20), method: 8 }]), 'budget.zip', { maxTotalInflatedBytes: 1000 });
    expect(errorOf(() => zip.read('a')).message).toMatch(/budget\.zip: archive inflates more than 1000 bytes/);
    // A ratio no deflate stream can reach.
    const ratio = writeZip([{ name: 'archive/data.pkl', data: new Uint8Array(100), method: 8, declaredSize: 100_000_000 }]);
    expect(errorOf(() => readCheckpoint(ratio, 'r.pth')).message).toMatch(/impossible for deflate/);
  });

  it('corrupt deflate data and unknown methods are clear errors', () => {
    const junk = writeZip([{ name: 'archive/data.pkl', data: new Uint8Array(50), method: 8, compressed: Uint8Array.from({ length: 40 }, (_, i) => (i * 37) & 0xff) }]);
    expect(errorOf(() => readCheckpoint(junk, 'junk.pth')).message).toMatch(/junk\.pth: zip entry 'archive\/data\.pkl'/);
    const bytes = stateDictZip(entries, { 0: data, 1: data });
    const patched = bytes.slice();
    // Set the method of the first entry (data.pkl) to 12 (bzip2) in both headers.
    patched[8] = 12;
    const cd = findCentral(patched);
    patched[cd + 10] = 12;
    expect(errorOf(() => readCheckpoint(patched, 'm.pth')).message).toMatch(/uses compression method 12/);
  });

  it('truncations anywhere give a clear error naming the file', () => {
    const bytes = stateDictZip(entries, { 0: data, 1: data });
    for (const cut of [0, 3, 4, 30, 100, bytes.length >> 1, bytes.length - 30, bytes.length - 22, bytes.length - 1]) {
      const message = errorOf(() => readCheckpoint(bytes.subarray(0, cut), 'cut.pth')).message;
      expect(message).toMatch(/^cut\.pth/);
    }
  });

  it('flipped bytes in the directory and headers are detected', () => {
    const bytes = stateDictZip(entries, { 0: data, 1: data });
    const cd = findCentral(bytes);
    const flips: [number, RegExp][] = [
      [cd, /bad central directory signature/],
      [0, /not a checkpoint this reader knows/],
      [bytes.length - 3, /central directory .* lies outside/],
    ];
    for (const [at, pattern] of flips) {
      const b = bytes.slice();
      b[at] = b[at]! ^ 0xff;
      expect(errorOf(() => readCheckpoint(b, 'flip.pth')).message).toMatch(pattern);
    }
    // A duplicate entry name is rejected (two readers could disagree on which one counts).
    const dup = writeZip([
      { name: 'archive/data.pkl', data: stateDictPickle([]) },
      { name: 'archive/data.pkl', data: stateDictPickle([]) },
    ]);
    expect(errorOf(() => readCheckpoint(dup, 'dup.pth')).message).toMatch(/appears twice/);
  });
});

function findCentral(bytes: Uint8Array): number {
  for (let i = 0; i + 4 <= bytes.length; i++) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 0x01 && bytes[i + 3] === 0x02) return i;
  }
  throw new Error('no central directory');
}
