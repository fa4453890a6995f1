/** Images through the model: a JPEG decoded by jpeg-js moves the tiny model's logits by less than 1e-3. */
import { describe, expect, it } from "vitest";
import { PerceiverForImageClassification } from "../src/index.js";
import { loadImageFile } from "../src/io/image-node.js";
import { preprocessBatch } from "../src/perceiver/image-processor.js";
import { diffStats, fixture, readGolden } from "./helpers/golden.js";

describe("chelsea.jpg vs chelsea.png through the tiny model", () => {
  it("logits differ by at most 1e-3", async () => {
    const model = await PerceiverForImageClassification.fromPretrained(fixture("tiny-conv"));
    const png = await model.forward(preprocessBatch([await loadImageFile(fixture("images", "chelsea.png"))]));
    const jpg = await model.forward(preprocessBatch([await loadImageFile(fixture("images", "chelsea.jpg"))]));
    const s = diffStats(jpg.logits.data, png.logits.data);
    console.log(`tiny-conv: max |logits(jpg) - logits(png)| = ${s.maxAbs.toExponential(2)}`);
    expect(s.maxAbs).toBeLessThanOrEqual(1e-3);
    expect(s.maxAbs).toBeGreaterThan(0); // the two files really are different inputs
  });
  it("the PNG path reproduces PyTorch's pixel_values exactly", async () => {
    const golden = await readGolden("images", "e2e_golden.safetensors");
    const px = preprocessBatch([await loadImageFile(fixture("images", "chelsea.png"))]);
    expect(diffStats(px.data, golden.getFloat32("chelsea_png.pixel_values_pil")).maxAbs).toBe(0);
  });
});
