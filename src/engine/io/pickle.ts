/**
 * A restricted Python pickle machine (protocols 2-5) for reading PyTorch checkpoints.
 *
 * It never executes anything from the file. Globals (`GLOBAL`, `STACK_GLOBAL`) are passed to the
 * caller's `resolveGlobal`, which hands back an inert value (a marker, or a `PyCallable` whose
 * `invoke` is TypeScript written here) or `undefined`, in which case the pickle is refused with an
 * error naming the global. `REDUCE` / `NEWOBJ` may only call `PyCallable`s.
 *
 * Python values map to:
 *   None -> null   bool -> boolean   int -> number (bigint beyond 2^53)   float -> number
 *   str -> string  bytes / bytearray -> Uint8Array   list -> unknown[]   tuple -> frozen unknown[]
 *   dict -> Map    set / frozenset -> Set   instance of an allowed class -> PyObject
 *
 * Opcodes: all binary opcodes of protocols 2-5 except the extension registry (EXT1/2/4) and
 * out-of-band buffers (NEXT_BUFFER/READONLY_BUFFER); the protocol-0/1 text opcodes and INST/OBJ
 * are refused with a clear message (real checkpoints never use them).
 *
 * Bounded: one pass over the input, no recursion; stack, mark, memo and integer sizes are limited;
 * a truncated or malformed pickle throws a CheckpointError naming the source and byte offset.
 *
 * Browser-safe: no Node imports.
 */
import { CheckpointError } from './tensor-data.js';

/** A function the pickle may call through REDUCE / NEWOBJ: only ones a resolver hands out. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly invoke: (args: readonly unknown[]) => unknown,
  ) {}
}

/** An instance of an allowed, inert class: it records its arguments and BUILD state, runs nothing. */
export class PyObject {
  state: unknown = undefined;
  constructor(
    readonly qualname: string,
    readonly args: readonly unknown[],
  ) {}
}

/** Whether a value is a pickled tuple (tuples are frozen arrays, lists are mutable ones). */
export function isTuple(value: unknown): value is readonly unknown[] {
  return Array.isArray(value) && Object.isFrozen(value);
}

export interface PickleLimits {
  /** Most values on the stack at once. */
  maxStack: number;
  /** Most nested MARKs open at once. */
  maxMarks: number;
  /** Most memo entries. */
  maxMemo: number;
  /** Longest LONG1/LONG4 integer, in bytes. */
  maxLongBytes: number;
  /** Longest GLOBAL module or name line, in bytes. */
  maxNameBytes: number;
}

export const DEFAULT_PICKLE_LIMITS: Readonly<PickleLimits> = {
  maxStack: 1 << 24,
  maxMarks: 1 << 16,
  maxMemo: 1 << 24,
  maxLongBytes: 256,
  maxNameBytes: 1024,
};

export interface UnpickleOptions {
  /** Names the pickle in error messages, e.g. `model.pth/archive/data.pkl`. */
  source: string;
  /** Returns the value a global stands for, or undefined to refuse it. */
  resolveGlobal(module: string, name: string): unknown;
  /** Resolves BINPERSID ids (storages); without it a persistent id is an error. */
  persistentLoad?(pid: unknown): unknown;
  /** Byte offset to start at (concatenated pickles). */
  start?: number;
  limits?: Partial<PickleLimits>;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just after the STOP opcode. */
  end: number;
  /** The PROTO argument (0 when absent). */
  protocol: number;
}

const utf8 = new TextDecoder('utf-8');

