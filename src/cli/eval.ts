/** `perceiver eval <dir...>`: top-1 / top-5 accuracy of the model on a labelled image folder. */
import { PerceiverError } from "../errors.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { parseCommandArgs } from "./args.js";
import { applyComputeOptions, positiveInt } from "./common.js";
import { EvalTally, mergeEvalOutputs, outcomeOf, summaryText } from "./dataset/accuracy.js";
import type { JsonRecord } from "./dataset/jsonl.js";
import { classifyBatches } from "./dataset/classify-batch.js";
import { DATASET_HELP, DATASET_OPTIONS, describePlan, loadDatasetModel, planDataset, runPlan, summaryLine } from "./dataset/session.js";
import { directoryInputs, trueLabels } from "./dataset/true-labels.js";

export const EVAL_HELP = `Usage: perceiver eval <dir...> [options]
       perceiver eval --merge <a.jsonl> <b.jsonl> ... [--json]

Measure top-1 and top-5 accuracy on labelled images. Layouts:
  ImageFolder   <dir>/<class>/.../<image>: the class folder's name is a label of the model's id2label
                exactly, an ImageNet synset id (n02123045; 1000-class models), or mapped by --label-map
  flat          --labels FILE with lines "relative/path label" (tab, or first space); the label a name,
                a synset id, or a class index

Options:
  --model <repo|folder|file>  hub repo id, local folder or checkpoint file  [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N          [default: main]
  --labels <file>             true labels of a flat folder (see above)
  --label-map <file>          class folder -> label: JSON {"folder": label} or "folder label" lines
  --top-k <n>                 predictions kept per image in --out records (at least 5) [default: 5]
  --json                      print the summary as one line {"n", "top1", "top5", "failed"}: images
                              evaluated, accuracies as fractions, images that could not be read
  --merge                     the positionals are --out files of shards: print their combined summary
${DATASET_HELP}

--out records are classify's with the true label: {"file", "true_label": {"index", "label"}, "top_k", ...}.
Exit code 1 when any image failed. ImageNet and cluster recipes: docs/datasets.md.`;

export async function evaluate(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("eval", argv, {
    ...DATASET_OPTIONS,
    labels: { type: "string" },
    "label-map": { type: "string" },
    "top-k": { type: "string" },
    json: { type: "boolean", default: false },
    merge: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(EVAL_HELP);
    return 0;
  }
  if (values.merge) return merge(positionals, values);
  if (values.labels !== undefined && values["label-map"] !== undefined) throw new PerceiverError("USAGE", "--labels (a flat folder) and --label-map (class folders) exclude each other");
  const topKCount = Math.max(5, positiveInt("top-k", values["top-k"], 5, 100_000));
  await applyComputeOptions(values);

  const tally = new EvalTally();
  const plan = await planDataset("eval", positionals, values, (r) => outcomeOf(r) !== null, (r) => tally.add(r.file, outcomeOf(r)));
  // records in --out of images outside this run's inputs (another shard's) do not count here
  const mine = new Set(plan.mine);
  for (const f of [...tally.outcomes.keys()]) if (!mine.has(f)) tally.outcomes.delete(f);
  describePlan(plan, values.quiet);

  const { model, processorConfig } = await loadDatasetModel(plan, values, !values.quiet);
  const space = { numLabels: model.config.numLabels, id2label: model.config.id2label };
  const truth = await trueLabels(plan.todo, await directoryInputs(positionals), space, { labelsFile: values.labels, labelMapFile: values["label-map"] });
  if (!values.quiet && truth.layout === "imagefolder") {
    const m = truth.matched;
    console.error(`class folders: ${m.byName} by label, ${m.bySynset} by synset id, ${m.byMap} by --label-map`);
  }
  const forward = classifyBatches("eval", model, processorConfig, plan, topKCount);
  const result = await runPlan(plan, {
    label: "eval",
    processorConfig,
    values,
    prefail: truth.missing,
    async compute(pixels, files, onLayer) {
      return (await forward(pixels, onLayer)).map(({ seconds, batch, top_k }, i): JsonRecord => {
        const file = files[i];
        const label = truth.labels.get(file)!;
        return { file, true_label: { index: label, label: model.config.id2label[label] ?? `LABEL_${label}` }, seconds, batch, top_k };
      });
    },
    onRecord: (rec) => tally.add(rec.file, rec.error === undefined ? outcomeOf(rec) : null),
  });
  const summary = tally.summary();
  if (!values.quiet) console.error(summaryLine("eval", result, plan));
  console.log(values.json ? JSON.stringify(summary) : summaryText(summary));
  return summary.failed.length > 0 ? 1 : 0;
}

async function merge(paths: string[], values: { json: boolean; quiet: boolean; out?: string; shard?: string; resume: boolean }): Promise<number> {
  if (paths.length === 0) throw new PerceiverError("USAGE", "eval --merge: give the --out files of the shards");
  if (values.out !== undefined || values.shard !== undefined || values.resume) throw new PerceiverError("USAGE", "eval --merge takes only .jsonl files (and --json)");
  const tally = await mergeEvalOutputs(paths, (msg) => {
    if (!values.quiet) console.error(`perceiver: warning: ${msg}`);
  });
  const summary = tally.summary();
  console.log(values.json ? JSON.stringify(summary) : summaryText(summary));
  return summary.failed.length > 0 ? 1 : 0;
}
