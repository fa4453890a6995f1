/**
 * Step through the whole model on a tiny checkpoint with the reference backend: every operation runs as a plain
 * loop in src/tensor/reference/ (a GEMM triple loop, a two-pass layer norm, per-head softmax(Q·Kᵀ/√d)·V, a direct
 * convolution, max pooling, exact-erf GELU), on one thread.
 *   npx tsx examples/reference-step.ts [model folder] [image]
 * defaults: test/fixtures/tiny-conv (the conv architecture with 16 latents of 64 channels and random weights,
 * so its labels are meaningless) and samples/cat.png.
 * It imports the sources (not dist/), so a debugger stops in them: `node --inspect-brk --import tsx
 * examples/reference-step.ts`, then set breakpoints in src/perceiver/model.ts (forward) and
 * src/tensor/reference/*.ts. It prints the shape of every stage as the forward pass produces it.
 */
import { PerceiverForImageClassification, preprocessBatch, setBackend, topK } from "../src/index.js";
import { loadImageFile } from "../src/node.js";

const [modelDir = "test/fixtures/tiny-conv", image = "samples/cat.png"] = process.argv.slice(2);
setBackend("reference");
const model = await PerceiverForImageClassification.fromPretrained(modelDir);
const c = model.config;
console.log(`${c.architecture}: ${c.numLatents} latents x ${c.dLatents}, ${c.numSelfAttendsPerBlock} self-attention layers applied ${c.numBlocks} times`);
const pixels = preprocessBatch([await loadImageFile(image)]);
console.log(`pixels ${JSON.stringify(pixels.shape)}`);
const { logits } = await model.forward(pixels, {
  onIntermediate: (name, t) => console.log(`${name.padEnd(24)} ${JSON.stringify(t.shape)}`),
});
console.log(`logits ${JSON.stringify(logits.shape)}`);
for (const p of topK(logits.data, 3, c.id2label)) console.log(`${p.score.toFixed(4)}  ${p.label}`);
