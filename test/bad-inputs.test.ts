/**
 * The hostile-input corpus test/fixtures/bad/ (written by scripts/make-bad-fixtures.ts): every file goes through
 * the public entry point named in expected.json and must fail with the expected PerceiverError code and a message
 * that names the file and contains the expected fragment (a field, a tensor, a size); the controls must succeed.
 * Then the command lines of expected.json "cli" run through the CLI's main().
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli/main.js";
import { PerceiverError } from "../src/errors.js";
import { decodeImage } from "../src/io/image/decode.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { readSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { readSafetensors } from "../src/io/checkpoint/safetensors.js";
import { readTorchBinFile } from "../src/io/checkpoint/torch-bin-node.js";
import { preprocess } from "../src/io/image/image-processor.js";
import { readConfigFile, readImageProcessorConfigFile } from "../src/perceiver/load.js";
import { parsePerceiverConfig, type PerceiverConfig } from "../src/perceiver/config.js";
import { availableMemoryBytes, checkForwardMemory, estimateForwardMemory, weightCount } from "../src/perceiver/memory.js";
import { PerceiverForImageClassification } from "../src/perceiver/model.js";
import { expectedWeights } from "../src/perceiver/weights.js";
import { fixture } from "./helpers/golden.js";

const BAD = fixture("bad");
interface Expectation {
  via: "safetensors" | "fromPretrained" | "image" | "preprocess" | "config" | "preprocessorConfig" | "torchBin";
  code: string | null;
  message: string;
  why: string;
}
const spec = JSON.parse(readFileSync(join(BAD, "expected.json"), "utf8")) as {
  files: Record<string, Expectation>;
  cli: { args: string[]; exit: number; message: string; absent?: string; why: string }[];
};

/** Resolves to the PerceiverError thrown (anything else fails the test), or null on success. */
async function outcome(f: () => unknown): Promise<PerceiverError | null> {
  try {
    await f();
    return null;
  } catch (e) {
    if (!(e instanceof PerceiverError)) throw new Error(`not a PerceiverError: ${String(e)}`, { cause: e });
    return e;
  }
}

function expectFailure(e: PerceiverError | null, x: Expectation, names: string): void {
  if (x.code === null) {
    expect(e, `expected success, got ${e?.code}: ${e?.message}`).toBeNull();
    return;
  }
  expect(e, `expected ${x.code}`).not.toBeNull();
  expect(e!.code, e!.message).toBe(x.code);
  expect(e!.message).toContain(x.message);
  if (names) expect(e!.message).toContain(names);
}

const entries = Object.entries(spec.files);

describe("the corpus", () => {
  it("covers every kind of input, and every file listed exists", () => {
    const kinds = new Set(entries.map(([, x]) => x.via));
    expect([...kinds].sort()).toEqual(["config", "fromPretrained", "image", "preprocess", "preprocessorConfig", "safetensors", "torchBin"]);
    expect(entries.length).toBeGreaterThanOrEqual(80);
    for (const [rel] of entries) expect(existsSync(join(BAD, rel)), rel).toBe(true);
  });
});

describe.each(entries.filter(([, x]) => x.via === "safetensors"))("safetensors/%s", (rel, x) => {
  const path = join(BAD, rel);
  it(`${x.code ?? "reads"}: ${x.why}`, async () => {
    // the file reader (which checks the header length against the file size first) and the in-memory reader agree
    expectFailure(await outcome(() => readSafetensorsFile(path)), x, basename(path));
    expectFailure(await outcome(() => readSafetensors(readFileSync(path), { source: "buffer.safetensors" })), x, "buffer.safetensors");
  });
});

describe.each(entries.filter(([, x]) => x.via === "fromPretrained"))("%s", (rel, x) => {
  it(`${x.code ?? "loads"}: ${x.why}`, async () => {
    const e = await outcome(() => PerceiverForImageClassification.fromPretrained(join(BAD, rel)));
    // checkpoint errors name the weights file, config errors the config file, missing files the folder
    expectFailure(e, x, x.code?.startsWith("CHECKPOINT_") && x.code !== "CHECKPOINT_NOT_FOUND" ? "model.safetensors" : rel.split("/").pop()!);
  });
});

