/**
 * `perceiver train-head` in-process on 2 classes x 3 images of the synthetic set (tiny-conv): the epoch lines,
 * OUTDIR as a checkpoint `classify` loads, the resumable latent cache, the same bytes on a rerun, bad input.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../src/cli/main.js";
import { readImageFolder } from "../src/cli/dataset/image-folder.js";
import { imageFilesUnder } from "../src/cli/dataset/inputs.js";
import { fixture } from "./helpers/golden.js";

const TINY = fixture("tiny-conv");
let dir = "";

/** runs main() capturing stdout and stderr */
async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "", stderr = "";
  const log = vi.spyOn(console, "log").mockImplementation((...a) => void (stdout += `${a.join(" ")}\n`));
  const err = vi.spyOn(console, "error").mockImplementation((...a) => void (stderr += `${a.join(" ")}\n`));
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    log.mockRestore();
    err.mockRestore();
    write.mockRestore();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "train-head-cli-"));
  for (const c of ["green", "red"]) {
    await mkdir(join(dir, "data", c, "nested"), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const name = `${c}_${String(i).padStart(2, "0")}.png`;
      await copyFile(fixture("train", "data", "train", c, name), join(dir, "data", c, i === 2 ? `nested/${name}` : name));
    }
    await writeFile(join(dir, "data", c, "notes.txt"), "not an image");
  }
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("perceiver train-head", () => {
  it("trains, writes a checkpoint classify loads, resumes from its cache and reproduces the same bytes", async () => {
    const out = join(dir, "out");
    const args = ["train-head", join(dir, "data"), "--model", TINY, "--out", out, "--epochs", "3", "--val-split", "0.34", "--seed", "5"];
    const r = await run(args);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^epoch 1\/3 {2}train loss \d+\.\d{4} {2}train acc +\d+\.\d% {2}val loss \d+\.\d{4} {2}val acc +\d+\.\d% \(\d\/2\)/);
    expect(r.stderr).toMatch(/6 images in 2 classes \(green, red\)/);
    expect(r.stderr).toMatch(/training latents 6\/6 \(0 cached, [\d.]+ s\/image\)/);
    expect((await readdir(out)).sort()).toEqual(["config.json", "latents-cache", "model.safetensors", "train_log.json"]);
    const cfg = JSON.parse(await readFile(join(out, "config.json"), "utf8"));
    expect(cfg.id2label).toEqual({ 0: "green", 1: "red" });
    const log = JSON.parse(await readFile(join(out, "train_log.json"), "utf8"));
    expect(log.train).toHaveLength(4);
    expect(log.val).toHaveLength(2);
    expect(new Set(log.val.map((v: { label: number }) => v.label))).toEqual(new Set([0, 1])); // stratified
    const bytes = await readFile(join(out, "model.safetensors"));

    const again = await run(args);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/training latents 6\/6 \(6 cached\)/);
    expect(again.stdout.replace(/ {2}[\d.]+ s/g, "")).toBe(r.stdout.replace(/ {2}[\d.]+ s/g, "")); // same losses (times differ)
    expect((await readFile(join(out, "model.safetensors"))).equals(bytes)).toBe(true);

    // a run killed during extraction: the images already cached are not recomputed
    const cacheDir = join(out, "latents-cache", (await readdir(join(out, "latents-cache")))[0]);
    const cached = (await readdir(cacheDir)).filter((f) => f.endsWith(".safetensors"));
    expect(cached).toHaveLength(6);
    await rm(join(cacheDir, cached[0]));
    const resumed = await run(args);
    expect(resumed.stderr).toMatch(/training latents 6\/6 \(5 cached, [\d.]+ s\/image\)/);
    expect((await readFile(join(out, "model.safetensors"))).equals(bytes)).toBe(true);

    // a cache file cut short (a crash mid-write cannot leave one, but a full disk or an edit could): recomputed
    const cachedNow = (await readdir(cacheDir)).filter((f) => f.endsWith(".safetensors"));
    await writeFile(join(cacheDir, cachedNow[1]), (await readFile(join(cacheDir, cachedNow[1]))).subarray(0, 100));
    const repaired = await run(args);
    expect(repaired.stderr).toMatch(/training latents 6\/6 \(5 cached, [\d.]+ s\/image\)/);
    expect((await readFile(join(out, "model.safetensors"))).equals(bytes)).toBe(true);

    const c = await run(["classify", "--model", out, fixture("train", "data", "test", "red", "red_00.png"), "--top-k", "2"]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/red|green/);
  }, 120_000);

  it("a separate --val folder, and bad input as clear errors", async () => {
    const noClasses = join(dir, "flat");
    await mkdir(noClasses, { recursive: true });
    await copyFile(fixture("train", "data", "train", "red", "red_00.png"), join(noClasses, "a.png"));
    let r = await run(["train-head", noClasses, "--out", join(dir, "o1")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has no class folders/);
    r = await run(["train-head", join(dir, "missing"), "--out", join(dir, "o1")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no such folder/);
    r = await run(["train-head", join(dir, "data")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out <dir> is required/);
    r = await run(["train-head", join(dir, "data"), "--out", join(dir, "o1"), "--val-split", "1.5"]);
    expect(r.code).toBe(2);
    r = await run(["train-head", join(dir, "data"), "--out", join(dir, "o1"), "--lr", "abc"]);
    expect(r.code).toBe(2);

    const empty = join(dir, "empty");
    await mkdir(join(empty, "a"), { recursive: true });
    await mkdir(join(empty, "b"), { recursive: true });
    await copyFile(fixture("train", "data", "train", "red", "red_00.png"), join(empty, "a", "x.png"));
    await expect(readImageFolder(empty)).rejects.toThrow(/class folders without images.*: b/);
    const val = join(dir, "val");
    await mkdir(join(val, "blue"), { recursive: true });
    await copyFile(fixture("train", "data", "train", "blue", "blue_00.png"), join(val, "blue", "x.png"));
    r = await run(["train-head", join(dir, "data"), "--out", join(dir, "o1"), "--val", val, "--model", TINY]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/classes not in the training set: blue/);

    // a corrupt image names the file
    const bad = join(dir, "bad");
    for (const c of ["a", "b"]) {
      await mkdir(join(bad, c), { recursive: true });
      await copyFile(fixture("train", "data", "train", "red", "red_00.png"), join(bad, c, "ok.png"));
    }
    await writeFile(join(bad, "b", "zz.png"), Buffer.from("\x89PNG\r\n\x1a\n garbage"));
    r = await run(["train-head", bad, "--out", join(dir, "o2"), "--model", TINY, "--epochs", "1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/zz\.png: .*finished images stay cached/);
  }, 120_000);
});

describe("readImageFolder (the ImageFolder reader of train-head and eval)", () => {
  it("finds images as a directory input does: by extension in any case or by content, hidden entries and other files skipped, code-unit order", async () => {
    const root = join(dir, "rules");
    const png = fixture("train", "data", "train", "red", "red_00.png");
    for (const d of ["a", "b/sub", ".hidden"]) await mkdir(join(root, d), { recursive: true });
    await copyFile(png, join(root, "a", "UPPER.PNG"));
    await copyFile(png, join(root, "a", "no-extension")); // PNG bytes without a name that says so
    await copyFile(png, join(root, "a", ".dot.png"));
    await writeFile(join(root, "a", "notes.txt"), "not an image");
    await copyFile(png, join(root, "b", "y.png"));
    await copyFile(png, join(root, "b", "sub", "z.png"));
    await copyFile(png, join(root, ".hidden", "h.png"));
    await copyFile(png, join(root, "top.png")); // directly in the root: no class
    const folder = await readImageFolder(root);
    expect(folder.classes).toEqual(["a", "b"]);
    expect(folder.images.map((im) => [im.relPath, im.label])).toEqual([["a/UPPER.PNG", 0], ["a/no-extension", 0], ["b/sub/z.png", 1], ["b/y.png", 1]]);
    expect(folder.images[0].path).toBe(join(root, "a", "UPPER.PNG"));
  });

  it("the walk's image cap (MAX_DATASET_IMAGES for a dataset) is an INPUT_INVALID error one image past it", async () => {
    expect(await imageFilesUnder(join(dir, "data"), { max: 6 })).toHaveLength(6);
    await expect(imageFilesUnder(join(dir, "data"), { max: 5 })).rejects.toMatchObject({ code: "INPUT_INVALID", message: expect.stringMatching(/more than 5 images/) });
  });
});

describe("trainDecoder input checks", () => {
  it("wrong latent sizes, labels out of range, non-finite latents and bad options are INPUT_INVALID", async () => {
    const { trainDecoder } = await import("../src/perceiver/train/train.js");
    const { parsePerceiverConfig } = await import("../src/perceiver/config.js");
    const config = parsePerceiverConfig(JSON.parse(await readFile(join(TINY, "config.json"), "utf8")));
    const ok = () => new Float32Array(16 * 64).map((_, i) => Math.sin(i));
    const model = { config };
    await expect(trainDecoder(model, [{ latents: new Float32Array(5), label: 0 }], { numLabels: 2 })).rejects.toMatchObject({ code: "INPUT_INVALID" });
    await expect(trainDecoder(model, [{ latents: ok(), label: 2 }], { numLabels: 2 })).rejects.toThrow(/label 2/);
    const nan = ok();
    nan[7] = NaN;
    await expect(trainDecoder(model, [{ latents: nan, label: 0 }], { numLabels: 2 })).rejects.toThrow(/non-finite latent value \(NaN\) at index 7/);
    await expect(trainDecoder(model, [{ latents: ok(), label: 0 }], { numLabels: 2, lr: -1 })).rejects.toThrow(/lr is invalid/);
    await expect(trainDecoder(model, [], { numLabels: 2 })).rejects.toThrow(/no training examples/);
    // progress and abort
    const seen: number[] = [];
    const ctl = new AbortController();
    const ex = Array.from({ length: 8 }, (_, i) => ({ latents: ok(), label: i % 2 }));
    await expect(trainDecoder(model, ex, {
      numLabels: 2, batchSize: 2, valSplit: 0, onProgress: (p) => { seen.push(p.done); if (p.done === 4) ctl.abort(new Error("stop")); }, signal: ctl.signal,
    })).rejects.toThrow(/stop/);
    expect(seen).toEqual([2, 4]);
  });
});
