import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getFloat16, hfround } from "@petamoriken/float16";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { bf16ToF32, bf16ToF32Naive, f16ToF32, f16ToF32Naive } from "../src/io/checkpoint/float16.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { DTYPE_SIZE, readSafetensors, writeSafetensors } from "../src/io/checkpoint/safetensors.js";
import { JsonObject, parseStrictJson } from "../src/io/checkpoint/strict-json.js";
import type { SafetensorsTensor } from "../src/io/checkpoint/safetensors.js";

const FIX = join(import.meta.dirname, "fixtures", "tiny-conv");
const SRC = "case.safetensors";

/** Runs fn, expects a PerceiverError with `code`, a message naming SRC (or `where`), and containing `fragment`. */
function expectError(fn: () => unknown, code: string, fragment: string, where = SRC): PerceiverError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(PerceiverError);
  const pe = err as PerceiverError;
  expect(pe.code).toBe(code);
  expect(pe.message).toContain(fragment);
  expect(pe.message).toContain(where);
  return pe;
}

/** Hand-built file: u64 header length (default: the header's byte length), header bytes, then data bytes. */
function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0, n?: bigint): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

/** Header text for a single-entry file. */
const one = (entry: unknown) => JSON.stringify({ t: entry });
const read = (bytes: Uint8Array, maxHeaderBytes?: number) => readSafetensors(bytes, { source: SRC, maxHeaderBytes });

