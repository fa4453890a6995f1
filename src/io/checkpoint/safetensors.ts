/**
 * safetensors reader and writer (browser-safe: no `fs` here; see safetensors-node.ts for files).
 *
 * Layout: 8-byte little-endian u64 N | N bytes of UTF-8 JSON header | tensor data.
 * Header: { "__metadata__"?: {string: string}, name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} }
 * with offsets relative to the first byte after the header. Validation follows the Rust `safetensors` crate:
 * tensors sorted by offsets must tile the data section exactly, from 0 to the end of the file.
 *
 * Byte order: safetensors is little-endian and the typed-array views used here read in host order, so a
 * big-endian host is refused (checked once, see assertLittleEndianHost).
 */
import { PerceiverError } from "../../errors.js";
import type { PerceiverErrorCode } from "../../errors.js";
import { bf16ToF32, f16ToF32 } from "./float16.js";
import type { Dtype, StateDict, TensorInfo } from "./state-dict.js";

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1,
});

/** The Rust crate's `Dtype` enum order (increasing alignment); the writer sorts by it, descending. */
const DTYPE_RANK: Readonly<Record<Dtype, number>> = {
  BOOL: 0, U8: 1, I8: 2, I16: 3, U16: 4, F16: 5, BF16: 6, I32: 7, U32: 8, F32: 9, F64: 10, I64: 11, U64: 12,
};

/** Same cap as the Rust crate (MAX_HEADER_SIZE). */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;

export interface ReadSafetensorsOptions {
  /** Largest accepted JSON header, in bytes (default 100 MB). */
  maxHeaderBytes?: number;
  /** Where the bytes came from (e.g. the file path); quoted in every error message. */
  source?: string;
}

/** The native typed array of each dtype (F16/BF16 as raw Uint16 bits, BOOL as Uint8 bytes). */
export type RawTensorData =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | BigUint64Array
  | Int32Array | Uint32Array | Int16Array | Int8Array | Uint8Array;

/** One header entry after validation. Offsets are relative to the start of the data section. */
export interface SafetensorsEntry extends TensorInfo {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
  readonly numel: number;
}

/** A tensor to write: `data` holds numel x dtype-size bytes in little-endian order. */
export interface SafetensorsTensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

let littleEndianChecked = false;

/** Throws on a big-endian host (the typed-array views below assume little-endian memory). */
export function assertLittleEndianHost(): void {
  if (littleEndianChecked) return;
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error("perceiver-ts: big-endian hosts are not supported (safetensors data is little-endian)");
  }
  littleEndianChecked = true;
}

function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** Short description of a JSON value's kind for error messages. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)})`;
  if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) return `a number (${BigInt(v)}, beyond 2^53)`;
  return `a ${typeof v} (${String(v)})`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Product of a validated shape, or -1 when it exceeds Number.MAX_SAFE_INTEGER (checked at every step). */
function checkedNumel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return -1; // exact test: products below 2^53 are computed exactly
  }
  return n;
}

/**
 * Top-level keys of a JSON object text, in text order, unescaped. Used to detect duplicate names, which
 * JSON.parse would silently collapse (last one wins). `text` must already have parsed as a JSON object.
 */
export function topLevelJsonKeys(text: string): string[] {
  const n = text.length;
  let i = 0;
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const skipString = () => { // at the opening quote
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) i += 2; // backslash: skip the escaped char (\" included)
      else if (c === 0x22) { i++; return; }
      else i++;
    }
  };
  const skipValue = () => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 0x22) return skipString();
    if (c === 0x7b || c === 0x5b) { // { or [: match brackets, skipping strings
      let depth = 0;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x22) { skipString(); continue; }
        if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) depth--;
        i++;
        if (depth === 0) return;
      }
      return;
    }
    while (i < n) { // number, true, false, null
      const d = text.charCodeAt(i);
      if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) return;
      i++;
    }
  };
  const keys: string[] = [];
  ws();
  i++; // {
  ws();
  if (text.charCodeAt(i) === 0x7d) return keys;
  while (i < n) {
    ws();
    const start = i;
    skipString();
    keys.push(JSON.parse(text.slice(start, i)) as string);
    ws();
    i++; // :
    skipValue();
    ws();
    if (text.charCodeAt(i) !== 0x2c) break; // } ends the object
    i++;
  }
  return keys;
}

