/**
 * A strict JSON parser (RFC 8259, with serde_json's extra rules) for the safetensors header, which must be read the
 * way the Rust `safetensors` crate reads it (serde_json), not the way `JSON.parse` does:
 * - numbers are kept as their source text (JsonNumber), so the caller can refuse `2.0`, `-0`, `1e3` or integers
 *   past 2^53 where serde refuses a non-integer for `usize`, instead of seeing the number JSON.parse rounds them to;
 * - objects keep every key in order, duplicates included (JSON.parse keeps only the last), so the caller decides
 *   (serde refuses a duplicated struct field);
 * - a `\u` escape of a lone surrogate is an error (serde_json: "lone leading surrogate in hex escape");
 * - nesting deeper than 128 arrays/objects is an error (serde_json's recursion limit), never a stack overflow;
 * - whitespace is space, tab, LF, CR only (a BOM is not whitespace); anything after the value but whitespace is
 *   an error.
 * Cost: at most `maxValues` values and object members are built (JsonBudgetError beyond), so a 100 MB text of tiny
 * values cannot fill the heap; a string is a slice of the text, or decoded in one native call when it has escapes.
 */

/** A JSON number, as written. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A JSON object: its members in text order, duplicates kept. */
export class JsonObject {
  readonly entries: [string, JsonValue][] = [];
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

/** Thrown for text that is not JSON; `offset` is the UTF-16 index of the problem. */
export class JsonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at character ${offset}`);
  }
}

/** Thrown when the text holds more values than the caller's budget. */
export class JsonBudgetError extends Error {
  constructor(readonly maxValues: number) {
    super(`more than ${maxValues} JSON values`);
  }
}

/** serde_json's default recursion limit. */
export const MAX_JSON_DEPTH = 128;

/** Default budget of values and object members (a safetensors header needs about 10 per tensor). */
export const DEFAULT_MAX_JSON_VALUES = 1_000_000;

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export function parseStrictJson(text: string, maxValues = DEFAULT_MAX_JSON_VALUES): JsonValue {
  let i = 0;
  const n = text.length;
  let values = 0;
  const count = () => {
    if (++values > maxValues) throw new JsonBudgetError(maxValues);
  };
  const fail = (msg: string, at = i): never => {
    throw new JsonSyntaxError(msg, at);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const hex4 = (): number => {
    if (i + 4 > n) fail("unexpected end of hex escape");
    const h = text.slice(i, i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail("invalid hex escape");
    i += 4;
    return parseInt(h, 16);
  };
  // Validates a string literal (at its opening quote) with serde_json's rules and returns its value: a slice of the
  // text when it has no escape, else JSON.parse of the literal (one native call; its escapes were checked here).
  const string = (): string => {
    const open = i;
    i++;
    let escaped = false;
    for (;;) {
      if (i >= n) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail("control character in a string");
      if (c !== 0x5c) {
        i++;
        continue;
      }
      escaped = true;
      i++;
      const e = text[i++];
      if (e === "u") {
        const u = hex4();
        if (u >= 0xdc00 && u <= 0xdfff) fail("lone trailing surrogate in hex escape", i - 6);
        if (u >= 0xd800 && u <= 0xdbff) {
          if (text[i] !== "\\" || text[i + 1] !== "u") fail("lone leading surrogate in hex escape", i - 6);
          i += 2;
          const lo = hex4();
          if (lo < 0xdc00 || lo > 0xdfff) fail("lone leading surrogate in hex escape", i - 12);
        }
      } else if (e === undefined || !'"\\/bfnrt'.includes(e)) {
        fail("invalid escape", i - 1);
      }
    }
    i++; // closing quote
    return escaped ? (JSON.parse(text.slice(open, i)) as string) : text.slice(open + 1, i - 1);
  };
  const value = (depth: number): JsonValue => {
    ws();
    if (i >= n) fail("unexpected end of input");
    count();
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth >= MAX_JSON_DEPTH) fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
      i++;
      ws();
      if (c === "[") {
        const arr: JsonValue[] = [];
        if (text[i] === "]") {
          i++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          ws();
          if (text[i] === ",") i++;
          else if (text[i] === "]") {
            i++;
            return arr;
          } else fail("expected ',' or ']'");
        }
      }
      const obj = new JsonObject();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a string key");
        count();
        const k = string();
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        obj.entries.push([k, value(depth + 1)]);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return obj;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (m === null) return fail("expected a value");
    i += m[0].length;
    return new JsonNumber(m[0]);
  };
  const v = value(0);
  ws();
  if (i < n) fail("trailing characters");
  return v;
}

/**
 * The value of a JSON number that serde_json would accept for a Rust `usize` (u64 here): digits only, no sign,
 * fraction or exponent (serde_json reads `-0`, `2.0` and `1e3` as floats, which `usize` refuses; past u64::MAX
 * it reads a float too). Returns the value as a bigint, or null when serde would refuse it.
 */
export function usizeOf(num: JsonNumber): bigint | null {
  if (!/^(?:0|[1-9][0-9]*)$/.test(num.text)) return null;
  const v = BigInt(num.text);
  return v <= 0xffff_ffff_ffff_ffffn ? v : null;
}
