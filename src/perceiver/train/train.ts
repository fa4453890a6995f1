/**
 * trainDecoder: train a new classification decoder (HF PerceiverClassificationDecoder: the trainable query, the
 * decoding cross-attention layer, the final layer) on frozen final latents. Browser-safe: latents are in memory,
 * nothing here touches files. The encoder is not run: give it the latents (model.extractFeatures(...).latents).
 * Recipe: HF init seeded by `seed`, AdamW (decay on the Linear weights), constant learning rate, mini-batches
 * shuffled each epoch, mean softmax cross-entropy; the epoch with the best validation accuracy (ties: lower
 * validation loss) is kept. Same inputs and seed -> the same parameters, bit for bit.
 */
import { PerceiverError } from "../../errors.js";
import { indexOfNonFinite } from "../../tensor/tensor.js";
import type { PerceiverConfig } from "../config.js";
import { AdamW } from "./adamw.js";
import { decoderStepFast, normalizeLatents } from "./decoder-fast.js";
import { DECODER_PARAM_NAMES, decoderShape, initDecoderParams, zerosLike, type DecoderParams, type DecoderShape } from "./decoder-params.js";
import { Rng } from "./rng.js";
import { stratifiedSplit } from "./split.js";

export interface TrainExample {
  /** the image's final latents [numLatents·dLatents] (extractFeatures(...).latents, one image) */
  latents: Float32Array;
  /** class index in [0, numLabels) */
  label: number;
}

export interface EpochStats {
  epoch: number; // 1-based
  epochs: number;
  trainLoss: number; // mean over the epoch's batches, weighted by batch size
  trainAccuracy: number;
  /** NaN without validation examples */
  valLoss: number;
  valAccuracy: number;
  valCorrect: number;
  valCount: number;
  /** this epoch is the best so far (and its parameters are kept) */
  best: boolean;
  seconds: number;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  /** training examples done in this epoch, of `total` */
  done: number;
  total: number;
}

export interface TrainOptions {
  /** number of classes */
  numLabels: number;
  epochs?: number; // default 20
  lr?: number; // default 1e-3
  batchSize?: number; // default 16
  weightDecay?: number; // default 0.01 (torch's AdamW default)
  seed?: number; // default 0
  /** held-out fraction of `examples` (stratified) when `validation` is not given; default 0.2 */
  valSplit?: number;
  /** a separate validation set (then valSplit is not used) */
  validation?: TrainExample[];
  /** std of the initial weights (config.initializer_range); default 0.02 */
  initializerRange?: number;
  /**
   * Normalize the latents in place (each example's array is overwritten by its LayerNorm without affine) instead
   * of into copies: halves the memory for large sets. The arrays are then no longer the raw latents.
   */
  inPlace?: boolean;
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (s: EpochStats) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  /** the kept (best) decoder parameters, by HF name without the "perceiver.decoder.decoder." prefix */
  params: DecoderParams;
  shape: DecoderShape;
  history: EpochStats[];
  /** 1-based epoch of `params` */
  bestEpoch: number;
  /** indices into `examples` of the training and validation (from valSplit) examples */
  split: { train: number[]; val: number[] };
}

export const TRAIN_DEFAULTS = { epochs: 20, lr: 1e-3, batchSize: 16, weightDecay: 0.01, seed: 0, valSplit: 0.2, initializerRange: 0.02 } as const;

function checkNumber(name: string, v: number, ok: boolean): void {
  if (!ok) throw new PerceiverError("INPUT_INVALID", `trainDecoder: ${name} is invalid (${v})`);
}

const yieldToEventLoop = () => new Promise<void>((r) => setTimeout(r, 0));

/** Evaluates decoder parameters on examples (normalized latents): mean loss and number correct. */
export function evaluateDecoder(params: DecoderParams, shape: DecoderShape, zhat: readonly Float32Array[], labels: readonly number[], batchSize = 64): { loss: number; correct: number } {
  let loss = 0, correct = 0;
  for (let i = 0; i < zhat.length; i += batchSize) {
    const r = decoderStepFast(params, shape, zhat.slice(i, i + batchSize), labels.slice(i, i + batchSize), null);
    loss += r.loss * Math.min(batchSize, zhat.length - i);
    correct += r.correct;
  }
  return { loss: zhat.length ? loss / zhat.length : NaN, correct };
}

/**
 * Train a classification decoder for `model` (its config gives the latent shape) on `examples`.
 * Throws INPUT_INVALID for wrong latent sizes, labels out of range, or bad option values.
 */
