/** Images through the model: a JPEG decoded by jpeg-js moves the tiny model's logits by less than 1e-3; the conv preprocessor's buffers. */
import { describe, expect, it } from "vitest";
import { PerceiverForImageClassification } from "../src/index.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { ConvPreprocessor, CONV_KERNEL, CONV_OUT_CHANNELS, FOURIER_MAX_RESOLUTION, FOURIER_NUM_BANDS } from "../src/perceiver/preprocessor-conv.js";
import { fourierPositionEncoding } from "../src/perceiver/position-encoding.js";
import { relu } from "../src/tensor/activations.js";
import { batchNorm2d, conv2dGemm, conv2dOutputSize, maxPool2d } from "../src/tensor/conv.js";
import { packWeight } from "../src/tensor/gemm.js";
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

describe("ConvPreprocessor's buffers (conv output inside the inputs' rows, position encoding written once per call)", () => {
  it("equals the plain composition of its kernels for batches of 1-3 and sizes where the conv output does or does not fit", async () => {
    const model = await PerceiverForImageClassification.fromPretrained(fixture("tiny-conv"));
    const pre = model.preprocessor as ConvPreprocessor;
    const wt = pre.weights;
    const packed = packWeight(wt.convWeight, CONV_OUT_CHANNELS, 3 * CONV_KERNEL * CONV_KERNEL);
    const pad = ConvPreprocessor.PAD, padAfter = Math.floor(CONV_KERNEL / 2);
    let apart = 0;
    // 224 and 61x47: the conv output fits in an item's rows; 32x32 and 20x26: it does not (a buffer of its own)
    for (const [batch, h, w] of [[2, 224, 224], [3, 61, 47], [2, 32, 32], [1, 20, 26], [1, 224, 224]]) {
      const pixels = new Float32Array(batch * 3 * h * w).map((_, i) => Math.sin(i * 0.37) * 2);
      const got = pre.forward(pixels, batch, h, w);
      const ch = conv2dOutputSize(h, CONV_KERNEL, pad, padAfter, 2), cw = conv2dOutputSize(w, CONV_KERNEL, pad, padAfter, 2);
      const [gh, gw] = pre.gridSize(h, w);
      const T = gh * gw, nc = pre.numChannels, o = CONV_OUT_CHANNELS;
      if (o * ch * cw > T * nc) apart++;
      const pos = fourierPositionEncoding([gh, gw], FOURIER_NUM_BANDS, FOURIER_MAX_RESOLUTION);
      const want = new Float32Array(batch * T * nc);
      for (let b = 0; b < batch; b++) {
        const conv = new Float32Array(o * ch * cw), pooled = new Float32Array(o * T);
        conv2dGemm(pixels.subarray(b * 3 * h * w, (b + 1) * 3 * h * w), 3, h, w, packed, CONV_KERNEL, CONV_KERNEL, null, { stride: 2, pad: [pad, padAfter, pad, padAfter] }, conv);
        batchNorm2d(conv, o, ch * cw, wt.bnRunningMean, wt.bnRunningVar, wt.bnWeight, wt.bnBias, 1e-5, conv);
        relu(conv, conv, conv.length);
        maxPool2d(conv, o, ch, cw, 3, 2, pooled);
        for (let t = 0; t < T; t++) {
          for (let k = 0; k < o; k++) want[(b * T + t) * nc + k] = pooled[k * T + t];
          want.set(pos.subarray(t * (nc - o), (t + 1) * (nc - o)), (b * T + t) * nc + o);
        }
      }
      expect([batch, h, w, got.numTokens, got.inputs.length]).toEqual([batch, h, w, T, want.length]);
      expect([batch, h, w, diffStats(got.inputs, want).maxAbs]).toEqual([batch, h, w, 0]);
    }
    expect(apart).toBe(2);
  });
});
