/**
 * Runs one image through a model and prints every named intermediate of the forward pass with its shape, in the
 * order the model computes them: a way to see docs/walkthrough.md happen.
 *
 *   npx tsx scripts/trace-shapes.ts                            # the tiny test checkpoint (test/fixtures/tiny-conv)
 *   npx tsx scripts/trace-shapes.ts weights/full-synthetic     # the full-size conv model (made by the full-size test)
 *   npx tsx scripts/trace-shapes.ts <folder> [image]           # any folder with config.json + weights
 *
 * The image (default samples/cat.png) goes through the HF image processor at 224x224, or at the config's
 * image_size for the learned model (its position table fixes the input size).
 */
import { PerceiverForImageClassification, preprocessBatch, type Tensor } from "../src/index.js";
import { loadImageFile } from "../src/node.js";

const folder = process.argv[2] ?? "test/fixtures/tiny-conv";
const imagePath = process.argv[3] ?? "samples/cat.png";

const model = await PerceiverForImageClassification.fromPretrained(folder);
const cfg = model.config;
const side = cfg.architecture === "PerceiverForImageClassificationLearned" ? cfg.imageSize : 224;
const pixels = preprocessBatch([await loadImageFile(imagePath)], { size: { height: side, width: side }, cropSize: { height: side * 256 / 224, width: side * 256 / 224 } });

const shape = (t: Tensor) => `[${t.shape.join(", ")}]`;
console.log(`${folder}: ${cfg.architecture}, ${cfg.numLatents} latents x ${cfg.dLatents}, ` +
  `${cfg.numSelfAttendsPerBlock} self-attention layers x ${cfg.numBlocks} blocks, ${cfg.numLabels} labels`);
console.log(`${"pixel_values".padEnd(28)} ${shape(pixels)}`);
let repeats = 0;
const { logits, crossAttentions } = await model.forward(pixels, {
  outputAttentions: true,
  onIntermediate: (name, value) => {
    // the latent transformer's applications all have the same shape: show the first block and the last line
    const m = /^self_attend_(\d+)\.call(\d+)$/.exec(name);
    if (m && Number(m[2]) > 0 && !(Number(m[2]) === cfg.numBlocks - 1 && Number(m[1]) === cfg.numSelfAttendsPerBlock - 1)) {
      repeats++;
      return;
    }
    if (m && repeats) console.log(`${"  … (same shape)".padEnd(28)} x ${repeats}`);
    console.log(`${name.padEnd(28)} ${shape(value)}`);
  },
});
console.log(`${"logits".padEnd(28)} ${shape(logits)}`);
if (crossAttentions) {
  console.log(`${"encoder attention P".padEnd(28)} ${shape(crossAttentions[0])}  [batch, heads, latents, tokens]`);
  console.log(`${"decoder attention P".padEnd(28)} ${shape(crossAttentions[1])}  [batch, heads, query, latents]`);
}
