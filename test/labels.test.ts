/**
 * topK gives one list per image: the README's `topK(logits.data, 5, id2label)` on a batch used to rank the images of
 * the batch together and invent labels past numLabels (`LABEL_10` on the 10-label tiny model).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PerceiverForImageClassification, Tensor, parsePerceiverConfig, preprocessBatch, readSafetensors, topK } from "../src/index.js";
import { loadImageFile } from "../src/node.js";
import { ROOT } from "./helpers/cli.js";

const TINY = join(ROOT, "test/fixtures/tiny-conv");

describe("topK", () => {
  it("ranks each image of a batch on its own, and refuses a whole batch passed as one row", async () => {
    const config = parsePerceiverConfig(JSON.parse(readFileSync(join(TINY, "config.json"), "utf8")));
    const model = PerceiverForImageClassification.fromStateDict(config, readSafetensors(readFileSync(join(TINY, "model.safetensors"))));
    const images = await Promise.all(["samples/cat.png", "test/fixtures/images/coffee.png"].map((p) => loadImageFile(join(ROOT, p))));
    const { logits } = await model.forward(preprocessBatch(images));
    expect(logits.shape).toEqual([2, 10]);

    const perImage = topK(logits, 5, config.id2label);
    expect(perImage).toHaveLength(2);
    for (let b = 0; b < 2; b++) {
      const row = logits.data.subarray(b * 10, (b + 1) * 10);
      expect(perImage[b]).toEqual(topK(row, 5, config.id2label));
      // each list is that image's own softmax: its scores are probabilities of one image
      expect(perImage[b].every((p) => p.index < 10 && p.label === config.id2label[p.index])).toBe(true);
    }
    expect(perImage[0].map((p) => p.index)).not.toEqual(perImage[1].map((p) => p.index)); // the two images differ

    // the README's pattern on a batch: 20 logits for a 10-label model is an error, not a mixed ranking
    expect(() => topK(logits.data, 5, config.id2label)).toThrow(expect.objectContaining({ code: "SHAPE_MISMATCH" }));
    expect(() => topK(logits.data, 5, config.id2label)).toThrow(/batch of 2: pass the logits tensor/);
  });

  it("checks lengths and shapes, and never makes up a label", () => {
    const id2label = { 0: "a", 1: "b", 2: "c" };
    expect(topK([0, 2, 1], 2, id2label).map((p) => p.label)).toEqual(["b", "c"]);
    expect(topK([0, 2, 1], 10, id2label)).toHaveLength(3);
    expect(() => topK([0, 1], 1, id2label)).toThrow(expect.objectContaining({ code: "SHAPE_MISMATCH" }));
    expect(() => topK([0, 1, 2, 3], 1, id2label)).toThrow(expect.objectContaining({ code: "SHAPE_MISMATCH" }));
    expect(() => topK(new Tensor(new Float32Array(8), [2, 4]), 1, id2label)).toThrow(/must be \[B, 3\]/);
    expect(topK(new Tensor(Float32Array.of(5, 0, 0), [3]), 1, id2label)).toEqual([[{ index: 0, label: "a", score: expect.any(Number) }]]);
    expect(() => topK([0, 0, 1], 1, { 0: "a", 1: "b", 5: "c" })).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(() => topK([1, 0, 0], -1, id2label)).toThrow(expect.objectContaining({ code: "INPUT_INVALID" }));
  });
});
