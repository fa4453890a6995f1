/**
 * `perceiver train-head <dir> --model M --out OUTDIR`: train a new classification decoder on an ImageFolder.
 * 1. walk the class folders (dataset/image-folder.ts); 2. compute each image's final latents once, cached under OUTDIR
 * (latent-cache.ts, resumable); 3. trainDecoder on the frozen latents; 4. write OUTDIR as a Hugging Face checkpoint
 * (config.json with the class names, model.safetensors with the encoder unchanged and the new decoder,
 * preprocessor_config.json copied from the base) and train_log.json.
 */
import { copyFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { totalmem } from "node:os";
import { join } from "node:path";
import { PerceiverError } from "../errors.js";
import { writeSafetensorsFile } from "../io/checkpoint/safetensors-node.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import { loadImageFile } from "../io/image/decode-node.js";
import { preprocessBatch } from "../io/image/image-processor.js";
import { loadFromFiles, readImageProcessorConfigFile, readStateDictFile, resolveModelFiles } from "../perceiver/load.js";
import { headCheckpointTensors, headConfigJson } from "../perceiver/train/checkpoint.js";
import { TRAIN_DEFAULTS, trainDecoder, type EpochStats, type TrainExample } from "../perceiver/train/train.js";
import { parseCommandArgs } from "./args.js";
import { COMPUTE_HELP, IMAGE_HELP, MODEL_COMMAND_OPTIONS, applyComputeOptions, positiveInt, printable } from "./common.js";
import { LatentCache } from "./latent-cache.js";
import { downloadProgress, progressEnabled } from "./progress.js";
import { readImageFolder, type FolderImage } from "./dataset/image-folder.js";

const D = TRAIN_DEFAULTS;
export const TRAIN_HEAD_HELP = `Usage: perceiver train-head <dir> --out <outdir> [options]

Train a new classifier head (a Hugging Face PerceiverClassificationDecoder: trainable query, cross-attention
layer, final layer with one output per class) on the frozen features of a pretrained model. <dir> holds one
sub-folder of images per class (found as classify finds them in a folder: by extension or content, hidden
files skipped); the folder names become the labels.

Each image's final latents are computed once and cached in <outdir>/latents-cache (a stopped run resumes
there). <outdir> becomes a complete checkpoint: perceiver classify --model <outdir> uses it, and so does
transformers' from_pretrained.

Options:
  --out <dir>                 where the checkpoint, the cache and train_log.json go (required)
  --model <repo|folder|file>  the base model                                     [default: ${DEFAULT_MODEL}]
  --revision <rev>            hub branch, tag, commit or refs/pr/N               [default: main]
  --val <dir>                 a separate validation folder (same class names)
  --val-split <f>             held-out fraction of <dir> when --val is not given [default: ${D.valSplit}]
  --epochs <n>                passes over the training images                    [default: ${D.epochs}]
  --lr <x>                    AdamW learning rate                                [default: ${D.lr}]
  --weight-decay <x>          AdamW weight decay (on the Linear weights)         [default: ${D.weightDecay}]
  --batch-size <n>            images per training step                           [default: ${D.batchSize}]
  --seed <n>                  initialization, split and shuffling (same seed: same checkpoint)  [default: ${D.seed}]
${IMAGE_HELP}
${COMPUTE_HELP}
  --quiet                     only the per-epoch lines
  --debug                     print stack traces on errors
  -h, --help                  show this help

Prints one line per epoch (train loss and accuracy, validation loss and accuracy); the epoch with the best
validation accuracy is saved.`;

function number(name: string, v: string | undefined, dflt: number, ok: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x) || !ok(x)) throw new PerceiverError("USAGE", `--${name} must be ${what}, got ${JSON.stringify(v)}`);
  return x;
}

const pct = (x: number) => (Number.isNaN(x) ? "   -  " : `${(100 * x).toFixed(1).padStart(5)}%`);

