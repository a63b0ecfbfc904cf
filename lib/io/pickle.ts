// A restricted pickle machine (protocols 0-5). It interprets the opcode stream the way Python's
// pickle.Unpickler does, but never imports or calls anything: GLOBAL names go to a hook that
// returns either an allowlisted implementation (a PyCallable written here in TypeScript) or an
// inert PyGlobal, and REDUCE / NEWOBJ / BUILD on anything else are only recorded (PyCall).
// Malformed input is a PickleError naming the opcode and byte offset.
import { PyCall, PyDict, PyGlobal, PyOpaque, PySet, PyTuple, shortDescription, type PyValue } from './pickle-values.ts';

/** Where in the pickle an opcode sits (for error messages and reports). */
export interface PickleSite {
  offset: number;
  opcode: string;
}

export class PickleError extends Error {
  override name = 'PickleError';
  constructor(message: string, readonly offset: number, readonly opcode: string | null) {
    super(message);
  }
}

/** The pickle ended before STOP (or inside an opcode's argument): more bytes might complete it. */
export class PickleTruncatedError extends PickleError {
  override name = 'PickleTruncatedError';
}

/** An allowlisted global with a TypeScript implementation of what calling it means. */
export abstract class PyCallable extends PyOpaque {
  constructor(readonly module: string, readonly name: string) {
    super();
  }
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
  describe(): string {
    return this.qualifiedName;
  }
  /** REDUCE: callee(*args). */
  abstract call(args: PyValue[], site: PickleSite): PyValue;
  /** NEWOBJ: cls.__new__(cls, *args); the same as call() unless a subclass says otherwise. */
  construct(args: PyValue[], site: PickleSite): PyValue {
    return this.call(args, site);
  }
}

export interface UnpickleHooks {
  /** Resolves GLOBAL / STACK_GLOBAL / INST / OBJ names. May throw to refuse the file. */
  findGlobal(module: string, name: string, site: PickleSite): PyValue;
  /** BINPERSID / PERSID. Without it, persistent ids are an error. */
  persistentLoad?(pid: PyValue, site: PickleSite): PyValue;
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just after STOP (pickles may be concatenated). */
  end: number;
  /** The highest PROTO seen (0 when none). */
  protocol: number;
}

const NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const MAX_PROTOCOL = 5;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A JavaScript number when exact, else a bigint (Python ints are unbounded). */
function pyInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Little-endian two's complement (LONG1 / LONG4). */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return pyInt(v);
}

/** Python 2 string literal escapes (protocol 0 STRING). */
function unescapePy2(body: string): Uint8Array {
  const out: number[] = [];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, "'": 39, '"': 34 };
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      out.push(body.charCodeAt(i) & 0xff);
      continue;
    }
    const n = body[++i];
    if (n === undefined) throw new Error('trailing backslash');
    if (n in simple) out.push(simple[n]!);
    else if (n === '\n') continue;
    else if (n === 'x') {
      const hex = body.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`bad \\x escape`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (/[0-7]/.test(n)) {
      let oct = n;
      while (oct.length < 3 && /[0-7]/.test(body[i + 1] ?? '')) oct += body[++i];
      out.push(parseInt(oct, 8) & 0xff);
    } else out.push(92, n.charCodeAt(0) & 0xff);
  }
  return Uint8Array.from(out);
}

/** Python's raw-unicode-escape (protocol 0 UNICODE): only \uXXXX and \UXXXXXXXX are escapes. */
function rawUnicodeUnescape(bytes: Uint8Array): string {
  const latin = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return latin.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a?: string, b?: string) => String.fromCodePoint(parseInt((a ?? b)!, 16)));
}

/**
 * Runs the pickle in `data` from `start` until STOP. Everything not allowlisted by the hooks is
 * inert; nothing outside this function's data structures is touched.
 */
