/**
 * The one-call API in the shape transformers.js users know:
 *
 *   const classify = await pipeline("image-classification", "deepmind/vision-perceiver-conv", { progress_callback });
 *   await classify("cat.png")                 -> [{ label, score }, ...]       (topK best, default 5)
 *   await classify([url, blob, bytes], { topK: 3 }) -> one such list per input
 *   const extract = await pipeline("image-feature-extraction", model);
 *   await extract(image)                      -> Tensor [B, dLatents]          (the latents' mean; pool: false ->
 *                                                                               all latents [B, numLatents, dLatents])
 *   await classify.dispose()                  frees the model (and the worker threads, with the last pipeline)
 *
 * The model is a hub repo id, a local folder or checkpoint file (Node), a URL, or an already built model; it is
 * loaded by PerceiverForImageClassification.fromPretrained, with its preprocessor_config.json. Inputs: inputs.ts.
 */
import { PerceiverError } from "../errors.js";
import { DEFAULT_MODEL } from "../io/hub/default-model.js";
import { preprocessBatch } from "../io/image/image-processor.js";
import { topK } from "../perceiver/labels.js";
import { PerceiverForImageClassification } from "../perceiver/model.js";
import type { LoadOptions, NamedBlob, ProgressCallback } from "../perceiver/pretrained.js";
import { Tensor } from "../tensor/tensor.js";
import { registerPipeline, runExclusive, unregisterPipeline, type ComputeSettings } from "./compute.js";
import { describeInput, loadImageInput, type ImageInput, type ImageInputOptions } from "./inputs.js";

export const PIPELINE_TASKS = ["image-classification", "image-feature-extraction"] as const;
export type PipelineTask = (typeof PIPELINE_TASKS)[number];

export interface PipelineOptions extends LoadOptions, ComputeSettings {}

export interface CallOptions extends ImageInputOptions {
  /** Images per forward pass (default 1: the least memory; a larger batch runs a little faster per image). */
  batchSize?: number;
}

export interface ClassifyOptions extends CallOptions {
  /** Labels per image, best first (default 5). `top_k` is accepted too. */
  topK?: number;
  top_k?: number;
}

export interface FeatureExtractionOptions extends CallOptions {
  /** true (default): the latents' mean, [B, dLatents]; false: all final latents, [B, numLatents, dLatents]. */
  pool?: boolean;
}

export interface ImageClassificationResult {
  label: string;
  score: number;
}

interface PipelineBase {
  readonly task: PipelineTask;
  /** The model (throws DISPOSED after dispose()). */
  readonly model: PerceiverForImageClassification;
  /** Frees the model; the last live pipeline also stops the worker threads. Later calls throw DISPOSED. */
  dispose(): Promise<void>;
}

export interface ImageClassificationPipeline extends PipelineBase {
  (input: ImageInput, options?: ClassifyOptions): Promise<ImageClassificationResult[]>;
  (input: ImageInput[], options?: ClassifyOptions): Promise<ImageClassificationResult[][]>;
  readonly task: "image-classification";
}

export interface ImageFeatureExtractionPipeline extends PipelineBase {
  (input: ImageInput | ImageInput[], options?: FeatureExtractionOptions): Promise<Tensor>;
  readonly task: "image-feature-extraction";
}

export type Pipeline = ImageClassificationPipeline | ImageFeatureExtractionPipeline;

/** A hub repo id, a folder or checkpoint file (Node), a URL, picked Files (browser), or a built model. */
export type ModelSpec = string | readonly NamedBlob[] | PerceiverForImageClassification;

