/**
 * pytorch_model.bin reader: the restricted unpickler (src/io/torch-pickle.ts), the zip reader (torch-zip.ts) and the
 * state dict (torch-bin.ts). Fixtures come from scripts/make_pickle_fixtures.py (see test/fixtures/pickle/README.md).
 * All comparisons against the safetensors files are bit-exact (tolerance 0).
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { zipSync } from "fflate";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { readSafetensors } from "../src/io/checkpoint/safetensors.js";
import type { SafetensorsFile } from "../src/io/checkpoint/safetensors.js";
import { readTorchBin } from "../src/io/checkpoint/torch-bin.js";
import type { ReadTorchBinOptions, TorchStateDict } from "../src/io/checkpoint/torch-bin.js";
import { PyCallable, PyDict, PyList, PyTuple, unpickle } from "../src/io/checkpoint/torch-pickle.js";
import type { PyValue } from "../src/io/checkpoint/torch-pickle.js";
import { crc32, crc32Naive } from "../src/io/crc32.js";
import { ZipArchive } from "../src/io/checkpoint/torch-zip.js";

const DIR = join(import.meta.dirname, "fixtures", "pickle");
const PWNED_FIXTURE = "/tmp/perceiver-ts-pwned-fixture"; // what the hostile fixtures' commands would create

function fixture(name: string): Uint8Array {
  return readFileSync(join(DIR, name));
}

function bin(name: string, opts: ReadTorchBinOptions = {}): TorchStateDict {
  return readTorchBin(fixture(name), { source: name, ...opts });
}

function st(path: string): SafetensorsFile {
  return readSafetensors(readFileSync(path), { source: path });
}

/** Reads every tensor (which materializes and CRC-checks it) and returns the state dict. */
function readAll(sd: TorchStateDict): TorchStateDict {
  for (const n of sd.names()) {
    sd.getRaw(n);
    sd.getFloat32(n);
  }
  return sd;
}

