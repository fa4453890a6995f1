/** `perceiver classify <image|dir|glob...>`: top-k ImageNet labels for each image. */
import { PerceiverError } from "../errors.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { parseCommandArgs } from "./args.js";
import { applyComputeOptions, positiveInt, printable } from "./common.js";
import { terminalJson, terminalText } from "./terminal-text.js";
import type { JsonRecord } from "./dataset/jsonl.js";
import { classifyBatches } from "./dataset/classify-batch.js";
import { DATASET_HELP, DATASET_OPTIONS, describePlan, loadDatasetModel, planDataset, runPlan, summaryLine } from "./dataset/session.js";

export const CLASSIFY_HELP = `Usage: perceiver classify <image|dir|glob...> [options]

Classify images (PNG, JPEG, WebP, GIF, BMP) with a Perceiver IO ImageNet model and print the top-k labels.

Options:
  --model <repo|folder|file>  hub repo id, local folder (config.json + model.safetensors or
                              pytorch_model.bin) or checkpoint file   [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N    [default: main]
  --top-k <n>                 labels per image                        [default: 5]
  --json                      one JSON object per image on stdout: {"file", "seconds", "batch", "top_k"}
                              ("seconds": the image's share of its batch's forward pass); --out
                              records have the same fields
  --logits                    with --json or --out: include the raw logits
${DATASET_HELP}

Exit code: 0 when every image was classified, 1 when any failed (after all the others are done), 2 on a
usage error. Datasets, sharding and resuming: docs/datasets.md.

Environment: HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE, HF_HUB_OFFLINE=1,
HF_HUB_DISABLE_PROGRESS_BARS=1 (see the README).`;

/** "0.41 s" for an image alone, "0.41 s/image, batch of 4" for a share of a batch. */
export function perImageTime(seconds: number, batch: number): string {
  return batch > 1 ? `${seconds.toFixed(2)} s/image, batch of ${batch}` : `${seconds.toFixed(2)} s`;
}

export async function classify(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("classify", argv, {
    ...DATASET_OPTIONS,
    "top-k": { type: "string" },
    json: { type: "boolean", default: false },
    logits: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(CLASSIFY_HELP);
    return 0;
  }
  const topKCount = positiveInt("top-k", values["top-k"], 5, 100_000);
  if (values.logits && !values.json && values.out === undefined) throw new PerceiverError("USAGE", "--logits needs --json or --out");
  await applyComputeOptions(values);
  // every input is expanded and checked, and --out prepared, before the model is loaded (or downloaded)
  const plan = await planDataset("classify", positionals, values, (r) => Array.isArray(r.top_k) && r.true_label === undefined);
  describePlan(plan, values.quiet);

  const { model, processorConfig } = await loadDatasetModel(plan, values, !values.quiet && !values.json);
  const forward = classifyBatches("classify", model, processorConfig, plan, topKCount);
  const result = await runPlan(plan, {
    label: "classify",
    processorConfig,
    values,
    async compute(pixels, files, onLayer) {
      return (await forward(pixels, onLayer)).map(({ seconds, batch, top_k, logits }, i) => {
        const rec: JsonRecord = { file: files[i], seconds, batch, top_k };
        if (values.logits) rec.logits = Array.from(logits);
        return rec;
      });
    },
    onRecord(rec, print, writing) {
      if (values.json) print(`${terminalJson(rec)}\n`);
      else if (rec.error === undefined && !writing) print(table(rec));
    },
  });
  if (!values.quiet) console.error(summaryLine("classify", result, plan));
  return result.failed > 0 ? 1 : 0;
}

/** The text output of one image: its name and time, then a table of its top-k labels. */
function table(rec: JsonRecord): string {
  const preds = rec.top_k as { index: number; label: string; score: number }[];
  const labels = preds.map((p) => terminalText(p.label));
  const w = Math.max(...labels.map((l) => l.length), 5);
  const lines = [
    `${printable(rec.file)}  (${perImageTime(rec.seconds as number, rec.batch as number)})`,
    `   #  ${"label".padEnd(w)}  ${"index".padStart(5)}  probability`,
    ...preds.map((p, r) => `  ${String(r + 1).padStart(2)}  ${labels[r].padEnd(w)}  ${String(p.index).padStart(5)}  ${p.score.toFixed(4)}`),
  ];
  return `${lines.join("\n")}\n`;
}
