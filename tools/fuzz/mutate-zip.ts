/**
 * Structure-aware pytorch_model.bin edits: the zip is unpacked, one part is changed and the archive is written again
 * with valid CRCs (stored, or deflated), so the reader gets past the zip checks into the unpickler and the tensor
 * checks. Pickle edits walk the opcodes: integers (sizes, strides, offsets, storage sizes) re-encoded with
 * interesting values, strings (storage types, keys) swapped, opcodes replaced, dropped or duplicated.
 */
import { zipSync, type Zippable } from "fflate";
import { ZipArchive } from "../../src/io/checkpoint/torch-zip.js";
import { bitFlip, type Mutator } from "./mutators.js";
import type { Prng } from "./prng.js";

interface Op {
  at: number;
  op: number;
  /** end of the opcode and its argument */
  end: number;
}

/** Argument sizes of the opcodes the reader supports: fixed bytes, or [length-prefix bytes] for counted data. */
const FIXED: Record<number, number> = {
  0x80: 1, 0x95: 8, 0x4a: 4, 0x4b: 1, 0x4d: 2, 0x47: 8, 0x71: 1, 0x72: 4, 0x68: 1, 0x6a: 4,
};
const COUNTED: Record<number, number> = { 0x8a: 1, 0x8b: 4, 0x8c: 1, 0x58: 4, 0x8d: 8, 0x43: 1, 0x42: 4, 0x8e: 8 };
const NO_ARG = [0x28, 0x2e, 0x30, 0x31, 0x32, 0x7d, 0x5d, 0x29, 0x8f, 0x4e, 0x88, 0x89, 0x74, 0x85, 0x86, 0x87, 0x73, 0x75, 0x61, 0x65, 0x90, 0x91, 0x93, 0x52, 0x81, 0x62, 0x51, 0x94];