export async function pipeline(task: "image-classification", model?: ModelSpec, options?: PipelineOptions): Promise<ImageClassificationPipeline>;
export async function pipeline(task: "image-feature-extraction", model?: ModelSpec, options?: PipelineOptions): Promise<ImageFeatureExtractionPipeline>;
export async function pipeline(task: PipelineTask, model?: ModelSpec, options?: PipelineOptions): Promise<Pipeline>;
export async function pipeline(
  task: PipelineTask, model: ModelSpec = DEFAULT_MODEL, options: PipelineOptions = {},
): Promise<Pipeline> {
  if (!(PIPELINE_TASKS as readonly string[]).includes(task)) {
    throw new PerceiverError("INPUT_INVALID", `pipeline: unknown task ${JSON.stringify(task)} (supported: ${PIPELINE_TASKS.join(", ")})`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 64)) {
    throw new PerceiverError("INPUT_INVALID", `pipeline: threads must be an integer from 1 to 64, got ${options.threads}`);
  }
  if (options.backend !== undefined && options.backend !== "ts" && options.backend !== "wasm") {
    throw new PerceiverError("INPUT_INVALID", `pipeline: backend must be "ts" or "wasm", got ${JSON.stringify(options.backend)}`);
  }
  const name = typeof model === "string" ? model : isFiles(model) ? "local files" : "model";
  let m: PerceiverForImageClassification | null =
    typeof model === "string" || isFiles(model)
      ? await PerceiverForImageClassification.fromPretrained(model, { ...options, progress_callback: withoutReady(options.progress_callback) })
      : model;
  if (!(m instanceof PerceiverForImageClassification)) {
    throw new PerceiverError("INPUT_INVALID", "pipeline: model must be a repo id, a path, a URL, an array of Files or a PerceiverForImageClassification");
  }
  const settings: ComputeSettings = { backend: options.backend, threads: options.threads };
  // apply the backend and threads asked for now: where they cannot run (wasm without SIMD; threads on a page that
  // is not cross-origin isolated, or on a browser's main thread) pipeline() fails with the reason, not each call
  if (settings.backend !== undefined || settings.threads !== undefined) await runExclusive(settings, async () => undefined);
  const progress = options.progress_callback;
  const pending = new Set<Promise<unknown>>();
  const self = {};
  registerPipeline(self);

  const current = (): PerceiverForImageClassification => {
    if (m === null) throw new PerceiverError("DISPOSED", `this ${task} pipeline was disposed`);
    return m;
  };

  /**
   * Inputs -> one result per input: `forward` runs on batches of pixel tensors [B, 3, H, W] and returns B results;
   * its layer progress becomes compute events counted over the whole call. One forward pass at a time across
   * pipelines (runExclusive).
   */
  const run = async <R>(input: ImageInput | ImageInput[], opts: CallOptions, forward: (model: PerceiverForImageClassification, pixels: Tensor, onProgress: (done: number, total: number) => void) => Promise<R[]>): Promise<R[]> => {
    const model = current();
    const inputs = Array.isArray(input) ? input : [input];
    const batchSize = opts.batchSize ?? 1;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new PerceiverError("INPUT_INVALID", `batchSize must be a positive integer, got ${batchSize}`);
    const layers = model.numLayerApplications;
    const total = layers * inputs.length;
    const results: R[] = [];
    for (let start = 0; start < inputs.length; start += batchSize) {
      // decode and preprocess one image at a time: only the pixel tensors of one batch are held
      const batch: Tensor[] = [];
      for (let i = start; i < Math.min(start + batchSize, inputs.length); i++) {
        try {
          const img = await loadImageInput(inputs[i], opts);
          batch.push(preprocessBatch([img], model.imageProcessorConfig));
        } catch (e) {
          if (!(e instanceof PerceiverError) || !Array.isArray(input)) throw e;
          throw new PerceiverError(e.code, `input ${i} (${describeInput(inputs[i])}): ${e.message}`, { cause: e });
        }
      }
      // images of one forward pass must have one size (they do when the processor resizes)
      for (const group of sameSizeGroups(batch)) {
        const done0 = results.length * layers;
        const out = await runExclusive(settings, () =>
          forward(current(), stack(group), (done, t) => {
            const d = done0 + (done / t) * group.length * layers; // t = layers: every layer ran on the group's images
            progress?.({ status: "compute", name, task, done: d, total, progress: (100 * d) / total });
          }));
        results.push(...out);
      }
    }
    return results;
  };

  const track = <R>(p: Promise<R>): Promise<R> => {
    pending.add(p);
    const forget = () => pending.delete(p);
    p.then(forget, forget);
    return p;
  };

  let fn: (input: ImageInput | ImageInput[], opts?: ClassifyOptions & FeatureExtractionOptions) => Promise<unknown>;
  if (task === "image-classification") {
    fn = (input, opts = {}) => track((async () => {
      const k = opts.topK ?? opts.top_k ?? 5;
      if (!Number.isInteger(k) || k < 0) throw new PerceiverError("INPUT_INVALID", `topK must be a non-negative integer, got ${k}`);
      const lists = await run(input, opts, async (model, pixels, onProgress) => {
        const { logits } = await model.forward(pixels, { onProgress });
        return topK(logits, k, model.config.id2label).map((list) => list.map(({ label, score }) => ({ label, score })));
      });
      return Array.isArray(input) ? lists : lists[0];
    })());
  } else {
    fn = (input, opts = {}) => track((async () => {
      const pool = opts.pool ?? true;
      const rows = await run(input, opts, async (model, pixels, onProgress) => {
        const f = await model.extractFeatures(pixels, { onProgress });
        const t = pool ? f.pooled : f.latents;
        return Array.from({ length: t.shape[0] }, (_, b) => t.item(b));
      });
      const shape = rows[0]?.shape ?? [];
      const data = new Float32Array(rows.reduce((n, r) => n + r.size, 0));
      rows.forEach((r, i) => data.set(r.data, i * r.size));
      return new Tensor(data, [rows.length, ...shape]);
    })());
  }

  const dispose = async (): Promise<void> => {
    if (m === null) return;
    await Promise.allSettled([...pending]);
    m = null;
    await unregisterPipeline(self);
  };
  const callable = Object.assign(fn, { task, dispose });
  Object.defineProperty(callable, "model", { get: current, enumerable: true });
  progress?.({ status: "ready", name, task });
  return callable as unknown as Pipeline;
}

function isFiles(model: ModelSpec): model is readonly NamedBlob[] {
  return Array.isArray(model);
}

/** The loader's events except "ready", which the pipeline sends itself (with the task) once it is built. */
function withoutReady(cb: ProgressCallback | undefined): ProgressCallback | undefined {
  return cb && ((info) => info.status !== "ready" && cb(info));
}

/** Consecutive tensors [1, 3, H, W] of equal size. */
function sameSizeGroups(items: Tensor[]): Tensor[][] {
  const groups: Tensor[][] = [];
  for (const t of items) {
    const last = groups[groups.length - 1];
    if (last && last[0].shape[2] === t.shape[2] && last[0].shape[3] === t.shape[3]) last.push(t);
    else groups.push([t]);
  }
  return groups;
}

/** [1, 3, H, W] x n -> [n, 3, H, W] */
function stack(items: Tensor[]): Tensor {
  if (items.length === 1) return items[0];
  const [, c, h, w] = items[0].shape;
  const out = new Float32Array(items.length * c * h * w);
  items.forEach((t, i) => out.set(t.data, i * c * h * w));
  return new Tensor(out, [items.length, c, h, w]);
}
