/**
 * Training a head end to end: the checkpoint our CLI trained (scripts/make_train_goldens.py head) gives the logits
 * transformers computed from it; the library reproduces that training and beats chance on held-out images like the
 * same recipe in PyTorch; a trained head loads into the model for all three variants; the same seed gives the same
 * bytes.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { readSafetensors, writeSafetensors, type SafetensorsFile } from "../src/io/checkpoint/safetensors.js";
import { readSafetensorsFile } from "../src/io/checkpoint/safetensors-node.js";
import { loadImageFile } from "../src/io/image/decode-node.js";
import { preprocessBatch } from "../src/io/image/image-processor.js";
import { parsePerceiverConfig } from "../src/perceiver/config.js";
import { PerceiverForImageClassification } from "../src/perceiver/model.js";
import { HeadStateDict, decoderTensors, headCheckpointTensors, headConfigJson } from "../src/perceiver/train/checkpoint.js";
import { decoderStepFast, normalizeLatents } from "../src/perceiver/train/decoder-fast.js";
import { DECODER_PARAM_NAMES, DECODER_PREFIX, decoderShape, type DecoderParams } from "../src/perceiver/train/decoder-params.js";
import { trainDecoder, type TrainExample } from "../src/perceiver/train/train.js";
import { Rng } from "../src/perceiver/train/rng.js";
import { Tensor } from "../src/tensor/tensor.js";
import { diffStats, fixture } from "./helpers/golden.js";

const DATA = fixture("train", "data");
const CLASSES = ["blue", "green", "red"];
const recipe = JSON.parse(await readFile(fixture("train", "head", "recipe.json"), "utf8"));
const hfLogits = await readSafetensorsFile(fixture("train", "head", "hf_logits.safetensors"));
const testFiles: string[] = JSON.parse(hfLogits.metadata.files);

async function pixelsOf(files: string[]): Promise<Tensor> {
  return preprocessBatch(await Promise.all(files.map((f) => loadImageFile(join(DATA, f)))));
}

const base = await PerceiverForImageClassification.fromPretrained(fixture("tiny-conv"));
const baseSd = await readSafetensorsFile(fixture("tiny-conv", "model.safetensors"));

/** the tiny-conv base with the decoder of a safetensors file (full names) and config.json's labels */
function withHead(dec: SafetensorsFile, configJson: Record<string, unknown>) {
  const config = parsePerceiverConfig(configJson);
  const params = Object.fromEntries(DECODER_PARAM_NAMES.map((n) => [n, dec.getFloat32(DECODER_PREFIX + n)])) as DecoderParams;
  return PerceiverForImageClassification.fromStateDict(config, new HeadStateDict(baseSd, params, decoderShape(config, config.numLabels)));
}

