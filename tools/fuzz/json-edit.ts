/**
 * JSON trees for structure-aware edits: objects keep their key order and may hold a key twice, and a value can be
 * raw text (numbers beyond a double, deliberately odd tokens), so edits can express what JSON.stringify cannot.
 */
import type { Prng } from "./prng.js";

/** A value written verbatim. */
export class RawJson {
  constructor(readonly text: string) {}
}

/** An object as ordered entries (duplicates allowed). */
export class JsonObj {
  constructor(readonly entries: [string, JsonNode][] = []) {}
  get(key: string): JsonNode | undefined {
    return this.entries.find(([k]) => k === key)?.[1];
  }
}

export type JsonNode = null | boolean | number | string | RawJson | JsonObj | JsonNode[];

/** Values that break size, type and range checks (as JSON text). */
export const INTERESTING_JSON: readonly string[] = [
  "0", "-1", "1", "2", "3", "-0", "0.5", "1.5", "1e3", "7", "64", "65535", "65536", "65537", "2147483647", "2147483648",
  "4294967296", "9007199254740991", "9007199254740993", "1152921504606846976", "18446744073709551616", "1e308",
  "-1e308", "1e400", "\"8\"", "\"\"", "\"F32\"", "null", "true", "false", "[]", "{}", "[1]", "[-1, 2]", "[[2]]",
  "{\"a\": 1}", "\"\\u0000\"", "\"\\ud800\"",
];

/** JSON.parse result -> JsonNode (objects become JsonObj, in enumeration order). */
export function toNode(v: unknown): JsonNode {
  if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v;
  if (Array.isArray(v)) return v.map(toNode);
  return new JsonObj(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, toNode(x)]));
}

/** Parse text to a JsonNode, or undefined when it is not JSON. */
export function parseNode(text: string): JsonNode | undefined {
  try {
    return toNode(JSON.parse(text));
  } catch {
    return undefined;
  }
}

export function nodeText(v: JsonNode, pretty = false, indent = ""): string {
  const nl = pretty ? "\n" : "";
  const inner = pretty ? indent + "  " : "";
  if (v instanceof RawJson) return v.text;
  if (v instanceof JsonObj) {
    if (v.entries.length === 0) return "{}";
    const items = v.entries.map(([k, x]) => `${inner}${JSON.stringify(k)}:${pretty ? " " : ""}${nodeText(x, pretty, inner)}`);
    return `{${nl}${items.join(`,${nl}`)}${nl}${indent}}`;
  }
  if (Array.isArray(v)) return `[${v.map((x) => nodeText(x, false)).join(",")}]`;
  return JSON.stringify(v);
}

/** A place in the tree: the container and the key / index of one value. */
export interface Slot {
  parent: JsonObj | JsonNode[];
  at: number; // entry index (JsonObj) or element index (array)
  path: string;
}

/** Every value slot of the tree, depth first, at most `max`. */
export function slots(root: JsonNode, max = 5000): Slot[] {
  const out: Slot[] = [];
  const walk = (v: JsonNode, path: string) => {
    if (out.length >= max) return;
    if (v instanceof JsonObj) {
      v.entries.forEach(([k, x], i) => {
        out.push({ parent: v, at: i, path: `${path}.${k}` });
        walk(x, `${path}.${k}`);
      });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ parent: v, at: i, path: `${path}[${i}]` });
        walk(x, `${path}[${i}]`);
      });
    }
  };
  walk(root, "$");
  return out;
}

export function slotValue(s: Slot): JsonNode {
  return s.parent instanceof JsonObj ? s.parent.entries[s.at][1] : s.parent[s.at];
}

export function setSlot(s: Slot, v: JsonNode): void {
  if (s.parent instanceof JsonObj) s.parent.entries[s.at][1] = v;
  else s.parent[s.at] = v;
}

export function removeSlot(s: Slot): void {
  if (s.parent instanceof JsonObj) s.parent.entries.splice(s.at, 1);
  else s.parent.splice(s.at, 1);
}

export function interestingValue(rng: Prng): JsonNode {
  if (rng.chance(0.1)) return rng.range(-3, 70000);
  return new RawJson(rng.pick(INTERESTING_JSON));
}

/** Number edits keep their type most of the time, to get past type checks into range and consistency checks. */
export function nearbyNumber(v: number, rng: Prng): JsonNode {
  switch (rng.int(6)) {
    case 0: return v + rng.range(-3, 3);
    case 1: return v * rng.pick([0, 2, 3, 7, 1000, 1e6]);
    case 2: return -v;
    case 3: return v + 0.5;
    case 4: return Math.floor(v / rng.pick([2, 3, 7]));
    default: return new RawJson(rng.pick(INTERESTING_JSON));
  }
}