/** The opcodes of a pickle, up to the first one this walker cannot frame. */
export function pickleOps(b: Uint8Array): Op[] {
  const out: Op[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  while (p < b.length) {
    const op = b[p];
    let end: number;
    if (op in FIXED) end = p + 1 + FIXED[op];
    else if (op in COUNTED) {
      const w = COUNTED[op];
      if (p + 1 + w > b.length) break;
      const n = w === 1 ? b[p + 1] : w === 4 ? dv.getUint32(p + 1, true) : Number(dv.getBigUint64(p + 1, true));
      end = p + 1 + w + n;
    } else if (op === 0x63) { // GLOBAL: two lines
      const a = b.indexOf(0x0a, p + 1);
      const c = a < 0 ? -1 : b.indexOf(0x0a, a + 1);
      if (c < 0) break;
      end = c + 1;
    } else if (NO_ARG.includes(op)) end = p + 1;
    else break;
    if (end > b.length) break;
    out.push({ at: p, op, end });
    if (op === 0x2e) break;
    p = end;
  }
  return out;
}

const INTS = [0, 1, 2, 3, 4, 7, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -1, -2, -(2 ** 31)];
const STRINGS = [
  "FloatStorage", "HalfStorage", "DoubleStorage", "LongStorage", "ByteStorage", "BoolStorage", "UntypedStorage",
  "storage", "cpu", "0", "1", "99", "../0", "_rebuild_tensor_v2", "_rebuild_parameter", "OrderedDict", "os", "system",
  "torch", "torch._utils", "collections", "builtins", "eval", "", "a.weight",
];

/** An integer opcode for `v`: BININT1 / BININT2 / BININT / LONG1 (two's complement, little-endian). */
function encodeInt(v: number | bigint): number[] {
  if (typeof v === "number" && Number.isInteger(v)) {
    if (v >= 0 && v < 256) return [0x4b, v];
    if (v >= 0 && v < 65536) return [0x4d, v & 0xff, v >> 8];
    if (v >= -(2 ** 31) && v < 2 ** 31) return [0x4a, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
  }
  let x = BigInt(v);
  const bytes: number[] = [];
  for (let i = 0; i < 9; i++) {
    bytes.push(Number(x & 0xffn));
    x >>= 8n;
  }
  return [0x8a, bytes.length, ...bytes];
}

function editPickle(pkl: Uint8Array, rng: Prng): Uint8Array {
  const ops = pickleOps(pkl);
  if (ops.length === 0) return bitFlip(pkl, rng, []);
  const replace = (o: Op, bytes: ArrayLike<number>) => Uint8Array.from([...pkl.subarray(0, o.at), ...Array.from(bytes), ...pkl.subarray(o.end)]);
  const ints = ops.filter((o) => o.op === 0x4a || o.op === 0x4b || o.op === 0x4d || o.op === 0x8a);
  const strs = ops.filter((o) => o.op === 0x8c || o.op === 0x58);
  switch (rng.int(6)) {
    case 0:
    case 1:
      if (ints.length) return replace(rng.pick(ints), encodeInt(rng.chance(0.8) ? rng.pick(INTS) : rng.range(0, 64)));
      break;
    case 2:
      if (strs.length) {
        const s = new TextEncoder().encode(rng.pick(STRINGS));
        return replace(rng.pick(strs), [0x8c, s.length, ...s]);
      }
      break;
    case 3: { // replace an opcode byte
      const o = rng.pick(ops);
      const out = pkl.slice();
      out[o.at] = rng.pick([...NO_ARG, ...Object.keys(FIXED).map(Number), 0x63, 0x69, 0x6f, 0x82, 0x92, 0x96, 0x97, 0x00, 0xff]);
      return out;
    }
    case 4: { // drop an opcode
      const o = rng.pick(ops);
      return replace(o, []);
    }
    default: { // duplicate an opcode (DUP-like stack effects, repeated MARKs, PUTs, ...)
      const o = rng.pick(ops);
      const seg = pkl.subarray(o.at, o.end);
      return Uint8Array.from([...pkl.subarray(0, o.end), ...seg, ...pkl.subarray(o.end)]);
    }
  }
  return bitFlip(pkl, rng, []);
}

const ZIP_TIME = new Date(2000, 0, 1);

export const mutateZip: Mutator = (input, rng, others) => {
  // Unpacked with the library's own strict reader: fflate's unzipSync trusts the directory's entry count and can
  // loop for billions of entries on a damaged zip64 record.
  const files: Record<string, Uint8Array> = {};
  try {
    const zip = new ZipArchive(input);
    for (const e of zip.entries) files[e.name] = zip.read(e.name);
  } catch {
    return bitFlip(input, rng, others);
  }
  const names = Object.keys(files);
  const pkl = names.find((n) => n.endsWith("/data.pkl"));
  const top = pkl ? pkl.slice(0, -"/data.pkl".length) : "archive";
  const storages = names.filter((n) => n.includes("/data/"));
  switch (rng.int(8)) {
    case 0:
    case 1:
    case 2:
    case 3:
      if (pkl) files[pkl] = editPickle(files[pkl], rng);
      break;
    case 4: { // a storage: shorter, longer, missing, or renamed
      if (storages.length === 0) break;
      const s = rng.pick(storages);
      const r = rng.int(4);
      if (r === 0) files[s] = files[s].slice(0, rng.int(files[s].length + 1));
      else if (r === 1) files[s] = Uint8Array.from([...files[s], ...rng.bytes(rng.pick([1, 4, 64]))]);
      else if (r === 2) delete files[s];
      else {
        files[`${top}/data/${rng.pick(["0", "1", "7", "99", "x"])}`] = files[s];
        delete files[s];
      }
      break;
    }
    case 5: // byteorder
      if (rng.chance(0.8)) files[`${top}/byteorder`] = new TextEncoder().encode(rng.pick(["big", "little", "middle", "", "big\n"]));
      else delete files[`${top}/byteorder`];
      break;
    case 6: // a second data.pkl, or the pickle under another folder
      if (pkl) {
        files[rng.chance(0.5) ? `other/data.pkl` : `${top}/data.pkl.bak`] = files[pkl];
        if (rng.chance(0.5)) delete files[pkl];
      }
      break;
    default: // bytes of a storage (its CRC is recomputed, so the values change silently)
      if (storages.length) {
        const s = rng.pick(storages);
        files[s] = bitFlip(files[s], rng, []);
      }
  }
  const level = rng.chance(0.8) ? 0 : 6;
  const zippable: Zippable = {};
  // a fixed timestamp: the same case must be the same bytes on every run
  for (const [n, b] of Object.entries(files)) zippable[n] = [b, { level, mtime: ZIP_TIME }];
  return zipSync(zippable);
};
