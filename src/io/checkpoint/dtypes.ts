/**
 * Element types shared by the checkpoint readers and writers: sizes, the Rust crate's dtype order, and conversion of
 * raw little-endian tensor bytes to typed arrays and to float32.
 */
import { bf16ToF32, f16ToF32 } from "./float16.js";
import type { Dtype } from "./state-dict.js";

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1,
});

/** The Rust crate's `Dtype` enum order (increasing alignment); the writer sorts by it, descending. */
export const DTYPE_RANK: Readonly<Record<Dtype, number>> = {
  BOOL: 0, U8: 1, I8: 2, I16: 3, U16: 4, F16: 5, BF16: 6, I32: 7, U32: 8, F32: 9, F64: 10, I64: 11, U64: 12,
};

/** The native typed array of each dtype (F16/BF16 as raw Uint16 bits, BOOL as Uint8 bytes). */
export type RawTensorData =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | BigUint64Array
  | Int32Array | Uint32Array | Int16Array | Int8Array | Uint8Array;

let littleEndianChecked = false;

/** Throws on a big-endian host (the typed-array views below assume little-endian memory). */
export function assertLittleEndianHost(): void {
  if (littleEndianChecked) return;
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error("perceiver-ts: big-endian hosts are not supported (safetensors data is little-endian)");
  }
  littleEndianChecked = true;
}

export function isDtype(s: string): s is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** Product of a validated shape, or -1 when it exceeds Number.MAX_SAFE_INTEGER (checked at every step). */
export function checkedNumel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return -1; // exact test: products below 2^53 are computed exactly
  }
  return n;
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