// ---------------------------------------------------------------------------------------------------------------
// reader

/**
 * Reads and checks the 8-byte header length. `prefix` holds at least the first 8 bytes of a file of
 * `fileByteLength` bytes. Returns N, the JSON header length. Shared with the Node file reader, which calls it
 * before reading the whole file.
 */
export function readHeaderLength(prefix: Uint8Array, fileByteLength: number, opts: ReadSafetensorsOptions = {}): number {
  const src = opts.source ?? "<safetensors buffer>";
  const max = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!isIndex(max)) {
    throw new PerceiverError("INPUT_INVALID", `${src}: maxHeaderBytes must be a non-negative integer, got ${String(max)}`);
  }
  if (fileByteLength < 8 || prefix.length < 8) {
    throw new PerceiverError(
      "SAFETENSORS_TOO_SMALL",
      `${src}: file is only ${fileByteLength} bytes, too small for a safetensors file (needs an 8-byte header length)`,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(max)) {
    throw new PerceiverError(
      "SAFETENSORS_HEADER_TOO_LARGE",
      `${src}: header length ${n} bytes exceeds the limit of ${max} bytes (maxHeaderBytes); not a safetensors file?`,
    );
  }
  if (n > BigInt(fileByteLength - 8)) {
    throw new PerceiverError(
      "SAFETENSORS_HEADER_OUT_OF_BOUNDS",
      `${src}: header length ${n} bytes runs past the end of the file (only ${fileByteLength - 8} bytes follow the length prefix)`,
    );
  }
  return Number(n);
}

/**
 * A parsed safetensors file over a byte buffer (the buffer is kept, not copied). Construct with readSafetensors.
 * Tensor data stays in the buffer; getRaw/getFloat32 return zero-copy views when alignment allows.
 */
export class SafetensorsFile implements StateDict {
  /** The name used in error messages (file path or "<safetensors buffer>"). */
  readonly source: string;
  /** Total size of the file in bytes. */
  readonly byteLength: number;
  /** N, the JSON header length in bytes (including padding). */
  readonly headerByteLength: number;
  /** Offset of the data section from the start of the file: 8 + N. */
  readonly dataByteOffset: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly #bytes: Uint8Array;
  readonly #entries: Map<string, SafetensorsEntry>;
  readonly #order: string[];

  constructor(bytes: ArrayBuffer | ArrayBufferLike | Uint8Array, opts: ReadSafetensorsOptions = {}) {
    assertLittleEndianHost();
    const src = opts.source ?? "<safetensors buffer>";
    let u8: Uint8Array;
    // a plain Uint8Array view even for a Node Buffer, whose slice() returns a view instead of a copy
    if (ArrayBuffer.isView(bytes)) u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    else if (bytes instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && bytes instanceof SharedArrayBuffer)) {
      u8 = new Uint8Array(bytes);
    } else {
      throw new PerceiverError("INPUT_INVALID", `${src}: expected an ArrayBuffer or Uint8Array, got ${kindOf(bytes)}`);
    }
    this.source = src;
    this.#bytes = u8;
    this.byteLength = u8.byteLength;

    const n = readHeaderLength(u8, u8.byteLength, opts);
    this.headerByteLength = n;
    this.dataByteOffset = 8 + n;