/** One tensor of every dtype, a scalar I64, and zero-size tensors. */
function allDtypes(): Record<string, SafetensorsTensor> {
  return {
    f64: { dtype: "F64", shape: [2, 2], data: new Float64Array([1 / 3, -1e300, 2.5, Number.MIN_VALUE]) },
    f32: { dtype: "F32", shape: [3], data: new Float32Array([1.5, -2.25, 1e-40]) },
    f16: { dtype: "F16", shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }, // 1, -2
    bf16: { dtype: "BF16", shape: [2], data: new Uint16Array([0x3f80, 0x4049]) }, // 1, 3.140625
    "scalar.num_batches_tracked": { dtype: "I64", shape: [], data: new BigInt64Array([-7n]) },
    u64: { dtype: "U64", shape: [2], data: new BigUint64Array([0n, 2n ** 40n + 3n]) },
    i32: { dtype: "I32", shape: [2], data: new Int32Array([-2147483648, 7]) },
    u32: { dtype: "U32", shape: [1], data: new Uint32Array([4294967295]) },
    i16: { dtype: "I16", shape: [3], data: new Int16Array([-32768, 0, 32767]) },
    u16: { dtype: "U16", shape: [1, 1], data: new Uint16Array([65535]) },
    i8: { dtype: "I8", shape: [3], data: new Int8Array([-128, 1, 127]) },
    u8: { dtype: "U8", shape: [2], data: new Uint8Array([0, 255]) },
    bool: { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
    empty: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    empty64: { dtype: "I64", shape: [2, 0], data: new BigInt64Array(0) },
  };
}

describe("round trip", () => {
  it("writes and reads back every dtype, a scalar, zero-size tensors and metadata", () => {
    const tensors = allDtypes();
    const meta = { format: "pt", "note ü": "naïve \"quoted\"", "1": "integer-like key" };
    const bytes = writeSafetensors(tensors, meta);
    const f = read(bytes);

    expect(f.metadata).toEqual(meta);
    expect(new Set(f.names())).toEqual(new Set(Object.keys(tensors)));
    expect(f.byteLength).toBe(bytes.length);
    expect(f.headerByteLength % 8).toBe(0);
    for (const [name, t] of Object.entries(tensors)) {
      expect(f.info(name)).toEqual({ dtype: t.dtype, shape: t.shape });
      expect(f.has(name)).toBe(true);
      const raw = f.getRaw(name);
      expect(raw.constructor).toBe(t.data.constructor);
      expect(Array.from(raw as ArrayLike<unknown>)).toEqual(Array.from(t.data as unknown as ArrayLike<unknown>));
      // every tensor is aligned to its element size (the writer's ordering + padded header guarantee it)
      expect((f.dataByteOffset + f.entry(name).begin) % DTYPE_SIZE[t.dtype]).toBe(0);
    }
    expect(f.info("scalar.num_batches_tracked").shape).toEqual([]);
    expect(f.entry("scalar.num_batches_tracked").numel).toBe(1);
    expect(f.getRaw("empty").length).toBe(0);
    expect(f.getFloat32("empty64").length).toBe(0);
    expect(f.has("nope")).toBe(false);
  });

  it("getFloat32 converts every dtype", () => {
    const f = read(writeSafetensors(allDtypes()));
    const g = (n: string) => Array.from(f.getFloat32(n));
    expect(g("f64")).toEqual([Math.fround(1 / 3), -Infinity, 2.5, 0]); // rounded to nearest f32 (-1e300 overflows)
    expect(g("f32")).toEqual([1.5, -2.25, Math.fround(1e-40)]);
    expect(g("f16")).toEqual([1, -2]);
    expect(g("bf16")).toEqual([1, 3.140625]);
    expect(g("scalar.num_batches_tracked")).toEqual([-7]);
    expect(g("u64")).toEqual([0, Math.fround(2 ** 40 + 3)]);
    expect(g("i32")).toEqual([-2147483648, 7]);
    expect(g("u32")).toEqual([4294967296]); // 2^32-1 rounds to 2^32 in f32
    expect(g("i16")).toEqual([-32768, 0, 32767]);
    expect(g("u16")).toEqual([65535]);
    expect(g("i8")).toEqual([-128, 1, 127]);
    expect(g("u8")).toEqual([0, 255]);
    expect(g("bool")).toEqual([1, 0, 1]);
  });

  it("orders tensors like the Rust/Python writer: dtype alignment descending, then name", () => {
    const f = read(writeSafetensors(allDtypes()));
    expect(f.names()).toEqual([
      "u64", "empty64", "scalar.num_batches_tracked", "f64", "empty", "f32", "u32", "i32",
      "bf16", "f16", "u16", "i16", "i8", "u8", "bool",
    ]);
  });

  it("produces the Rust crate's test vectors byte for byte", () => {
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    const a = writeSafetensors(new Map([["attn.0", { dtype: "F32" as const, shape: [1, 2, 3], data }]]));
    const headerA = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(headerA.length).toBe(64);
    expect(Array.from(a.subarray(0, 8))).toEqual([64, 0, 0, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(a.subarray(8, 72))).toBe(headerA);
    expect(Array.from(a.subarray(72))).toEqual(Array.from(new Uint8Array(data.buffer)));

    // "attn0": 65-byte header padded with 7 spaces to 72
    const b = writeSafetensors({ attn0: { dtype: "F32", shape: [1, 1, 2, 3], data } });
    expect(Array.from(b.subarray(0, 8))).toEqual([72, 0, 0, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(b.subarray(8, 80))).toBe(
      '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}' + " ".repeat(7));

    expect(Array.from(writeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const m = writeSafetensors({}, { framework: "pt" });
    expect(Array.from(m.subarray(0, 8))).toEqual([40, 0, 0, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(m.subarray(8))).toBe('{"__metadata__":{"framework":"pt"}}     ');
    expect(read(m).metadata).toEqual({ framework: "pt" });
    expect(read(m).names()).toEqual([]);
  });

  it("accepts raw bytes (Uint8Array) for any dtype", () => {
    const bits = new Uint16Array([0x3c00, 0x4000]);
    const f = read(writeSafetensors({ h: { dtype: "F16", shape: [2], data: new Uint8Array(bits.buffer) } }));
    expect(Array.from(f.getFloat32("h"))).toEqual([1, 2]);
  });
});

describe("writer validation", () => {
  const w = (t: Record<string, unknown>, meta?: unknown) => () =>
    writeSafetensors(t as Record<string, SafetensorsTensor>, meta as Record<string, string>);
  const where = "writeSafetensors";
  it("rejects bad tensors and metadata with SAFETENSORS_WRITE", () => {
    expectError(w({ a: { dtype: "F32", shape: [3], data: new Float32Array(2) } }), "SAFETENSORS_WRITE", "needs 12", where);
    expectError(w({ a: { dtype: "F32", shape: [1], data: new Float64Array(1) } }), "SAFETENSORS_WRITE", "Float64Array", where);
    expectError(w({ a: { dtype: "F8_E4M3", shape: [1], data: new Uint8Array(1) } }), "SAFETENSORS_WRITE", "unknown dtype", where);
    expectError(w({ a: { dtype: "F32", shape: [-1], data: new Float32Array(0) } }), "SAFETENSORS_WRITE", "non-negative", where);
    expectError(w({ a: { dtype: "F32", shape: [1.5], data: new Float32Array(0) } }), "SAFETENSORS_WRITE", "non-negative", where);
    expectError(w({ a: { dtype: "F32", shape: [1], data: [1] } }), "SAFETENSORS_WRITE", "typed array", where);
    expectError(w({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }), "SAFETENSORS_WRITE", "reserved", where);
    expectError(w({}, { k: 1 }), "SAFETENSORS_WRITE", 'metadata value for "k"', where);
    expectError(w({}, ["x"]), "SAFETENSORS_WRITE", "metadata must be an object", where);
  });
});

describe("fixtures", () => {
  it("reads tiny-conv/model.safetensors", async () => {
    const f = await readSafetensorsFile(join(FIX, "model.safetensors"));
    expect(f.metadata).toEqual({ format: "pt" });
    expect(f.names().length).toBe(78);
    const nbt = "perceiver.input_preprocessor.convnet.batchnorm.num_batches_tracked";
    expect(f.info(nbt)).toEqual({ dtype: "I64", shape: [] });
    const raw = f.getRaw(nbt);
    expect(raw).toBeInstanceOf(BigInt64Array);
    expect(raw.length).toBe(1);
    expect(f.info("perceiver.input_preprocessor.convnet.conv.weight")).toEqual({ dtype: "F32", shape: [64, 3, 7, 7] });
    expect(f.info("perceiver.embeddings.latents")).toEqual({ dtype: "F32", shape: [16, 64] });
    expect(f.info("perceiver.input_preprocessor.convnet.batchnorm.running_var")).toEqual({ dtype: "F32", shape: [64] });
    // the zero-copy view agrees with an independent DataView read of the file bytes
    const bytes = await readFile(join(FIX, "model.safetensors"));
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const name = "perceiver.embeddings.latents";
    const lat = f.getFloat32(name);
    const start = f.dataByteOffset + f.entry(name).begin;
    for (const i of [0, 1, 517, 1023]) expect(lat[i]).toBe(dv.getFloat32(start + 4 * i, true));
    expect(f.names()[0]).toBe(nbt); // I64 first: the Python writer's dtype-alignment order
  });

  // Tolerances: round-to-nearest into f16 (11 significant bits) has relative error <= 2^-11 for normal values
  // (|x| >= 2^-14) and absolute error <= 2^-25 below that (half the subnormal spacing 2^-24); bf16 (8 bits):
  // relative <= 2^-8. We also check exact equality with round-to-nearest-even of the f32 value.
  for (const [file, rel, absSub, minNormal, round] of [
    ["model.f16.safetensors", 2 ** -11, 2 ** -25, 2 ** -14, (x: number) => hfround(x)],
    ["model.bf16.safetensors", 2 ** -8, 0, 0, bf16Round],
  ] as const) {
    it(`${file} upcasts to the F32 weights within f16/bf16 rounding`, async () => {
      const ref = await readSafetensorsFile(join(FIX, "model.safetensors"));
      const low = await readSafetensorsFile(join(FIX, file));
      expect(low.names()).toEqual(ref.names());
      let checked = 0;
      for (const name of ref.names()) {
        expect(low.info(name).shape).toEqual(ref.info(name).shape);
        if (ref.info(name).dtype !== "F32") continue;
        expect(low.info(name).dtype).toBe(file.includes("bf16") ? "BF16" : "F16");
        const a = ref.getFloat32(name), b = low.getFloat32(name);
        for (let i = 0; i < a.length; i++) { // plain loop, one expect.fail: ~175k values
          const err = Math.abs(a[i] - b[i]);
          const tol = Math.abs(a[i]) >= minNormal ? rel * Math.abs(a[i]) : absSub;
          if (!(err <= tol)) expect.fail(`${name}[${i}]: |${a[i]} - ${b[i]}| = ${err} > ${tol}`);
          if (b[i] !== round(a[i])) expect.fail(`${name}[${i}]: ${b[i]} != round(${a[i]}) = ${round(a[i])}`);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(100_000);
    });
  }
});

/** f32 -> nearest bf16 (ties to even; finite inputs), returned as a number. */
const scratchF = new Float32Array(1), scratchU = new Uint32Array(scratchF.buffer);
function bf16Round(x: number): number {
  scratchF[0] = x;
  const u = scratchU[0];
  scratchU[0] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return scratchF[0];
}

describe("half precision upcasts", () => {
  it("F16 special values: subnormals, max, inf, nan, -0", () => {
    const bits = [0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x3555, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xfc01];
    const f = read(writeSafetensors({ h: { dtype: "F16", shape: [bits.length], data: new Uint16Array(bits) } }));
    const v = f.getFloat32("h");
    expect(Object.is(v[0], 0)).toBe(true);
    expect(Object.is(v[1], -0)).toBe(true);
    expect(v[2]).toBe(2 ** -24); // smallest subnormal
    expect(v[3]).toBe(1023 * 2 ** -24); // largest subnormal
    expect(v[4]).toBe(2 ** -14); // smallest normal
    expect([v[5], v[6], v[7], v[8]]).toEqual([1, -2, 0.333251953125, 65504]);
    expect([v[9], v[10]]).toEqual([Infinity, -Infinity]);
    expect(Number.isNaN(v[11]) && Number.isNaN(v[12])).toBe(true);
  });

  it("F16 table agrees with the naive twin and @petamoriken/float16 on all 65536 patterns", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const t = f16ToF32(all), naive = f16ToF32Naive(all);
    const dv = new DataView(all.buffer);
    for (let i = 0; i < 65536; i++) {
      const ref = getFloat16(dv, 2 * i, true);
      if (Number.isNaN(ref)) {
        if (!Number.isNaN(t[i]) || !Number.isNaN(naive[i])) expect.fail(`pattern ${i}: expected NaN`);
      } else if (!Object.is(t[i], ref) || !Object.is(naive[i], ref)) {
        expect.fail(`pattern ${i}: table ${t[i]}, naive ${naive[i]}, reference ${ref}`);
      }
    }
  });

  it("BF16 special values and agreement with the naive twin", () => {
    const bits = [0x0000, 0x8000, 0x0001, 0x3f80, 0xbf80, 0x4049, 0x7f7f, 0x7f80, 0xff80, 0x7fc0];
    const f = read(writeSafetensors({ b: { dtype: "BF16", shape: [bits.length], data: new Uint16Array(bits) } }));
    const v = f.getFloat32("b");
    expect(Object.is(v[0], 0)).toBe(true);
    expect(Object.is(v[1], -0)).toBe(true);
    expect(v[2]).toBe(2 ** -133); // smallest bf16 subnormal = f32 bits 0x00010000
    expect([v[3], v[4], v[5]]).toEqual([1, -1, 3.140625]);
    expect(v[6]).toBe((2 - 2 ** -7) * 2 ** 127); // largest finite bf16
    expect([v[7], v[8]]).toEqual([Infinity, -Infinity]);
    expect(Number.isNaN(v[9])).toBe(true);
    const all = new Uint16Array(65536).map((_, i) => i);
    const a = new Uint32Array(bf16ToF32(all).buffer), b = new Uint32Array(bf16ToF32Naive(all).buffer);
    for (let i = 0; i < 65536; i++) if (a[i] !== b[i] || a[i] !== i << 16 >>> 0) expect.fail(`pattern ${i}`);
  });
});

describe("zero-copy and alignment", () => {
  const values = new Float32Array([1, 2, 3, 4.5]);
  const file = writeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: values }, d: { dtype: "F64", shape: [1], data: new Float64Array([0.1]) } });

  it("returns a view of the buffer when aligned", () => {
    const f = readSafetensors(file);
    const w = f.getFloat32("w");
    expect(w.buffer).toBe(file.buffer);
    expect(Array.from(w)).toEqual(Array.from(values));
    expect(f.getRaw("d").buffer).toBe(file.buffer);
    expect(f.getBytes("w").buffer).toBe(file.buffer);
  });

  it("accepts an ArrayBuffer", () => {
    const ab = file.slice().buffer;
    const w = readSafetensors(ab).getFloat32("w");
    expect(w.buffer).toBe(ab);
    expect(Array.from(w)).toEqual(Array.from(values));
  });

  it("uses offsets relative to the view's byteOffset (pooled Node Buffers)", () => {
    const big = new Uint8Array(file.length + 24).fill(0xee); // garbage around the file
    big.set(file, 16);
    const f = readSafetensors(big.subarray(16, 16 + file.length));
    const w = f.getFloat32("w");
    expect(w.buffer).toBe(big.buffer); // still zero-copy: 16 is a multiple of 4
    expect(Array.from(w)).toEqual(Array.from(values));
    expect(Array.from(f.getRaw("d") as Float64Array)).toEqual([0.1]);
  });

  it("copies (correctly) when the data is misaligned", () => {
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    const f = readSafetensors(big.subarray(3));
    const w = f.getFloat32("w");
    expect(w.buffer).not.toBe(big.buffer);
    expect(Array.from(w)).toEqual(Array.from(values));
    expect(Array.from(f.getRaw("d") as Float64Array)).toEqual([0.1]);
  });
});

describe("reader validation (one case per rule)", () => {
  const f32 = (shape: unknown, offsets: unknown) => ({ dtype: "F32", shape, data_offsets: offsets });

  it("file shorter than 8 bytes", () => {
    expectError(() => read(new Uint8Array(7)), "SAFETENSORS_TOO_SMALL", "only 7 bytes");
    expectError(() => read(new Uint8Array(0)), "SAFETENSORS_TOO_SMALL", "only 0 bytes");
  });

  it("header length over the cap (exact u64 arithmetic)", () => {
    expectError(() => read(rawFile("{}", 0, 2n ** 60n)), "SAFETENSORS_HEADER_TOO_LARGE", "1152921504606846976");
    expectError(() => read(rawFile("{}", 0, 2n ** 64n - 1n)), "SAFETENSORS_HEADER_TOO_LARGE", "18446744073709551615");
    expectError(() => read(rawFile("{}", 0, 100_000_001n)), "SAFETENSORS_HEADER_TOO_LARGE", "limit of 100000000");
    const ok = writeSafetensors({ a: { dtype: "U8", shape: [1], data: new Uint8Array(1) } });
    expect(read(ok).names()).toEqual(["a"]);
    expectError(() => read(ok, 16), "SAFETENSORS_HEADER_TOO_LARGE", "limit of 16 bytes");
  });

  it("header length beyond the file", () => {
    expectError(() => read(rawFile("{}", 0, 3n)), "SAFETENSORS_HEADER_OUT_OF_BOUNDS", "only 2 bytes follow");
    expectError(() => read(rawFile("{}", 4, 1000n)), "SAFETENSORS_HEADER_OUT_OF_BOUNDS", "header length 1000");
  });

  it("header not UTF-8", () => {
    expectError(() => read(rawFile(new Uint8Array([0x7b, 0xff, 0x7d]))), "SAFETENSORS_HEADER_NOT_UTF8", "not valid UTF-8");
    // an encoded lone surrogate (ED A0 80) is invalid UTF-8 too
    expectError(() => read(rawFile(new Uint8Array([0x7b, 0x7d, 0xed, 0xa0, 0x80]))), "SAFETENSORS_HEADER_NOT_UTF8", "UTF-8");
  });

  it("header not JSON", () => {
    expectError(() => read(rawFile("{not json}")), "SAFETENSORS_HEADER_NOT_JSON", "not valid JSON");
    expectError(() => read(rawFile("")), "SAFETENSORS_HEADER_NOT_JSON", "not valid JSON");
    expectError(() => read(rawFile('{"a":1} x')), "SAFETENSORS_HEADER_NOT_JSON", "not valid JSON");
    expectError(() => read(rawFile("\ufeff{}")), "SAFETENSORS_HEADER_NOT_JSON", "not valid JSON"); // BOM is not stripped
    expect(read(rawFile("{}  \n ")).names()).toEqual([]); // trailing whitespace (padding) is fine
  });

  it("header not an object", () => {
    expectError(() => read(rawFile("[]")), "SAFETENSORS_HEADER_NOT_OBJECT", "is an array");
    expectError(() => read(rawFile("null")), "SAFETENSORS_HEADER_NOT_OBJECT", "is null");
    expectError(() => read(rawFile("42")), "SAFETENSORS_HEADER_NOT_OBJECT", "is a number");
    expectError(() => read(rawFile('"x"')), "SAFETENSORS_HEADER_NOT_OBJECT", "is a string");
  });

  it("entry not an object, or dtype/shape/data_offsets missing or wrong-typed", () => {
    const E = "SAFETENSORS_INVALID_ENTRY";
    expectError(() => read(rawFile(one(5))), E, 'tensor "t": entry is a number');
    expectError(() => read(rawFile(one([1]))), E, "entry is an array");
    expectError(() => read(rawFile(one(null))), E, "entry is null");
    expectError(() => read(rawFile(one({ shape: [], data_offsets: [0, 4] }))), E, 'missing field "dtype"');
    expectError(() => read(rawFile(one({ dtype: "F32", data_offsets: [0, 4] }))), E, 'missing field "shape"');
    expectError(() => read(rawFile(one({ dtype: "F32", shape: [] }))), E, 'missing field "data_offsets"');
    expectError(() => read(rawFile(one({ dtype: 1, shape: [], data_offsets: [0, 4] }))), E, '"dtype" is a number');
    expectError(() => read(rawFile(one(f32("3", [0, 12])))), E, '"shape" is a string');
    expectError(() => read(rawFile(one(f32([3], { begin: 0 })))), E, '"data_offsets" is an object');
  });

  it("unknown dtype", () => {
    expectError(() => read(rawFile(one({ dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] }), 1)),
      "SAFETENSORS_UNKNOWN_DTYPE", 'unknown dtype "F8_E4M3"');
    expectError(() => read(rawFile(one({ dtype: "f32", shape: [1], data_offsets: [0, 4] }), 4)),
      "SAFETENSORS_UNKNOWN_DTYPE", 'unknown dtype "f32"');
  });

  it("shape entries that are not safe non-negative integers, and numel overflow", () => {
    const S = "SAFETENSORS_INVALID_SHAPE";
    expectError(() => read(rawFile(one(f32([1.5], [0, 4])))), S, "shape[0] is a number (1.5)");
    expectError(() => read(rawFile(one(f32([2, -1], [0, 4])))), S, "shape[1] is a number (-1)");
    expectError(() => read(rawFile(one(f32(["3"], [0, 12])))), S, "shape[0] is a string");
    expectError(() => read(rawFile('{"t":{"dtype":"F32","shape":[1152921504606846976],"data_offsets":[0,4]}}')), S,
      "shape[0] is a number (1152921504606846976, beyond 2^53)");
    expectError(() => read(rawFile(one(f32([2 ** 30, 2 ** 30], [0, 4])))), S, "too large"); // numel 2^60
    expectError(() => read(rawFile(one(f32([2 ** 26, 2 ** 26], [0, 4])))), S, "too large"); // numel 2^52, bytes 2^54
  });

  it("offsets that are not safe non-negative integers, or end < begin", () => {
    const O = "SAFETENSORS_INVALID_OFFSETS";
    expectError(() => read(rawFile(one(f32([1], [0])))), O, "has 1 entries");
    expectError(() => read(rawFile(one(f32([1], [0, 4.5])))), O, "data_offsets[1] is a number (4.5)");
    expectError(() => read(rawFile(one(f32([1], [-4, 0])))), O, "data_offsets[0] is a number (-4)");
    expectError(() => read(rawFile(one(f32([1], ["0", 4])))), O, "data_offsets[0] is a string");
    expectError(() => read(rawFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,1152921504606846976]}}')), O,
      "data_offsets[1] is a number (1152921504606846976, beyond 2^53)");
    expectError(() => read(rawFile(one(f32([1], [8, 4])), 8)), O, "end before they begin");
  });

  it("offsets not contiguous from 0: first not at 0, gap, overlap", () => {
    const O = "SAFETENSORS_INVALID_OFFSETS";
    expectError(() => read(rawFile(one(f32([1], [4, 8])), 8)), O, "must begin at offset 0");
    const gap = JSON.stringify({ b: f32([1], [8, 12]), a: f32([1], [0, 4]) });
    expectError(() => read(rawFile(gap, 12)), O, 'tensor "b" data_offsets [8, 12]: gap of 4 bytes after tensor "a"');
    const overlap = JSON.stringify({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) });
    expectError(() => read(rawFile(overlap, 12)), O, 'overlaps tensor "a", which ends at 8');
    const same = JSON.stringify({ a: f32([1], [0, 4]), b: f32([1], [0, 4]) });
    expectError(() => read(rawFile(same, 4)), O, "overlaps");
  });

  it("byte span != numel x dtype size", () => {
    expectError(() => read(rawFile(one(f32([2], [0, 4])), 4)), "SAFETENSORS_SIZE_MISMATCH",
      "span 4 bytes, but dtype F32 with shape [2] needs 8 bytes");
    expectError(() => read(rawFile(one({ dtype: "I64", shape: [], data_offsets: [0, 4] }), 4)), "SAFETENSORS_SIZE_MISMATCH",
      "needs 8 bytes");
  });

  it("extra bytes after the last tensor / file truncated", () => {
    const ok = writeSafetensors({ a: { dtype: "F32", shape: [3], data: new Float32Array(3) } });
    const longer = new Uint8Array(ok.length + 1);
    longer.set(ok);
    expectError(() => read(longer), "SAFETENSORS_TRAILING_BYTES", "1 unexpected bytes after the last tensor");
    expectError(() => read(ok.subarray(0, ok.length - 1)), "SAFETENSORS_TRUNCATED", "needs 12 bytes after the header but the file has only 11");
    expectError(() => read(rawFile("{}", 5)), "SAFETENSORS_TRAILING_BYTES", "5 unexpected bytes");
  });

  it("duplicate tensor names, including escaped spellings", () => {
    const D = "SAFETENSORS_DUPLICATE_KEY";
    const e = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}';
    expectError(() => read(rawFile(`{"a":${e},"a":${e}}`, 1)), D, '"a" more than once');
    expectError(() => read(rawFile(`{"a":${e}, "\\u0061" : ${e}}`, 1)), D, '"a" more than once');
    expectError(() => read(rawFile(`{"__metadata__":{},"a":${e},"__metadata__":{}}`, 1)), D, '"__metadata__" more than once');
  });

  it("key scan handles escapes and nested values (no false duplicates)", () => {
    const keys = (t: string) => (parseStrictJson(t) as JsonObject).entries.map(([k]) => k);
    const text = '{ "a\\"b" : {"x": "}\\"{", "a": [1, {"a": 2}]}, "a" :1,"c\\\\":true , "d":null,"e":-1.5e3}';
    expect(keys(text)).toEqual(Object.keys(JSON.parse(text)));
    expect(keys(text)).toEqual(['a"b', "a", "c\\", "d", "e"]);
    expect(keys(" { } ")).toEqual([]);
    const meta = '{"__metadata__":{"a":"\\"a\\":"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const f = read(rawFile(meta, 1));
    expect(f.names()).toEqual(["a"]);
    expect(f.metadata).toEqual({ a: '"a":' });
  });

  it("numbers the Rust crate refuses for a usize: 2.0, -0, 1e0, 4.0e0 (JSON.parse reads them as integers)", () => {
    const S = "SAFETENSORS_INVALID_SHAPE", O = "SAFETENSORS_INVALID_OFFSETS";
    const entry = (shape: string, offsets: string) => `{"t":{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`;
    expectError(() => read(rawFile(entry("[2.0]", "[0,8]"), 8)), S, "shape[0] is a number (2.0), expected a non-negative integer");
    expectError(() => read(rawFile(entry("[-0]", "[0,0]"))), S, "shape[0] is a number (-0)");
    expectError(() => read(rawFile(entry("[1e0]", "[0,4]"), 4)), S, "shape[0] is a number (1e0)");
    expectError(() => read(rawFile(entry("[1]", "[-0,4]"), 4)), O, "data_offsets[0] is a number (-0)");
    expectError(() => read(rawFile(entry("[1]", "[0,4.0e0]"), 4)), O, "data_offsets[1] is a number (4.0e0)");
    expectError(() => read(rawFile(entry("[1]", "[0,18446744073709551620]"), 4)), O, "data_offsets[1] is a number (18446744073709551620)");
    expect(read(rawFile(entry("[1]", "[0,4]"), 4)).names()).toEqual(["t"]);
  });

  it("a field given twice inside an entry is refused (serde: duplicate field); unknown fields are ignored", () => {
    const D = "SAFETENSORS_DUPLICATE_KEY";
    expectError(() => read(rawFile('{"t":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)), D, 'tensor "t": duplicate field "dtype"');
    expectError(() => read(rawFile('{"t":{"dtype":"F32","shape":[1],"shape":[1],"data_offsets":[0,4]}}', 4)), D, 'duplicate field "shape"');
    expectError(() => read(rawFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"data_offsets":[0,4]}}', 4)), D, 'duplicate field "data_offsets"');
    const f = read(rawFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"x":[1.5,-0]}}}', 4));
    expect(f.names()).toEqual(["t"]);
    // inside __metadata__ (a HashMap in the crate) a repeated key keeps the last value
    expect(read(rawFile('{"__metadata__":{"a":"1","a":"2"}}')).metadata).toEqual({ a: "2" });
  });

  it("JSON that serde_json refuses: lone surrogate escapes, nesting past 128 levels", () => {
    const J = "SAFETENSORS_HEADER_NOT_JSON";
    expectError(() => read(rawFile('{"__metadata__":{"a":"\\ud800"}}')), J, "lone leading surrogate");
    expectError(() => read(rawFile('{"__metadata__":{"a":"\\udc00"}}')), J, "lone trailing surrogate");
    expect(read(rawFile('{"__metadata__":{"a":"\\ud83d\\ude00"}}')).metadata).toEqual({ a: "\u{1f600}" });
    const deep = (d: number) => `{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":${"[".repeat(d)}${"]".repeat(d)}}}`;
    expect(read(rawFile(deep(126), 1)).names()).toEqual(["t"]);
    expectError(() => read(rawFile(deep(127), 1)), J, "nesting deeper than 128 levels");
    expectError(() => read(rawFile(deep(100_000), 1)), J, "nesting deeper than 128 levels"); // no stack overflow
  });

  it("__metadata__ not an object or with non-string values", () => {
    const M = "SAFETENSORS_INVALID_METADATA";
    expectError(() => read(rawFile('{"__metadata__":[]}')), M, '"__metadata__" is an array');
    expectError(() => read(rawFile('{"__metadata__":"pt"}')), M, '"__metadata__" is a string');
    expectError(() => read(rawFile('{"__metadata__":{"format":"pt","epoch":3}}')), M, 'value for "epoch" is a number');
    expectError(() => read(rawFile('{"__metadata__":{"x":null}}')), M, 'value for "x" is null');
    expect(read(rawFile('{"__metadata__":null}')).metadata).toEqual({}); // like the Rust crate (Option)
  });

  it("zero-size tensors are valid anywhere in the data order", () => {
    const h = JSON.stringify({ z: f32([0], [4, 4]), a: f32([1], [0, 4]), y: f32([3, 0], [4, 4]), b: f32([1], [4, 8]) });
    const f = read(rawFile(h, 8));
    expect(f.names()).toEqual(["a", "z", "y", "b"]);
    expect(f.getFloat32("z").length).toBe(0);
  });

  it("unknown tensor name", () => {
    const f = read(writeSafetensors({}));
    expectError(() => f.getFloat32("missing.weight"), "CHECKPOINT_MISSING_KEYS", 'no tensor named "missing.weight"');
    expectError(() => f.info("x"), "CHECKPOINT_MISSING_KEYS", '"x"');
  });
});