describe.each(entries.filter(([, x]) => x.via === "image" || x.via === "preprocess"))("%s", (rel, x) => {
  const path = join(BAD, rel);
  it(`${x.code}: ${x.why}`, async () => {
    if (x.via === "image") {
      expectFailure(await outcome(() => loadImageFile(path)), x, basename(path));
      expectFailure(await outcome(() => decodeImage(new Uint8Array(readFileSync(path)), { source: "bytes" })), x, "bytes");
    } else {
      const img = await loadImageFile(path);
      expectFailure(await outcome(() => preprocess(img)), x, "");
    }
  });
});

describe.each(entries.filter(([, x]) => x.via === "config" || x.via === "preprocessorConfig"))("%s", (rel, x) => {
  const path = join(BAD, rel);
  it(`${x.code}: ${x.why}`, async () => {
    const read = x.via === "config" ? () => readConfigFile(path) : () => readImageProcessorConfigFile(path);
    expectFailure(await outcome(read), x, basename(path));
  });
});

describe.each(entries.filter(([, x]) => x.via === "torchBin"))("%s", (rel, x) => {
  it(`${x.code ?? "reads"}: ${x.why}`, async () => {
    expectFailure(await outcome(() => readTorchBinFile(join(BAD, rel))), x, basename(rel));
  });
});

describe("the command line", () => {
  const out = mkdtempSync(join(tmpdir(), "perceiver-bad-cli-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each(spec.cli.map((c) => [c.why, c] as const))("%s", async (_why, c) => {
    const args = c.args.map((a) => a.replace("{bad}", BAD).replace("{fixtures}", fixture()).replace("{out}", out));
    const stdout: string[] = [];
    const stderr: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void stdout.push(a.join(" ")));
    const err = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void stderr.push(a.join(" ")));
    // the dataset loop writes whole lines to the streams (records, per-image errors) instead of console.*
    const lines = (into: string[]) => (chunk: string | Uint8Array): boolean => {
      into.push(...String(chunk).replace(/\n$/, "").split("\n"));
      return true;
    };
    const outw = vi.spyOn(process.stdout, "write").mockImplementation(lines(stdout) as typeof process.stdout.write);
    const errw = vi.spyOn(process.stderr, "write").mockImplementation(lines(stderr) as typeof process.stderr.write);
    let code: number;
    try {
      code = await main(args);
    } finally {
      log.mockRestore();
      err.mockRestore();
      outw.mockRestore();
      errw.mockRestore();
    }
    const text = c.exit === 0 ? stdout.join("\n") : stderr.join("\n");
    expect(code, stderr.join("\n")).toBe(c.exit);
    expect(text).toContain(c.message);
    if (c.absent !== undefined) expect(stdout.join("\n") + stderr.join("\n")).not.toContain(c.absent);
    if (c.exit !== 0) {
      expect(stderr).toHaveLength(1); // one message
      expect(stderr[0]).toMatch(/^perceiver: error: /); // a PerceiverError, not an internal error
      expect(stderr[0]).not.toMatch(/\n\s+at /); // no stack trace
    }
  });
});

