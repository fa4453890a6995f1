/**
 * A restricted pickle virtual machine (protocols 2-5) that executes nothing.
 *
 * Python's pickle format is a small stack-machine program. The dangerous opcodes are the ones that import a name
 * (GLOBAL, STACK_GLOBAL) and call it (REDUCE, NEWOBJ, BUILD): a hostile file writes `os.system` + REDUCE. Here:
 * - GLOBAL/STACK_GLOBAL ask `resolveGlobal(module, name)`; anything it does not know raises
 *   PICKLE_FORBIDDEN_GLOBAL at that opcode, before any call could happen;
 * - REDUCE/NEWOBJ only call `PyCallable`s, which are TypeScript functions written by the caller (they build
 *   plain descriptors; nothing is imported or evaluated);
 * - BUILD only works on objects that define `setState`;
 * - persistent ids (BINPERSID) go to `persistentLoad`;
 * - every other opcode is refused with its name and byte offset. Supported: PROTO FRAME STOP MARK POP POP_MARK DUP
 *   NONE NEWTRUE NEWFALSE BININT BININT1 BININT2 LONG1 LONG4 BINFLOAT SHORT_BINUNICODE BINUNICODE BINUNICODE8
 *   SHORT_BINBYTES BINBYTES BINBYTES8 EMPTY_TUPLE TUPLE TUPLE1-3 EMPTY_LIST APPEND APPENDS EMPTY_DICT SETITEM
 *   SETITEMS EMPTY_SET ADDITEMS FROZENSET BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET GLOBAL STACK_GLOBAL REDUCE
 *   NEWOBJ BUILD BINPERSID (the text opcodes of protocol 0/1, INST, OBJ, EXT*, NEWOBJ_EX and buffers are refused);
 * - stack depth, memo size and lengths are bounded, and every read is checked against the data.
 * This is the same idea as PyTorch's `weights_only=True` unpickler.
 */
import { PerceiverError } from "../../errors.js";

/** An immutable Python tuple. */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python list. */
export class PyList {
  constructor(readonly items: PyValue[] = []) {}
}

/** A Python set or frozenset (only built, never hashed: duplicates of unhashable values are kept). */
export class PySet {
  constructor(readonly items: PyValue[] = [], readonly frozen = false) {}
}

type PyKey = string | number | bigint | boolean | null;

/** A Python dict (or OrderedDict) in insertion order. Primitive keys are deduplicated like Python does. */
export class PyDict {
  private readonly index = new Map<PyKey, number>();
  readonly keys: PyValue[] = [];
  readonly values: PyValue[] = [];
  constructor(readonly className = "dict") {}

  set(key: PyValue, value: PyValue): void {
    if (isPrimitive(key)) {
      const k = normalizeKey(key);
      const at = this.index.get(k);
      if (at !== undefined) {
        this.values[at] = value;
        return;
      }
      this.index.set(k, this.keys.length);
    }
    this.keys.push(key);
    this.values.push(value);
  }

  get(key: string): PyValue | undefined {
    const at = this.index.get(key);
    return at === undefined ? undefined : this.values[at];
  }

  get size(): number {
    return this.keys.length;
  }

  /** BUILD handler. Plain dicts have none, so BUILD on them is refused; a whitelisted builder may set one. */
  setState?: (state: PyValue) => void;
}

/**
 * A name imported by GLOBAL/STACK_GLOBAL that can be called by REDUCE (and NEWOBJ when `allowNewobj`).
 * `call` receives the argument tuple's items and returns the built value.
 */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: PyValue[]) => PyValue,
    readonly allowNewobj = false,
  ) {}
}

/** A name imported by GLOBAL that is only a value (a storage type, a dtype): calling it is refused. */
export class PyGlobalRef {
  constructor(readonly qualname: string) {}
}

