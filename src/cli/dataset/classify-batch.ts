/** The forward pass classify and eval share: a memory check before decoding and per batch, logits, top-k, timing. */
import { defaultImageProcessorConfig, type ImageProcessorConfig } from "../../io/image/image-processor.js";
import { topK, type Prediction } from "../../perceiver/labels.js";
import { checkForwardMemory } from "../../perceiver/memory.js";
import type { PerceiverForImageClassification } from "../../perceiver/model.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { DatasetPlan } from "./session.js";

export interface ClassifiedImage {
  /** the image's share of its batch's forward pass, in seconds (3 decimals) */
  seconds: number;
  /** the size of its batch */
  batch: number;
  top_k: Prediction[];
  /** its row of the logits [numLabels] */
  logits: Float32Array;
}

/**
 * Refuses a batch that cannot fit before any image is decoded (when images are resized to one size), and returns
 * the forward pass of one batch, pixels [B, 3, H, W] -> B images, which checks the batch again; both checks name
 * --batch-size as the way out.
 */
export function classifyBatches(
  command: string,
  model: PerceiverForImageClassification,
  processorConfig: Partial<ImageProcessorConfig>,
  plan: DatasetPlan,
  k: number,
): (pixels: Tensor, onLayer: (done: number, total: number) => void) => Promise<ClassifiedImage[]> {
  const memoryOpts = { where: command, hint: "use a smaller --batch-size" };
  if (processorConfig.doResize ?? defaultImageProcessorConfig.doResize) {
    const { height, width } = processorConfig.size ?? defaultImageProcessorConfig.size;
    checkForwardMemory(model.config, { batch: Math.max(1, Math.min(plan.batchSize, plan.todo.length)), height, width }, memoryOpts);
  }
  const n = model.config.numLabels;
  return async (pixels, onLayer) => {
    const [b, , h, w] = pixels.shape;
    checkForwardMemory(model.config, { batch: b, height: h, width: w }, memoryOpts);
    const t = performance.now();
    const { logits } = await model.forward(pixels, { onProgress: onLayer });
    const seconds = Number(((performance.now() - t) / 1000 / b).toFixed(3));
    return Array.from({ length: b }, (_, i) => {
      const row = logits.data.subarray(i * n, (i + 1) * n);
      return { seconds, batch: b, top_k: topK(row, k, model.config.id2label), logits: row };
    });
  };
}
