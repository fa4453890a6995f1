/**
 * The safetensors JSON header, parsed and validated with the rules of the Rust `safetensors` crate, which reads it
 * with serde_json into `HashMetadata { __metadata__: Option<HashMap<String, String>>, #[flatten] tensors:
 * HashMap<String, TensorInfo { dtype: Dtype, shape: Vec<usize>, data_offsets: (usize, usize) }> }`:
 * - every shape and offset number is a `usize`: digits only. `2.0`, `1e3`, `-0` (a float to serde_json), `-1`
 *   and anything past u64::MAX are refused; here also anything past 2^53, which no real file reaches;
 * - a field of TensorInfo given twice is refused (serde: "duplicate field `dtype`"); unknown fields are ignored;
 * - data_offsets has exactly two numbers (a 2-tuple);
 * - `__metadata__` is null (no metadata) or an object of strings; inside it a repeated key keeps the last value
 *   (a HashMap);
 * - a top-level name given twice is refused here with SAFETENSORS_DUPLICATE_KEY (serde refuses a repeated
 *   `__metadata__`; a repeated tensor name is ambiguous, so it is refused too);
 * - the JSON itself follows serde_json (strict-json.ts): lone surrogate escapes, depth past 128 and a BOM are errors;
 *   more than 1,000,000 values is SAFETENSORS_HEADER_TOO_LARGE (the heap cost of a 100 MB header stays bounded).
 * The tiling of the data section is checked by the reader (safetensors.ts).
 */
import { PerceiverError } from "../../errors.js";
import type { PerceiverErrorCode } from "../../errors.js";
import { DTYPE_SIZE, checkedNumel, isDtype } from "./dtypes.js";
import type { TensorInfo } from "./state-dict.js";
import { JsonBudgetError, JsonNumber, JsonObject, JsonSyntaxError, parseStrictJson, usizeOf } from "./strict-json.js";
import type { JsonValue } from "./strict-json.js";

/** One header entry after validation. Offsets are relative to the start of the data section. */
export interface SafetensorsEntry extends TensorInfo {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
  readonly numel: number;
}

export interface SafetensorsHeader {
  readonly metadata: Record<string, string>;
  /** In header order. */
  readonly entries: SafetensorsEntry[];
}

