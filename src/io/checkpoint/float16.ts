/**
 * Half-precision upcasts used by the checkpoint readers: IEEE binary16 (F16) and bfloat16 (BF16) bit patterns,
 * stored as Uint16 values, widened to float32. Every f16 and bf16 value is exactly representable in f32, so both
 * conversions are exact (NaN payloads are not preserved for F16; BF16 keeps the bits as they are).
 *
 * Speed (bench/float16.ts): a 65536-entry lookup table beats `@petamoriken/float16`'s `getFloat16` by a wide margin
 * for F16; for BF16 a shift (`bits << 16` written through a Uint32Array view) is the fastest.
 */

/** Naive reference: one binary16 bit pattern -> its value. Sign, 5-bit exponent (bias 15), 10-bit fraction. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero (keeps -0) and subnormals
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1024 + frac) * 2 ** (exp - 25); // (1 + frac/1024) * 2^(exp-15)
}

/** Naive reference: one bfloat16 bit pattern -> its value (bf16 is the top half of an f32). */
export function bf16BitsToNumber(h: number): number {
  const u = new Uint32Array([(h & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0];
}

let f16Table: Float32Array | null = null;

/** The 65536-entry F16 -> F32 table (256 KB), built on first use from the naive reference. */
export function f16Table32(): Float32Array {
  if (f16Table === null) {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToNumber(h);
    f16Table = t;
  }
  return f16Table;
}

// src [n] f16 bits -> out [n] f32
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new Error(`f16ToF32: out has ${out.length} elements, src ${src.length}`);
  const t = f16Table32();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

// naive twin of f16ToF32: src [n] f16 bits -> out [n] f32
export function f16ToF32Naive(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToNumber(src[i]);
  return out;
}

// src [n] bf16 bits -> out [n] f32 (little-endian host: the f32 bit pattern is bits << 16)
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  if (out.length !== src.length) throw new Error(`bf16ToF32: out has ${out.length} elements, src ${src.length}`);
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

// naive twin of bf16ToF32: src [n] bf16 bits -> out [n] f32
export function bf16ToF32Naive(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = bf16BitsToNumber(src[i]);
  return out;
}
