import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MODEL_GFLOP } from "../bench/report.js";
import { parsePerceiverConfig } from "../src/perceiver/config.js";
import { flopBudget } from "../src/perceiver/flops.js";
import { fixture } from "./helpers/golden.js";

const config = (name: string) => parsePerceiverConfig(JSON.parse(readFileSync(fixture(name, "config.json"), "utf8")));

describe("flopBudget", () => {
  it("vision-perceiver-conv: about 369.2 GFLOP per 224x224 image, stage by stage", () => {
    const b = flopBudget(config("full"));
    expect(b.tokens).toBe(3025);
    expect(b.kvDim).toBe(322);
    const stage = (name: string) => b.stages.find((s) => s.stage === name)!.flops;
    // worked by hand: conv 2·64·147·112², one self-attention application 4 linears + 8 heads' scores and P·V + MLP
    expect(stage("preprocessor")).toBe(2 * 64 * 147 * 112 * 112);
    const selfLayer = 4 * 2 * 512 * 1024 * 1024 + 2 * 8 * (2 * 512 * 512 * 128) + 2 * 2 * 512 * 1024 * 1024;
    expect(stage("latent transformer")).toBe(48 * selfLayer);
    const cross = 2 * 512 * 322 * 1024 * 2 + 2 * 2 * 3025 * 322 * 322 + 2 * 2 * 512 * 3025 * 322 + 2 * 2 * 512 * 1024 * 1024;
    expect(stage("encoder cross-attention")).toBe(cross);
    expect(stage("classifier")).toBe(2 * 1024 * 1000);
    expect(b.total).toBe(b.stages.reduce((a, s) => a + s.flops, 0));
    expect(Math.abs(b.total / 1e9 - 369.2)).toBeLessThan(0.05);
  });

  it("is the bench's MODEL_GFLOP", () => {
    expect(MODEL_GFLOP).toBe(Math.round(flopBudget(config("full")).total / 1e8) / 10);
    expect(MODEL_GFLOP).toBe(369.2);
  });

  it("follows the config: heads, widening, shared-layer count, the other preprocessors", () => {
    const heads = flopBudget(config("tiny-conv-heads")); // qk 32, v 64, 2 cross heads, widening 2, 3 blocks x 1 layer
    const t = heads.stages.find((s) => s.stage === "latent transformer")!;
    expect(t.terms.every((x) => x.count % 3 === 0)).toBe(true);
    expect(t.terms.find((x) => x.op === "MLP dense1")!.n).toBe(2 * 64);
    const fourier = flopBudget(config("tiny-fourier"));
    expect(fourier.tokens).toBe(224 * 224);
    expect(fourier.kvDim).toBe(261);
    expect(fourier.stages[0].flops).toBe(0); // raw pixels: no product before the encoder
    const learned = flopBudget(config("tiny-learned"), 32, 32);
    expect(learned.tokens).toBe(32 * 32);
    expect(learned.stages[0].flops).toBe(2 * 32 * 32 * 256 * 3); // the 1x1 conv; the position projection is per model
  });
});