/** Runs f and returns the PerceiverError it throws (fails the test on success or on any other error). */
function perceiverError(f: () => unknown): PerceiverError {
  try {
    f();
  } catch (e) {
    if (e instanceof PerceiverError) return e;
    throw new Error(`expected a PerceiverError, got ${String(e)}`, { cause: e });
  }
  throw new Error("expected a PerceiverError, but nothing was thrown");
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/** Every tensor of `sd` equals the safetensors file's: same names, dtype, shape and bytes. */
function expectSameAsSafetensors(sd: TorchStateDict, ref: SafetensorsFile): void {
  expect([...sd.names()].sort()).toEqual([...ref.names()].sort());
  for (const n of sd.names()) {
    expect(sd.info(n), n).toEqual(ref.info(n));
    expect(bytesEqual(sd.getBytes(n), ref.getBytes(n)), `${n} bytes`).toBe(true);
    const a = sd.getFloat32(n), b = ref.getFloat32(n);
    expect(a.length).toBe(b.length);
    for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect.fail(`${n}[${i}]: ${a[i]} != ${b[i]}`);
  }
}

/** A torch-like zip (stored entries, via fflate, which computes the CRCs) around a hand-written data.pkl. */
function archive(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = { "archive/data.pkl": [pkl, { level: 0 }] };
  for (const [k, v] of Object.entries(storages)) files[`archive/data/${k}`] = [v, { level: 0 }];
  return zipSync(files);
}

/** Pickle assembly helpers (raw opcodes). Strings are byte strings (one char = one byte, "\xfe" = 0xfe). */
const enc = new TextEncoder();
function cat(...parts: (Uint8Array | number[] | string)[]): Uint8Array {
  const latin1 = (t: string): Uint8Array => Uint8Array.from(t, (c) => c.charCodeAt(0));
  const arrs = parts.map((p) => (typeof p === "string" ? latin1(p) : p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrs.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
const ustr = (s: string): Uint8Array => {
  const b = enc.encode(s);
  return cat([0x58, b.length & 0xff, (b.length >> 8) & 0xff, 0, 0], b); // BINUNICODE (< 64 KiB here)
};
const PROTO2 = [0x80, 2], STOP = ".", REDUCE = "R", TUPLE1 = [0x85], EMPTY_DICT = "}", SETITEM = "s";

describe("hostile files: nothing runs, each problem is named", () => {
  beforeAll(() => rmSync(PWNED_FIXTURE, { force: true }));
  afterAll(() => expect(existsSync(PWNED_FIXTURE), `${PWNED_FIXTURE} must never be created`).toBe(false));

  const cases: [string, string, RegExp][] = [
    ["os-system-global.bin", "PICKLE_FORBIDDEN_GLOBAL", /forbidden global os\.system.*GLOBAL at byte 14/],
    ["os-system-stack-global.bin", "PICKLE_FORBIDDEN_GLOBAL", /forbidden global os\.system.*STACK_GLOBAL at byte \d+/],
    ["builtins-eval.bin", "PICKLE_FORBIDDEN_GLOBAL", /forbidden global builtins\.eval/],
    ["subprocess-popen.bin", "PICKLE_FORBIDDEN_GLOBAL", /forbidden global subprocess\.Popen/],
    ["posix-system-dumps.bin", "PICKLE_FORBIDDEN_GLOBAL", /forbidden global posix\.system/],
    ["reduce-storage-type.bin", "PICKLE_INVALID", /REDUCE on torch\.FloatStorage, which is not an allowed callable/],
    ["reduce-string.bin", "PICKLE_INVALID", /REDUCE on str "os\.system", which is not an allowed callable/],
    ["build-dict.bin", "PICKLE_INVALID", /BUILD on dict\[0\] is not allowed \(BUILD at byte \d+\)/],
    ["build-tensor.bin", "PICKLE_INVALID", /BUILD on torch\.Tensor is not allowed/],
    ["missing-storage.bin", "PICKLE_INVALID", /storage "7" \(torch\.FloatStorage\) is missing: the archive has no entry archive\/data\/7/],
    ["short-storage.bin", "PICKLE_INVALID", /storage "0" holds 12 bytes, but its persistent id declares 4 elements .*16 bytes/],
    ["view-past-storage.bin", "PICKLE_INVALID", /size \[2, 3\], stride \[3, 1\], offset 0 reaches element 5 but the storage holds only 4 elements/],
    ["zip-bomb.bin", "ZIP_INVALID", /"archive\/data\.pkl" inflates past its declared size of \d+ bytes/],
    ["truncated-pickle.bin", "PICKLE_INVALID", /truncated/],
    ["truncated-zip.bin", "ZIP_INVALID", /end of central directory not found/],
    ["legacy.bin", "PICKLE_UNSUPPORTED", /legacy \(pre-zip, torch < 1\.6\) checkpoint format is not supported/],
    ["list.bin", "PICKLE_UNSUPPORTED", /holds list\[2\], expected a state dict/],
    ["mixed.bin", "PICKLE_UNSUPPORTED", /not a state dict: it has entry "step" holding int 3, not a tensor/],
  ];
  for (const [file, code, msg] of cases) {
    it(`${file} -> ${code}`, () => {
      const e = perceiverError(() => readAll(bin(file)));
      expect(e.code).toBe(code);
      expect(e.message).toMatch(msg);
      expect(e.message).toContain(file); // names the file
    });
  }

  it("an os.system pickle built here with a random target path runs nothing", () => {
    const target = join(tmpdir(), `perceiver-ts-pwned-${randomBytes(8).toString("hex")}`);
    const pkl = cat(PROTO2, EMPTY_DICT, ustr("w"), "cposix\nsystem\n", ustr(`touch ${target}`), TUPLE1, REDUCE, SETITEM, STOP);
    const e = perceiverError(() => readTorchBin(archive(pkl)));
    expect(e.code).toBe("PICKLE_FORBIDDEN_GLOBAL");
    expect(e.message).toContain("posix.system");
    expect(existsSync(target)).toBe(false);
  });

  it("a bare pickle (not a zip) is refused without being run", () => {
    const pkl = cat(PROTO2, EMPTY_DICT, ustr("w"), "cposix\nsystem\n", ustr("touch /nonexistent"), TUPLE1, REDUCE, SETITEM, STOP);
    const e = perceiverError(() => readTorchBin(pkl, { source: "x.bin" }));
    expect(e.code).toBe("PICKLE_UNSUPPORTED");
    expect(e.message).toMatch(/x\.bin: a bare pickle stream, not a PyTorch checkpoint/);
    expect(perceiverError(() => readTorchBin(new Uint8Array(10))).code).toBe("ZIP_INVALID");
  });

  it("the forbidden global is refused at GLOBAL, before REDUCE could reach any callable", () => {
    let called = 0;
    const resolveGlobal = (m: string, n: string): PyValue | undefined =>
      m === "ok" ? new PyCallable(`${m}.${n}`, () => { called++; return null; }) : undefined;
    // ok.f() runs (an allowed builder), then os.system is refused at its GLOBAL opcode (byte offset 11)
    const pkl = cat(PROTO2, "cok\nf\n", ")", REDUCE, "0", "cos\nsystem\n", ustr("x"), TUPLE1, REDUCE, STOP);
    const e = perceiverError(() => unpickle(pkl, { resolveGlobal }));
    expect(e.code).toBe("PICKLE_FORBIDDEN_GLOBAL");
    expect(e.message).toMatch(/os\.system.*GLOBAL at byte 11/);
    expect(called).toBe(1);
  });
});

describe("tiny-conv checkpoint: .bin equals model.safetensors bit for bit", () => {
  const ref = st(join(import.meta.dirname, "fixtures", "tiny-conv", "model.safetensors"));
  for (const file of ["tiny-conv.state_dict.bin", "tiny-conv.pytorch_model.bin"]) {
    it(file, () => {
      const sd = bin(file);
      expect(sd.names().length).toBe(78);
      expectSameAsSafetensors(sd, ref);
      const nbt = "perceiver.input_preprocessor.convnet.batchnorm.num_batches_tracked";
      expect(sd.info(nbt)).toEqual({ dtype: "I64", shape: [] });
      expect(sd.getRaw(nbt)).toEqual(new BigInt64Array([0n]));
      // pickle order is the module's registration order (conv first), not the safetensors writer's order
      expect(sd.names()[0]).toBe("perceiver.input_preprocessor.convnet.conv.weight");
    });
  }
  it("top folder is taken from the data.pkl entry name", () => {
    expect(bin("tiny-conv.state_dict.bin").archiveName).toBe("tiny-conv.state_dict");
    expect(bin("tiny-conv.pytorch_model.bin").archiveName).toBe("pytorch_model");
    expect(bin("small.bin").archiveName).toBe("archive");
  });
  it("contiguous F32 tensors are zero-copy views of the file buffer", () => {
    const bytes = new Uint8Array(fixture("tiny-conv.state_dict.bin")); // fresh buffer, offset 0: aligned
    const sd = readTorchBin(bytes);
    const w = sd.getFloat32("perceiver.input_preprocessor.convnet.conv.weight");
    expect(w.buffer).toBe(bytes.buffer);
    expect(sd.layout("perceiver.input_preprocessor.convnet.conv.weight").contiguous).toBe(true);
  });
});

describe("dtypes", () => {
  const sd = bin("dtypes.bin");
  it("every dtype equals the safetensors export bit for bit (incl. U16 via _rebuild_tensor_v3)", () => {
    expectSameAsSafetensors(sd, st(join(DIR, "dtypes.expected.safetensors")));
    expect(sd.names()).toEqual(["f32", "f16", "bf16", "f16_special", "bf16_special", "f64", "i64", "i32", "i16", "i8",
      "u8", "bool", "num_batches_tracked", "u16", "empty"]);
  });
  it("values, independently of the safetensors reader", () => {
    expect(Array.from(sd.getFloat32("f16_special"))).toEqual([Infinity, -Infinity, NaN, -0, 2 ** -24, 1023 * 2 ** -24, 65504, 0.333251953125]);
    expect(Array.from(sd.getFloat32("bf16_special")).slice(0, 4)).toEqual([Infinity, -Infinity, NaN, -0]);
    expect(sd.getRaw("i64")).toEqual(new BigInt64Array([-(2n ** 40n), -1n, 0n, 2n ** 53n + 1n, 2n ** 62n]));
    expect(Array.from(sd.getFloat32("i64"))).toEqual([-(2 ** 40), -1, 0, 2 ** 53, 2 ** 62]);
    expect(sd.info("num_batches_tracked")).toEqual({ dtype: "I64", shape: [] });
    expect(Array.from(sd.getFloat32("num_batches_tracked"))).toEqual([7]);
    expect(sd.getRaw("u16")).toEqual(new Uint16Array([0, 1, 40000, 65535]));
    expect(sd.info("u16")).toEqual({ dtype: "U16", shape: [2, 2] });
    expect(Array.from(sd.getFloat32("bool"))).toEqual([1, 0, 1]);
    expect(Array.from(sd.getFloat32("i8"))).toEqual([-128, -1, 127]);
    expect(sd.info("empty")).toEqual({ dtype: "F32", shape: [0, 3] });
    expect(sd.getFloat32("empty").length).toBe(0);
  });
});

describe("non-contiguous views sharing one storage", () => {
  const expected = st(join(DIR, "strided.expected.safetensors"));
  for (const file of ["strided.bin", "strided.p5.bin"]) {
    it(`${file} materializes every view contiguously`, () => {
      const sd = bin(file);
      expectSameAsSafetensors(sd, expected);
      expect(sd.names()).toEqual(["base", "transposed", "slice", "column", "element", "expanded", "every_other", "param"]);
    });
  }
  it("layouts as saved, and values recomputed from base", () => {
    const sd = bin("strided.bin");
    const key = sd.layout("base").storageKey;
    for (const n of ["transposed", "slice", "column", "element", "expanded", "every_other"]) expect(sd.layout(n).storageKey).toBe(key);
    expect(sd.layout("transposed")).toMatchObject({ offset: 0, stride: [1, 6], contiguous: false });
    expect(sd.layout("slice")).toMatchObject({ offset: 8, stride: [6, 1], contiguous: false });
    expect(sd.layout("expanded")).toMatchObject({ offset: 6, stride: [0, 1] });
    const base = sd.getFloat32("base"); // [4, 6]
    const t = sd.getFloat32("transposed"); // [6, 4]
    for (let i = 0; i < 6; i++) for (let j = 0; j < 4; j++) expect(t[i * 4 + j]).toBe(base[j * 6 + i]);
    expect(Array.from(sd.getFloat32("slice"))).toEqual([base[8], base[9], base[10], base[14], base[15], base[16]]);
    expect(Array.from(sd.getFloat32("element"))).toEqual([base[15]]);
    expect(sd.info("element").shape).toEqual([]);
    expect(Array.from(sd.getFloat32("param"))).toEqual([1.5, -2.5, 3.5]);
  });
});

describe("archive variants", () => {
  const small = bin("small.bin");
  for (const file of ["small.big-endian-deflated.bin", "small.zip64.bin"]) {
    it(`${file} reads the same values as small.bin`, () => {
      const sd = bin(file);
      expect(sd.names()).toEqual(["w", "b"]);
      for (const n of sd.names()) {
        expect(sd.info(n)).toEqual(small.info(n));
        expect(bytesEqual(sd.getBytes(n), small.getBytes(n)), n).toBe(true);
      }
      expect(Array.from(sd.getFloat32("b"))).toEqual([0.5, -0.5]);
    });
  }
  it("big-endian flag is read from <top>/byteorder", () => {
    expect(bin("small.big-endian-deflated.bin").bigEndian).toBe(true);
    expect(small.bigEndian).toBe(false);
  });
  it("a training checkpoint is unwrapped one level (state_dict key)", () => {
    const sd = bin("wrapped.bin");
    expect(sd.names()).toEqual(["w", "b"]);
    expect(Array.from(sd.getFloat32("w"))).toEqual([1, 2, 3, 4]);
  });
  it("unknown tensor names throw CHECKPOINT_MISSING_KEYS", () => {
    expect(perceiverError(() => small.info("nope")).code).toBe("CHECKPOINT_MISSING_KEYS");
  });
  it("an ArrayBuffer and a misaligned view both work (misaligned data is copied)", () => {
    const raw = fixture("small.bin");
    const shifted = new Uint8Array(raw.length + 1);
    shifted.set(raw, 1);
    const sd = readTorchBin(shifted.subarray(1));
    expect(Array.from(sd.getFloat32("w"))).toEqual([1, 2, 3, 4]);
    expect(Array.from(readTorchBin(new Uint8Array(raw).buffer).getFloat32("w"))).toEqual([1, 2, 3, 4]);
  });
});

describe("limits and integrity", () => {
  it("crc32 (slicing-by-16) matches the check value and its naive twin at every length and alignment", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    const buf = new Uint8Array(300);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
    for (let off = 0; off < 5; off++) for (let n = 0; n < 80; n++) expect(crc32(buf.subarray(off, off + n))).toBe(crc32Naive(buf.subarray(off, off + n)));
    expect(crc32(buf)).toBe(crc32Naive(buf));
  });
  it("a deflated 1 MiB storage reads under the default limits and is refused over maxEntryBytes", () => {
    const sd = bin("deflated-1mib.bin");
    const w = sd.getFloat32("weight");
    expect(w.length).toBe(1 << 18);
    expect(w.every((x) => x === 0)).toBe(true);
    const e = perceiverError(() => bin("deflated-1mib.bin", { maxEntryBytes: 1 << 16 }).getFloat32("weight"));
    expect(e.code).toBe("ZIP_INVALID");
    expect(e.message).toMatch(/"archive\/data\/0" declares 1048576 bytes, over the limit of 65536/);
    const e2 = perceiverError(() => bin("deflated-1mib.bin", { maxTotalInflatedBytes: 1 << 19 }).getFloat32("weight"));
    expect(e2.message).toMatch(/cap of 524288 decompressed bytes/);
  });
  it("a corrupted storage byte is caught by the CRC check (and read as is with verifyCrc: false)", () => {
    const bytes = new Uint8Array(fixture("small.bin"));
    const zip = new ZipArchive(bytes);
    const data = zip.read("archive/data/0"); // a view into `bytes`
    const e = zip.entry("archive/data/0")!;
    expect(crc32(data)).toBe(e.crc32);
    data[0] ^= 0x40;
    const err = perceiverError(() => readTorchBin(bytes).getFloat32("w"));
    expect(err.code).toBe("ZIP_INVALID");
    expect(err.message).toMatch(/"archive\/data\/0" is corrupt: CRC-32/);
    expect(readTorchBin(bytes, { verifyCrc: false }).getFloat32("w")[0]).not.toBe(1);
  });
  it("every truncation of a valid file is refused with a PerceiverError", () => {
    const full = fixture("small.bin");
    for (let n = 0; n < full.length; n++) perceiverError(() => readAll(readTorchBin(full.subarray(0, n))));
  });
  it("random byte corruption of the archive never escapes as a non-PerceiverError", () => {
    const full = fixture("strided.bin");
    let seed = 12345;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let k = 0; k < 1500; k++) {
      const b = new Uint8Array(full);
      for (let j = 0; j < 1 + (k % 4); j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        readAll(readTorchBin(b));
      } catch (e) {
        if (!(e instanceof PerceiverError)) throw e;
      }
    }
  });
  it("random corruption of data.pkl (with a valid CRC) never escapes as a non-PerceiverError", () => {
    const zip = new ZipArchive(fixture("strided.bin"));
    const pkl = zip.read("archive/data.pkl");
    const storages: Record<string, Uint8Array> = {};
    for (const e of zip.entries) if (e.name.startsWith("archive/data/")) storages[e.name.slice("archive/data/".length)] = zip.read(e.name);
    expect(Object.keys(storages).length).toBe(2); // the views share base's storage; the Parameter has its own
    let seed = 777;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    let ok = 0;
    for (let k = 0; k < 600; k++) {
      const p = new Uint8Array(pkl);
      for (let j = 0; j < 1 + (k % 3); j++) p[Math.floor(rnd() * p.length)] = Math.floor(rnd() * 256);
      try {
        readAll(readTorchBin(archive(p, storages)));
        ok++;
      } catch (e) {
        if (!(e instanceof PerceiverError)) throw e;
      }
    }
    expect(ok).toBeLessThan(600); // most mutations are caught
  });
});

describe("restricted pickle VM", () => {
  const none = (): undefined => undefined;
  const run = (...parts: (Uint8Array | number[] | string)[]): PyValue => unpickle(cat(...parts), { resolveGlobal: none });

  it("builds containers and scalars (protocol 2 opcodes)", () => {
    // {"a": (1, -2, 300, 70000, 1.5, None, True), "b": [b"xy"]}
    const v = run(PROTO2, "}q\x00(", ustr("a"), "(K\x01J\xfe\xff\xff\xffM\x2c\x01J\x70\x11\x01\x00G\x3f\xf8\x00\x00\x00\x00\x00\x00N\x88t",
      ustr("b"), "](C\x02xye", "u", STOP) as PyDict;
    expect(v).toBeInstanceOf(PyDict);
    expect((v.get("a") as PyTuple).items).toEqual([1, -2, 300, 70000, 1.5, null, true]);
    expect(Array.from((v.get("b") as PyList).items[0] as Uint8Array)).toEqual([0x78, 0x79]);
  });
  it("LONG1 gives exact integers (bigint beyond 2^53)", () => {
    expect(run(PROTO2, [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0x80, 0], STOP)).toBe(2n ** 63n);
    expect(run(PROTO2, [0x8a, 2, 0xff, 0xff], STOP)).toBe(-1);
    expect(run(PROTO2, [0x8a, 0], STOP)).toBe(0);
  });
  const refusals: [string, (Uint8Array | number[] | string)[], string, RegExp][] = [
    ["INST (protocol 0 class call)", [PROTO2, "(ios\nsystem\n", STOP], "PICKLE_UNSUPPORTED", /opcode INST \(0x69\) is not supported.*at byte 3/],
    ["OBJ", [PROTO2, "(o", STOP], "PICKLE_UNSUPPORTED", /opcode OBJ/],
    ["EXT1", [PROTO2, [0x82, 1], STOP], "PICKLE_UNSUPPORTED", /opcode EXT1/],
    ["unknown opcode", [PROTO2, [0xff], STOP], "PICKLE_INVALID", /unknown opcode 0xff.*at byte 2/],
    ["protocol 6", [[0x80, 6], STOP], "PICKLE_UNSUPPORTED", /protocol 6/],
    ["string longer than the data", [PROTO2, [0x58, 0xff, 0xff, 0xff, 0x7f], "abc"], "PICKLE_INVALID", /truncated: needs 2147483647 more bytes/],
    ["invalid UTF-8", [PROTO2, [0x8c, 2, 0xc3, 0x28], STOP], "PICKLE_INVALID", /not valid UTF-8/],
    ["memo index never stored", [PROTO2, "h\x05", STOP], "PICKLE_INVALID", /memo index 5 was never stored \(BINGET at byte 2\)/],
    ["stack underflow", [PROTO2, "t", STOP], "PICKLE_INVALID", /no MARK/],
    ["pop below a MARK", [PROTO2, "N(", [0x85], STOP], "PICKLE_INVALID", /stack underflow \(TUPLE1 at byte 4\)/],
    ["SETITEM on a list", [PROTO2, "]NNs", STOP], "PICKLE_INVALID", /SETITEM on list\[0\], expected a dict/],
    ["odd SETITEMS", [PROTO2, "}(Nu", STOP], "PICKLE_INVALID", /odd number/],
    ["no STOP", [PROTO2, "N"], "PICKLE_INVALID", /ends without STOP/],
    ["persistent id without a loader", [PROTO2, "NQ", STOP], "PICKLE_INVALID", /persistent ids are not allowed/],
    ["GLOBAL line without newline", [PROTO2, "cos"], "PICKLE_INVALID", /newline-terminated/],
  ];
  for (const [what, parts, code, msg] of refusals) {
    it(`refuses: ${what}`, () => {
      const e = perceiverError(() => run(...parts));
      expect(e.code).toBe(code);
      expect(e.message).toMatch(msg);
    });
  }
  it("bounds the stack and the memo", () => {
    const deep = cat(PROTO2, "N".repeat(100), STOP);
    expect(perceiverError(() => unpickle(deep, { resolveGlobal: none, maxStack: 50 })).message).toMatch(/stack deeper than 50/);
    const memo = cat(PROTO2, "N", "q\x00q\x01q\x02q\x03", STOP);
    expect(perceiverError(() => unpickle(memo, { resolveGlobal: none, maxMemo: 3 })).message).toMatch(/memo larger than 3/);
  });
  it("NEWOBJ only on callables that allow it", () => {
    const resolveGlobal = (): PyValue => new PyCallable("m.C", () => "built");
    const e = perceiverError(() => unpickle(cat(PROTO2, "cm\nC\n)", [0x81], STOP), { resolveGlobal }));
    expect(e.message).toMatch(/NEWOBJ on m\.C is not allowed/);
  });
});