/** Short Python-ish type name for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' || typeof v === 'bigint') return `int/float ${String(v)}`;
  if (typeof v === 'string') return `str '${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'boolean') return `bool ${v}`;
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  if (isTuple(v)) return `tuple[${v.length}]`;
  if (Array.isArray(v)) return `list[${v.length}]`;
  if (v instanceof Map) return `dict[${v.size}]`;
  if (v instanceof Set) return `set[${v.size}]`;
  if (v instanceof PyCallable) return `global ${v.qualname}`;
  if (v instanceof PyObject) return `${v.qualname} object`;
  return (v as object).constructor?.name ?? typeof v;
}

function decodeLong(bytes: Uint8Array): number | bigint {
  const n = bytes.length;
  if (n === 0) return 0;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
    return bytes[n - 1]! & 0x80 ? v - 2 ** (8 * n) : v;
  }
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

const TEXT_OPCODES: Readonly<Record<number, string>> = {
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x50: 'PERSID',
  0x67: 'GET', 0x70: 'PUT', 0x69: 'INST', 0x6f: 'OBJ',
};

/** Runs the pickle that starts at `options.start` (default 0) and returns the value STOP leaves. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  const limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits };
  const source = options.source;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  const stack: unknown[] = [];
  const marks: number[] = [];
  // Python numbers memo entries densely from 0; indices at or past maxMemo are refused.
  const memo: unknown[] = [];
  let memoCount = 0;
  let pos = options.start ?? 0;
  let opPos = pos;
  let protocol = 0;

  const fail = (message: string): never => {
    throw new CheckpointError(`${source}: ${message} (pickle byte ${opPos})`);
  };
  const need = (n: number, what: string): void => {
    if (n > end - pos) fail(`truncated pickle: ${what} needs ${n} bytes, ${end - pos} left`);
  };
  const u8 = (): number => {
    need(1, 'argument');
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2, 'argument');
    pos += 2;
    return view.getUint16(pos - 2, true);
  };
  const u32 = (): number => {
    need(4, 'argument');
    pos += 4;
    return view.getUint32(pos - 4, true);
  };
  const i32 = (): number => {
    need(4, 'argument');
    pos += 4;
    return view.getInt32(pos - 4, true);
  };
  const u64 = (): number => {
    need(8, 'argument');
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    if (hi > 0x1fffff) fail(`length ${hi * 2 ** 32 + lo} is too large`);
    return hi * 2 ** 32 + lo;
  };
  const take = (n: number, what: string): Uint8Array => {
    if (n < 0) fail(`negative length ${n} for ${what}`);
    need(n, what);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = (what: string): string => {
    const limit = Math.min(end, pos + limits.maxNameBytes + 1);
    let i = pos;
    while (i < limit && bytes[i] !== 0x0a) i++;
    if (i >= limit) fail(i >= end ? `truncated pickle: unterminated ${what}` : `${what} longer than ${limits.maxNameBytes} bytes`);
    const text = utf8.decode(bytes.subarray(pos, i));
    pos = i + 1;
    return text;
  };
  const push = (v: unknown): void => {
    if (stack.length >= limits.maxStack) fail(`stack exceeds ${limits.maxStack} values`);
    stack.push(v);
  };
  const floor = (): number => (marks.length > 0 ? marks[marks.length - 1]! : 0);
  const pop = (what: string): unknown => {
    if (stack.length <= floor()) fail(`stack underflow: ${what} needs a value`);
    return stack.pop();
  };
  const top = (what: string): unknown => {
    if (stack.length <= floor()) fail(`stack underflow: ${what} needs a value`);
    return stack[stack.length - 1];
  };
  const popMark = (what: string): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail(`${what} without a MARK`);
    return stack.splice(m!);
  };
  const memoPut = (index: number, what: string): void => {
    if (index >= limits.maxMemo) fail(`memo index ${index} exceeds the limit of ${limits.maxMemo} entries`);
    const value = top(what);
    if (!(index in memo)) memoCount++;
    memo[index] = value;
  };
  const memoGet = (index: number): void => {
    if (!(index in memo)) fail(`memo entry ${index} is missing`);
    push(memo[index]);
  };
  const resolve = (module: string, name: string): void => {
    let value: unknown;
    try {
      value = options.resolveGlobal(module, name);
    } catch (err) {
      fail(`global ${module}.${name}: ${(err as Error).message}`);
    }
    if (value === undefined) {
      fail(`refused global ${module}.${name}: not a checkpoint global on the whitelist (webvlsm never runs pickled code)`);
    }
    push(value);
  };
  const call = (fn: unknown, args: unknown, what: string): unknown => {
    if (!(fn instanceof PyCallable)) fail(`${what} refused: target ${describeValue(fn)} is not an allowed callable`);
    const callable = fn as PyCallable;
    if (!Array.isArray(args)) fail(`${what} ${callable.qualname}: arguments are ${describeValue(args)}, not a tuple`);
    try {
      return callable.invoke(args as unknown[]);
    } catch (err) {
      if (err instanceof CheckpointError) throw err;
      return fail(`${callable.qualname}: ${(err as Error).message}`);
    }
  };
  const setItems = (target: unknown, items: unknown[], what: string): void => {
    if (!(target instanceof Map)) fail(`${what} on ${describeValue(target)}, not a dict`);
    if (items.length % 2 !== 0) fail(`${what} with an odd number of items`);
    const map = target as Map<unknown, unknown>;
    for (let i = 0; i < items.length; i += 2) map.set(items[i], items[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[], what: string): void => {
    if (!Array.isArray(target) || isTuple(target)) fail(`${what} on ${describeValue(target)}, not a list`);
    const list = target as unknown[];
    for (const item of items) list.push(item);
  };
  const addItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Set)) fail(`ADDITEMS on ${describeValue(target)}, not a set`);
    for (const item of items) (target as Set<unknown>).add(item);
  };
  const string = (raw: Uint8Array): string => {
    // Short ASCII strings (every state-dict key) skip the TextDecoder call.
    if (raw.length > 64) return utf8.decode(raw);
    let text = '';
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (c >= 0x80) return utf8.decode(raw);
      text += String.fromCharCode(c);
    }
    return text;
  };

  for (;;) {
    if (pos >= end) fail('truncated pickle: no STOP opcode before the end of the data');
    opPos = pos;
    const op = bytes[pos++]!;
    switch (op) {
      case 0x80: // PROTO
        protocol = u8();
        if (protocol > 5) fail(`unsupported pickle protocol ${protocol}`);
        break;
      case 0x95: { // FRAME: a length prefix only
        const n = u64();
        if (n > end - pos) fail(`truncated pickle: frame of ${n} bytes, ${end - pos} left`);
        break;
      }
      case 0x2e: // STOP
        return { value: pop('STOP'), end: pos, protocol };
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) fail(`more than ${limits.maxMarks} nested MARKs`);
        marks.push(stack.length);
        break;
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: push(i32()); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(decodeLong(take(u8(), 'LONG1'))); break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n > limits.maxLongBytes) fail(`LONG4 of ${n} bytes exceeds ${limits.maxLongBytes}`);
        push(decodeLong(take(n, 'LONG4')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian float64)
        need(8, 'BINFLOAT');
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: push(string(take(u32(), 'BINUNICODE'))); break;
      case 0x8c: push(string(take(u8(), 'SHORT_BINUNICODE'))); break;
      case 0x8d: push(string(take(u64(), 'BINUNICODE8'))); break;
      case 0x54: push(string(take(i32(), 'BINSTRING'))); break;
      case 0x55: push(string(take(u8(), 'SHORT_BINSTRING'))); break;
      case 0x42: push(take(u32(), 'BINBYTES')); break;
      case 0x43: push(take(u8(), 'SHORT_BINBYTES')); break;
      case 0x8e: push(take(u64(), 'BINBYTES8')); break;
      case 0x96: push(take(u64(), 'BYTEARRAY8').slice()); break;
      case 0x29: push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: push(Object.freeze(popMark('TUPLE'))); break;
      case 0x85: push(Object.freeze([pop('TUPLE1')])); break;
      case 0x86: { // TUPLE2
        const b = pop('TUPLE2');
        push(Object.freeze([pop('TUPLE2'), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop('TUPLE3');
        const b = pop('TUPLE3');
        push(Object.freeze([pop('TUPLE3'), b, c]));
        break;
      }
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x6c: push(popMark('LIST')); break;
      case 0x61: { // APPEND
        const v = pop('APPEND');
        appendItems(top('APPEND'), [v], 'APPEND');
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark('APPENDS');
        appendItems(top('APPENDS'), items, 'APPENDS');
        break;
      }
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const map = new Map<unknown, unknown>();
        setItems(map, popMark('DICT'), 'DICT');
        push(map);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop('SETITEM');
        const k = pop('SETITEM');
        setItems(top('SETITEM'), [k, v], 'SETITEM');
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark('SETITEMS');
        setItems(top('SETITEMS'), items, 'SETITEMS');
        break;
      }
      case 0x8f: push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark('ADDITEMS');
        addItems(top('ADDITEMS'), items);
        break;
      }
      case 0x91: push(new Set(popMark('FROZENSET'))); break;
      case 0x63: { // GLOBAL
        const module = line('GLOBAL module');
        resolve(module, line('GLOBAL name'));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop('STACK_GLOBAL');
        const module = pop('STACK_GLOBAL');
        if (typeof module !== 'string' || typeof name !== 'string') {
          fail(`STACK_GLOBAL needs two strings, got ${describeValue(module)} and ${describeValue(name)}`);
        }
        resolve(module as string, name as string);
        break;
      }
      case 0x52: { // REDUCE
        const args = pop('REDUCE');
        push(call(pop('REDUCE'), args, 'REDUCE'));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop('NEWOBJ');
        push(call(pop('NEWOBJ'), args, 'NEWOBJ'));
        break;
      }
      case 0x92: { // NEWOBJ_EX (keyword arguments are ignored: allowed classes are inert)
        pop('NEWOBJ_EX');
        const args = pop('NEWOBJ_EX');
        push(call(pop('NEWOBJ_EX'), args, 'NEWOBJ_EX'));
        break;
      }
      case 0x62: { // BUILD: only inert objects keep state; dicts (OrderedDict _metadata) ignore it
        const state = pop('BUILD');
        const target = top('BUILD');
        if (target instanceof PyObject) target.state = state;
        break;
      }
      case 0x71: memoPut(u8(), 'BINPUT'); break;
      case 0x72: memoPut(u32(), 'LONG_BINPUT'); break;
      case 0x94: memoPut(memoCount, 'MEMOIZE'); break;
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x51: { // BINPERSID
        const pid = pop('BINPERSID');
        if (!options.persistentLoad) fail('persistent id found, but this pickle has no storage records');
        try {
          push(options.persistentLoad!(pid));
        } catch (err) {
          if (err instanceof CheckpointError) throw err;
          fail((err as Error).message);
        }
        break;
      }
      case 0x30: // POP
        if (stack.length === floor() && marks.length > 0) marks.pop();
        else pop('POP');
        break;
      case 0x31: popMark('POP_MARK'); break;
      case 0x32: push(top('DUP')); break;
      case 0x82:
      case 0x83:
      case 0x84:
        return fail(`extension registry opcode 0x${op.toString(16)} is not supported`);
      case 0x97:
      case 0x98:
        return fail('out-of-band buffers (protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported');
      default: {
        const text = TEXT_OPCODES[op];
        if (text) return fail(`protocol-0/1 opcode ${text} ('${String.fromCharCode(op)}') is not supported (re-save the file with a current PyTorch)`);
        return fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }
}
