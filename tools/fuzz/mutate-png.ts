/**
 * Structure-aware PNG edits that keep chunk CRCs valid, so the decoder's deeper checks are reached: IHDR fields
 * (size, depth, color type, interlace), chunk data bytes, the inflated scanlines (filter bytes, data, length) re-
 * deflated, chunk length fields (not covered by the CRC), and chunks dropped, duplicated, swapped or added.
 */
import { unzlibSync, zlibSync } from "fflate";
import { crc32 } from "../../src/io/crc32.js";
import { bitFlip, INTERESTING_32, type Mutator } from "./mutators.js";
import type { Prng } from "./prng.js";

interface Chunk {
  type: string;
  data: Uint8Array;
  /** The length field as found (differs from data.length only after a length edit). */
  declared?: number;
  /** Keep the CRC as found instead of recomputing it. */
  rawCrc?: number;
}

const SIGNATURE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function pngCrc(type: string, data: Uint8Array): number {
  const b = new Uint8Array(4 + data.length);
  for (let i = 0; i < 4; i++) b[i] = type.charCodeAt(i);
  b.set(data, 4);
  return crc32(b);
}

/** The chunks of a PNG, or null when the signature or the chunk framing is broken. */
export function pngChunks(b: Uint8Array): Chunk[] | null {
  if (b.length < 8 || !SIGNATURE.every((x, i) => b[i] === x)) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Chunk[] = [];
  let off = 8;
  while (off + 12 <= b.length) {
    const len = dv.getUint32(off);
    if (off + 12 + len > b.length) return null;
    const type = String.fromCharCode(...b.subarray(off + 4, off + 8));
    out.push({ type, data: b.slice(off + 8, off + 8 + len), rawCrc: dv.getUint32(off + 8 + len) });
    off += 12 + len;
    if (type === "IEND") break;
  }
  return out;
}

/** Chunks -> PNG bytes; CRCs recomputed unless a chunk keeps its raw CRC. */
export function pngBytes(chunks: Chunk[]): Uint8Array {
  const total = 8 + chunks.reduce((s, c) => s + 12 + c.data.length, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out.set(SIGNATURE);
  let off = 8;
  for (const c of chunks) {
    dv.setUint32(off, c.declared ?? c.data.length);
    for (let i = 0; i < 4; i++) out[off + 4 + i] = c.type.charCodeAt(i) & 0xff;
    out.set(c.data, off + 8);
    dv.setUint32(off + 8 + c.data.length, c.rawCrc ?? pngCrc(c.type, c.data));
    off += 12 + c.data.length;
  }
  return out;
}

const SIZES = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 255, 256, 4096, 65535, 65536, 100_000, 0x7fffffff, 0x80000000, 0xffffffff];

function editIhdr(ihdr: Chunk, rng: Prng): void {
  if (ihdr.data.length < 13) return;
  const d = ihdr.data;
  const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
  switch (rng.int(5)) {
    case 0: dv.setUint32(0, rng.chance(0.7) ? rng.pick(SIZES) : rng.range(1, 300)); break;
    case 1: dv.setUint32(4, rng.chance(0.7) ? rng.pick(SIZES) : rng.range(1, 300)); break;
    case 2: d[8] = rng.pick([0, 1, 2, 3, 4, 8, 16, 32, 255]); break; // bit depth
    case 3: d[9] = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 255]); break; // color type
    default: d[10 + rng.int(3)] = rng.pick([0, 1, 2, 255]); // compression / filter / interlace
  }
}