export function formatEpoch(s: EpochStats): string {
  const w = String(s.epochs).length;
  const val = s.valCount ? `val loss ${s.valLoss.toFixed(4)}  val acc ${pct(s.valAccuracy)} (${s.valCorrect}/${s.valCount})` : "no validation";
  return `epoch ${String(s.epoch).padStart(w)}/${s.epochs}  train loss ${s.trainLoss.toFixed(4)}  train acc ${pct(s.trainAccuracy)}  ${val}  ${s.seconds.toFixed(1)} s${s.best ? "  *" : ""}`;
}

export async function trainHead(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("train-head", argv, {
    ...MODEL_COMMAND_OPTIONS,
    out: { type: "string" },
    val: { type: "string" },
    "val-split": { type: "string" },
    epochs: { type: "string" },
    lr: { type: "string" },
    "weight-decay": { type: "string" },
    "batch-size": { type: "string" },
    seed: { type: "string" },
  });
  if (values.help) {
    console.log(TRAIN_HEAD_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new PerceiverError("USAGE", "train-head: give one dataset folder (see perceiver train-head --help)");
  if (!values.out) throw new PerceiverError("USAGE", "train-head: --out <dir> is required");
  const outDir = values.out;
  const epochs = positiveInt("epochs", values.epochs, D.epochs, 100_000);
  const batchSize = positiveInt("batch-size", values["batch-size"], D.batchSize, 65_536);
  const lr = number("lr", values.lr, D.lr, (x) => x > 0 && x < 10, "a number in (0, 10)");
  const weightDecay = number("weight-decay", values["weight-decay"], D.weightDecay, (x) => x >= 0 && x < 10, "a number in [0, 10)");
  const valSplit = number("val-split", values["val-split"], D.valSplit, (x) => x >= 0 && x < 1, "a fraction in [0, 1)");
  const seed = number("seed", values.seed, D.seed, (x) => Number.isSafeInteger(x) && x >= 0, "a non-negative integer");
  if (values.val !== undefined && values["val-split"] !== undefined) throw new PerceiverError("USAGE", "give --val or --val-split, not both");
  const quiet = values.quiet;
  const showProgress = progressEnabled(quiet);
  const log = (s: string) => { if (!quiet) console.error(s); };

  // the dataset first: a wrong folder fails before any model is downloaded
  const train = await readImageFolder(positionals[0]);
  const val = values.val !== undefined ? await readImageFolder(values.val, train.classes) : null;
  log(`${train.images.length} images in ${train.classes.length} classes (${train.classes.map((c) => printable(c)).join(", ")})${val ? `, ${val.images.length} validation images` : ""}`);
  if (train.classes.length < 2) throw new PerceiverError("INPUT_INVALID", `${positionals[0]}: a classifier needs at least 2 class folders, found ${train.classes.length}`);

  await applyComputeOptions(values);
  const download = downloadProgress(showProgress);
  let files;
  try {
    files = await resolveModelFiles(values.model ?? DEFAULT_MODEL, { revision: values.revision, onProgress: download.onProgress });
  } finally {
    download.stop();
  }
  if (!files.configPath) throw new PerceiverError("CHECKPOINT_NOT_FOUND", `no config.json next to ${files.weightsPath}`);
  const configText = await readFile(files.configPath, "utf8");
  const baseConfig = JSON.parse(configText) as Record<string, unknown>;
  const processorConfig = await readImageProcessorConfigFile(files.preprocessorConfigPath);
  const model = await loadFromFiles(files);
  const N = model.config.numLatents, Dl = model.config.dLatents;

  // memory: every image's latents are held while training (float32)
  const count = train.images.length + (val?.images.length ?? 0);
  const bytes = count * N * Dl * 4;
  if (bytes > 0.8 * totalmem()) {
    throw new PerceiverError("MEMORY_LIMIT", `${count} images x ${N}x${Dl} latents need ${(bytes / 2 ** 30).toFixed(1)} GiB in memory, more than the total memory (${(totalmem() / 2 ** 30).toFixed(1)} GiB): use fewer images`);
  }

  await mkdir(outDir, { recursive: true });
  const wst = await stat(files.weightsPath);
  const cache = await LatentCache.open(outDir, {
    weights: files.weightsPath, weightsSize: wst.size, weightsMtimeMs: wst.mtimeMs, config: configText,
    imageProcessor: processorConfig, exifOrientation: !values["ignore-exif"], numLatents: N, dLatents: Dl,
  }, N, Dl);

  const extract = async (images: FolderImage[], what: string): Promise<TrainExample[]> => {
    const out: TrainExample[] = [];
    let cached = 0, computed = 0, seconds = 0;
    for (const [i, img] of images.entries()) {
      let z = await cache.get(img.path);
      if (z) cached++;
      else {
        const t0 = performance.now();
        let pixels;
        try {
          pixels = preprocessBatch([await loadImageFile(img.path, { exifOrientation: !values["ignore-exif"] })], processorConfig);
        } catch (e) {
          const msg = (e as Error).message;
          throw e instanceof PerceiverError ? new PerceiverError(e.code, `${img.path}: ${msg} (remove or fix the file; finished images stay cached)`, { cause: e }) : e;
        }
        z = (await model.extractFeatures(pixels)).latents.data;
        await cache.put(img.path, img.relPath, z);
        seconds += (performance.now() - t0) / 1000;
        computed++;
      }
      out.push({ latents: z, label: img.label });
      if (showProgress || (i + 1) % 100 === 0 || i + 1 === images.length) {
        const rate = computed ? `, ${(seconds / computed).toFixed(2)} s/image` : "";
        const line = `${what} latents ${i + 1}/${images.length} (${cached} cached${rate})`;
        if (showProgress) process.stderr.write(`\r${line}${i + 1 === images.length ? "\n" : ""}`);
        else log(line);
      }
    }
    return out;
  };
  const examples = await extract(train.images, "training");
  const validation = val ? await extract(val.images, "validation") : undefined;

  const numLabels = train.classes.length;
  const initializerRange = typeof baseConfig.initializer_range === "number" ? baseConfig.initializer_range : D.initializerRange;
  const result = await trainDecoder(model, examples, {
    numLabels, epochs, lr, batchSize, weightDecay, seed, valSplit, validation, initializerRange, inPlace: true,
    // on a terminal, the images done in the current epoch on one line of stderr, cleared before each epoch's line
    onProgress: showProgress ? (p) => process.stderr.write(`\repoch ${p.epoch}/${p.epochs}: ${p.done}/${p.total} images`) : undefined,
    onEpoch: (s) => {
      if (showProgress) process.stderr.write("\r\x1b[K");
      console.log(formatEpoch(s));
    },
  });
  const best = result.history[result.bestEpoch - 1];
  log(`kept epoch ${result.bestEpoch}${best.valCount ? ` (val acc ${pct(best.valAccuracy).trim()})` : " (the last; no validation set)"}`);

  // the checkpoint
  const base = await readStateDictFile(files.weightsPath);
  const config = headConfigJson(baseConfig, train.classes);
  await writeFile(join(outDir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  await writeSafetensorsFile(join(outDir, "model.safetensors"), headCheckpointTensors(base, result.params, result.shape), { format: "pt" });
  if (files.preprocessorConfigPath) await copyFile(files.preprocessorConfigPath, join(outDir, "preprocessor_config.json"));
  const trainLog = {
    base_model: values.model ?? DEFAULT_MODEL, classes: train.classes,
    options: { epochs, lr, batch_size: batchSize, weight_decay: weightDecay, seed, val_split: val ? null : valSplit, initializer_range: initializerRange },
    best_epoch: result.bestEpoch, history: result.history,
    latents_cache: cache.dir,
    train: await Promise.all(result.split.train.map(async (i) => ({ file: train.images[i].relPath, label: train.images[i].label, cache: await cache.pathOf(train.images[i].path) }))),
    val: val
      ? await Promise.all(val.images.map(async (im) => ({ file: im.relPath, label: im.label, cache: await cache.pathOf(im.path) })))
      : await Promise.all(result.split.val.map(async (i) => ({ file: train.images[i].relPath, label: train.images[i].label, cache: await cache.pathOf(train.images[i].path) }))),
  };
  await writeFile(join(outDir, "train_log.json"), `${JSON.stringify(trainLog, null, 1)}\n`);
  log(`wrote ${outDir} (config.json, model.safetensors${files.preprocessorConfigPath ? ", preprocessor_config.json" : ""}, train_log.json)`);
  return 0;
}
