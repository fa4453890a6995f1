/**
 * Generators of pytorch_model.bin archives for tests (no torch needed): a protocol-2 pickle of an OrderedDict of
 * `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` calls, zipped like torch.save does
 * (`archive/data.pkl`, `archive/data/<key>`, optionally `archive/byteorder`), each entry stored or deflated.
 * Hostile shapes (stride-0 broadcasts, overlapping views, huge deflated entries) are described, not stored.
 */
import { deflateSync } from "fflate";
import { crc32 } from "../../src/io/crc32.js";

export interface TensorSpec {
  storage: string;
  offset?: number;
  shape: number[];
  /** Default: contiguous row-major. */
  stride?: number[];
}

export interface StorageSpec {
  /** Element count declared in the persistent id. */
  numel: number;
  /** The entry's bytes (default numel*4 zero bytes). */
  bytes?: Uint8Array;
  /** Deflate this entry instead of storing it (zeros are generated as a stream directly, at no cost). */
  deflate?: boolean;
}

const latin1 = (t: string): Uint8Array => Uint8Array.from(t, (c) => c.charCodeAt(0));

class Asm {
  parts: Uint8Array[] = [];
  raw(b: Uint8Array | number[] | string): this {
    this.parts.push(typeof b === "string" ? latin1(b) : b instanceof Uint8Array ? b : Uint8Array.from(b));
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.raw([0x58, b.length & 0xff, (b.length >> 8) & 0xff, (b.length >> 16) & 0xff, 0]).raw(b); // BINUNICODE
  }
  int(n: number): this {
    if (n >= 0 && n < 2 ** 31) {
      return this.raw([0x4a, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]); // BININT
    }
    // LONG1: little-endian two's complement
    const bytes: number[] = [];
    let v = BigInt(n);
    for (let i = 0; i < 8; i++) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
    }
    return this.raw([0x8a, 8, ...bytes]);
  }
  tuple(xs: number[]): this {
    this.raw("(");
    for (const x of xs) this.int(x);
    return this.raw("t");
  }
  global(mod: string, name: string): this {
    return this.raw(`c${mod}\n${name}\n`);
  }
  bytes(): Uint8Array {
    const n = this.parts.reduce((s, p) => s + p.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** data.pkl for a state dict of F32 tensors over FloatStorages. */
export function stateDictPickle(tensors: Record<string, TensorSpec>, storages: Record<string, StorageSpec>): Uint8Array {
  const a = new Asm().raw([0x80, 2]).global("collections", "OrderedDict").raw(")R");
  for (const [name, t] of Object.entries(tensors)) {
    const stride = t.stride ?? contiguousStride(t.shape);
    a.str(name).global("torch._utils", "_rebuild_tensor_v2").raw("(");
    a.raw("(").str("storage").global("torch", "FloatStorage").str(t.storage).str("cpu").int(storages[t.storage].numel).raw("t");
    a.raw("Q"); // BINPERSID
    a.int(t.offset ?? 0).tuple(t.shape).tuple(stride).raw([0x89]); // NEWFALSE
    a.global("collections", "OrderedDict").raw(")R").raw("t").raw("R").raw("s");
  }
  return a.raw(".").bytes();
}

export function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** The zip archive of a state dict; `extra` adds entries (e.g. `archive/byteorder`). */
export function torchArchive(
  tensors: Record<string, TensorSpec>,
  storages: Record<string, StorageSpec>,
  extra: Record<string, { bytes: Uint8Array; deflate?: boolean }> = {},
): Uint8Array {
  const pkl = stateDictPickle(tensors, storages);
  const entries: RawZipEntry[] = [{ name: "archive/data.pkl", method: 0, data: pkl, crc: crc32(pkl), uncompressedSize: pkl.length }];
  const add = (name: string, bytes: Uint8Array | null, size: number, deflate: boolean) => {
    if (bytes === null && deflate) {
      // `size` zero bytes: the literal plus 258-byte matches, rounded up; the entry may hold more than declared
      const matches = Math.ceil(Math.max(0, size - 1) / 258);
      const n = 1 + 258 * matches;
      entries.push({ name, method: 8, data: deflateRepeat(0, matches), crc: crc32(new Uint8Array(n)), uncompressedSize: n });
      return;
    }
    const b = bytes ?? new Uint8Array(size);
    entries.push(deflate
      ? { name, method: 8, data: deflateSync(b, { level: 1 }), crc: crc32(b), uncompressedSize: b.length }
      : { name, method: 0, data: b, crc: crc32(b), uncompressedSize: b.length });
  };
  for (const [k, st] of Object.entries(storages)) add(`archive/data/${k}`, st.bytes ?? null, st.numel * 4, st.deflate ?? false);
  for (const [k, e] of Object.entries(extra)) add(k, e.bytes, e.bytes.length, e.deflate ?? false);
  return rawZip(entries);
}

export interface RawZipEntry {
  name: string;
  /** 0 stored, 8 deflate: `data` is then the raw deflate stream. */
  method: 0 | 8;
  data: Uint8Array;
  crc: number;
  uncompressedSize: number;
}

/** A zip archive written field by field, for entries no zip library would write (declared sizes, crafted streams). */
export function rawZip(entries: RawZipEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const l = new Uint8Array(30 + name.length);
    const dv = new DataView(l.buffer);
    dv.setUint32(0, 0x04034b50, true);
    dv.setUint16(4, 20, true);
    dv.setUint16(8, e.method, true);
    dv.setUint32(14, e.crc, true);
    dv.setUint32(18, e.data.length, true);
    dv.setUint32(22, e.uncompressedSize, true);
    dv.setUint16(26, name.length, true);
    l.set(name, 30);
    const c = new Uint8Array(46 + name.length);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, e.method, true);
    cv.setUint32(16, e.crc, true);
    cv.setUint32(20, e.data.length, true);
    cv.setUint32(24, e.uncompressedSize, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    c.set(name, 46);
    locals.push(l, e.data);
    centrals.push(c);
    offset += l.length + e.data.length;
  }
  const cdSize = centrals.reduce((s, c) => s + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, end];
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * A raw deflate stream of `1 + 258 * matches` copies of `byte`: one fixed-Huffman block holding the literal and then
 * `matches` back-references of length 258 at distance 1 (13 bits each: the densest deflate can be, ~1032:1).
 */
export function deflateRepeat(byte: number, matches: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((3 + 8 + 13 * matches + 7) / 8) + 1);
  let bitPos = 0;
  const bits = (v: number, n: number) => { // LSB first
    for (let k = 0; k < n; k++, bitPos++) if ((v >> k) & 1) out[bitPos >> 3] |= 1 << (bitPos & 7);
  };
  const huff = (code: number, n: number) => { // Huffman codes go MSB first
    for (let k = n - 1; k >= 0; k--, bitPos++) if ((code >> k) & 1) out[bitPos >> 3] |= 1 << (bitPos & 7);
  };
  bits(1, 1); // BFINAL
  bits(1, 2); // BTYPE 01: fixed Huffman
  if (byte < 144) huff(0x30 + byte, 8);
  else huff(0x190 + byte - 144, 9);
  for (let m = 0; m < matches; m++) {
    huff(0xc5, 8); // length symbol 285 (= 258): 8-bit code 11000101
    huff(0, 5); // distance code 0 (= 1)
  }
  huff(0, 7); // end of block (256)
  return out.subarray(0, Math.ceil(bitPos / 8));
}
