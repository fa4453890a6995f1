/** `perceiver classify <image...>`: top-k ImageNet labels for each image. */
import { parseArgs } from "node:util";
import { PerceiverError } from "../errors.js";
import { loadImageFile } from "../io/image/decode-node.js";
import { topK } from "../perceiver/labels.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { defaultImageProcessorConfig, preprocessBatch, type ImageProcessorConfig } from "../io/image/image-processor.js";
import { checkForwardMemory } from "../perceiver/memory.js";
import { Tensor } from "../tensor/tensor.js";
import { COMPUTE_HELP, IMAGE_HELP, MODEL_COMMAND_OPTIONS, applyComputeOptions, loadCliModel, positiveInt, printable } from "./common.js";
import { inferenceProgress, progressEnabled } from "./progress.js";

export const CLASSIFY_HELP = `Usage: perceiver classify <image...> [options]

Classify PNG or JPEG images with a Perceiver IO ImageNet model and print the top-k labels.

Options:
  --model <repo|folder|file>  hub repo id, local folder (config.json + model.safetensors or
                              pytorch_model.bin) or checkpoint file   [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N    [default: main]
  --top-k <n>                 labels per image                        [default: 5]
  --batch-size <n>            images per forward pass                 [default: 1]
  --json                      one JSON object per image on stdout
  --logits                    with --json: include the raw logits
${IMAGE_HELP}
${COMPUTE_HELP}
  --quiet                     no progress output on stderr
  --debug                     print stack traces on errors
  -h, --help                  show this help

Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE=1,
HF_HUB_DISABLE_PROGRESS_BARS=1 (see the README).`;

/**
 * Images -> pixel values [B, 3, H, W], one image at a time: only one decoded photo is in memory at once (a batch of
 * large photos would otherwise hold them all), and an image that cannot be preprocessed is named in the error.
 */
async function loadPixels(paths: string[], processorConfig: Partial<ImageProcessorConfig>, exifOrientation: boolean): Promise<Tensor> {
  const items: Tensor[] = [];
  for (const path of paths) {
    const img = await loadImageFile(path, { exifOrientation });
    try {
      items.push(preprocessBatch([img], processorConfig));
    } catch (e) {
      throw e instanceof PerceiverError ? new PerceiverError(e.code, `${path}: ${e.message}`, { cause: e }) : e;
    }
    const [, , h, w] = items[items.length - 1].shape;
    const [, , h0, w0] = items[0].shape;
    if (h !== h0 || w !== w0) {
      throw new PerceiverError("SHAPE_MISMATCH", `${path} preprocesses to ${w}x${h} but ${paths[0]} to ${w0}x${h0}: images of one batch must match (use --batch-size 1, or enable do_resize)`);
    }
  }
  const [, c, h, w] = items[0].shape;
  const out = new Float32Array(items.length * c * h * w);
  items.forEach((t, i) => out.set(t.data, i * c * h * w));
  return new Tensor(out, [items.length, c, h, w]);
}

export async function classify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...MODEL_COMMAND_OPTIONS,
      "top-k": { type: "string" },
      "batch-size": { type: "string" },
      json: { type: "boolean", default: false },
      logits: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(CLASSIFY_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new PerceiverError("USAGE", "classify: give at least one image file (see perceiver classify --help)");
  const topKCount = positiveInt("top-k", values["top-k"], 5, 100_000);
  const batchSize = positiveInt("batch-size", values["batch-size"], 1, 256);
  if (values.logits && !values.json) throw new PerceiverError("USAGE", "--logits needs --json");
  const showProgress = progressEnabled(values.quiet);

  await applyComputeOptions(values);

  const { model, processorConfig, seconds } = await loadCliModel({ model: values.model, revision: values.revision, showProgress });
  if (!values.quiet && !values.json) console.error(`model loaded in ${seconds.toFixed(1)} s`);
  // Refuse a batch that cannot fit before decoding anything (images are resized to one size), and again per batch.
  const memoryOpts = { where: "classify", hint: "use a smaller --batch-size" };
  if (processorConfig.doResize ?? defaultImageProcessorConfig.doResize) {
    const { height, width } = processorConfig.size ?? defaultImageProcessorConfig.size;
    checkForwardMemory(model.config, { batch: Math.min(batchSize, positionals.length), height, width }, memoryOpts);
  }

  for (let start = 0; start < positionals.length; start += batchSize) {
    const paths = positionals.slice(start, start + batchSize);
    const tPrep = performance.now();
    const pixels = await loadPixels(paths, processorConfig, !values["ignore-exif"]);
    const [b, , h, w] = pixels.shape;
    checkForwardMemory(model.config, { batch: b, height: h, width: w }, memoryOpts);
    const prepS = (performance.now() - tPrep) / 1000;
    const bar = inferenceProgress(showProgress, paths.length === 1 ? paths[0] : `${paths.length} images`);
    const tRun = performance.now();
    let logits;
    try {
      ({ logits } = await model.forward(pixels, { onProgress: bar.onProgress }));
    } finally {
      bar.stop();
    }
    const perImageS = ((performance.now() - tRun) / 1000 + prepS) / paths.length;
    const n = model.config.numLabels;
    paths.forEach((file, i) => {
      const row = logits.data.subarray(i * n, (i + 1) * n);
      const preds = topK(row, topKCount, model.config.id2label);
      if (values.json) {
        const obj: Record<string, unknown> = { file, seconds: Number(perImageS.toFixed(3)), top_k: preds };
        if (values.logits) obj.logits = Array.from(row);
        console.log(JSON.stringify(obj));
      } else {
        console.log(`${file}  (${perImageS.toFixed(1)} s${paths.length > 1 ? `, batch of ${paths.length}` : ""})`);
        const labels = preds.map((p) => printable(p.label));
        const w = Math.max(...labels.map((l) => l.length), 5);
        console.log(`   #  ${"label".padEnd(w)}  ${"index".padStart(5)}  probability`);
        preds.forEach((p, r) => console.log(`  ${String(r + 1).padStart(2)}  ${labels[r].padEnd(w)}  ${String(p.index).padStart(5)}  ${p.score.toFixed(4)}`));
      }
    });
  }
  return 0;
}
