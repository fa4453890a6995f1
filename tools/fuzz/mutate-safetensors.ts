/**
 * Structure-aware safetensors edits: the JSON header is parsed, one field is changed (numbers to huge / negative /
 * float / strings, dtypes, shapes, offsets shuffled or shifted, entries dropped or duplicated, metadata), and the
 * file is re-assembled, usually with a matching length prefix so the reader gets past the framing.
 */
import { bitFlip, type Mutator } from "./mutators.js";
import { interestingValue, JsonObj, nearbyNumber, nodeText, parseNode, type JsonNode } from "./json-edit.js";
import type { Prng } from "./prng.js";

const DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "f32", "", "F32 "];

interface Parsed {
  header: JsonObj;
  data: Uint8Array;
}

function parse(input: Uint8Array): Parsed | null {
  if (input.length < 8) return null;
  const n = new DataView(input.buffer, input.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(input.length - 8)) return null;
  const text = new TextDecoder().decode(input.subarray(8, 8 + Number(n)));
  const header = parseNode(text);
  if (!(header instanceof JsonObj)) return null;
  return { header, data: input.subarray(8 + Number(n)) };
}

/** Tensor entries (not __metadata__) that are objects. */
function tensors(h: JsonObj): [string, JsonObj][] {
  return h.entries.filter((e): e is [string, JsonObj] => e[0] !== "__metadata__" && e[1] instanceof JsonObj);
}

function field(t: JsonObj, key: string): JsonNode | undefined {
  return t.get(key);
}

function setField(t: JsonObj, key: string, v: JsonNode): void {
  const e = t.entries.find(([k]) => k === key);
  if (e) e[1] = v;
  else t.entries.push([key, v]);
}