    // slice(): TextDecoder refuses views of a SharedArrayBuffer; headers are small.
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(u8.slice(8, 8 + n));
    } catch (e) {
      throw new PerceiverError("SAFETENSORS_HEADER_NOT_UTF8", `${src}: header (${n} bytes) is not valid UTF-8`, { cause: e });
    }
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (e) {
      throw new PerceiverError(
        "SAFETENSORS_HEADER_NOT_JSON",
        `${src}: header is not valid JSON (${(e as Error).message})`,
        { cause: e },
      );
    }
    if (!isPlainObject(header)) {
      throw new PerceiverError("SAFETENSORS_HEADER_NOT_OBJECT", `${src}: header is ${kindOf(header)}, expected a JSON object`);
    }

    const keys = topLevelJsonKeys(text);
    const seen = new Set<string>();
    for (const k of keys) {
      if (seen.has(k)) {
        throw new PerceiverError("SAFETENSORS_DUPLICATE_KEY", `${src}: header has the key ${JSON.stringify(k)} more than once`);
      }
      seen.add(k);
    }
    const values = new Map(Object.entries(header));
    if (values.size !== keys.length) {
      throw new Error(`${src}: internal error: header key scan found ${keys.length} keys, JSON.parse ${values.size}`);
    }

    // validate each entry, in header order
    let metadata: Record<string, string> = {};
    const entries: SafetensorsEntry[] = [];
    for (const name of keys) {
      const v = values.get(name);
      if (name === "__metadata__") {
        metadata = validateMetadata(v, src);
        continue;
      }
      entries.push(validateEntry(name, v, src));
    }

    // the data section must be tiled exactly: sort by (begin, end) like the Rust crate, then walk
    const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
    let pos = 0;
    let prev: SafetensorsEntry | null = null;
    for (const e of sorted) {
      if (e.begin !== pos) {
        const where = `tensor ${JSON.stringify(e.name)} data_offsets [${e.begin}, ${e.end}]`;
        if (prev === null) {
          fail("SAFETENSORS_INVALID_OFFSETS", src, `${where}: the first tensor's data must begin at offset 0`);
        } else if (e.begin > pos) {
          fail("SAFETENSORS_INVALID_OFFSETS", src,
            `${where}: gap of ${e.begin - pos} bytes after tensor ${JSON.stringify(prev.name)}, which ends at ${pos}`);
        } else {
          fail("SAFETENSORS_INVALID_OFFSETS", src,
            `${where}: overlaps tensor ${JSON.stringify(prev.name)}, which ends at ${pos}`);
        }
      }
      const need = e.numel * DTYPE_SIZE[e.dtype];
      if (e.end - e.begin !== need) {
        fail("SAFETENSORS_SIZE_MISMATCH", src,
          `tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin} bytes, ` +
          `but dtype ${e.dtype} with shape [${e.shape.join(", ")}] needs ${need} bytes`);
      }
      pos = e.end;
      prev = e;
    }
    const dataLen = u8.byteLength - this.dataByteOffset;
    if (pos > dataLen) {
      fail("SAFETENSORS_TRUNCATED", src,
        `tensor data needs ${pos} bytes after the header but the file has only ${dataLen} (file truncated?)`);
    }
    if (pos < dataLen) {
      fail("SAFETENSORS_TRAILING_BYTES", src,
        `${dataLen - pos} unexpected bytes after the last tensor (data ends at ${pos}, file data section is ${dataLen} bytes)`);
    }

    this.#order = sorted.map((e) => e.name);
    this.#entries = new Map(sorted.map((e) => [e.name, e]));
    this.metadata = Object.freeze(metadata);
  }

  /** Tensor names in data order (the order the Rust/Python writers put them in the header). */
  names(): string[] {
    return this.#order.slice();
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /** Header entry with dtype, shape, numel and data offsets; throws CHECKPOINT_MISSING_KEYS if absent. */
  entry(name: string): SafetensorsEntry {
    const e = this.#entries.get(name);
    if (e === undefined) {
      throw new PerceiverError("CHECKPOINT_MISSING_KEYS", `${this.source}: no tensor named ${JSON.stringify(name)}`);
    }
    return e;
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape };
  }

  /** The tensor's raw little-endian bytes, zero-copy (a view into the buffer given to readSafetensors). */
  getBytes(name: string): Uint8Array {
    const e = this.entry(name);
    return this.#bytes.subarray(this.dataByteOffset + e.begin, this.dataByteOffset + e.end);
  }

  /**
   * The tensor in its native typed array (see RawTensorData). Zero-copy view of the buffer when the data's
   * absolute byte offset is a multiple of the element size, else an aligned copy. Treat views as read-only.
   */
  getRaw(name: string): RawTensorData {
    const e = this.entry(name);
    return typedArrayOf(this.getBytes(name), e.dtype, e.numel);
  }

  /**
   * Values as float32, row-major. F32: zero-copy view when 4-byte aligned (read-only!), else a copy.
   * F16/BF16: exact upcast. F64: rounded to nearest f32. Integers: converted (I64/U64 via Number). BOOL: 0/1.
   */
  getFloat32(name: string): Float32Array {
    return rawToFloat32(this.entry(name).dtype, this.getRaw(name));
  }
}

