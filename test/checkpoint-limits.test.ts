/**
 * The checkpoint cost model (docs/limits.md): a small hostile pytorch_model.bin or safetensors file cannot cost
 * gigabytes. Every input here is generated (test/helpers/torch-checkpoint.ts), none is committed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, truncateSync, readFileSync, symlinkSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { writeSafetensors } from "../src/io/checkpoint/safetensors.js";
import { readTorchBin } from "../src/io/checkpoint/torch-bin.js";
import { crc32 } from "../src/io/crc32.js";
import { deflateRepeat, rawZip, stateDictPickle, torchArchive } from "./helpers/torch-checkpoint.js";

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), "perceiver-limits-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function perceiverError(f: () => unknown): PerceiverError {
  try {
    f();
  } catch (e) {
    if (e instanceof PerceiverError) return e;
    throw e;
  }
  throw new Error("expected a PerceiverError, got no error");
}

async function perceiverErrorAsync(f: () => Promise<unknown>): Promise<PerceiverError> {
  try {
    await f();
  } catch (e) {
    if (e instanceof PerceiverError) return e;
    throw e;
  }
  throw new Error("expected a PerceiverError, got no error");
}

describe("pytorch_model.bin: views cannot amplify a small file", () => {
  it("64 stride-0 broadcasts of 32 MiB each over one float (2 GiB in all) are refused before any is materialized", () => {
    const tensors: Record<string, { storage: string; shape: number[]; stride: number[] }> = {};
    for (let i = 0; i < 64; i++) tensors[`layer.${i}.weight`] = { storage: "0", shape: [2048, 4096], stride: [0, 0] };
    const bytes = torchArchive(tensors, { "0": { numel: 1 } });
    expect(bytes.length).toBeLessThan(16 * 1024);
    const e = perceiverError(() => readTorchBin(bytes));
    expect(e.code).toBe("MEMORY_LIMIT");
    expect(e.message).toMatch(/64 tensors hold 2147483648 bytes but their storages only 4/);
  });

  it("100 overlapping views of one 1 MiB storage (100 MiB) are refused; two names on one storage (tied weights) load", () => {
    const storages = { "0": { numel: 256 * 1024 } };
    const views: Record<string, { storage: string; shape: number[] }> = {};
    for (let i = 0; i < 100; i++) views[`v${i}`] = { storage: "0", shape: [256 * 1024] };
    expect(perceiverError(() => readTorchBin(torchArchive(views, storages))).code).toBe("MEMORY_LIMIT");
    const tied = readTorchBin(torchArchive({ "emb.weight": { storage: "0", shape: [256, 1024] }, "head.weight": { storage: "0", shape: [256, 1024] } }, storages));
    expect(tied.getFloat32("head.weight").length).toBe(256 * 1024);
    // the cap is an option: raised deliberately, the views load
    const sd = readTorchBin(torchArchive(views, storages), { maxTotalTensorBytes: 101 * MiB });
    expect(sd.getFloat32("v99").length).toBe(256 * 1024);
  });
});

describe("pytorch_model.bin: storages are inflated lazily, with one cap per archive", () => {
  it("a tensor of one element on a deflated 8 MiB storage holds 4 bytes, not the whole inflated entry", () => {
    const bytes = torchArchive({ w: { storage: "0", shape: [1] } }, { "0": { numel: 2 * MiB, deflate: true } });
    expect(bytes.length).toBeLessThan(64 * 1024);
    for (const verifyCrc of [true, false]) {
      const w = readTorchBin(bytes, { verifyCrc }).getBytes("w");
      expect(w.length).toBe(4);
      expect(w.buffer.byteLength).toBe(4); // the storage buffer itself: only as far as the tensor reaches
    }
  });

  it("20 deflated 4 MiB storages in a 0.5 MB file: over the archive's inflate cap with CRC checks, cheap without", () => {
    const tensors: Record<string, { storage: string; shape: number[] }> = {};
    const storages: Record<string, { numel: number; deflate: boolean }> = {};
    for (let i = 0; i < 20; i++) {
      tensors[`t${i}`] = { storage: String(i), shape: [1] };
      storages[String(i)] = { numel: MiB, deflate: true };
    }
    const bytes = torchArchive(tensors, storages);
    expect(bytes.length).toBeLessThan(600 * 1024);
    const e = perceiverError(() => readTorchBin(bytes));
    expect(e.code).toBe("ZIP_INVALID");
    expect(e.message).toMatch(/would inflate 838861\d\d bytes, over the archive's cap of \d+ decompressed bytes/);
    const sd = readTorchBin(bytes, { verifyCrc: false }); // only the reached prefixes are inflated
    for (let i = 0; i < 20; i++) expect(sd.getFloat32(`t${i}`)[0]).toBe(0);
  });

  it("a deflated archive/byteorder of 512 MiB is a ZIP_INVALID error, not ERR_STRING_TOO_LONG", () => {
    const matches = 2080895; // 1 + 258 * matches = 536870911 bytes: past V8's longest string
    const n = 1 + 258 * matches;
    const chunk = new Uint8Array(64 * MiB).fill(0x6c);
    let crc = 0;
    for (let left = n; left > 0; left -= chunk.length) crc = crc32(chunk.subarray(0, Math.min(left, chunk.length)), crc);
    const storages = { "0": { numel: 1 } };
    const pkl = stateDictPickle({ w: { storage: "0", shape: [1] } }, storages);
    const zip = rawZip([
      { name: "archive/data.pkl", method: 0, data: pkl, crc: crc32(pkl), uncompressedSize: pkl.length },
      { name: "archive/byteorder", method: 8, data: deflateRepeat(0x6c, matches), crc, uncompressedSize: n },
      { name: "archive/data/0", method: 0, data: new Uint8Array(4), crc: crc32(new Uint8Array(4)), uncompressedSize: 4 },
    ]);
    const t0 = performance.now();
    const e = perceiverError(() => readTorchBin(zip));
    expect(e.code).toBe("ZIP_INVALID");
    expect(e.message).toMatch(/archive\/byteorder is 536870911 bytes/);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});

describe("pytorch_model.bin under a 512 MiB heap", () => {
  it("a pickle that builds millions of dicts ends in a typed error, not a V8 heap abort", () => {
    // PROTO 2, EMPTY_LIST, then (EMPTY_DICT, APPEND) x 4M: 8 MB of opcodes, over 1 GB of objects if all were built
    const n = 4_000_000;
    const pkl = new Uint8Array(3 + 2 * n + 1);
    pkl.set([0x80, 2, 0x5d]);
    for (let i = 0; i < n; i++) {
      pkl[3 + 2 * i] = 0x7d;
      pkl[4 + 2 * i] = 0x61;
    }
    pkl[pkl.length - 1] = 0x2e;
    const file = join(dir, "dicts.bin");
    writeFileSync(file, rawZip([{ name: "archive/data.pkl", method: 0, data: pkl, crc: crc32(pkl), uncompressedSize: pkl.length }]));
    const script = `import { readTorchBinFile } from ${JSON.stringify(join(import.meta.dirname, "../src/io/checkpoint/torch-bin-node.ts"))};
      readTorchBinFile(${JSON.stringify(file)}).then(() => console.log("loaded"), (e) => console.log(e.code + ": " + e.message));`;
    const r = spawnSync(process.execPath, ["--max-old-space-size=512", "--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8", timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^PICKLE_INVALID: .*more than 4000000 values \(maxObjects\)/);
  });
});

describe("safetensors files: the header is read and checked before the data", () => {
  it("a 3.9 GiB (sparse) file whose header describes 4 bytes is refused without reading it", async () => {
    const ok = writeSafetensors({ a: { dtype: "F32", shape: [1], data: new Float32Array([1]) } });
    const file = join(dir, "huge.safetensors");
    writeFileSync(file, ok);
    truncateSync(file, Math.floor(3.9 * 2 ** 30));
    const before = process.memoryUsage().arrayBuffers;
    const t0 = performance.now();
    const e = await perceiverErrorAsync(() => readSafetensorsFile(file));
    expect(e.code).toBe("SAFETENSORS_TRAILING_BYTES");
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    rmSync(file);
  });

  it("a 40 MB header of 3.3 million metadata keys ends in a typed error under a 160 MiB heap, not a V8 heap abort", () => {
    // {"__metadata__":{"000000":"","000001":"",...}}: 11 bytes per key, written straight into the file's buffer
    const n = 3_300_000;
    const head = Buffer.from('{"__metadata__":{');
    const len = head.length + 11 * n - 1 + 2;
    const out = Buffer.alloc(8 + len);
    out.writeBigUInt64LE(BigInt(len), 0);
    head.copy(out, 8);
    let o = 8 + head.length;
    for (let i = 0; i < n; i++) o += out.write(`${i > 0 ? "," : ""}"${i.toString(36).padStart(6, "0")}":""`, o, "latin1");
    out.write("}}", o, "latin1");
    const file = join(dir, "keys.safetensors");
    writeFileSync(file, out);
    const script = `import { readSafetensorsFile } from ${JSON.stringify(join(import.meta.dirname, "../src/io/checkpoint/safetensors-node.ts"))};
      readSafetensorsFile(${JSON.stringify(file)}).then(() => console.log("loaded"), (e) => console.log(e.code + ": " + e.message));`;
    const r = spawnSync(process.execPath, ["--max-old-space-size=160", "--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8", timeout: 60_000,
    });
    rmSync(file);
    expect(r.status, r.stderr.slice(0, 500)).toBe(0);
    expect(r.stdout).toMatch(/^SAFETENSORS_HEADER_TOO_LARGE: .*more than 1000000 JSON values/);
  }, 60_000);

  it("the file writer creates its temporary file exclusively: a planted symlink is refused, its target untouched", async () => {
    const out = join(dir, "out.safetensors");
    const victim = join(dir, "victim.txt");
    writeFileSync(victim, "precious");
    symlinkSync(victim, `${out}.tmp-${process.pid}`);
    const e = await perceiverErrorAsync(() => writeSafetensorsFile(out, { a: { dtype: "U8", shape: [1], data: new Uint8Array(1) } }));
    expect(e.code).toBe("SAFETENSORS_WRITE");
    expect(e.message).toMatch(/already exists \(or is a symlink\)/);
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(existsSync(out)).toBe(false);
    rmSync(`${out}.tmp-${process.pid}`);
    await writeSafetensorsFile(out, { a: { dtype: "U8", shape: [1], data: new Uint8Array([7]) } });
    expect((await readSafetensorsFile(out)).getFloat32("a")[0]).toBe(7);
  });
});
