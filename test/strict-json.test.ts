/**
 * The strict JSON parser of safetensors headers (src/io/checkpoint/strict-json.ts) against JSON.parse: on random
 * documents and on random mutations of them, both accept the same texts and read the same values, except where
 * serde_json is stricter on purpose (lone surrogate escapes, nesting past 128); numbers keep their text.
 */
import { describe, expect, it } from "vitest";
import { JsonNumber, JsonObject, parseStrictJson, usizeOf, type JsonValue } from "../src/io/checkpoint/strict-json.js";
import { Prng } from "../tools/fuzz/prng.js";

/** The JSON.parse view of a strict parse: numbers as numbers, objects with the last value of a repeated key. */
function plain(v: JsonValue): unknown {
  if (v instanceof JsonNumber) return Number(v.text);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof JsonObject) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v.entries) Object.defineProperty(o, k, { value: plain(x), enumerable: true, configurable: true, writable: true });
    return o;
  }
  return v;
}

const PIECES = ["a", "é", "猫", "🐈", '\\"', "\\\\", "\\/", "\\n", "\\u0041", "\\u00e9", "\\ud83d\\ude00", "\\t", " ", "0"];

function randomDoc(rng: Prng, depth = 0): string {
  const ws = () => [" ", "", "\n", "\t", "\r\n"][rng.int(5)];
  const str = () => `"${Array.from({ length: rng.int(5) }, () => PIECES[rng.int(PIECES.length)]).join("")}"`;
  const k = rng.int(depth > 3 ? 4 : 6);
  if (k === 0) return ["true", "false", "null"][rng.int(3)];
  if (k === 1) return ["0", "-0", "12", "2.0", "1e3", "-1.5E-2", "18446744073709551615", "9007199254740993"][rng.int(8)];
  if (k === 2 || k === 3) return str();
  if (k === 4) return `[${ws()}${Array.from({ length: rng.int(4) }, () => randomDoc(rng, depth + 1)).join(`${ws()},${ws()}`)}${ws()}]`;
  return `{${ws()}${Array.from({ length: rng.int(4) }, () => `${str()}${ws()}:${ws()}${randomDoc(rng, depth + 1)}`).join(`,${ws()}`)}${ws()}}`;
}

function outcome(f: () => unknown): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: f() };
  } catch {
    return { ok: false };
  }
}

describe("parseStrictJson agrees with JSON.parse", () => {
  it("on 3000 random documents: same values (numbers kept as written)", () => {
    const rng = new Prng(2026);
    for (let i = 0; i < 3000; i++) {
      const text = randomDoc(rng);
      expect(plain(parseStrictJson(text)), text).toEqual(JSON.parse(text));
    }
  });

  it("on 20000 random mutations: the same texts accepted, with the same values", () => {
    const rng = new Prng(7);
    const alphabet = ['"', "\\", "{", "}", "[", "]", ":", ",", "u", "d", "8", "0", "-", ".", "e", " ", "\u0001", "x"];
    let accepted = 0;
    for (let i = 0; i < 20000; i++) {
      const chars = [...randomDoc(rng)];
      for (let m = 0; m < 1 + rng.int(3); m++) {
        const at = rng.int(chars.length + 1);
        const op = rng.int(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, alphabet[rng.int(alphabet.length)]);
        else chars[at] = alphabet[rng.int(alphabet.length)];
      }
      const text = chars.join("");
      const a = outcome(() => plain(parseStrictJson(text)));
      const b = outcome(() => JSON.parse(text));
      // serde_json refuses lone surrogate escapes, which JSON.parse accepts
      if (!a.ok && b.ok && /\\u[dD][89a-fA-F]/.test(text)) continue;
      expect(a.ok, text).toBe(b.ok);
      if (a.ok && b.ok) {
        expect(a.value, text).toEqual(b.value);
        accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(1000);
  });
});

describe("what serde_json refuses and JSON.parse does not", () => {
  it("lone surrogate escapes, nesting past 128 levels", () => {
    expect(() => parseStrictJson('"\\ud800"')).toThrow(/lone leading surrogate/);
    expect(() => parseStrictJson('"\\ud800\\u0041"')).toThrow(/lone leading surrogate/);
    expect(() => parseStrictJson('"\\udfff"')).toThrow(/lone trailing surrogate/);
    expect(parseStrictJson(`${"[".repeat(128)}${"]".repeat(128)}`)).toBeDefined();
    expect(() => parseStrictJson(`${"[".repeat(129)}${"]".repeat(129)}`)).toThrow(/nesting deeper than 128/);
  });

  it("usizeOf: digits only, up to u64::MAX", () => {
    const u = (t: string) => usizeOf(new JsonNumber(t));
    expect(u("0")).toBe(0n);
    expect(u("18446744073709551615")).toBe(2n ** 64n - 1n);
    for (const t of ["-0", "2.0", "1e3", "-1", "18446744073709551616"]) expect(u(t), t).toBe(null);
  });
});