/**
 * Little-endian tensor bytes -> the dtype's typed array (F16/BF16 as Uint16 bits, BOOL as Uint8). A zero-copy view
 * when the bytes sit at a multiple of the element size in their buffer, else an aligned copy. Shared by the readers.
 */
export function typedArrayOf(bytes: Uint8Array, dtype: Dtype, numel: number): RawTensorData {
  let b = bytes;
  if (b.byteOffset % DTYPE_SIZE[dtype] !== 0) b = new Uint8Array(b); // misaligned: aligned copy (offset 0)
  const buf = b.buffer, off = b.byteOffset, n = numel;
  switch (dtype) {
    case "F64": return new Float64Array(buf, off, n);
    case "F32": return new Float32Array(buf, off, n);
    case "F16": case "BF16": case "U16": return new Uint16Array(buf, off, n);
    case "I64": return new BigInt64Array(buf, off, n);
    case "U64": return new BigUint64Array(buf, off, n);
    case "I32": return new Int32Array(buf, off, n);
    case "U32": return new Uint32Array(buf, off, n);
    case "I16": return new Int16Array(buf, off, n);
    case "I8": return new Int8Array(buf, off, n);
    case "U8": case "BOOL": return new Uint8Array(buf, off, n);
  }
}

/**
 * A native typed array -> float32 values. F32: returned as is (a view stays a view: read-only!). F16/BF16: exact
 * upcast. F64: rounded to nearest f32. Integers: converted (I64/U64 via Number). BOOL: 0/1.
 */
export function rawToFloat32(dtype: Dtype, raw: RawTensorData): Float32Array {
  switch (dtype) {
    case "F32": return raw as Float32Array;
    case "F16": return f16ToF32(raw as Uint16Array);
    case "BF16": return bf16ToF32(raw as Uint16Array);
    case "I64": case "U64": {
      const big = raw as BigInt64Array | BigUint64Array;
      const out = new Float32Array(big.length);
      for (let i = 0; i < big.length; i++) out[i] = Number(big[i]);
      return out;
    }
    case "BOOL": {
      const out = new Float32Array(raw.length);
      for (let i = 0; i < raw.length; i++) out[i] = (raw as Uint8Array)[i] !== 0 ? 1 : 0;
      return out;
    }
    default: // F64, I32, U32, I16, U16, I8, U8: element-wise conversion
      return new Float32Array(raw as Exclude<RawTensorData, BigInt64Array | BigUint64Array>);
  }
}

function fail(code: PerceiverErrorCode, src: string, msg: string): never {
  throw new PerceiverError(code, `${src}: ${msg}`);
}

function validateMetadata(v: unknown, src: string): Record<string, string> {
  if (v === null) return {}; // the Rust crate reads `"__metadata__": null` as no metadata
  if (!isPlainObject(v)) fail("SAFETENSORS_INVALID_METADATA", src, `"__metadata__" is ${kindOf(v)}, expected an object of strings`);
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== "string") {
      fail("SAFETENSORS_INVALID_METADATA", src, `"__metadata__" value for ${JSON.stringify(k)} is ${kindOf(s)}, expected a string`);
    }
  }
  return v as Record<string, string>;
}