/** Inflate all IDAT data, edit the scanlines, deflate again into 1..3 IDAT chunks. */
function editImageData(chunks: Chunk[], rng: Prng): boolean {
  const idats = chunks.filter((c) => c.type === "IDAT");
  if (idats.length === 0) return false;
  const z = new Uint8Array(idats.reduce((s, c) => s + c.data.length, 0));
  let o = 0;
  for (const c of idats) {
    z.set(c.data, o);
    o += c.data.length;
  }
  let raw: Uint8Array;
  try {
    raw = unzlibSync(z);
  } catch {
    return false;
  }
  raw = raw.slice();
  switch (rng.int(5)) {
    case 0: // filter type bytes (every row starts with one; we do not know the row length, so hit likely spots)
      for (let k = 0; k < 1 + rng.int(4); k++) raw[rng.int(Math.max(1, raw.length))] = rng.pick([0, 1, 2, 3, 4, 5, 255]);
      break;
    case 1:
      for (let k = 0; k < 1 + rng.int(8); k++) raw[rng.int(Math.max(1, raw.length))] ^= 1 << rng.int(8);
      break;
    case 2:
      raw = raw.slice(0, rng.int(raw.length + 1)); // too little data
      break;
    case 3: { // too much data
      const extra = new Uint8Array(raw.length + rng.range(1, rng.chance(0.5) ? 16 : 65536));
      extra.set(raw);
      raw = extra;
      break;
    }
    default:
      raw[0] = rng.pick([0, 1, 2, 3, 4, 5, 255]);
  }
  const packed = zlibSync(raw, { level: rng.pick([0, 1, 6, 9] as const) });
  const parts = 1 + rng.int(3);
  const fresh: Chunk[] = [];
  const step = Math.ceil(packed.length / parts);
  for (let p = 0; p < packed.length || fresh.length === 0; p += step) fresh.push({ type: "IDAT", data: packed.slice(p, p + step) });
  const first = chunks.findIndex((c) => c.type === "IDAT");
  const rest = chunks.filter((c) => c.type !== "IDAT");
  rest.splice(first, 0, ...fresh);
  chunks.splice(0, chunks.length, ...rest);
  return true;
}

export const mutatePng: Mutator = (input, rng, others) => {
  const chunks = pngChunks(input);
  if (chunks === null || chunks.length === 0) return bitFlip(input, rng, others);
  for (const c of chunks) c.rawCrc = undefined; // recompute everything (the seeds are valid)
  const pick = () => chunks[rng.int(chunks.length)];
  switch (rng.int(9)) {
    case 0:
    case 1:
      editIhdr(chunks.find((c) => c.type === "IHDR") ?? pick(), rng);
      break;
    case 2:
    case 3:
      if (!editImageData(chunks, rng)) editIhdr(chunks[0], rng);
      break;
    case 4: { // data bytes of any chunk (PLTE, tRNS, IDAT, ...)
      const c = pick();
      if (c.data.length > 0) for (let k = 0; k < 1 + rng.int(4); k++) c.data[rng.int(c.data.length)] = rng.u32() & 0xff;
      break;
    }
    case 5: { // the length field alone: the CRC still matches the data, the framing does not
      const c = pick();
      c.declared = rng.chance(0.5) ? rng.pick(INTERESTING_32) : Math.max(0, c.data.length + rng.range(-8, 8));
      break;
    }
    case 6: { // drop, duplicate or swap chunks
      const i = rng.int(chunks.length);
      const r = rng.int(3);
      if (r === 0) chunks.splice(i, 1);
      else if (r === 1) chunks.splice(rng.int(chunks.length + 1), 0, { ...chunks[i], data: chunks[i].data.slice() });
      else {
        const j = rng.int(chunks.length);
        [chunks[i], chunks[j]] = [chunks[j], chunks[i]];
      }
      break;
    }
    case 7: { // add a chunk
      const type = rng.pick(["PLTE", "tRNS", "gAMA", "tEXt", "IDAT", "IEND", "IHDR", "abCD", "ABCD"]);
      const data = rng.bytes(rng.pick([0, 1, 3, 6, 13, 256, 769]));
      chunks.splice(1 + rng.int(chunks.length), 0, { type, data });
      break;
    }
    default: // a truncated file, or bytes after IEND
      return rng.chance(0.5) ? pngBytes(chunks).slice(0, rng.int(input.length)) : new Uint8Array([...pngBytes(chunks), ...rng.bytes(rng.range(1, 64))]);
  }
  return pngBytes(chunks);
};