export async function trainDecoder(
  model: { config: PerceiverConfig }, examples: readonly TrainExample[], options: TrainOptions,
): Promise<TrainResult> {
  const o = { ...TRAIN_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Required<Omit<TrainOptions, "validation" | "onProgress" | "onEpoch" | "signal" | "inPlace">> & TrainOptions;
  const L = o.numLabels;
  checkNumber("numLabels", L, Number.isInteger(L) && L >= 1);
  checkNumber("epochs", o.epochs, Number.isInteger(o.epochs) && o.epochs >= 1);
  checkNumber("lr", o.lr, Number.isFinite(o.lr) && o.lr > 0);
  checkNumber("batchSize", o.batchSize, Number.isInteger(o.batchSize) && o.batchSize >= 1);
  checkNumber("weightDecay", o.weightDecay, Number.isFinite(o.weightDecay) && o.weightDecay >= 0);
  checkNumber("seed", o.seed, Number.isSafeInteger(o.seed) && o.seed >= 0);
  checkNumber("valSplit", o.valSplit, o.valSplit >= 0 && o.valSplit < 1);
  checkNumber("initializerRange", o.initializerRange, Number.isFinite(o.initializerRange) && o.initializerRange >= 0);
  const shape = decoderShape(model.config, L);
  const N = shape.numLatents, D = shape.dLatents;
  const check = (set: readonly TrainExample[], what: string) => set.forEach((e, i) => {
    if (!(e.latents instanceof Float32Array) || e.latents.length !== N * D) {
      throw new PerceiverError("INPUT_INVALID", `trainDecoder: ${what} ${i} has ${e.latents?.length} latent values, the model's are ${N}·${D} = ${N * D}`);
    }
    const bad = indexOfNonFinite(e.latents);
    if (bad >= 0) throw new PerceiverError("INPUT_INVALID", `trainDecoder: ${what} ${i} has a non-finite latent value (${e.latents[bad]}) at index ${bad}`);
    if (!Number.isInteger(e.label) || e.label < 0 || e.label >= L) {
      throw new PerceiverError("INPUT_INVALID", `trainDecoder: ${what} ${i} has label ${e.label}, expected an integer in [0, ${L})`);
    }
  });
  check(examples, "example");
  if (o.validation) check(o.validation, "validation example");
  if (examples.length === 0) throw new PerceiverError("INPUT_INVALID", "trainDecoder: no training examples");

  const labels = examples.map((e) => e.label);
  const split = o.validation ? { train: labels.map((_, i) => i), val: [] as number[] } : stratifiedSplit(labels, o.valSplit, o.seed + 1);
  const norm = (e: TrainExample) => normalizeLatents(e.latents, N, D, o.inPlace ? e.latents : undefined);
  const zhat = examples.map(norm);
  const valSet = o.validation ?? split.val.map((i) => examples[i]);
  const valZ = o.validation ? o.validation.map(norm) : split.val.map((i) => zhat[i]);
  const valLabels = valSet.map((e) => e.label);

  const params = initDecoderParams(shape, o.seed, o.initializerRange);
  const grads = zerosLike(shape);
  const opt = new AdamW(shape, { lr: o.lr, weightDecay: o.weightDecay });
  const order = split.train.slice();
  const rng = new Rng(o.seed + 2);
  const history: EpochStats[] = [];
  let best: DecoderParams | null = null;
  let bestEpoch = 0, bestAcc = -1, bestLoss = Infinity;
  let lastYield = Date.now();

  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const t0 = Date.now();
    rng.shuffle(order);
    let lossSum = 0, correct = 0;
    for (let i = 0; i < order.length; i += o.batchSize) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error("aborted");
      const idx = order.slice(i, i + o.batchSize);
      const r = decoderStepFast(params, shape, idx.map((j) => zhat[j]), idx.map((j) => labels[j]), grads);
      if (!Number.isFinite(r.loss)) {
        throw new PerceiverError("INPUT_INVALID", `trainDecoder: the loss became ${r.loss} in epoch ${epoch}: lower the learning rate (${o.lr})`);
      }
      opt.step(params, grads);
      lossSum += r.loss * idx.length;
      correct += r.correct;
      o.onProgress?.({ epoch, epochs: o.epochs, done: Math.min(i + o.batchSize, order.length), total: order.length });
      if (Date.now() - lastYield > 100) {
        await yieldToEventLoop(); // let a browser repaint / a CLI progress bar draw
        lastYield = Date.now();
      }
    }
    const val = evaluateDecoder(params, shape, valZ, valLabels);
    const valAcc = valZ.length ? val.correct / valZ.length : NaN;
    // best: higher val accuracy, then lower val loss; without validation, the last epoch
    const isBest = valZ.length === 0 || valAcc > bestAcc || (valAcc === bestAcc && val.loss < bestLoss);
    if (isBest) {
      best = Object.fromEntries(DECODER_PARAM_NAMES.map((n) => [n, params[n].slice()])) as DecoderParams;
      bestEpoch = epoch;
      bestAcc = valAcc;
      bestLoss = val.loss;
    }
    const stats: EpochStats = {
      epoch, epochs: o.epochs, trainLoss: lossSum / order.length, trainAccuracy: correct / order.length,
      valLoss: val.loss, valAccuracy: valAcc, valCorrect: val.correct, valCount: valZ.length, best: isBest,
      seconds: (Date.now() - t0) / 1000,
    };
    history.push(stats);
    o.onEpoch?.(stats);
  }
  return { params: best!, shape, history, bestEpoch, split };
}