/** Anything else the caller's builders return (tensor and storage descriptors). BUILD calls `setState` if present. */
export interface PyObject {
  readonly pyType: string;
  setState?: (state: PyValue) => void;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyTuple
  | PyList
  | PySet
  | PyDict
  | PyCallable
  | PyGlobalRef
  | PyObject;

export interface UnpickleOptions {
  /** Name used in error messages (e.g. "model.bin:archive/data.pkl"). */
  source?: string;
  /** Return a PyCallable/PyGlobalRef for an allowed name, or undefined to forbid it. */
  resolveGlobal: (module: string, name: string) => PyValue | undefined;
  /** Turn a persistent id into a value; absent = BINPERSID is refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Max stack entries, and max nested MARKs. Default 1,000,000. */
  maxStack?: number;
  /** Max memo entries. Default 1,000,000. */
  maxMemo?: number;
  /**
   * Budget of values the program may create, so a small pickle cannot fill the heap: each push costs 1 and each new
   * dict, list or set 16 more (they weigh a few hundred bytes). Default 4,000,000 (a 142-tensor state dict needs
   * about 6,000, a 10,000-tensor one about 400,000).
   */
  maxObjects?: number;
}

/** Names of all pickle opcodes (protocols 0-5), for error messages. */
const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT",
  0x4a: "BININT", 0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID",
  0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE",
  0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET",
  0x68: "BINGET", 0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT",
  0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS",
  0x47: "BINFLOAT", 0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1",
  0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4",
  0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE",
  0x95: "FRAME", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

export function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `unknown opcode 0x${op.toString(16).padStart(2, "0")}`;
}

/** Short description of a value for error messages (never recursive). */
export function describe(v: PyValue): string {
  if (v === null) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "bigint") return `int ${String(v)}`;
  if (typeof v === "number") return `${Number.isInteger(v) ? "int" : "float"} ${String(v)}`;
  if (typeof v === "string") return `str ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)}`;
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  if (v instanceof PyTuple) return `tuple[${v.items.length}]`;
  if (v instanceof PyList) return `list[${v.items.length}]`;
  if (v instanceof PySet) return v.frozen ? "frozenset" : "set";
  if (v instanceof PyDict) return `${v.className}[${v.size}]`;
  if (v instanceof PyCallable || v instanceof PyGlobalRef) return v.qualname;
  return v.pyType;
}

function isPrimitive(v: PyValue): v is PyKey {
  return v === null || typeof v === "string" || typeof v === "number" || typeof v === "bigint" || typeof v === "boolean";
}

