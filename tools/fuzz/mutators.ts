/**
 * Format-blind mutators: bit flips, bytes and words set to interesting values, truncation, splices of two inputs,
 * duplicated, deleted, inserted and overwritten chunks. Each returns a new array; the input is never modified.
 */
import type { Prng } from "./prng.js";

/** A mutation: input (never modified) -> new bytes. `others` are the target's seeds, for splices. */
export type Mutator = (input: Uint8Array, rng: Prng, others: readonly Uint8Array[]) => Uint8Array;

export const INTERESTING_8 = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe] as const;
export const INTERESTING_32 = [
  0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
] as const;

/** Mutated inputs never grow past this (keeps a run's memory and time bounded). */
export const MAX_MUTANT_BYTES = 1 << 20;

function concat(...parts: Uint8Array[]): Uint8Array {
  const n = Math.min(MAX_MUTANT_BYTES, parts.reduce((s, p) => s + p.length, 0));
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    if (o >= n) break;
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
  }
  return out;
}

/** A chunk length biased to small values: 1..min(n, 2^k) with k uniform in 0..10. */
function chunkLen(rng: Prng, n: number): number {
  return Math.max(1, Math.min(n, 1 + rng.int(2 ** rng.int(11))));
}

export const bitFlip: Mutator = (input, rng) => {
  const out = input.slice();
  if (out.length === 0) return out;
  const flips = 1 + rng.int(rng.chance(0.8) ? 2 : 16);
  for (let i = 0; i < flips; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
  return out;
};

export const interestingByte: Mutator = (input, rng) => {
  const out = input.slice();
  if (out.length === 0) return out;
  out[rng.int(out.length)] = rng.pick(INTERESTING_8);
  return out;
};

/** A 16- or 32-bit interesting value, little- or big-endian, at a random offset. */
export const interestingWord: Mutator = (input, rng) => {
  const out = input.slice();
  const width = rng.chance(0.5) ? 2 : 4;
  if (out.length < width) return out;
  const at = rng.int(out.length - width + 1);
  const v = rng.pick(INTERESTING_32);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const le = rng.chance(0.5);
  if (width === 2) dv.setUint16(at, v & 0xffff, le);
  else dv.setUint32(at, v, le);
  return out;
};

/** Small add/subtract on one byte. */
export const arithmetic: Mutator = (input, rng) => {
  const out = input.slice();
  if (out.length === 0) return out;
  const at = rng.int(out.length);
  out[at] = (out[at] + (rng.chance(0.5) ? 1 : -1) * (1 + rng.int(35))) & 0xff;
  return out;
};

/** Keep a prefix (usually), or drop a prefix (rarely). */
export const truncate: Mutator = (input, rng) => {
  if (input.length === 0) return input.slice();
  const at = rng.int(input.length);
  return rng.chance(0.9) ? input.slice(0, at) : input.slice(at);
};

/** Head of this input + tail of another seed (or of itself). */
export const splice: Mutator = (input, rng, others) => {
  const other = others.length > 0 ? rng.pick(others) : input;
  const i = rng.int(input.length + 1);
  const j = rng.int(other.length + 1);
  return concat(input.subarray(0, i), other.subarray(j));
};

export const duplicateChunk: Mutator = (input, rng) => {
  if (input.length === 0) return input.slice();
  const n = chunkLen(rng, input.length);
  const s = rng.int(input.length - n + 1);
  const at = rng.int(input.length + 1);
  const copies = rng.chance(0.8) ? 1 : 1 + rng.int(64);
  const chunk = input.subarray(s, s + n);
  return concat(input.subarray(0, at), ...Array.from({ length: copies }, () => chunk), input.subarray(at));
};

export const deleteChunk: Mutator = (input, rng) => {
  if (input.length === 0) return input.slice();
  const n = chunkLen(rng, input.length);
  const s = rng.int(input.length - n + 1);
  return concat(input.subarray(0, s), input.subarray(s + n));
};

export const insertRandom: Mutator = (input, rng) => {
  const at = rng.int(input.length + 1);
  const fill = rng.chance(0.5) ? rng.bytes(chunkLen(rng, 256)) : new Uint8Array(chunkLen(rng, 256)).fill(rng.pick(INTERESTING_8));
  return concat(input.subarray(0, at), fill, input.subarray(at));
};

/** Copy a chunk of this input (or another seed) over another place. */
export const overwriteChunk: Mutator = (input, rng, others) => {
  const out = input.slice();
  const src = others.length > 0 && rng.chance(0.5) ? rng.pick(others) : input;
  if (out.length === 0 || src.length === 0) return out;
  const n = chunkLen(rng, Math.min(src.length, out.length));
  const s = rng.int(src.length - n + 1);
  const at = rng.int(out.length - n + 1);
  out.set(src.subarray(s, s + n), at);
  return out;
};

export const BYTE_MUTATORS: readonly Mutator[] = [
  bitFlip, bitFlip, interestingByte, interestingWord, arithmetic, truncate, splice, duplicateChunk, deleteChunk,
  insertRandom, overwriteChunk,
];

/**
 * One fuzz case from a seed: 1 to 4 mutations, each structure-aware (from `structured`, when the format allows) with
 * probability `structuredShare`, else byte-level.
 */
export function mutate(
  seed: Uint8Array, rng: Prng, others: readonly Uint8Array[], structured: readonly Mutator[], structuredShare = 0.5,
): Uint8Array {
  let out = seed;
  const rounds = 1 + (rng.chance(0.6) ? 0 : rng.int(4));
  for (let r = 0; r < rounds; r++) {
    const m = structured.length > 0 && rng.chance(structuredShare) ? rng.pick(structured) : rng.pick(BYTE_MUTATORS);
    out = m(out, rng, others);
    if (out.length > MAX_MUTANT_BYTES) out = out.slice(0, MAX_MUTANT_BYTES);
  }
  return out;
}
