/**
 * The full model on perceiver-ts: load weights/full-synthetic (the 48.6M-parameter synthetic checkpoint, written
 * by run.ts through ensureFullCheckpoint before this process starts) with `fromPretrained`, then time `forward`.
 */
import { PerceiverForImageClassification, Tensor } from "../src/index.js";
import { maxRssMB, pixelBatch, timeBatches, type BatchProtocol, type ModelResult, type ModelRun } from "./common.js";
import { selectOurBackend } from "./ours-backend.js";

export async function oursModel(
  backend: string, threads: number, batches: number[], modelDir: string,
  protocol: BatchProtocol,
): Promise<ModelRun> {
  const result: ModelResult = { engine: "perceiver-ts", backend, threads, notes: [], batches: [] };
  const reason = await selectOurBackend(backend, threads);
  if (reason !== null) return { result: { ...result, skipped: reason } };
  result.rssBeforeLoadMB = maxRssMB();
  const t0 = performance.now();
  const model = await PerceiverForImageClassification.fromPretrained(modelDir);
  result.loadS = (performance.now() - t0) / 1000;
  result.rssAfterLoadMB = maxRssMB();
  // each batch's pixels made when it first runs: a batch-4 input made up front would count in batch 1's peak RSS
  const inputs = new Map<number, Tensor>();
  const input = (b: number) => inputs.get(b) ?? inputs.set(b, new Tensor(pixelBatch(b), [b, 3, 224, 224])).get(b)!;
  const tty = process.stderr.isTTY;
  const run = async (b: number) => {
    const { logits } = await model.forward(input(b), {
      onProgress: tty ? (d, t) => process.stderr.write(`\r    layers ${d}/${t}`) : undefined,
    });
    if (tty) process.stderr.write("\r");
    if (logits.shape[0] !== b || logits.shape[1] !== 1000) {
      throw new Error(`perceiver-ts: logits have shape [${logits.shape.join(",")}], expected [${b},1000]`);
    }
  };
  result.batches = await timeBatches(batches, run, protocol);
  result.peakRssMB = maxRssMB();
  return { result, run };
}
