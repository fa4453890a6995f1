/** `perceiver embed <image|dir|glob...>`: image feature vectors (the encoder's latents averaged over the latents). */
import { PerceiverError } from "../errors.js";
import { writeSafetensorsFile } from "../io/checkpoint/safetensors-node.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { parseCommandArgs } from "./args.js";
import { applyComputeOptions, printable } from "./common.js";
import { checkOutputFile, type JsonRecord } from "./dataset/jsonl.js";
import { DATASET_HELP, DATASET_OPTIONS, describePlan, loadDatasetModel, planDataset, runPlan, summaryLine } from "./dataset/session.js";

export const EMBED_HELP = `Usage: perceiver embed <image|dir|glob...> [options]

Print a feature vector per image: the final latents of the encoder (after every self-attention layer, before
the classification decoder) averaged over the latents, d_latents numbers (1024 for the ImageNet models).
It is model.extractFeatures(pixels).pooled of the library.

Options:
  --model <repo|folder|file>  hub repo id, local folder or checkpoint file  [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N          [default: main]
  --json                      one JSON object per image: {"file", "dim", "pooled": [...]} (--out
                              records have the same fields)
  --latents                   with --json or --out: also "latents", the full [num_latents][d_latents] array
  --features-out <file>       write the pooled features of all images done as one .safetensors file:
                              tensor "pooled" F32 [N, d_latents], row i the image metadata "files"[i]
${DATASET_HELP}

Without --json, prints per image its dimension, L2 norm and first 8 values. Exit code 1 when any image failed.`;

export async function embed(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("embed", argv, {
    ...DATASET_OPTIONS,
    json: { type: "boolean", default: false },
    latents: { type: "boolean", default: false },
    "features-out": { type: "string" },
  });
  if (values.help) {
    console.log(EMBED_HELP);
    return 0;
  }
  if (values.latents && !values.json && values.out === undefined) throw new PerceiverError("USAGE", "--latents needs --json or --out");
  await applyComputeOptions(values);
  const featuresOut = values["features-out"];
  // pooled vectors by file: from --out's records when resuming, then from this run
  const features = new Map<string, Float32Array>();
  const plan = await planDataset("embed", positionals, values, (r) => Array.isArray(r.pooled), (r) => {
    if (featuresOut !== undefined) features.set(r.file, Float32Array.from(r.pooled as number[]));
  });
  if (featuresOut !== undefined) {
    if (values.resume && values.out === undefined) throw new PerceiverError("USAGE", "--resume with --features-out needs --out");
    await checkOutputFile(featuresOut, { force: values.force || values.resume, flag: "--features-out" });
  }
  describePlan(plan, values.quiet);

  const { model, processorConfig } = await loadDatasetModel(plan, values, !values.quiet && !values.json);

  const D = model.config.dLatents;
  const N = model.config.numLatents;
  const result = await runPlan(plan, {
    label: "embed",
    processorConfig,
    values,
    async compute(pixels, files, onLayer) {
      const f = await model.extractFeatures(pixels, { onProgress: onLayer });
      return files.map((file, i) => {
        const pooled = f.pooled.data.subarray(i * D, (i + 1) * D);
        if (featuresOut !== undefined) features.set(file, pooled.slice());
        const rec: JsonRecord = { file, dim: D, pooled: Array.from(pooled) };
        if (values.latents) {
          const z = f.latents.data;
          rec.latents = Array.from({ length: N }, (_, n) => Array.from(z.subarray((i * N + n) * D, (i * N + n + 1) * D)));
        }
        return rec;
      });
    },
    onRecord(rec, print, writing) {
      if (values.json) print(`${JSON.stringify(rec)}\n`);
      else if (rec.error === undefined && !writing) print(`${printable(rec.file)}  ${describe(rec.pooled as number[])}\n`);
    },
  });
  if (featuresOut !== undefined) {
    // rows in input order: this shard's images that have features (failed ones have none)
    const files = plan.mine.filter((f) => features.has(f));
    const data = new Float32Array(files.length * D);
    files.forEach((f, i) => data.set(features.get(f)!, i * D));
    await writeSafetensorsFile(featuresOut, { pooled: { dtype: "F32", shape: [files.length, D], data } }, {
      files: JSON.stringify(files),
      model: values.model ?? DEFAULT_MODEL,
      description: "perceiver embed: pooled features (final latents averaged over the latents), row i = files[i]",
    });
    if (!values.quiet) console.error(`wrote ${featuresOut}: pooled [${files.length}, ${D}]`);
  }
  if (!values.quiet) console.error(summaryLine("embed", result, plan));
  return result.failed > 0 ? 1 : 0;
}

/** "dim 64  L2 norm 1.2345  [first 8 values, …]" */
function describe(pooled: number[]): string {
  let sq = 0;
  for (const v of pooled) sq += v * v;
  const head = pooled.slice(0, 8).map((v) => v.toFixed(4)).join(", ");
  return `dim ${pooled.length}  L2 norm ${Math.sqrt(sq).toFixed(4)}  [${head}${pooled.length > 8 ? ", …" : ""}]`;
}