describe("limits checked before allocation", () => {
  const micro = JSON.parse(readFileSync(join(BAD, "checkpoints", "ok", "config.json"), "utf8"));
  const full = JSON.parse(readFileSync(fixture("full", "config.json"), "utf8"));

  it("weightCount is the number of elements the checkpoints hold, whether or not the heads divide the channels", () => {
    // the tiny fixtures: every element of model.safetensors, read from its header
    for (const d of ["tiny-conv", "tiny-conv-heads", "tiny-fourier", "tiny-learned"]) {
      const c = parsePerceiverConfig(JSON.parse(readFileSync(fixture(d, "config.json"), "utf8")));
      const file = readFileSync(fixture(d, "model.safetensors"));
      const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString("utf8")) as Record<string, { shape?: number[] }>;
      const stored = Object.entries(header).filter(([k]) => k !== "__metadata__").reduce((n, [, t]) => n + t.shape!.reduce((p, x) => p * x, 1), 0);
      const count = weightCount(c);
      expect(count.total, d).toBe(stored);
      expect(count.parts.reduce((n, p) => n + p.params, 0)).toBe(count.total);
    }
    // the full conv model: HF's count for deepmind/vision-perceiver-conv
    expect(weightCount(parsePerceiverConfig(full)).total).toBe(48_646_651);
    // a config whose cross-attention heads do not divide the conv model's 322 channels parses (the model refuses it
    // when built) and is still counted: the same total as with one head, which adds no weights
    const conv = { ...micro, architectures: ["PerceiverForImageClassificationConvProcessing"], qk_channels: null };
    const oddHeads = parsePerceiverConfig({ ...conv, num_cross_attention_heads: 4 });
    const oneHead = parsePerceiverConfig({ ...conv, num_cross_attention_heads: 1 });
    expect(weightCount(oddHeads).total).toBe(weightCount(oneHead).total);
    expect(() => expectedWeights(oddHeads)).toThrow(/qk_channels \(322\) must be divisible by num_heads \(4/);
  });

  it("the weight cap is overridable and names the field that dominates", async () => {
    expect(() => parsePerceiverConfig(full)).not.toThrow();
    const e = await outcome(() => parsePerceiverConfig(full, "full.json", { maxWeightBytes: 100e6 }));
    expect(e?.code).toBe("CONFIG_INVALID");
    expect(e?.message).toMatch(/^full\.json: "num_self_attends_per_block" makes the model too large/);
    expect(e?.message).toContain("(0.2 GB as float32), over the limit of 0.1 GB");
    const labels = await outcome(() => parsePerceiverConfig({ ...micro, id2label: undefined, num_labels: 60000 }, "c.json", { maxWeightBytes: 2e5 }));
    expect(labels?.message).toContain('"num_labels" makes the model too large');
  });

  it("a forward pass that cannot fit is refused: over the memory available, or over the typed-array limit", async () => {
    const cfg = parsePerceiverConfig(full);
    const one = estimateForwardMemory(cfg, { batch: 1, height: 224, width: 224 });
    const two = estimateForwardMemory(cfg, { batch: 2, height: 224, width: 224 });
    expect(one.tokens).toBe(55 * 55);
    // at least the preprocessor output and one image's keys and values, [T, 322] each
    expect(one.bytes).toBeGreaterThan(2 * 4 * 3025 * 322);
    expect(two.bytes).toBeGreaterThan(one.bytes);
    expect(checkForwardMemory(cfg, { batch: 1, height: 224, width: 224 }, { availableBytes: one.bytes }).bytes).toBe(one.bytes);
    const over = await outcome(() => checkForwardMemory(cfg, { batch: 2, height: 224, width: 224 }, { availableBytes: one.bytes, hint: "use a smaller --batch-size" }));
    expect(over?.code).toBe("MEMORY_LIMIT");
    expect(over?.message).toMatch(/a batch of 2 images of 224x224 \(3025 input tokens each\) needs about .* GB of activations, but only .* GB of memory is available; use a smaller --batch-size/);
    // a buffer no machine can hold is refused even when the available memory is unknown
    const fourier = parsePerceiverConfig({ ...full, architectures: ["PerceiverForImageClassificationFourier"] });
    const huge = await outcome(() => checkForwardMemory(fourier, { batch: 256, height: 4000, width: 4000 }, { availableBytes: null }));
    expect(huge?.code).toBe("MEMORY_LIMIT");
    expect(huge?.message).toContain("typed array");
    for (const bad of [0, -1, 1.5, NaN]) {
      expect((await outcome(() => checkForwardMemory(cfg, { batch: bad, height: 224, width: 224 })))?.code).toBe("INPUT_INVALID");
    }
    expect(availableMemoryBytes()).toBeGreaterThan(0); // Node: known
  });
});
