/**
 * safetensors writer, in the layout of the Rust/Python library (browser-safe). `safetensorsLayout` gives the header
 * and the order of the data, so that the Node writer can stream tensors to a file without building the whole file.
 */
import { PerceiverError } from "../../errors.js";
import { DTYPE_RANK, DTYPE_SIZE, assertLittleEndianHost, checkedNumel, isDtype } from "./dtypes.js";
import type { Dtype } from "./state-dict.js";
import { isIndex, isPlainObject, kindOf } from "./safetensors-header.js";

/** A tensor to write: `data` holds numel x dtype-size bytes in little-endian order. */
export interface SafetensorsTensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

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

/** The header bytes (padded) and the tensors in data order: what a writer puts after the 8-byte length. */
export interface SafetensorsLayout {
  /** The JSON header, padded with spaces to a multiple of 8 bytes. */
  readonly header: Uint8Array;
  /** Tensors in data order; their `data` follow the header back to back. */
  readonly tensors: readonly (readonly [string, SafetensorsTensor])[];
  /** 8 + header + all data. */
  readonly totalBytes: number;
}

/**
 * Validates the tensors and lays them out like the Rust/Python library: sorted by dtype alignment (descending: U64,
 * I64, F64, F32, U32, I32, BF16, F16, U16, I16, I8, U8, BOOL) then by name, header padded with spaces to a multiple
 * of 8 bytes so every tensor is aligned to its element size. Throws SAFETENSORS_WRITE on invalid input.
 */
export function safetensorsLayout(
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): SafetensorsLayout {
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
  const header = new Uint8Array(n);
  header.set(json);
  header.fill(0x20, json.length);
  const totalBytes = 8 + n + offset;
  if (!Number.isSafeInteger(totalBytes)) bad(`total size ${totalBytes} bytes is too large`);
  return { header, tensors: list, totalBytes };
}

/** The 8-byte little-endian header length that starts the file. */
export function headerLengthPrefix(layout: SafetensorsLayout): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(layout.header.length), true);
  return out;
}

/** A tensor's data as bytes (a view, no copy). */
export function dataBytes(t: SafetensorsTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/**
 * Serializes tensors to safetensors bytes (see safetensorsLayout for the layout). `data` is copied byte for byte
 * (little-endian host). Throws SAFETENSORS_WRITE on invalid input.
 */
export function writeSafetensors(
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const layout = safetensorsLayout(tensors, metadata);
  let out: Uint8Array;
  try {
    out = new Uint8Array(layout.totalBytes);
  } catch (e) {
    throw new PerceiverError("SAFETENSORS_WRITE",
      `writeSafetensors: cannot allocate ${layout.totalBytes} bytes for the file: ${(e as Error).message}`, { cause: e });
  }
  out.set(headerLengthPrefix(layout), 0);
  out.set(layout.header, 8);
  let pos = 8 + layout.header.length;
  for (const [, t] of layout.tensors) {
    out.set(dataBytes(t), pos);
    pos += t.data.byteLength;
  }
  return out;
}