function validateEntry(name: string, v: unknown, src: string): SafetensorsEntry {
  const t = `tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(v)) {
    fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: entry is ${kindOf(v)}, expected an object with dtype, shape, data_offsets`);
  }
  for (const field of ["dtype", "shape", "data_offsets"]) {
    if (!Object.prototype.hasOwnProperty.call(v, field)) fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: missing field "${field}"`);
  }
  const { dtype, shape, data_offsets: offsets } = v;
  if (typeof dtype !== "string") fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: "dtype" is ${kindOf(dtype)}, expected a string`);
  if (!isDtype(dtype)) {
    fail("SAFETENSORS_UNKNOWN_DTYPE", src,
      `${t}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(", ")})`);
  }
  if (!Array.isArray(shape)) fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: "shape" is ${kindOf(shape)}, expected an array`);
  if (!Array.isArray(offsets)) {
    fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: "data_offsets" is ${kindOf(offsets)}, expected [begin, end]`);
  }
  shape.forEach((d: unknown, i: number) => {
    if (!isIndex(d)) fail("SAFETENSORS_INVALID_SHAPE", src, `${t}: shape[${i}] is ${kindOf(d)}, expected a non-negative integer`);
  });
  const numel = checkedNumel(shape as number[]);
  if (numel < 0 || numel * DTYPE_SIZE[dtype] > Number.MAX_SAFE_INTEGER) {
    fail("SAFETENSORS_INVALID_SHAPE", src, `${t}: shape [${shape.join(", ")}] is too large (element or byte count overflows)`);
  }
  if (offsets.length !== 2) {
    fail("SAFETENSORS_INVALID_OFFSETS", src, `${t}: "data_offsets" has ${offsets.length} entries, expected [begin, end]`);
  }
  offsets.forEach((o: unknown, i: number) => {
    if (!isIndex(o)) {
      fail("SAFETENSORS_INVALID_OFFSETS", src,
        `${t}: data_offsets[${i}] is ${kindOf(o)}, expected a non-negative integer`);
    }
  });
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail("SAFETENSORS_INVALID_OFFSETS", src, `${t}: data_offsets [${begin}, ${end}] end before they begin`);
  return Object.freeze({ name, dtype, shape: Object.freeze((shape as number[]).slice()), begin, end, numel });
}

/**
 * Parses a safetensors file held in memory. A Uint8Array may be a view into a bigger buffer (e.g. a Node Buffer
 * from the pool): offsets are taken relative to its byteOffset. The buffer is referenced, not copied.
 */
export function readSafetensors(bytes: ArrayBuffer | Uint8Array, opts?: ReadSafetensorsOptions): SafetensorsFile {
  return new SafetensorsFile(bytes, opts);
}

// ---------------------------------------------------------------------------------------------------------------
// writer

/** Typed arrays accepted as `data` for each dtype, besides raw bytes (a Uint8Array or DataView works for any dtype). */
const NATIVE_ARRAY: Readonly<Record<Dtype, readonly string[]>> = {
  F64: ["Float64Array"], F32: ["Float32Array"], F16: ["Uint16Array"], BF16: ["Uint16Array"],
  I64: ["BigInt64Array"], I32: ["Int32Array"], I16: ["Int16Array"], I8: ["Int8Array"],
  U64: ["BigUint64Array"], U32: ["Uint32Array"], U16: ["Uint16Array"], U8: ["Uint8ClampedArray"],
  BOOL: [],
};