/** Python hashes True == 1 and 1 == 1.0; keep small ints/bools on one key. */
function normalizeKey(k: PyKey): PyKey {
  if (typeof k === "boolean") return k ? 1 : 0;
  if (typeof k === "bigint" && k >= BigInt(Number.MIN_SAFE_INTEGER) && k <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(k);
  return k;
}

/** Run a pickle program and return the value left by STOP. Throws PerceiverError (PICKLE_*) on anything unexpected. */
export function unpickle(data: Uint8Array, opts: UnpickleOptions): PyValue {
  const source = opts.source ?? "<pickle>";
  const maxStack = opts.maxStack ?? 1_000_000;
  const maxMemo = opts.maxMemo ?? 1_000_000;
  const maxObjects = opts.maxObjects ?? 4_000_000;
  let objects = 0;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const stack: PyValue[] = [];
  const marks: number[] = []; // stack heights saved by MARK (Python's metastack)
  const memo = new Map<number, PyValue>();
  let pos = 0;
  let opAt = 0; // offset of the opcode being executed
  let op = -1;

  type PickleCode = "PICKLE_INVALID" | "PICKLE_UNSUPPORTED" | "PICKLE_FORBIDDEN_GLOBAL";
  function where(): string {
    return op < 0 ? `at byte ${opAt}` : `${opcodeName(op)} at byte ${opAt}`;
  }
  function fail(msg: string, code: PickleCode = "PICKLE_INVALID"): never {
    throw new PerceiverError(code, `${source}: ${msg} (${where()})`);
  }
  /** Re-throw a builder's PerceiverError with the opcode position appended. */
  function located<T>(f: () => T): T {
    try {
      return f();
    } catch (err) {
      if (err instanceof PerceiverError) throw new PerceiverError(err.code, `${err.message} (${where()})`, { cause: err });
      throw err;
    }
  }
  function need(n: number): void {
    if (pos + n > data.length) fail(`truncated: needs ${n} more bytes, only ${data.length - pos} left`);
  }
  function u8(): number {
    need(1);
    return data[pos++];
  }
  function u16(): number {
    need(2);
    const v = dv.getUint16(pos, true);
    pos += 2;
    return v;
  }
  function u32(): number {
    need(4);
    const v = dv.getUint32(pos, true);
    pos += 4;
    return v;
  }
  function u64(): number {
    need(8);
    const lo = dv.getUint32(pos, true);
    const hi = dv.getUint32(pos + 4, true);
    pos += 8;
    if (hi >= 0x200000) fail(`length ${hi} * 2^32 + ${lo} is too large`);
    return hi * 2 ** 32 + lo;
  }
  function bytes(n: number): Uint8Array {
    need(n);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  }
  function text(n: number): string {
    const b = bytes(n);
    try {
      return utf8.decode(b);
    } catch {
      return fail(`string of ${n} bytes is not valid UTF-8`);
    }
  }
  /** A newline-terminated line (GLOBAL's arguments), at most 256 bytes. */
  function line(): string {
    const end = data.subarray(pos, pos + 257).indexOf(0x0a);
    if (end < 0) fail("GLOBAL argument is not a newline-terminated line of at most 256 bytes");
    const s = text(end);
    pos++;
    return s;
  }
  function push(v: PyValue): void {
    if (stack.length >= maxStack) fail(`stack deeper than ${maxStack} entries`);
    objects += v instanceof PyDict || v instanceof PyList || v instanceof PySet ? 17 : 1;
    if (objects > maxObjects) fail(`the program builds more than ${maxObjects} values (maxObjects): not a state dict`);
    stack.push(v);
  }
  function floor(): number {
    return marks.length > 0 ? marks[marks.length - 1] : 0;
  }
  function pop(): PyValue {
    if (stack.length <= floor()) fail("stack underflow");
    return stack.pop() as PyValue;
  }
  function top(): PyValue {
    if (stack.length <= floor()) fail("stack underflow");
    return stack[stack.length - 1];
  }
  /** Pop everything above the last MARK (and the mark); return the items in order. */
  function popMark(): PyValue[] {
    const k = marks.pop();
    if (k === undefined) return fail("no MARK on the stack");
    return stack.splice(k);
  }
  function put(idx: number): void {
    if (!memo.has(idx) && memo.size >= maxMemo) fail(`memo larger than ${maxMemo} entries`);
    memo.set(idx, top());
  }
  function get(idx: number): void {
    const v = memo.get(idx);
    if (v === undefined) fail(`memo index ${idx} was never stored`);
    push(v);
  }
  function importGlobal(module: string, name: string): void {
    const v = opts.resolveGlobal(module, name);
    if (v === undefined) fail(`forbidden global ${module}.${name}: only tensor-building names are allowed`, "PICKLE_FORBIDDEN_GLOBAL");
    push(v);
  }
  function dictOf(v: PyValue, what: string): PyDict {
    if (!(v instanceof PyDict)) fail(`${what} on ${describe(v)}, expected a dict`);
    return v;
  }
  function listOf(v: PyValue, what: string): PyList {
    if (!(v instanceof PyList)) fail(`${what} on ${describe(v)}, expected a list`);
    return v;
  }
  /** Two's-complement little-endian integer of n bytes (LONG1/LONG4); a number when safe, else a bigint. */
  function long(n: number): number | bigint {
    if (n > 64) fail(`integer of ${n} bytes is too large`);
    const b = bytes(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  function call(fn: PyValue, args: PyValue, newobj: boolean): PyValue {
    const kind = newobj ? "NEWOBJ" : "REDUCE";
    if (!(fn instanceof PyCallable)) return fail(`${kind} on ${describe(fn)}, which is not an allowed callable`);
    if (newobj && !fn.allowNewobj) fail(`NEWOBJ on ${fn.qualname} is not allowed`);
    if (!(args instanceof PyTuple)) return fail(`arguments of ${fn.qualname} are ${describe(args)}, expected a tuple`);
    return located(() => fn.call(args.items));
  }

  while (true) {
    opAt = pos;
    if (pos >= data.length) {
      op = -1;
      fail("truncated: the program ends without STOP");
    }
    op = data[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8();
        if (proto > 5) fail(`pickle protocol ${proto} is not supported (max 5)`, "PICKLE_UNSUPPORTED");
        break;
      }
      case 0x95: { // FRAME: a length hint; the opcodes inside are read as usual
        const n = u64();
        if (pos + n > data.length) fail(`frame of ${n} bytes runs past the end of the data`);
        break;
      }
      case 0x2e: // STOP (like Python, values left below the result are dropped)
        return pop();
      case 0x28: // MARK
        if (marks.length >= maxStack) fail(`more than ${maxStack} nested MARKs`);
        marks.push(stack.length);
        break;
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x7d: push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: push(new PyList()); break; // EMPTY_LIST
      case 0x29: push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x8f: push(new PySet()); break; // EMPTY_SET
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x4a: { // BININT: signed 32-bit
        need(4);
        const v = dv.getInt32(pos, true);
        pos += 4;
        push(v);
        break;
      }
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(long(u8())); break; // LONG1
      case 0x8b: push(long(u32())); break; // LONG4
      case 0x47: { // BINFLOAT: big-endian double
        need(8);
        const v = dv.getFloat64(pos, false);
        pos += 8;
        push(v);
        break;
      }
      case 0x8c: push(text(u8())); break; // SHORT_BINUNICODE
      case 0x58: push(text(u32())); break; // BINUNICODE
      case 0x8d: push(text(u64())); break; // BINUNICODE8
      case 0x43: push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x42: push(bytes(u32())); break; // BINBYTES
      case 0x8e: push(bytes(u64())); break; // BINBYTES8
      case 0x74: push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x71: put(u8()); break; // BINPUT
      case 0x72: put(u32()); break; // LONG_BINPUT
      case 0x94: put(memo.size); break; // MEMOIZE
      case 0x68: get(u8()); break; // BINGET
      case 0x6a: get(u32()); break; // LONG_BINGET
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        dictOf(top(), "SETITEM").set(k, v);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) fail(`SETITEMS with an odd number (${items.length}) of keys and values`);
        const d = dictOf(top(), "SETITEMS");
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        listOf(top(), "APPEND").items.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = listOf(top(), "APPENDS");
        for (const v of items) l.items.push(v);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet) || s.frozen) return fail(`ADDITEMS on ${describe(s)}, expected a set`);
        for (const v of items) s.items.push(v);
        break;
      }
      case 0x91: push(new PySet(popMark(), true)); break; // FROZENSET
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        importGlobal(module, name);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          return fail(`STACK_GLOBAL needs two strings, got ${describe(module)} and ${describe(name)}`);
        }
        importGlobal(module, name);
        break;
      }
      case 0x52: { // REDUCE: callable(*args)
        const args = pop();
        const fn = pop();
        push(call(fn, args, false));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        push(call(cls, args, true));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state)
        const state = pop();
        const obj = top();
        if (obj === null || typeof obj !== "object" || obj instanceof Uint8Array || !("setState" in obj) ||
          typeof obj.setState !== "function") {
          return fail(`BUILD on ${describe(obj)} is not allowed`);
        }
        const target = obj as PyObject;
        located(() => target.setState!(state));
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        const load = opts.persistentLoad;
        if (load === undefined) return fail("persistent ids are not allowed here");
        push(located(() => load(pid)));
        break;
      }
      default:
        fail(`opcode ${opcodeName(op)} (0x${op.toString(16).padStart(2, "0")}) is not supported by this restricted unpickler`,
          OPCODE_NAMES[op] === undefined ? "PICKLE_INVALID" : "PICKLE_UNSUPPORTED");
    }
  }
}
