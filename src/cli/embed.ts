/** `perceiver embed <image...>`: image feature vectors (the encoder's latents averaged over the latents). */
import { parseArgs } from "node:util";
import { PerceiverError } from "../errors.js";
import { loadImageFile } from "../io/image/decode-node.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { preprocessBatch } from "../io/image/image-processor.js";
import { COMPUTE_HELP, IMAGE_HELP, MODEL_COMMAND_OPTIONS, applyComputeOptions, loadCliModel, positiveInt } from "./common.js";
import { inferenceProgress, progressEnabled } from "./progress.js";

export const EMBED_HELP = `Usage: perceiver embed <image...> [options]

Print a feature vector per image: the final latents of the encoder (after every self-attention layer, before
the classification decoder) averaged over the latents, d_latents numbers (1024 for the ImageNet models).
It is model.extractFeatures(pixels).pooled of the library.

Options:
  --model <repo|folder|file>  hub repo id, local folder or checkpoint file  [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N          [default: main]
  --json                      one JSON object per image: {"file", "dim", "pooled": [...]}
  --latents                   with --json: also "latents", the full [num_latents][d_latents] array
  --batch-size <n>            images per forward pass                        [default: 1]
${IMAGE_HELP}
${COMPUTE_HELP}
  --quiet                     no progress output on stderr
  --debug                     print stack traces on errors
  -h, --help                  show this help

Without --json, prints per image its dimension, L2 norm and first 8 values.`;

export async function embed(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...MODEL_COMMAND_OPTIONS,
      json: { type: "boolean", default: false },
      latents: { type: "boolean", default: false },
      "batch-size": { type: "string" },
    },
  });
  if (values.help) {
    console.log(EMBED_HELP);
    return 0;
  }
  if (positionals.length === 0) throw new PerceiverError("USAGE", "embed: give at least one image file (see perceiver embed --help)");
  if (values.latents && !values.json) throw new PerceiverError("USAGE", "--latents needs --json");
  const batchSize = positiveInt("batch-size", values["batch-size"], 1, 256);
  const showProgress = progressEnabled(values.quiet);

  await applyComputeOptions(values);

  const { model, processorConfig, seconds } = await loadCliModel({ model: values.model, revision: values.revision, showProgress });
  if (!values.quiet && !values.json) console.error(`model loaded in ${seconds.toFixed(1)} s`);

  const D = model.config.dLatents;
  const N = model.config.numLatents;
  for (let start = 0; start < positionals.length; start += batchSize) {
    const paths = positionals.slice(start, start + batchSize);
    const images = await Promise.all(paths.map((p) => loadImageFile(p, { exifOrientation: !values["ignore-exif"] })));
    const pixels = preprocessBatch(images, processorConfig);
    const bar = inferenceProgress(showProgress, paths.length === 1 ? paths[0] : `${paths.length} images`);
    let features;
    try {
      features = await model.extractFeatures(pixels, { onProgress: bar.onProgress });
    } finally {
      bar.stop();
    }
    paths.forEach((file, i) => {
      const pooled = features.pooled.data.subarray(i * D, (i + 1) * D);
      if (values.json) {
        const obj: Record<string, unknown> = { file, dim: D, pooled: Array.from(pooled) };
        if (values.latents) {
          const z = features.latents.data;
          obj.latents = Array.from({ length: N }, (_, n) => Array.from(z.subarray((i * N + n) * D, (i * N + n + 1) * D)));
        }
        console.log(JSON.stringify(obj));
      } else {
        let sq = 0;
        for (const v of pooled) sq += v * v;
        const head = Array.from(pooled.subarray(0, 8), (v) => v.toFixed(4)).join(", ");
        console.log(`${file}  dim ${D}  L2 norm ${Math.sqrt(sq).toFixed(4)}  [${head}${D > 8 ? ", …" : ""}]`);
      }
    });
  }
  return 0;
}
