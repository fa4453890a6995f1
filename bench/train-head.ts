/**
 * Training-a-head benchmark on the full-size architecture (vision-perceiver-conv: 512 latents x 1024):
 *   1. one epoch of trainDecoder over the cached latents of --images images (default 1000; synthetic latents,
 *      10 classes, batch 16), the fast decoder path, plus one reference-path step for comparison;
 *   2. the latent extraction per image (model.extractFeatures, batch 1) on the synthetic full-size checkpoint
 *      (generated from the manifest when missing), over --extract images (default 2).
 * Run: npx tsx bench/train-head.ts [--images N] [--extract N]   (PERCEIVER_BACKEND / PERCEIVER_THREADS apply)
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { PerceiverForImageClassification, Tensor } from "../src/index.js";
import { readConfigFile } from "../src/perceiver/load.js";
import * as gemm from "../src/tensor/gemm.js";
import { decoderStepReference } from "../src/perceiver/train/decoder-reference.js";
import { decoderShape, initDecoderParams, zerosLike } from "../src/perceiver/train/decoder-params.js";
import { trainDecoder } from "../src/perceiver/train/train.js";
import { ensureFullCheckpoint, FULL_FIXTURES } from "../test/helpers/full-model.js";
import { join } from "node:path";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { images: { type: "string", default: "1000" }, extract: { type: "string", default: "2" } } });
  const images = Number(values.images), extract = Number(values.extract);
  await gemm.ensureThreads();
  console.log(`# perceiver-ts train-head benchmark\nmachine: ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores, Node ${process.version}, ${gemm.getThreads()} thread(s), GEMM backend ${gemm.getBackend()}\n`);
  const config = await readConfigFile(join(FULL_FIXTURES, "config.json"));
  const N = config.numLatents, D = config.dLatents, L = 10;

  // 1. training over cached latents (each image's latents a distinct 2 MB array, as after a real extraction)
  const t0 = performance.now();
  // each image: a window of one long pseudo-random sequence, at an offset of its own
  const base = new Float32Array(N * D + 4096).map((_, i) => Math.sin(i * 0.37) + 0.3 * Math.cos(i * 0.011));
  const examples = Array.from({ length: images }, (_, b) => {
    const off = (b * 131) % 4096;
    return { latents: base.slice(off, off + N * D), label: b % L };
  });
  console.error(`made ${images} synthetic latents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const r = await trainDecoder({ config }, examples, { numLabels: L, epochs: 1, valSplit: 0.1, inPlace: true });
  const epochS = r.history[0].seconds;
  const trainCount = r.split.train.length;
  console.log("| measurement | value |\n|---|---|");
  console.log(`| one epoch, ${trainCount} training + ${r.split.val.length} validation images (fast path, batch 16) | ${epochS.toFixed(2)} s (${((1000 * epochS) / images).toFixed(2)} ms/image) |`);

  // the reference path on one image (its naive loops form keys and values over all latents: O(N·D²))
  const shape = decoderShape(config, L);
  const p = initDecoderParams(shape, 0);
  const t1 = performance.now();
  decoderStepReference(p, shape, [examples[0].latents], [examples[0].label], zerosLike(shape));
  const refStepS = (performance.now() - t1) / 1000;
  console.log(`| one reference-path step, 1 image (naive loops, keys/values over all ${N} latents) | ${refStepS.toFixed(2)} s |`);

  // 2. latent extraction on the full-size model
  if (extract > 0) {
    const dir = await ensureFullCheckpoint((m) => console.error(m));
    const model = await PerceiverForImageClassification.fromPretrained(dir);
    const pixels = new Tensor(new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01)), [1, 3, 224, 224]);
    await model.extractFeatures(pixels); // warm-up
    const t2 = performance.now();
    for (let i = 0; i < extract; i++) await model.extractFeatures(pixels);
    console.log(`| latent extraction (encoder forward), batch 1, mean of ${extract} | ${((performance.now() - t2) / 1000 / extract).toFixed(2)} s/image |`);
  }
  await gemm.setThreads(1);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