describe("a head trained by `perceiver train-head` (tiny-conv, synthetic 3-class images)", () => {
  it("our model gives the logits transformers' from_pretrained(OUTDIR) gave", async () => {
    const cfg = JSON.parse(await readFile(fixture("train", "head", "config.json"), "utf8"));
    expect(cfg.id2label).toEqual({ 0: "blue", 1: "green", 2: "red" });
    expect(cfg.label2id).toEqual({ blue: 0, green: 1, red: 2 });
    const dec = readSafetensors(await readFile(fixture("train", "head", "decoder.safetensors")));
    const model = withHead(dec, cfg);
    const out = await model.forward(await pixelsOf(testFiles));
    // our image processor and forward against HF's (each golden-tested elsewhere): logits O(1-10)
    const d = diffStats(out.logits.data, hfLogits.getFloat32("logits"), 2e-4, 2e-4);
    expect(d.maxRatio, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(1);
  });

  it("the library reproduces the training, beats chance on held-out images like the PyTorch recipe, and is deterministic", async () => {
    const trainFiles = CLASSES.flatMap((c, label) => Array.from({ length: 12 }, (_, i) => ({ file: `train/${c}/${c}_${String(i).padStart(2, "0")}.png`, label })));
    const { latents } = await base.extractFeatures(await pixelsOf(trainFiles.map((f) => f.file)));
    const N = 16 * 64;
    const examples = (): TrainExample[] => trainFiles.map((f, i) => ({ latents: latents.data.slice(i * N, (i + 1) * N), label: f.label }));
    const o = recipe.options;
    const opts = { numLabels: 3, epochs: o.epochs, lr: o.lr, batchSize: o.batch_size, weightDecay: o.weight_decay, seed: o.seed, valSplit: o.val_split };
    const epochs: number[] = [];
    const r1 = await trainDecoder(base, examples(), { ...opts, onEpoch: (s) => epochs.push(s.trainLoss) });
    const r2 = await trainDecoder(base, examples(), opts);
    const bytes = (r: typeof r1) => writeSafetensors(decoderTensors(r.params, r.shape));
    expect(Buffer.from(bytes(r1)).equals(Buffer.from(bytes(r2)))).toBe(true);
    expect(epochs.length).toBe(o.epochs);
    expect(epochs[epochs.length - 1]).toBeLessThan(epochs[0] / 4); // it learns (1.10 -> 0.13 here)

    // the same parameters as the CLI's run (up to the GEMM backend's rounding)
    const dec = readSafetensors(await readFile(fixture("train", "head", "decoder.safetensors")));
    for (const n of DECODER_PARAM_NAMES) {
      const d = diffStats(r1.params[n], dec.getFloat32(DECODER_PREFIX + n), 1e-4, 1e-3);
      expect(d.maxRatio, `${n}: max abs ${d.maxAbs}`).toBeLessThanOrEqual(1);
    }
    // the recorded per-epoch losses of the CLI run
    recipe.ours.history.forEach((h: { trainLoss: number }, i: number) => expect(Math.abs(r1.history[i].trainLoss - h.trainLoss)).toBeLessThan(1e-4));

    // held-out accuracy: chance is 1/3; the PyTorch recipe on the same latents reaches recipe.torch.test_acc
    const cfg = headConfigJson(JSON.parse(await readFile(fixture("tiny-conv", "config.json"), "utf8")), CLASSES);
    const model = PerceiverForImageClassification.fromStateDict(parsePerceiverConfig(cfg), new HeadStateDict(baseSd, r1.params, r1.shape));
    const logits = (await model.forward(await pixelsOf(testFiles))).logits;
    const labels = testFiles.map((f) => CLASSES.indexOf(f.split("/")[1]));
    let correct = 0;
    labels.forEach((y, b) => {
      const row = Array.from(logits.data.subarray(b * 3, b * 3 + 3));
      if (row.indexOf(Math.max(...row)) === y) correct++;
    });
    const acc = correct / labels.length;
    expect(acc).toBeGreaterThanOrEqual(0.75); // chance: 1/3 (the CLI-trained head reached 23/24 in transformers, the PyTorch recipe 22/24)
    expect(acc).toBeGreaterThanOrEqual(recipe.torch.test_acc - 2 / labels.length);
    expect(Math.abs(acc - recipe.ours.test_acc_in_transformers)).toBeLessThanOrEqual(1 / labels.length);
  }, 120_000);

  it("`perceiver eval` on the held-out images, with the committed head as a full checkpoint: the accuracy transformers had", async () => {
    const { main } = await import("../src/cli/main.js");
    const { writeSafetensorsFile } = await import("../src/io/checkpoint/safetensors-node.js");
    const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const out = await mkdtemp(join(tmpdir(), "train-head-eval-"));
    try {
      const cfg = JSON.parse(await readFile(fixture("train", "head", "config.json"), "utf8"));
      const dec = readSafetensors(await readFile(fixture("train", "head", "decoder.safetensors")));
      const params = Object.fromEntries(DECODER_PARAM_NAMES.map((n) => [n, dec.getFloat32(DECODER_PREFIX + n)])) as DecoderParams;
      await writeFile(join(out, "config.json"), JSON.stringify(cfg));
      await writeSafetensorsFile(join(out, "model.safetensors"), headCheckpointTensors(baseSd, params, decoderShape(parsePerceiverConfig(cfg), 3)), { format: "pt" });
      let stdout = "";
      const log = vi.spyOn(console, "log").mockImplementation((...a) => void (stdout += `${a.join(" ")}\n`));
      const err = vi.spyOn(console, "error").mockImplementation(() => {});
      let code: number;
      try {
        code = await main(["eval", join(DATA, "test"), "--model", out, "--json", "--quiet"]);
      } finally {
        log.mockRestore();
        err.mockRestore();
      }
      expect(code).toBe(0);
      const summary = JSON.parse(stdout.trim().split("\n").pop()!);
      expect(summary.n).toBe(24);
      expect(summary.top1).toBeCloseTo(recipe.ours.test_acc_in_transformers, 6); // 23/24; chance is 1/3
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 120_000);

  it("the written checkpoint keeps every encoder tensor's bytes and dtype (F16 base stays F16)", async () => {
    const f16 = await readSafetensorsFile(fixture("tiny-conv", "model.f16.safetensors"));
    const ex = [0, 1, 2, 0].map((label) => ({ latents: Float32Array.from({ length: 16 * 64 }, (_, i) => Math.sin(i * (label + 1))), label }));
    const r = await trainDecoder(base, ex, { numLabels: 3, epochs: 1, valSplit: 0 });
    const t = headCheckpointTensors(f16, r.params, r.shape);
    const file = readSafetensors(writeSafetensors(t));
    for (const n of f16.names()) {
      if (n.startsWith(DECODER_PREFIX)) continue;
      expect(file.info(n).dtype).toBe(f16.info(n).dtype);
      expect(Buffer.from(file.getBytes(n)).equals(Buffer.from(f16.getBytes(n)))).toBe(true);
    }
    expect(file.info(`${DECODER_PREFIX}final_layer.weight`)).toEqual({ dtype: "F32", shape: [3, 64] });
  });
});

describe("a trained head in the model, for all three variants", () => {
  const variants = [
    { name: "tiny-conv", size: 224, batch: 4 },
    { name: "tiny-fourier", size: 224, batch: 2 }, // 50176 pixel tokens per image: the slow one
    { name: "tiny-learned", size: 32, batch: 4 },
  ];
  for (const v of variants) {
    it(`${v.name}: the model built with the head gives the logits the trainer computes`, async () => {
      const model = await PerceiverForImageClassification.fromPretrained(fixture(v.name));
      const sd = await readSafetensorsFile(fixture(v.name, "model.safetensors"));
      const rng = new Rng(3);
      const B = v.batch;
      const pixels = new Tensor(Float32Array.from({ length: B * 3 * v.size * v.size }, () => rng.normal()), [B, 3, v.size, v.size]);
      const { latents } = await model.extractFeatures(pixels);
      const per = model.config.numLatents * model.config.dLatents;
      const ex = Array.from({ length: B }, (_, b) => ({ latents: latents.data.slice(b * per, (b + 1) * per), label: b % 2 }));
      const r = await trainDecoder(model, ex, { numLabels: 2, epochs: 3, valSplit: 0, batchSize: 2, seed: 7 });
      const cfg = headConfigJson(JSON.parse(await readFile(fixture(v.name, "config.json"), "utf8")), ["a", "b"]);
      const trained = PerceiverForImageClassification.fromStateDict(parsePerceiverConfig(cfg), new HeadStateDict(sd, r.params, r.shape));
      const got = (await trained.forward(pixels)).logits.data;
      const zhat = Array.from({ length: B }, (_, b) => normalizeLatents(latents.data.subarray(b * per, (b + 1) * per), model.config.numLatents, model.config.dLatents));
      const want = decoderStepFast(r.params, r.shape, zhat, ex.map((e) => e.label), null).logits;
      const d = diffStats(got, want, 1e-4, 1e-4);
      expect(d.maxRatio, `max abs ${d.maxAbs}`).toBeLessThanOrEqual(1);
    }, 60_000);
  }
});