export function unpickle(data: Uint8Array, hooks: UnpickleHooks, start = 0): UnpickleResult {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = start;
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  const memo = new Map<number, PyValue>();
  let protocol = 0;
  let site: PickleSite = { offset: start, opcode: '' };

  const fail = (message: string): never => {
    throw new PickleError(`pickle opcode ${site.opcode} at byte ${site.offset}: ${message}`, site.offset, site.opcode);
  };
  const need = (n: number): void => {
    if (n < 0 || pos + n > data.length) {
      throw new PickleTruncatedError(
        `pickle truncated: opcode ${site.opcode} at byte ${site.offset} needs ${n} more bytes at byte ${pos}, but the data ends at byte ${data.length}`,
        site.offset, site.opcode);
    }
  };
  const bytes = (n: number): Uint8Array => {
    need(n);
    const out = data.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (): number => (need(1), data[pos++]!);
  const u16 = (): number => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = (): number => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is out of range`);
    return Number(v);
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) need(data.length - pos + 1);
    const s = Buffer.from(data.buffer, data.byteOffset + pos, end - pos).toString('latin1');
    pos = end + 1;
    return s;
  };
  const text = (raw: Uint8Array): string => {
    try {
      return utf8.decode(raw);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const pop = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  // Callers must take the result before touching `stack`: it is replaced here.
  const popMark = (): PyValue[] => {
    const items = stack;
    const previous = metastack.pop();
    if (!previous) fail('no MARK on the stack');
    stack = previous!;
    return items;
  };
  const memoGet = (i: number): PyValue => {
    if (!memo.has(i)) fail(`memo key ${i} was never stored`);
    return memo.get(i)!;
  };
  const memoPut = (i: number): void => {
    memo.set(i, top());
  };
  const global = (module: string, name: string): PyValue => {
    if (!module || !name) fail('empty module or name');
    return hooks.findGlobal(module, name, site);
  };
  const reduce = (callee: PyValue, args: PyValue[], how: 'REDUCE' | 'NEWOBJ' | 'INST' | 'OBJ'): PyValue => {
    if (callee instanceof PyCallable) return how === 'NEWOBJ' ? callee.construct(args, site) : callee.call(args, site);
    if (callee instanceof PyGlobal || callee instanceof PyCall) return new PyCall(callee, args, how);
    return fail(`${shortDescription(callee)} is not callable`);
  };
  const persistent = (pid: PyValue): PyValue => {
    if (!hooks.persistentLoad) fail('persistent ids are not expected in this pickle');
    return hooks.persistentLoad!(pid, site);
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (items.length % 2) fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) {
      if (target instanceof PyDict) target.set(items[i]!, items[i + 1]!);
      else if (target instanceof PyCall) target.dictItems.push([items[i]!, items[i + 1]!]);
      else fail(`cannot set items on ${shortDescription(target)}`);
    }
  };
  const appendItems = (target: PyValue, items: PyValue[]): void => {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof PyCall) target.listItems.push(...items);
    else fail(`cannot append to ${shortDescription(target)}`);
  };
  const tupleArgs = (v: PyValue, what: string): PyValue[] => {
    if (!(v instanceof PyTuple)) fail(`${what} must be a tuple, got ${shortDescription(v)}`);
    return (v as PyTuple).items;
  };

  for (;;) {
    if (pos >= data.length) {
      site = { offset: pos, opcode: 'STOP' };
      throw new PickleTruncatedError(`pickle truncated: data ends at byte ${pos} before the STOP opcode`, pos, null);
    }
    const code = data[pos]!;
    const name = NAMES[code];
    site = { offset: pos, opcode: name ?? `0x${code.toString(16).padStart(2, '0')}` };
    pos++;
    switch (name) {
      case undefined:
        throw new PickleError(`unknown pickle opcode 0x${code.toString(16).padStart(2, '0')} at byte ${site.offset}`, site.offset, site.opcode);
      // ---- framing and control
      case 'PROTO': {
        const p = u8();
        if (p > MAX_PROTOCOL) fail(`unsupported pickle protocol ${p} (at most ${MAX_PROTOCOL})`);
        protocol = Math.max(protocol, p);
        break;
      }
      case 'FRAME':
        u64(); // frames only group opcodes for buffered reading
        break;
      case 'STOP':
        if (metastack.length) fail('STOP inside an unclosed MARK');
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack (expected 1)`);
        return { value: stack[0]!, end: pos, protocol };
      case 'MARK':
        metastack.push(stack);
        stack = [];
        break;
      case 'POP':
        if (stack.length) stack.pop();
        else popMark();
        break;
      case 'POP_MARK':
        popMark();
        break;
      case 'DUP':
        stack.push(top());
        break;
      // ---- memo
      case 'PUT': {
        const i = Number(line());
        if (!Number.isSafeInteger(i) || i < 0) fail('bad memo index');
        memoPut(i);
        break;
      }
      case 'BINPUT':
        memoPut(u8());
        break;
      case 'LONG_BINPUT':
        memoPut(u32());
        break;
      case 'MEMOIZE':
        memoPut(memo.size);
        break;
      case 'GET': {
        const i = Number(line());
        if (!Number.isSafeInteger(i) || i < 0) fail('bad memo index');
        stack.push(memoGet(i));
        break;
      }
      case 'BINGET':
        stack.push(memoGet(u8()));
        break;
      case 'LONG_BINGET':
        stack.push(memoGet(u32()));
        break;
      // ---- scalars
      case 'NONE':
        stack.push(null);
        break;
      case 'NEWTRUE':
        stack.push(true);
        break;
      case 'NEWFALSE':
        stack.push(false);
        break;
      case 'INT': {
        const s = line().trim();
        if (s === '00' || s === '01') stack.push(s === '01');
        else if (/^[+-]?\d+$/.test(s)) stack.push(pyInt(BigInt(s)));
        else fail(`bad INT literal ${JSON.stringify(s.slice(0, 40))}`);
        break;
      }
      case 'LONG': {
        const s = line().trim().replace(/L$/, '');
        if (!/^[+-]?\d+$/.test(s)) fail(`bad LONG literal ${JSON.stringify(s.slice(0, 40))}`);
        stack.push(pyInt(BigInt(s)));
        break;
      }
      case 'BININT':
        stack.push(i32());
        break;
      case 'BININT1':
        stack.push(u8());
        break;
      case 'BININT2':
        stack.push(u16());
        break;
      case 'LONG1':
        stack.push(decodeLong(bytes(u8())));
        break;
      case 'LONG4': {
        const n = i32();
        if (n < 0) fail('negative length');
        stack.push(decodeLong(bytes(n)));
        break;
      }
      case 'FLOAT': {
        const s = line().trim();
        const v = s === 'inf' ? Infinity : s === '-inf' ? -Infinity : s === 'nan' ? NaN : Number(s);
        if (Number.isNaN(v) && s !== 'nan') fail(`bad FLOAT literal ${JSON.stringify(s.slice(0, 40))}`);
        stack.push(v);
        break;
      }
      case 'BINFLOAT':
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      // ---- strings and bytes
      case 'STRING': {
        const s = line().trim();
        const q = s[0];
        if (s.length < 2 || (q !== "'" && q !== '"') || s[s.length - 1] !== q) fail('STRING literal is not quoted');
        let raw: Uint8Array;
        try {
          raw = unescapePy2(s.slice(1, -1));
        } catch (e) {
          return fail(`bad STRING literal: ${(e as Error).message}`);
        }
        stack.push(text(raw));
        break;
      }
      case 'BINSTRING': {
        const n = i32();
        if (n < 0) fail('negative length');
        stack.push(text(bytes(n)));
        break;
      }
      case 'SHORT_BINSTRING':
        stack.push(text(bytes(u8())));
        break;
      case 'UNICODE':
        stack.push(rawUnicodeUnescape(Buffer.from(line(), 'latin1')));
        break;
      case 'SHORT_BINUNICODE':
        stack.push(text(bytes(u8())));
        break;
      case 'BINUNICODE':
        stack.push(text(bytes(u32())));
        break;
      case 'BINUNICODE8':
        stack.push(text(bytes(u64())));
        break;
      case 'SHORT_BINBYTES':
        stack.push(bytes(u8()).slice());
        break;
      case 'BINBYTES':
        stack.push(bytes(u32()).slice());
        break;
      case 'BINBYTES8':
      case 'BYTEARRAY8':
        stack.push(bytes(u64()).slice());
        break;
      case 'NEXT_BUFFER':
      case 'READONLY_BUFFER':
        fail('out-of-band buffers (pickle protocol 5 buffer_callback) are not supported in checkpoints');
        break;
      // ---- containers
      case 'EMPTY_TUPLE':
        stack.push(new PyTuple([]));
        break;
      case 'TUPLE': {
        const items = popMark();
        stack.push(new PyTuple(items));
        break;
      }
      case 'TUPLE1': {
        const a = pop();
        stack.push(new PyTuple([a]));
        break;
      }
      case 'TUPLE2': {
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b]));
        break;
      }
      case 'TUPLE3': {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PyTuple([a, b, c]));
        break;
      }
      case 'EMPTY_LIST':
        stack.push([]);
        break;
      case 'LIST': {
        const items = popMark();
        stack.push(items);
        break;
      }
      case 'APPEND': {
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 'APPENDS': {
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 'EMPTY_DICT':
        stack.push(new PyDict());
        break;
      case 'DICT': {
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 'SETITEM': {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 'SETITEMS': {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 'EMPTY_SET':
        stack.push(new PySet([], false));
        break;
      case 'ADDITEMS': {
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet) || s.frozen) fail(`cannot add items to ${shortDescription(s)}`);
        (s as PySet).items.push(...items);
        break;
      }
      case 'FROZENSET': {
        const items = popMark();
        stack.push(new PySet(items, true));
        break;
      }
      // ---- globals, calls, objects
      case 'GLOBAL': {
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 'STACK_GLOBAL': {
        const n = pop();
        const m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') fail('module and name must be strings');
        stack.push(global(m as string, n as string));
        break;
      }
      case 'REDUCE': {
        const args = pop();
        const callee = pop();
        stack.push(reduce(callee, tupleArgs(args, 'REDUCE arguments'), 'REDUCE'));
        break;
      }
      case 'NEWOBJ': {
        const args = pop();
        const cls = pop();
        stack.push(reduce(cls, tupleArgs(args, 'NEWOBJ arguments'), 'NEWOBJ'));
        break;
      }
      case 'NEWOBJ_EX': {
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!(kwargs instanceof PyDict)) fail('NEWOBJ_EX keyword arguments must be a dict');
        const positional = tupleArgs(args, 'NEWOBJ_EX arguments');
        if (cls instanceof PyGlobal || cls instanceof PyCall) stack.push(new PyCall(cls, positional, 'NEWOBJ_EX', kwargs as PyDict));
        else if (cls instanceof PyCallable && (kwargs as PyDict).size === 0) stack.push(cls.construct(positional, site));
        else fail(`${shortDescription(cls)} cannot be constructed with keyword arguments`);
        break;
      }
      case 'INST': {
        const module = line();
        const cls = global(module, line());
        const args = popMark();
        stack.push(reduce(cls, args, 'INST'));
        break;
      }
      case 'OBJ': {
        const items = popMark();
        if (items.length === 0) fail('OBJ without a class');
        stack.push(reduce(items[0]!, items.slice(1), 'OBJ'));
        break;
      }
      case 'BUILD': {
        const state = pop();
        const target = top();
        if (target instanceof PyCall || target instanceof PyDict) target.state = state;
        else fail(`cannot set the state of ${shortDescription(target)}`);
        break;
      }
      case 'PERSID':
        stack.push(persistent(line()));
        break;
      case 'BINPERSID':
        stack.push(persistent(pop()));
        break;
      case 'EXT1':
      case 'EXT2':
      case 'EXT4':
        fail('copyreg extension codes are not supported');
        break;
    }
  }
}