function editHeader(h: JsonObj, rng: Prng): void {
  const ts = tensors(h);
  if (ts.length === 0) {
    h.entries.push([`t${rng.int(10)}`, new JsonObj([["dtype", "F32"], ["shape", [1]], ["data_offsets", [0, 4]]])]);
    return;
  }
  const [name, t] = rng.pick(ts);
  switch (rng.int(12)) {
    case 0: // a shape entry: nearby or interesting
    case 1: {
      const shape = field(t, "shape");
      if (Array.isArray(shape) && shape.length > 0) {
        const i = rng.int(shape.length);
        const v = shape[i];
        shape[i] = typeof v === "number" && rng.chance(0.6) ? nearbyNumber(v, rng) : interestingValue(rng);
      } else {
        setField(t, "shape", interestingValue(rng));
      }
      return;
    }
    case 2: { // add / remove dims, or swap shapes between two tensors
      const shape = field(t, "shape");
      if (!Array.isArray(shape)) return setField(t, "shape", []);
      const r = rng.int(3);
      if (r === 0) shape.splice(rng.int(shape.length + 1), 0, rng.pick([0, 1, 2, 3, 2 ** 20, 2 ** 31]));
      else if (r === 1 && shape.length > 0) shape.splice(rng.int(shape.length), 1);
      else {
        const [, u] = rng.pick(ts);
        const other = field(u, "shape");
        setField(u, "shape", shape);
        setField(t, "shape", other ?? []);
      }
      return;
    }
    case 3: // one offset: nearby or interesting
    case 4: {
      const off = field(t, "data_offsets");
      if (Array.isArray(off) && off.length > 0) {
        const i = rng.int(off.length);
        const v = off[i];
        off[i] = typeof v === "number" && rng.chance(0.7) ? nearbyNumber(v, rng) : interestingValue(rng);
      } else {
        setField(t, "data_offsets", interestingValue(rng));
      }
      return;
    }
    case 5: { // shuffle offsets among tensors, or shift a tensor, or reverse it
      const r = rng.int(3);
      if (r === 0) {
        const all = ts.map(([, u]) => field(u, "data_offsets"));
        for (let i = all.length - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [all[i], all[j]] = [all[j], all[i]];
        }
        ts.forEach(([, u], i) => setField(u, "data_offsets", all[i] ?? null));
      } else {
        const off = field(t, "data_offsets");
        if (!Array.isArray(off) || off.length !== 2 || typeof off[0] !== "number" || typeof off[1] !== "number") return;
        if (r === 1) {
          const k = rng.pick([1, 2, 4, 8, -4, -1]);
          setField(t, "data_offsets", [off[0] + k, off[1] + k]);
        } else {
          setField(t, "data_offsets", [off[1], off[0]]);
        }
      }
      return;
    }
    case 6: // dtype
      setField(t, "dtype", rng.chance(0.85) ? rng.pick(DTYPES) : interestingValue(rng));
      return;
    case 7: { // drop a field or the whole entry, or add an unknown field
      const r = rng.int(3);
      if (r === 0) t.entries.splice(rng.int(Math.max(1, t.entries.length)), 1);
      else if (r === 1) h.entries.splice(h.entries.findIndex(([k]) => k === name), 1);
      else t.entries.push([rng.pick(["extra", "dtype", "shape", "data_offsets"]), interestingValue(rng)]);
      return;
    }
    case 8: { // duplicate an entry (same name), or rename it to another tensor's name / an escaped spelling
      const r = rng.int(3);
      const clone = new JsonObj(t.entries.map(([k, v]) => [k, v]));
      if (r === 0) h.entries.push([name, clone]);
      else if (r === 1) h.entries.find((e) => e[1] === t)![0] = rng.pick(ts)[0];
      else h.entries.find((e) => e[1] === t)![0] = rng.pick(["", "__metadata__", "\u0000", "a\"b", "\ud800", name + name]);
      return;
    }
    case 9: { // metadata
      const bad: JsonNode[] = [null, [], "x", 1, new JsonObj([["k", 1]]), new JsonObj([["k", "v"], ["n", null]]), new JsonObj([["k", new JsonObj()]])];
      const meta = h.entries.find(([k]) => k === "__metadata__");
      if (meta) meta[1] = rng.pick(bad);
      else h.entries.unshift(["__metadata__", rng.pick(bad)]);
      return;
    }
    case 10: // an entry that is not an object
      h.entries.find((e) => e[1] === t)![1] = interestingValue(rng);
      return;
    default: { // a new tensor somewhere in the data
      const begin = rng.pick([0, 4, 8, 1 << 20]);
      h.entries.push([`new${rng.int(4)}`, new JsonObj([["dtype", rng.pick(DTYPES)], ["shape", [rng.range(0, 4)]], ["data_offsets", [begin, begin + rng.pick([0, 4, 8, 16])]]])]);
    }
  }
}

/** Edit the header; re-assemble with (usually) a matching length prefix. */
export const mutateSafetensors: Mutator = (input, rng, others) => {
  const p = parse(input);
  if (p === null) return bitFlip(input, rng, others);
  if (rng.chance(0.9)) editHeader(p.header, rng);
  let text = nodeText(p.header, rng.chance(0.1));
  if (rng.chance(0.5)) text += " ".repeat((8 - (text.length % 8)) % 8); // writer-style padding
  if (rng.chance(0.05)) text = `\ufeff${text}`; // a BOM
  const json = new TextEncoder().encode(text);
  let n: bigint = BigInt(json.length);
  const r = rng.float();
  if (r < 0.08) n += BigInt(rng.pick([-8, -1, 1, 8]));
  else if (r < 0.12) n = rng.pick([0n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n, 100_000_001n, BigInt(input.length)]);
  if (n < 0n) n = 0n;
  let data = p.data;
  if (rng.chance(0.1)) data = data.subarray(0, rng.int(data.length + 1));
  else if (rng.chance(0.05)) data = new Uint8Array([...data, ...rng.bytes(rng.pick([1, 4, 8]))]);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, n, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
};