describe("node file helpers", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perceiver-st-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes atomically and reads back", async () => {
    const p = join(dir, "a.safetensors");
    await writeSafetensorsFile(p, allDtypes(), { format: "pt" });
    expect((await readdir(dir)).filter((n) => n.includes(".tmp-"))).toEqual([]);
    const f = await readSafetensorsFile(p);
    expect(f.source).toBe(p);
    expect(f.metadata).toEqual({ format: "pt" });
    expect(Array.from(f.getFloat32("f32"))).toEqual([1.5, -2.25, Math.fround(1e-40)]);
    expect(f.getFloat32("f32").buffer).toBe(f.getBytes("f32").buffer); // zero-copy from the file buffer
    await writeSafetensorsFile(p, { x: { dtype: "U8", shape: [1], data: new Uint8Array([9]) } }); // overwrite
    expect((await readSafetensorsFile(p)).names()).toEqual(["x"]);
  });

  it("missing file -> CHECKPOINT_NOT_FOUND naming the path", async () => {
    const p = join(dir, "nope.safetensors");
    await expect(readSafetensorsFile(p)).rejects.toMatchObject({ code: "CHECKPOINT_NOT_FOUND", message: expect.stringContaining(p) });
    await expect(readSafetensorsFile(dir)).rejects.toMatchObject({ code: "CHECKPOINT_NOT_FOUND" });
  });

  it("refuses a huge header length from the size check, quoting the path", async () => {
    const p = join(dir, "huge.safetensors");
    await writeFile(p, rawFile("{}", 0, 2n ** 60n));
    await expect(readSafetensorsFile(p)).rejects.toMatchObject({
      code: "SAFETENSORS_HEADER_TOO_LARGE", message: expect.stringContaining(p),
    });
    await writeFile(p, rawFile("{}", 0, 5000n));
    await expect(readSafetensorsFile(p)).rejects.toMatchObject({ code: "SAFETENSORS_HEADER_OUT_OF_BOUNDS" });
    await writeFile(p, new Uint8Array(3));
    await expect(readSafetensorsFile(p)).rejects.toMatchObject({ code: "SAFETENSORS_TOO_SMALL" });
  });

  it("write failure -> SAFETENSORS_WRITE, no temp file left", async () => {
    const p = join(dir, "no-such-dir", "x.safetensors");
    await expect(writeSafetensorsFile(p, {})).rejects.toMatchObject({ code: "SAFETENSORS_WRITE" });
  });
});
