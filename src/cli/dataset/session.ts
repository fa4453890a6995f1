/**
 * What classify, embed and eval share around their own logic: the options, expanding and checking the inputs and
 * the --out file before the model is loaded, --shard and --resume, loading the model, the run (decode pool, --out,
 * progress bar, error lines), and the summary line. classify-batch.ts: the forward pass classify and eval share.
 */
import { PerceiverError } from "../../errors.js";
import type { ImageProcessorConfig } from "../../io/image/image-processor.js";
import type { PerceiverForImageClassification } from "../../perceiver/model.js";
import { COMPUTE_HELP, IMAGE_HELP, loadCliModel, MODEL_COMMAND_OPTIONS, positiveInt, printable } from "../common.js";
import { progressEnabled } from "../progress.js";
import { DecodePool, defaultDecodeWorkers } from "./decode-pool.js";
import { expandInputs } from "./inputs.js";
import { checkOutputFile, isErrorRecord, JsonlWriter, repairForResume, type JsonRecord } from "./jsonl.js";
import { DatasetProgress } from "./progress-bar.js";
import { runDataset, type DatasetRunOptions, type DatasetRunResult } from "./run.js";
import { parseShard, shardFiles, type Shard } from "./shard.js";

/** parseArgs entries of a dataset command: the model command's, then the dataset options. */
export const DATASET_OPTIONS = {
  ...MODEL_COMMAND_OPTIONS,
  "files-from": { type: "string" },
  out: { type: "string" },
  resume: { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  shard: { type: "string" },
  shards: { type: "string" },
  "batch-size": { type: "string" },
  "decode-workers": { type: "string" },
} as const;

/** Help lines of a dataset command after its own options: image, compute and output switches, then the inputs. */
export const DATASET_HELP = `${IMAGE_HELP}
${COMPUTE_HELP}
  --quiet                     no progress output on stderr
  --debug                     print stack traces on errors
  -h, --help                  show this help

Inputs: image files, directories (walked recursively: image files by extension or content, sorted),
glob patterns (quoted, e.g. 'val/**/*.JPEG'), in any mix.
  --files-from <list|->       also the paths in LIST, one per line (- reads them from stdin)
  --out <file.jsonl>          write one JSON record per image as it completes (a failed image:
                              {"file","error":{"code","message"}}); nothing is lost if killed
  --resume                    continue --out: skip the images it records as done (a failed one is retried)
  --force                     replace an existing --out file
  --shard <i/n|auto>          only part i (0-based) of n of the sorted list; auto: from JOB_COMPLETION_INDEX
                              (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID/_COUNT (SLURM job array)
  --shards <n>                the shard count for --shard auto where the scheduler does not give it
  --batch-size <n>            images per forward pass                        [default: 1]
  --decode-workers <n>        threads decoding the next images during the forward pass (0: none)
                              [default: cores - 1, from 1 to 4]`;

export interface DatasetValues {
  "files-from"?: string;
  out?: string;
  resume: boolean;
  force: boolean;
  shard?: string;
  shards?: string;
  "batch-size"?: string;
  "decode-workers"?: string;
  quiet: boolean;
}

export interface DatasetPlan {
  /** every input image, in input order (before --shard) */
  all: string[];
  /** this shard's images (before --resume) */
  mine: string[];
  /** what is left to do */
  todo: string[];
  shard: Shard | null;
  /** the images recorded as done in --out (with --resume) */
  done: Set<string>;
  /** records dropped from --out by --resume (failed images, repeats) and torn bytes cut off */
  repaired: { tornBytes: number; dropped: number };
  batchSize: number;
  decodeWorkers: number;
  showProgress: boolean;
}

/**
 * Expands and checks the inputs and options, and prepares --out (refuse to overwrite; with --resume repair it and
 * read what is done). `isOwnRecord` says whether a successful record was written by this command; `onDoneRecord`
 * sees each successful record --resume keeps (embed --features-out and eval take their results from it).
 */
export async function planDataset(
  command: string,
  positionals: string[],
  values: DatasetValues,
  isOwnRecord: (r: JsonRecord) => boolean,
  onDoneRecord?: (r: JsonRecord) => void,
): Promise<DatasetPlan> {
  const batchSize = positiveInt("batch-size", values["batch-size"], 1, 256);
  const dw = values["decode-workers"];
  if (dw !== undefined && !(/^\d+$/.test(dw) && Number(dw) <= 16)) {
    throw new PerceiverError("USAGE", `--decode-workers must be an integer from 0 to 16, got ${JSON.stringify(dw)}`);
  }
  const decodeWorkers = dw === undefined ? defaultDecodeWorkers() : Number(dw);
  if (values.resume && values.out === undefined) throw new PerceiverError("USAGE", "--resume needs --out FILE.jsonl");
  if (values.force && values.resume) throw new PerceiverError("USAGE", "--force and --resume contradict each other");
  const shard = parseShard(values.shard, values.shards);
  const all = await expandInputs(positionals, { filesFrom: values["files-from"], command });
  const mine = shardFiles(all, shard);
  const done = new Set<string>();
  let repaired = { tornBytes: 0, dropped: 0 };
  if (values.out !== undefined) {
    const exists = await checkOutputFile(values.out, { resume: values.resume, force: values.force, flag: "--out" });
    if (exists && values.resume) {
      repaired = await repairForResume(values.out, (r, line) => {
        if (isErrorRecord(r)) return false; // retried
        if (!isOwnRecord(r)) {
          throw new PerceiverError("USAGE", `--resume: ${values.out}, line ${line}, is not a record of perceiver ${command} (another command's output?)`);
        }
        if (done.has(r.file)) return false;
        done.add(r.file);
        onDoneRecord?.(r);
        return true;
      });
    }
  }
  const todo = mine.filter((f) => !done.has(f));
  return { all, mine, todo, shard, done, repaired, batchSize, decodeWorkers, showProgress: progressEnabled(values.quiet) };
}

/** One line on stderr about what --shard and --resume left to do (nothing with --quiet). */
export function describePlan(plan: DatasetPlan, quiet: boolean): void {
  if (quiet) return;
  const parts: string[] = [];
  if (plan.shard) parts.push(`shard ${plan.shard.index}/${plan.shard.count}: ${plan.mine.length} of ${plan.all.length} images`);
  const already = plan.mine.length - plan.todo.length;
  if (plan.done.size > 0 || plan.repaired.dropped > 0 || plan.repaired.tornBytes > 0) {
    parts.push(`resuming: ${already} done, ${plan.todo.length} to do`);
    if (plan.repaired.tornBytes > 0) parts.push(`cut a torn last line (${plan.repaired.tornBytes} bytes)`);
    if (plan.repaired.dropped > 0) parts.push(`${plan.repaired.dropped} failed or repeated records dropped`);
  }
  if (parts.length) console.error(parts.join("; "));
}

/**
 * `--model` / `--revision` -> the model and its image processor settings, loaded after planDataset (a bad input
 * costs no download); "model loaded in" on stderr when `log`.
 */
export async function loadDatasetModel(
  plan: DatasetPlan,
  values: { model?: string; revision?: string },
  log: boolean,
): Promise<{ model: PerceiverForImageClassification; processorConfig: Partial<ImageProcessorConfig> }> {
  const { model, processorConfig, seconds } = await loadCliModel({ model: values.model, revision: values.revision, showProgress: plan.showProgress });
  if (log) console.error(`model loaded in ${seconds.toFixed(1)} s`);
  return { model, processorConfig };
}

export interface PlanRunOptions {
  /** the command, for the progress bar */
  label: string;
  processorConfig: Partial<ImageProcessorConfig>;
  /** --out, --resume, --ignore-exif */
  values: { out?: string; resume: boolean; "ignore-exif": boolean };
  prefail?: DatasetRunOptions["prefail"];
  compute: DatasetRunOptions["compute"];
  /**
   * The command's own use of each record, in list order, after --out and a failed image's error line: `print`
   * writes to stdout around the progress bar; `writing` says whether --out takes the records.
   */
  onRecord?(record: JsonRecord, print: (text: string) => void, writing: boolean): void;
}

/**
 * Runs the plan's images through `compute`: the decode pool, the progress bar and --out (each record written as
 * it comes, the file fsync'ed after each batch); a failed image's error is printed on stderr (also under --quiet).
 */
export async function runPlan(plan: DatasetPlan, opts: PlanRunOptions): Promise<DatasetRunResult> {
  const { values } = opts;
  const writer = values.out === undefined ? null : JsonlWriter.open(values.out, values.resume);
  const workers = plan.todo.length > 1 ? Math.min(plan.decodeWorkers, plan.todo.length) : 0;
  const pool = DecodePool.create({ workers, processorConfig: opts.processorConfig, exifOrientation: !values["ignore-exif"] });
  const progress = new DatasetProgress(plan.showProgress, plan.todo.length, opts.label);
  const print = (text: string) => progress.print(text);
  try {
    return await runDataset({
      files: plan.todo,
      pool,
      batchSize: plan.batchSize,
      prefail: opts.prefail,
      progress,
      compute: opts.compute,
      emit(rec) {
        writer?.write(rec);
        if (rec.error !== undefined) progress.print(`perceiver: error: ${printable((rec.error as { message: string }).message)}\n`, process.stderr);
        opts.onRecord?.(rec, print, writer !== null);
      },
      afterBatch: () => writer?.sync(),
    });
  } finally {
    progress.stop();
    writer?.close();
    await pool.close();
  }
}

/** The summary line: images, time, rate, failures. */
export function summaryLine(command: string, r: { ok: number; failed: number; seconds: number }, plan: DatasetPlan): string {
  const n = r.ok + r.failed;
  const rate = r.seconds > 0 ? n / r.seconds : 0;
  const already = plan.mine.length - plan.todo.length;
  return `${command}: ${n} image${n === 1 ? "" : "s"} in ${r.seconds.toFixed(1)} s (${rate.toFixed(2)} images/s, batch size ${plan.batchSize}), `
    + `${r.ok} ok, ${r.failed} failed${already > 0 ? `, ${already} done before` : ""}`;
}
