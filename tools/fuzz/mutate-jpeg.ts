/**
 * Structure-aware JPEG edits on the marker segments: frame header (size, precision, components, sampling), Huffman
 * and quantization tables, scan header, restart interval, segment lengths, segments dropped / duplicated / swapped,
 * and the entropy-coded data (bit flips, stray markers, cut short).
 */
import { bitFlip, type Mutator } from "./mutators.js";
import type { Prng } from "./prng.js";

interface Segment {
  /** marker byte (after 0xff) */
  marker: number;
  /** payload after the 2-byte length (for SOS: the scan header) */
  payload: Uint8Array;
  /** entropy-coded data after an SOS header, up to the next marker */
  scan?: Uint8Array;
  /** the length field when edited (else payload.length + 2) */
  declared?: number;
}

/** SOI .. EOI as segments (standalone markers get an empty payload and no length), or null. */
export function jpegSegments(b: Uint8Array): Segment[] | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  const out: Segment[] = [];
  let off = 2;
  while (off + 1 < b.length) {
    if (b[off] !== 0xff) return null;
    const m = b[off + 1];
    off += 2;
    if (m === 0xd9) return out; // EOI
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7) || m === 0xff) {
      out.push({ marker: m, payload: new Uint8Array(0) });
      continue;
    }
    if (off + 2 > b.length) return null;
    const len = (b[off] << 8) | b[off + 1];
    if (len < 2 || off + len > b.length) return null;
    const seg: Segment = { marker: m, payload: b.slice(off + 2, off + len) };
    off += len;
    if (m === 0xda) {
      let q = off;
      while (q + 1 < b.length && !(b[q] === 0xff && b[q + 1] !== 0x00 && !(b[q + 1] >= 0xd0 && b[q + 1] <= 0xd7))) q++;
      seg.scan = b.slice(off, q);
      off = q;
    }
    out.push(seg);
  }
  return null;
}

const STANDALONE = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd7) || m === 0xff;

export function jpegBytes(segs: Segment[], eoi = true): Uint8Array {
  const parts: number[] = [0xff, 0xd8];
  for (const s of segs) {
    parts.push(0xff, s.marker);
    if (STANDALONE(s.marker)) continue;
    const len = s.declared ?? s.payload.length + 2;
    parts.push((len >> 8) & 0xff, len & 0xff, ...s.payload);
    if (s.scan) for (const x of s.scan) parts.push(x);
  }
  if (eoi) parts.push(0xff, 0xd9);
  return Uint8Array.from(parts);
}

const DIMS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 255, 256, 4096, 32768, 65535];

function editSof(p: Uint8Array, rng: Prng): void {
  if (p.length < 6) return;
  switch (rng.int(6)) {
    case 0: { const v = rng.chance(0.7) ? rng.pick(DIMS) : rng.range(1, 300); p[1] = v >> 8; p[2] = v & 0xff; break; } // height
    case 1: { const v = rng.chance(0.7) ? rng.pick(DIMS) : rng.range(1, 300); p[3] = v >> 8; p[4] = v & 0xff; break; } // width
    case 2: p[0] = rng.pick([0, 8, 12, 16, 255]); break; // precision
    case 3: p[5] = rng.pick([0, 1, 2, 3, 4, 5, 255]); break; // component count
    case 4: if (p.length >= 9) p[7 + 3 * rng.int(Math.floor((p.length - 6) / 3))] = rng.pick([0x00, 0x11, 0x12, 0x21, 0x22, 0x41, 0x14, 0x44, 0x33, 0x55, 0xff]); break; // sampling
    default: if (p.length >= 9) p[8 + 3 * rng.int(Math.floor((p.length - 6) / 3))] = rng.pick([0, 1, 2, 3, 4, 255]); // quant table id
  }
}

