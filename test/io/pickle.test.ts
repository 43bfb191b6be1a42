import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PyCallable, PyObject, isTuple, unpickle } from '../../src/engine/io/pickle.js';
import { torchGlobalResolver } from '../../src/engine/io/torch-globals.js';
import { collectTensors } from '../../src/engine/io/torch-tensors.js';
import { CheckpointError } from '../../src/engine/io/tensor-data.js';
import { PickleWriter } from './helpers/pickle-writer.js';

const resolveGlobal = torchGlobalResolver();
const load = (bytes: Uint8Array, extra: Partial<Parameters<typeof unpickle>[1]> = {}): unknown =>
  unpickle(bytes, { source: 'test.pkl', resolveGlobal, ...extra }).value;

function expectRefused(bytes: Uint8Array, pattern: RegExp, options: Parameters<typeof torchGlobalResolver>[0] = {}): void {
  let error: unknown;
  try {
    unpickle(bytes, { source: 'evil.pth/archive/data.pkl', resolveGlobal: torchGlobalResolver(options) });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(CheckpointError);
  expect((error as Error).message).toMatch(pattern);
  expect((error as Error).message).toContain('evil.pth/archive/data.pkl');
}

describe('pickle machine: values', () => {
  it('decodes the protocol-2 scalar and container opcodes', () => {
    const w = new PickleWriter(2).emptyDict().mark();
    w.str('u8').int(200).str('u16').int(40000).str('i32').int(-5).str('big').int(2n ** 70n);
    w.str('neg').long(-(2n ** 40n)).str('long4').long(123456789012345678901234567890n, 0x8b).str('zero').long(0n);
    w.str('float').float(-1.5).str('none').none().str('t').bool(true).str('f').bool(false);
    w.str('py2').shortBinString('abc').str('bytes').bytes(new Uint8Array([1, 2, 3]), 0x43);
    w.str('tuple').int(1).int(2).tuple(2).str('tuple0').emptyTuple();
    w.str('list').emptyList().mark().int(1).int(2).appends().int(3).append();
    w.setitems();
    const v = load(w.done()) as Map<string, unknown>;
    expect(v.get('u8')).toBe(200);
    expect(v.get('u16')).toBe(40000);
    expect(v.get('i32')).toBe(-5);
    expect(v.get('big')).toBe(2n ** 70n);
    expect(v.get('neg')).toBe(-(2 ** 40));
    expect(v.get('long4')).toBe(123456789012345678901234567890n);
    expect(v.get('zero')).toBe(0);
    expect(v.get('float')).toBe(-1.5);
    expect(v.get('none')).toBeNull();
    expect(v.get('t')).toBe(true);
    expect(v.get('f')).toBe(false);
    expect(v.get('py2')).toBe('abc');
    expect(v.get('bytes')).toEqual(new Uint8Array([1, 2, 3]));
    expect(isTuple(v.get('tuple'))).toBe(true);
    expect(v.get('tuple')).toEqual([1, 2]);
    expect(v.get('tuple0')).toEqual([]);
    expect(isTuple(v.get('list'))).toBe(false);
    expect(v.get('list')).toEqual([1, 2, 3]);
  });

  it('decodes the protocol-4/5 opcodes (FRAME, MEMOIZE, STACK_GLOBAL, short/8-byte strings, sets)', () => {
    const body = new PickleWriter(null).mark().stackGlobal('collections', 'OrderedDict').memoize().emptyTuple().reduce().memoize();
    body.mark().str('a', 0x8c).memoize().str('long name', 0x8d).binget(2).raw(0x86).setitems();
    body.emptyList().mark().raw(0x8f).mark().int(1).int(2).raw(0x90).mark().int(3).raw(0x91).appends();
    body.bytes(new Uint8Array([9, 8]), 0x8e).bytes(new Uint8Array([7]), 0x96).tuple();
    const inner = body.partial();
    const w = new PickleWriter(5).frame(inner.length + 1).rawBytes(inner);
    const v = load(w.done()) as unknown[];
    expect(isTuple(v)).toBe(true);
    const dict = v[0] as Map<unknown, unknown>;
    expect([...dict.entries()]).toEqual([['a', ['long name', 'a']]]);
    const sets = v[1] as Set<number>[];
    expect(v).toHaveLength(4);
    expect([...sets[0]!]).toEqual([1, 2]);
    expect([...sets[1]!]).toEqual([3]);
    expect(v[2]).toEqual(new Uint8Array([9, 8]));
    expect(v[3]).toEqual(new Uint8Array([7]));
  });

  it('keeps memo references shared and tolerates self-referencing containers', () => {
    const w = new PickleWriter(2).emptyList().binput(0).binget(0).append().binget(0).tuple(2);
    const v = load(w.done()) as unknown[];
    expect(v[0]).toBe(v[1]);
    const list = v[0] as unknown[];
    expect(list[0]).toBe(list);
    // A dict that contains itself: collecting tensors from it terminates.
    const d = new PickleWriter(2).emptyDict().binput(0).str('self').binget(0).setitem().done();
    const dict = load(d) as Map<string, unknown>;
    expect(dict.get('self')).toBe(dict);
    expect(collectTensors(dict, 'x').tensors.size).toBe(0);
  });

  it('handles POP, DUP and POP_MARK', () => {
    const w = new PickleWriter(2).int(1).raw(0x32).raw(0x30).mark().int(5).int(6).raw(0x31).int(2).tuple(2);
    expect(load(w.done())).toEqual([1, 2]);
  });

  it('decodes whitelisted helpers: OrderedDict, Counter, set, bytearray, _codecs.encode, torch.Size, torch.device', () => {
    const w = new PickleWriter(2).mark();
    w.global('collections', 'Counter').emptyDict().mark().int(30).int(1).setitems().tuple(1).reduce();
    w.global('builtins', 'set').emptyList().mark().int(1).int(1).int(2).appends().tuple(1).reduce();
    w.global('_codecs', 'encode').str('\u00ff\u0001').str('latin1').tuple(2).reduce();
    w.global('builtins', 'bytearray').emptyList().mark().int(4).int(5).appends().tuple(1).reduce();
    w.global('torch', 'Size').mark().int(2).int(3).tuple().tuple(1).reduce();
    w.global('torch', 'device').str('cuda').int(1).tuple(2).reduce();
    w.global('torch', 'float16');
    w.tuple();
    const v = load(w.done()) as unknown[];
    expect([...(v[0] as Map<number, number>)]).toEqual([[30, 1]]);
    expect([...(v[1] as Set<number>)]).toEqual([1, 2]);
    expect(v[2]).toEqual(new Uint8Array([255, 1]));
    expect(v[3]).toEqual(new Uint8Array([4, 5]));
    expect(v[4]).toEqual([2, 3]);
    expect(v[5]).toBe('cuda:1');
    expect(v[6]).toBe('torch.float16');
  });

  it('reads argparse.Namespace and numpy scalars as inert data', () => {
    const w = new PickleWriter(2).mark();
    w.global('argparse', 'Namespace').emptyTuple().reduce().emptyDict().str('lr').float(0.1).setitem().build();
    const dtype = (wr: PickleWriter): PickleWriter =>
      wr.global('numpy', 'dtype').str('f8').bool(false).bool(true).tuple(3).reduce()
        .mark().int(3).str('<').none().none().none().int(-1).int(-1).int(0).tuple().build();
    w.global('numpy.core.multiarray', 'scalar');
    dtype(w);
    const f = new Uint8Array(8);
    new DataView(f.buffer).setFloat64(0, 0.625, true);
    w.global('_codecs', 'encode').str(String.fromCharCode(...f)).str('latin1').tuple(2).reduce().tuple(2).reduce();
    w.tuple();
    const v = load(w.done()) as unknown[];
    const ns = v[0] as PyObject;
    expect(ns).toBeInstanceOf(PyObject);
    expect(ns.qualname).toBe('argparse.Namespace');
    expect((ns.state as Map<string, number>).get('lr')).toBe(0.1);
    expect(v[1]).toBe(0.625);
  });
});

describe('pickle machine: refuses code execution', () => {
  const marker = `/tmp/webvlsm-pickle-test-${process.pid}-${Date.now()}`;
  const cases: [string, string, string][] = [
    ['os', 'system', `touch ${marker}`],
    ['posix', 'system', `touch ${marker}`],
    ['nt', 'system', `touch ${marker}`],
    ['builtins', 'eval', `__import__('os').system('touch ${marker}')`],
    ['builtins', 'exec', `open('${marker}', 'w')`],
    ['__builtin__', 'eval', '1+1'],
    ['builtins', 'getattr', 'x'],
    ['builtins', '__import__', 'os'],
    ['subprocess', 'Popen', `touch ${marker}`],
    ['subprocess', 'check_output', 'id'],
    ['torch.serialization', 'os.system', 'id'],
    ['runpy', 'run_path', '/tmp/x.py'],
  ];

  it.each(cases)('GLOBAL %s.%s + REDUCE is refused, naming the global', (module, name, arg) => {
    const bytes = new PickleWriter(2).global(module, name).str(arg).tuple(1).reduce().done();
    expectRefused(bytes, new RegExp(`refused global ${module.replace('.', '\\.')}\\.${name.replace('.', '\\.')}`));
    // The same through STACK_GLOBAL (protocol 4), and even in the permissive placeholder mode.
    const stacked = new PickleWriter(4).stackGlobal(module, name).str(arg).tuple(1).reduce().done();
    expectRefused(stacked, /refused global/, { unknownGlobals: 'placeholder' });
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses unknown globals by default and reads them as placeholders only when asked', () => {
    const bytes = new PickleWriter(2).global('mypkg.config', 'Config').emptyTuple().newobj().done();
    expectRefused(bytes, /refused global mypkg\.config\.Config/);
    const v = unpickle(bytes, { source: 'x', resolveGlobal: torchGlobalResolver({ unknownGlobals: 'placeholder' }) }).value;
    expect((v as PyObject).qualname).toBe('mypkg.config.Config');
    const allowed = unpickle(bytes, { source: 'x', resolveGlobal: torchGlobalResolver({ allowGlobals: ['mypkg.config.Config'] }) }).value;
    expect(allowed).toBeInstanceOf(PyObject);
  });

  it('refuses __torch__ classes outside TorchScript archives', () => {
    const bytes = new PickleWriter(2).global('__torch__.model', 'CLIP').emptyTuple().newobj().done();
    expectRefused(bytes, /refused global __torch__\.model\.CLIP/);
    const v = unpickle(bytes, { source: 'x', resolveGlobal: torchGlobalResolver({ torchscript: true }) }).value;
    expect((v as PyObject).qualname).toBe('__torch__.model.CLIP');
  });

  it('refuses REDUCE on anything that is not an allowed callable', () => {
    expectRefused(new PickleWriter(2).str('os.system').str('id').tuple(1).reduce().done(), /REDUCE refused: target str 'os\.system'/);
    expectRefused(new PickleWriter(2).global('torch', 'FloatStorage').emptyTuple().reduce().done(), /REDUCE refused/);
    expectRefused(new PickleWriter(2).global('torch', 'float32').emptyTuple().reduce().done(), /REDUCE refused/);
  });

  it('refuses _rebuild_from_type_v2 whose function argument is not whitelisted', () => {
    const bytes = new PickleWriter(2)
      .global('torch._tensor', '_rebuild_from_type_v2')
      .mark().str('os.system').global('torch', 'Tensor').mark().str('id').tuple().none().tuple()
      .reduce()
      .done();
    expectRefused(bytes, /_rebuild_from_type_v2: function argument str 'os\.system' is not an allowed callable/);
  });

  it('refuses extension, out-of-band and protocol-0 opcodes with clear messages', () => {
    expectRefused(new PickleWriter(2).raw(0x82, 1).done(), /extension registry/);
    expectRefused(new PickleWriter(5).raw(0x97).done(), /out-of-band buffers/);
    expectRefused(new PickleWriter(null).raw(0x49).rawBytes(new TextEncoder().encode('1\n')).done(), /protocol-0\/1 opcode INT/);
    expectRefused(new PickleWriter(null).raw(0x69).rawBytes(new TextEncoder().encode('os\nsystem\n')).done(), /opcode INST/);
    expectRefused(new PickleWriter(2).raw(0xff).done(), /unknown pickle opcode 0xff/);
    expectRefused(new PickleWriter(2).raw(0x80, 9).done(), /unsupported pickle protocol 9/);
  });
});

describe('pickle machine: malformed input is bounded and named', () => {
  const valid = (() => {
    const w = new PickleWriter(2).orderedDict().binput(0).mark();
    for (let i = 0; i < 20; i++) w.str(`key${i}`).mark().int(i).float(i / 3).str('x'.repeat(i)).tuple().binput(i + 1);
    return w.setitems().done();
  })();

  it('every truncation of a valid pickle throws a CheckpointError', () => {
    expect(load(valid)).toBeInstanceOf(Map);
    for (let cut = 0; cut < valid.length; cut++) {
      expect(() => load(valid.subarray(0, cut))).toThrow(CheckpointError);
    }
  });

  it('reports the source and byte offset of the problem', () => {
    expect(() => load(valid.subarray(0, 40))).toThrow(/test\.pkl: .*\(pickle byte \d+\)/);
  });

  it('rejects stack underflow, missing memo entries and misused containers', () => {
    expect(() => load(new PickleWriter(2).raw(0x52).done())).toThrow(/stack underflow/);
    expect(() => load(new PickleWriter(2).binget(7).done())).toThrow(/memo entry 7 is missing/);
    expect(() => load(new PickleWriter(2).int(1).int(2).int(3).setitem().done())).toThrow(/not a dict/);
    expect(() => load(new PickleWriter(2).int(1).tuple().done())).toThrow(/without a MARK/);
    expect(() => load(new PickleWriter(2).emptyTuple().int(1).append().done())).toThrow(/not a list/);
    expect(() => load(new PickleWriter(2).mark().int(1).tuple(1).done())).not.toThrow();
    expect(() => load(new PickleWriter(2).mark().tuple(1).done())).toThrow(/stack underflow/);
  });

  it('enforces stack, mark, memo and integer-size limits', () => {
    const limits = { maxStack: 100, maxMarks: 10, maxMemo: 10, maxLongBytes: 16 };
    const deep = new PickleWriter(2);
    for (let i = 0; i < 11; i++) deep.mark();
    expect(() => load(deep.done(), { limits })).toThrow(/nested MARKs/);
    const wide = new PickleWriter(2);
    for (let i = 0; i < 101; i++) wide.none();
    expect(() => load(wide.done(), { limits })).toThrow(/stack exceeds 100/);
    const memo = new PickleWriter(2).none();
    for (let i = 0; i < 11; i++) memo.binput(i);
    expect(() => load(memo.done(), { limits })).toThrow(/memo index 10 exceeds the limit of 10 entries/);
    expect(() => load(new PickleWriter(2).long(2n ** 200n, 0x8b).done(), { limits })).toThrow(/LONG4 of 26 bytes/);
    // A huge declared length is a clean truncation error, not an allocation.
    expect(() => load(new PickleWriter(2).raw(0x8d, 0, 0, 0, 0, 0, 0, 0x10, 0).done())).toThrow(/truncated pickle/);
    expect(() => load(new PickleWriter(2).raw(0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff).done())).toThrow(/too large/);
  });

  it('a callable only runs the TypeScript it was given', () => {
    let calls = 0;
    const v = unpickle(new PickleWriter(2).global('m', 'f').int(4).tuple(1).reduce().done(), {
      source: 'x',
      resolveGlobal: (m, n) => (m === 'm' && n === 'f' ? new PyCallable('m.f', (args) => (calls++, (args[0] as number) * 2)) : undefined),
    }).value;
    expect(v).toBe(8);
    expect(calls).toBe(1);
  });
});