/** Short description of a value's kind (a JSON value of the header, or a JS value given to the writer). */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v instanceof JsonNumber) {
    const u = usizeOf(v);
    return u !== null && u > BigInt(Number.MAX_SAFE_INTEGER) ? `a number (${v.text}, beyond 2^53)` : `a number (${v.text})`;
  }
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "..." : v)})`;
  if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) return `a number (${BigInt(v)}, beyond 2^53)`;
  return `a ${typeof v} (${String(v)})`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isIndex(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function fail(code: PerceiverErrorCode, src: string, msg: string): never {
  throw new PerceiverError(code, `${src}: ${msg}`);
}

/** A header number as a usize that fits a safe integer, or null. */
function safeUsize(v: JsonValue): number | null {
  if (!(v instanceof JsonNumber)) return null;
  const u = usizeOf(v);
  return u !== null && u <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(u) : null;
}

/** Parses and validates the header text (already decoded from UTF-8). Errors: SAFETENSORS_*. */
export function parseSafetensorsHeader(text: string, src: string): SafetensorsHeader {
  let header: JsonValue;
  try {
    header = parseStrictJson(text);
  } catch (e) {
    if (e instanceof JsonBudgetError) {
      throw new PerceiverError("SAFETENSORS_HEADER_TOO_LARGE",
        `${src}: header holds ${e.message} (a header needs about 10 per tensor); not a safetensors file?`, { cause: e });
    }
    const why = e instanceof JsonSyntaxError ? e.message : String(e);
    throw new PerceiverError("SAFETENSORS_HEADER_NOT_JSON", `${src}: header is not valid JSON (${why})`, { cause: e });
  }
  if (!(header instanceof JsonObject)) {
    fail("SAFETENSORS_HEADER_NOT_OBJECT", src, `header is ${kindOf(header)}, expected a JSON object`);
  }
  const seen = new Set<string>();
  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, v] of header.entries) {
    if (seen.has(name)) fail("SAFETENSORS_DUPLICATE_KEY", src, `header has the key ${JSON.stringify(name)} more than once`);
    seen.add(name);
    if (name === "__metadata__") metadata = validateMetadata(v, src);
    else entries.push(validateEntry(name, v, src));
  }
  return { metadata, entries };
}

function validateMetadata(v: JsonValue, src: string): Record<string, string> {
  if (v === null) return {}; // the Rust crate reads `"__metadata__": null` as no metadata (an Option)
  if (!(v instanceof JsonObject)) fail("SAFETENSORS_INVALID_METADATA", src, `"__metadata__" is ${kindOf(v)}, expected an object of strings`);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, s] of v.entries) {
    if (typeof s !== "string") {
      fail("SAFETENSORS_INVALID_METADATA", src, `"__metadata__" value for ${JSON.stringify(k)} is ${kindOf(s)}, expected a string`);
    }
    out[k] = s; // a repeated key keeps the last value, like the crate's HashMap
  }
  return { ...out };
}

const FIELDS = ["dtype", "shape", "data_offsets"] as const;

function validateEntry(name: string, v: JsonValue, src: string): SafetensorsEntry {
  const t = `tensor ${JSON.stringify(name)}`;
  if (!(v instanceof JsonObject)) {
    fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: entry is ${kindOf(v)}, expected an object with dtype, shape, data_offsets`);
  }
  const fields = new Map<string, JsonValue>();
  for (const [k, x] of v.entries) {
    if (!(FIELDS as readonly string[]).includes(k)) continue; // unknown fields are ignored, as serde does by default
    if (fields.has(k)) fail("SAFETENSORS_DUPLICATE_KEY", src, `${t}: duplicate field "${k}"`);
    fields.set(k, x);
  }
  for (const field of FIELDS) {
    if (!fields.has(field)) fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: missing field "${field}"`);
  }
  const dtype = fields.get("dtype")!;
  const shape = fields.get("shape")!;
  const offsets = fields.get("data_offsets")!;
  if (typeof dtype !== "string") fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: "dtype" is ${kindOf(dtype)}, expected a string`);
  if (!isDtype(dtype)) {
    fail("SAFETENSORS_UNKNOWN_DTYPE", src,
      `${t}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(", ")})`);
  }
  if (!Array.isArray(shape)) fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: "shape" is ${kindOf(shape)}, expected an array`);
  if (!Array.isArray(offsets)) {
    fail("SAFETENSORS_INVALID_ENTRY", src, `${t}: "data_offsets" is ${kindOf(offsets)}, expected [begin, end]`);
  }
  const dims = shape.map((d, i) => {
    const u = safeUsize(d);
    if (u === null) {
      fail("SAFETENSORS_INVALID_SHAPE", src,
        `${t}: shape[${i}] is ${kindOf(d)}, expected a non-negative integer (digits only: no sign, fraction or exponent)`);
    }
    return u;
  });
  const numel = checkedNumel(dims);
  if (numel < 0 || numel * DTYPE_SIZE[dtype] > Number.MAX_SAFE_INTEGER) {
    fail("SAFETENSORS_INVALID_SHAPE", src, `${t}: shape [${dims.join(", ")}] is too large (element or byte count overflows)`);
  }
  if (offsets.length !== 2) {
    fail("SAFETENSORS_INVALID_OFFSETS", src, `${t}: "data_offsets" has ${offsets.length} entries, expected [begin, end]`);
  }
  const [begin, end] = offsets.map((o, i) => {
    const u = safeUsize(o);
    if (u === null) {
      fail("SAFETENSORS_INVALID_OFFSETS", src,
        `${t}: data_offsets[${i}] is ${kindOf(o)}, expected a non-negative integer (digits only: no sign, fraction or exponent)`);
    }
    return u;
  });
  if (end < begin) fail("SAFETENSORS_INVALID_OFFSETS", src, `${t}: data_offsets [${begin}, ${end}] end before they begin`);
  return Object.freeze({ name, dtype, shape: Object.freeze(dims), begin, end, numel });
}
