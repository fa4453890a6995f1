/** `perceiver embed` on the tiny model: JSON and text output equal the library's extractFeatures. */
import { describe, expect, it } from "vitest";
import { PerceiverForImageClassification } from "../src/index.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { runCli } from "./helpers/cli.js";
import { expectClose, fixture } from "./helpers/golden.js";

const TINY = fixture("tiny-conv");
const CAT = fixture("..", "..", "samples", "cat.png");
const ASTRONAUT = fixture("images", "astronaut.png");
const COFFEE = fixture("images", "coffee.png");

describe("perceiver embed", async () => {
  const model = await PerceiverForImageClassification.fromPretrained(TINY);
  const D = model.config.dLatents;
  const N = model.config.numLatents;
  const files = [CAT, ASTRONAUT, COFFEE];
  const images = await Promise.all(files.map((f) => loadImageFile(f)));
  // the CLI's batches for --batch-size 2: [cat, astronaut], [coffee]
  const f01 = await model.extractFeatures(preprocessBatch(images.slice(0, 2)));
  const f2 = await model.extractFeatures(preprocessBatch(images.slice(2)));
  const pooled = [f01.pooled.data.subarray(0, D), f01.pooled.data.subarray(D, 2 * D), f2.pooled.data];
  const latents = [f01.latents.data.subarray(0, N * D), f01.latents.data.subarray(N * D), f2.latents.data];

  const [json, text, withLatents] = await Promise.all([
    runCli(["embed", ...files, "--model", TINY, "--json", "--batch-size", "2", "--quiet"]),
    runCli(["embed", CAT, "--model", TINY, "--quiet"]),
    runCli(["embed", ASTRONAUT, "--model", TINY, "--json", "--latents", "--quiet"]),
  ]);

  it("--json prints {file, dim, pooled} per image, pooled equal to extractFeatures", () => {
    expect(json.code, json.stderr).toBe(0);
    const objs = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(objs).toHaveLength(3);
    objs.forEach((o, i) => {
      expect(Object.keys(o)).toEqual(["file", "dim", "pooled"]);
      expect(o.file).toBe(files[i]);
      expect(o.dim).toBe(D);
      expect(o.dim).toBe(64); // the tiny config's d_latents
      expect(o.pooled).toEqual(Array.from(pooled[i]));
    });
    // different images, different features
    expect(objs[0].pooled).not.toEqual(objs[1].pooled);
  });

  it("batching does not change the features (within 1e-6)", async () => {
    const alone = await model.extractFeatures(preprocessBatch([images[1]]));
    expectClose("astronaut alone vs in a batch of 2", alone.pooled.data, pooled[1], 1e-6, 1e-5);
  });

  it("--latents adds the [num_latents][d_latents] latents, whose mean is pooled", () => {
    expect(withLatents.code, withLatents.stderr).toBe(0);
    const o = JSON.parse(withLatents.stdout.trim());
    expect(o.latents).toHaveLength(N);
    expect(o.latents.every((row: number[]) => row.length === D)).toBe(true);
    expect(o.latents.flat()).toEqual(Array.from(latents[1]));
    const mean = Array.from({ length: D }, (_, d) => o.latents.reduce((s: number, row: number[]) => s + row[d], 0) / N);
    expectClose("mean of latents vs pooled", mean, o.pooled, 1e-6, 1e-5);
  });

  it("the text summary shows dim, L2 norm and the first 8 values", () => {
    expect(text.code, text.stderr).toBe(0);
    const line = text.stdout.trim();
    const norm = Math.sqrt(pooled[0].reduce((s, v) => s + v * v, 0));
    expect(line).toContain(`${CAT}  dim 64  L2 norm ${norm.toFixed(4)}  [`);
    const shown = line.slice(line.indexOf("[") + 1, line.indexOf("]")).split(", ");
    expect(shown).toHaveLength(9); // 8 values and an ellipsis
    shown.slice(0, 8).forEach((v, i) => expect(v).toBe(pooled[0][i].toFixed(4)));
  });

  it("usage errors exit 2", async () => {
    const results = await Promise.all([runCli(["embed"]), runCli(["embed", CAT, "--latents"]), runCli(["embed", CAT, "--batch-size", "0"])]);
    const expected = [/at least one image/, /--latents needs --json/, /--batch-size must be an integer/];
    results.forEach((r, i) => {
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(expected[i]);
    });
  });
});