function editTableOrScan(s: Segment, rng: Prng): void {
  const p = s.payload;
  if (p.length === 0) return;
  const at = rng.chance(0.5) ? rng.int(Math.min(p.length, 18)) : rng.int(p.length); // headers and counts first
  p[at] = rng.chance(0.5) ? rng.pick([0, 1, 2, 3, 4, 15, 16, 17, 63, 64, 0x10, 0x11, 0x13, 0xff]) : rng.u32() & 0xff;
}

export const mutateJpeg: Mutator = (input, rng, others) => {
  const segs = jpegSegments(input);
  if (segs === null || segs.length === 0) return bitFlip(input, rng, others);
  const of = (pred: (m: number) => boolean) => segs.filter((s) => pred(s.marker));
  const pick = <T>(xs: T[]): T | undefined => (xs.length ? xs[rng.int(xs.length)] : undefined);
  switch (rng.int(10)) {
    case 0:
    case 1: {
      const sof = pick(of((m) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc));
      if (sof) editSof(sof.payload, rng);
      break;
    }
    case 2: { // DHT, DQT, SOS header, DRI
      const s = pick(of((m) => m === 0xc4 || m === 0xdb || m === 0xda || m === 0xdd));
      if (s) editTableOrScan(s, rng);
      break;
    }
    case 3: { // the frame type
      const sof = pick(of((m) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc));
      if (sof) sof.marker = rng.pick([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc9, 0xca, 0xcf]);
      break;
    }
    case 4: { // a length field
      const s = pick(segs.filter((x) => !STANDALONE(x.marker)));
      if (s) s.declared = rng.chance(0.5) ? rng.pick([0, 1, 2, 3, 0xffff, 0x8000]) : Math.max(0, s.payload.length + 2 + rng.range(-4, 4));
      break;
    }
    case 5: { // drop, duplicate, swap segments
      const i = rng.int(segs.length);
      const r = rng.int(3);
      if (r === 0) segs.splice(i, 1);
      else if (r === 1) segs.splice(rng.int(segs.length + 1), 0, { ...segs[i], payload: segs[i].payload.slice(), scan: segs[i].scan?.slice() });
      else {
        const j = rng.int(segs.length);
        [segs[i], segs[j]] = [segs[j], segs[i]];
      }
      break;
    }
    case 6:
    case 7: { // entropy-coded data
      const s = pick(segs.filter((x) => x.scan !== undefined && x.scan.length > 0));
      if (!s || !s.scan) break;
      const r = rng.int(4);
      if (r === 0) for (let k = 0; k < 1 + rng.int(8); k++) s.scan[rng.int(s.scan.length)] ^= 1 << rng.int(8);
      else if (r === 1) s.scan = s.scan.slice(0, rng.int(s.scan.length + 1));
      else if (r === 2) { // a stray marker in the data
        const at = rng.int(s.scan.length + 1);
        const mk = rng.pick([0xd0, 0xd3, 0xd7, 0xd9, 0xc4, 0xda, 0xff, 0x00]);
        s.scan = Uint8Array.from([...s.scan.subarray(0, at), 0xff, mk, ...s.scan.subarray(at)]);
      } else s.scan.fill(rng.pick([0x00, 0xff, 0x55]), rng.int(s.scan.length));
      break;
    }
    case 8: // an APP14 Adobe marker with an odd transform, or a JFIF one
      segs.splice(rng.int(segs.length + 1), 0, rng.chance(0.5)
        ? { marker: 0xee, payload: Uint8Array.from([0x41, 0x64, 0x6f, 0x62, 0x65, 0, 100, 0, 0, 0, 0, rng.pick([0, 1, 2, 3, 255])]) }
        : { marker: 0xe0, payload: Uint8Array.from([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]) });
      break;
    default: // no EOI, or bytes after it
      return rng.chance(0.5) ? jpegBytes(segs, false) : new Uint8Array([...jpegBytes(segs), ...rng.bytes(rng.range(1, 32))]);
  }
  return jpegBytes(segs);
};