/** Sort key of the Rust/Python writers: dtype alignment descending, then name (by code point, like Rust's str). */
function compareForWrite(a: [string, SafetensorsTensor], b: [string, SafetensorsTensor]): number {
  const r = DTYPE_RANK[b[1].dtype] - DTYPE_RANK[a[1].dtype];
  if (r !== 0) return r;
  const x = a[0], y = b[0];
  let i = 0, j = 0;
  while (i < x.length && j < y.length) {
    const cx = x.codePointAt(i)!, cy = y.codePointAt(j)!;
    if (cx !== cy) return cx - cy;
    i += cx > 0xffff ? 2 : 1;
    j += cy > 0xffff ? 2 : 1;
  }
  return (x.length - i) - (y.length - j);
}

/**
 * Serializes tensors to safetensors bytes, in the layout of the Rust/Python library: tensors sorted by dtype
 * alignment (descending: U64, I64, F64, F32, U32, I32, BF16, F16, U16, I16, I8, U8, BOOL) then by name, header
 * padded with spaces to a multiple of 8 bytes so every tensor is aligned to its element size.
 * `data` is copied byte for byte (little-endian host). Throws SAFETENSORS_WRITE on invalid input.
 */
export function writeSafetensors(
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  assertLittleEndianHost();
  const bad = (msg: string): never => { throw new PerceiverError("SAFETENSORS_WRITE", `writeSafetensors: ${msg}`); };
  const list: [string, SafetensorsTensor][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const seen = new Set<string>();
  for (const [name, t] of list) {
    if (typeof name !== "string") bad(`tensor name ${String(name)} is not a string`);
    const where = `tensor ${JSON.stringify(name)}`;
    if (name === "__metadata__") bad(`"__metadata__" is reserved and cannot be a tensor name`);
    if (seen.has(name)) bad(`duplicate ${where}`);
    seen.add(name);
    if (!isPlainObject(t)) bad(`${where}: expected { dtype, shape, data }, got ${kindOf(t)}`);
    if (typeof t.dtype !== "string" || !isDtype(t.dtype)) bad(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every(isIndex)) {
      bad(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`);
    }
    if (!ArrayBuffer.isView(t.data)) bad(`${where}: data must be a typed array or DataView`);
    const kind = Object.prototype.toString.call(t.data).slice(8, -1); // "Float32Array"; Node Buffer -> "Uint8Array"
    if (kind !== "Uint8Array" && kind !== "DataView" && !NATIVE_ARRAY[t.dtype].includes(kind)) {
      bad(`${where}: data is a ${kind}, which does not hold ${t.dtype} values (pass the matching typed array, or raw bytes as a Uint8Array)`);
    }
    const numel = checkedNumel(t.shape);
    const need = numel * DTYPE_SIZE[t.dtype];
    if (numel < 0 || need > Number.MAX_SAFE_INTEGER) bad(`${where}: shape [${t.shape.join(", ")}] is too large`);
    if (t.data.byteLength !== need) {
      bad(`${where}: data has ${t.data.byteLength} bytes, but dtype ${t.dtype} with shape [${t.shape.join(", ")}] needs ${need}`);
    }
  }
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) bad(`metadata must be an object of strings, got ${kindOf(metadata)}`);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") bad(`metadata value for ${JSON.stringify(k)} is ${kindOf(v)}, expected a string`);
    }
  }

  list.sort(compareForWrite);

  // header text, built by hand so the key order is exactly ours (a JS object would move integer-like keys first)
  const parts: string[] = [];
  if (metadata !== undefined) {
    const m = Object.keys(metadata).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
    parts.push(`"__metadata__":{${m.join(",")}}`);
  }
  let offset = 0;
  for (const [name, t] of list) {
    const end = offset + t.data.byteLength;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8; // pad with spaces to a multiple of 8
  const total = 8 + n + offset;
  if (!Number.isSafeInteger(total)) bad(`total size ${total} bytes is too large`);

  let out: Uint8Array;
  try {
    out = new Uint8Array(total);
  } catch (e) {
    throw new PerceiverError("SAFETENSORS_WRITE", `writeSafetensors: cannot allocate ${total} bytes for the file: ${(e as Error).message}`, { cause: e });
  }
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let pos = 8 + n;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}
