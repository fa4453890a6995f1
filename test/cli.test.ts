/** The perceiver CLI on the tiny model: help, errors, classify (folder, .bin, hub), --json, convert. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerceiverForImageClassification } from "../src/index.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { readSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { readConfigFile } from "../src/perceiver/load.js";
import { runCli } from "./helpers/cli.js";
import { fakeCommit, startFakeHub, type FakeHub } from "./helpers/fake-hub.js";
import { fixture } from "./helpers/golden.js";

const TINY = fixture("tiny-conv");
const CAT = fixture("images", "chelsea.png");

async function libraryLogits(modelSpec: string, image: string, config?: Awaited<ReturnType<typeof readConfigFile>>): Promise<number[]> {
  const model = await PerceiverForImageClassification.fromPretrained(modelSpec, config ? { config } : {});
  const { logits } = await model.forward(preprocessBatch([await loadImageFile(image)]));
  return Array.from(logits.data);
}

describe("perceiver CLI", () => {
  it("--help, --version, classify --help", async () => {
    const h = await runCli(["--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/Usage: perceiver <command>/);
    const v = await runCli(["--version"]);
    expect(v.stdout.trim()).toBe(JSON.parse(await readFile(fixture("..", "..", "package.json"), "utf8")).version);
    const c = await runCli(["classify", "--help"]);
    expect(c.stdout).toMatch(/--top-k <n>/);
    expect(c.stdout).toMatch(/--revision <rev>/);
  });

  it("usage errors exit 2 with one line and no stack trace", async () => {
    for (const args of [
      ["classify"], ["classify", "x.png", "--top-k", "0"], ["bogus"], ["classify", "--nope"],
      ["classify", "x.png", "--threads", "0"], ["classify", "x.png", "--threads", "two"], ["embed", "x.png", "--backend", "gpu"],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^perceiver: error: /);
    }
  });

  it("input errors exit 1 with a message naming the problem", async () => {
    const missing = await runCli(["classify", "no-such.png", "--model", TINY]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no-such\.png/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
    const notImage = await runCli(["classify", join(TINY, "config.json"), "--model", TINY]);
    expect(notImage.code).toBe(1);
    expect(notImage.stderr).toMatch(/config\.json/);
    const badModel = await runCli(["classify", CAT, "--model", "./nowhere"]);
    expect(badModel.code).toBe(1);
    expect(badModel.stderr).toMatch(/nowhere/);
  });

  it("prints a top-k table and JSON whose logits equal the library's", async () => {
    const table = await runCli(["classify", CAT, "--model", TINY, "--top-k", "3"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/chelsea\.png\s+\(\d+\.\d\d s\)$/); // alone: no batch share
    expect(lines).toHaveLength(5); // file line, header, 3 rows
    // the same image under two names (one path given twice would be taken once): a batch of 2
    const catRelative = "test/fixtures/images/chelsea.png";
    const json = await runCli(["classify", CAT, catRelative, "--model", TINY, "--json", "--logits", "--top-k", "2", "--batch-size", "2"]);
    expect(json.code).toBe(0);
    const objs = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(objs).toHaveLength(2);
    const ref = await libraryLogits(TINY, CAT);
    expect(objs.map((o) => o.file)).toEqual([CAT, catRelative]);
    for (const o of objs) {
      expect(o.batch).toBe(2);
      expect(o.top_k).toHaveLength(2);
      expect(o.top_k[0]).toEqual({ index: expect.any(Number), label: `class_${o.top_k[0].index}`, score: expect.any(Number) });
      expect(o.logits).toEqual(ref);
      expect(o.top_k[0].index).toBe(ref.indexOf(Math.max(...ref)));
    }
    // --threads 1 gives the same bits (threads split products by columns); --backend ts is within 1e-5
    const one = await runCli(["classify", CAT, "--model", TINY, "--json", "--logits", "--threads", "1"]);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout).logits).toEqual(ref);
    const ts = await runCli(["classify", CAT, "--model", TINY, "--json", "--logits", "--backend", "ts"]);
    expect(ts.code, ts.stderr).toBe(0);
    JSON.parse(ts.stdout).logits.forEach((v: number, i: number) => expect(Math.abs(v - ref[i])).toBeLessThanOrEqual(1e-5));
    expect((await runCli(["classify", "--help"])).stdout).toMatch(/--threads <n>/);
  });

  it("--backend reference (the plain loops) agrees within 1e-5; an unknown PERCEIVER_BACKEND is an error, not a fallback", async () => {
    const ref = await libraryLogits(TINY, CAT);
    const plain = await runCli(["classify", CAT, "--model", TINY, "--json", "--logits", "--backend", "reference"]);
    expect(plain.code, plain.stderr).toBe(0);
    JSON.parse(plain.stdout).logits.forEach((v: number, i: number) => expect(Math.abs(v - ref[i])).toBeLessThanOrEqual(1e-5));
    const bad = await runCli(["classify", CAT, "--model", TINY], { env: { PERCEIVER_BACKEND: "gpu" } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/PERCEIVER_BACKEND: expected one of "wasm", "ts", "reference", got "gpu"/);
  }, 120_000);

  it("turns a photo upright by its EXIF orientation, unless --ignore-exif", async () => {
    const photo = fixture("images-extra", "orient_6.png"); // stored 23x11, EXIF orientation 6 (90° clockwise)
    const model = await PerceiverForImageClassification.fromPretrained(TINY);
    const logitsOf = async (exifOrientation: boolean) =>
      Array.from((await model.forward(preprocessBatch([await loadImageFile(photo, { exifOrientation })]))).logits.data);
    const upright = await logitsOf(true), stored = await logitsOf(false);
    expect(upright).not.toEqual(stored);
    const r = await runCli(["classify", photo, "--model", TINY, "--json", "--logits"]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).logits).toEqual(upright);
    const kept = await runCli(["classify", photo, "--model", TINY, "--json", "--logits", "--ignore-exif"]);
    expect(kept.code, kept.stderr).toBe(0);
    expect(JSON.parse(kept.stdout).logits).toEqual(stored);
    for (const cmd of ["classify", "embed", "attention-map"]) expect((await runCli([cmd, "--help"])).stdout).toContain("--ignore-exif");
  });
});

describe("pytorch_model.bin", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "perceiver-convert-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("fromPretrained on a .bin gives the same logits as the safetensors checkpoint", async () => {
    const config = await readConfigFile(join(TINY, "config.json"));
    const ref = await libraryLogits(TINY, CAT);
    for (const bin of ["tiny-conv.pytorch_model.bin", "tiny-conv.state_dict.bin"]) {
      expect(await libraryLogits(fixture("pickle", bin), CAT, config)).toEqual(ref);
    }
  });

  it("perceiver convert writes a safetensors file with identical tensors and logits", async () => {
    const out = join(dir, "model.safetensors");
    const r = await runCli(["convert", fixture("pickle", "tiny-conv.pytorch_model.bin"), out]);
    expect(r.code, r.stderr).toBe(0);
    const a = await readSafetensorsFile(out);
    const b = await readSafetensorsFile(join(TINY, "model.safetensors"));
    expect(a.names().sort()).toEqual(b.names().sort());
    for (const n of b.names()) {
      expect(a.info(n)).toEqual(b.info(n));
      expect(Buffer.from(a.getBytes(n)).equals(Buffer.from(b.getBytes(n))), n).toBe(true);
    }
    const config = await readConfigFile(join(TINY, "config.json"));
    expect(await libraryLogits(out, CAT, config)).toEqual(await libraryLogits(TINY, CAT));
  });

  it("convert refuses a hostile pickle without running it", async () => {
    const r = await runCli(["convert", fixture("pickle", "os-system-global.bin"), join(dir, "x.safetensors")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/os\.system/);
  });
});

describe("classify from a local hub", () => {
  let hub: FakeHub;
  let cache: string;
  const main = fakeCommit("main");
  const pr = fakeCommit("pr1");
  beforeAll(async () => {
    cache = await mkdtemp(join(tmpdir(), "perceiver-hub-cache-"));
    const config = await readFile(join(TINY, "config.json"));
    const pre = await readFile(fixture("images", "preprocessor_config.json"));
    hub = await startFakeHub({
      repos: {
        "deepmind/tiny-conv": {
          commits: {
            [main]: { files: { "config.json": config, "preprocessor_config.json": pre, "pytorch_model.bin": await readFile(fixture("pickle", "tiny-conv.pytorch_model.bin")) } },
            [pr]: { files: { "config.json": config, "preprocessor_config.json": pre, "model.safetensors": await readFile(join(TINY, "model.safetensors")) } },
          },
          refs: { main, "refs/pr/1": pr },
        },
      },
    });
  });
  afterAll(async () => {
    await hub?.close();
    await rm(cache, { recursive: true, force: true });
  });

  it("downloads into the huggingface_hub cache, then works offline", async () => {
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache };
    const ref = await libraryLogits(TINY, CAT);
    for (const rev of ["main", "refs/pr/1"]) {
      const r = await runCli(["classify", CAT, "--model", "deepmind/tiny-conv", "--revision", rev, "--json", "--logits"], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).logits).toEqual(ref);
    }
    const snap = join(cache, "models--deepmind--tiny-conv", "snapshots");
    await expect(readFile(join(snap, main, "pytorch_model.bin"))).resolves.toBeTruthy();
    await expect(readFile(join(snap, pr, "model.safetensors"))).resolves.toBeTruthy();
    hub.clearRequests();
    const offline = await runCli(["classify", CAT, "--model", "deepmind/tiny-conv", "--json", "--logits"], { env: { ...env, HF_HUB_OFFLINE: "1" } });
    expect(offline.code, offline.stderr).toBe(0);
    expect(JSON.parse(offline.stdout).logits).toEqual(ref);
    expect(hub.requests).toHaveLength(0);
  });

  it("explains an unreachable hub", async () => {
    const r = await runCli(["classify", CAT, "--model", "deepmind/other"], { env: { HF_ENDPOINT: "http://127.0.0.1:9", HF_HUB_CACHE: cache } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/could not be reached|unreachable|connect/i);
    expect(r.stderr).toMatch(/--model <folder>/);
  });
});

describe("README example", () => {
  it("examples/classify.ts runs against the built package and agrees with the library", async () => {
    const { spawnSync } = await import("node:child_process");
    const r = spawnSync(process.execPath, ["--import", "tsx", "examples/classify.ts", TINY, CAT], { cwd: fixture("..", ".."), encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(5);
    const ref = await libraryLogits(TINY, CAT);
    const best = ref.indexOf(Math.max(...ref));
    expect(lines[0]).toMatch(new RegExp(`^\\d\\.\\d{4}  class_${best}$`));
  });
});
