/** Turning logits into labelled predictions, one list per image. */
import { PerceiverError } from "../errors.js";
import { Tensor } from "../tensor/tensor.js";

export interface Prediction {
  index: number;
  label: string;
  score: number;
}

// logits [n] -> probabilities [n] (stable softmax, in double)
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/**
 * The k most probable classes, best first (ties: lower index first).
 *
 *   topK(row, k, id2label)          row: the logits of ONE image [numLabels]    -> Prediction[]
 *   topK(logitsTensor, k, id2label)  logits [B, numLabels] (or [numLabels])      -> Prediction[][], one list per image
 *
 * numLabels is the number of entries of id2label (config.id2label has exactly config.numLabels). A row of any other
 * length throws SHAPE_MISMATCH: a whole batch's logits.data ranked as one row would mix the images and read labels
 * past the end. A label missing from id2label throws too: labels are never made up.
 */
export function topK(logits: Tensor, k: number, id2label: Readonly<Record<number, string>>): Prediction[][];
export function topK(logits: ArrayLike<number>, k: number, id2label: Readonly<Record<number, string>>): Prediction[];
export function topK(
  logits: Tensor | ArrayLike<number>, k: number, id2label: Readonly<Record<number, string>>,
): Prediction[] | Prediction[][] {
  if (!Number.isInteger(k) || k < 0) throw new PerceiverError("INPUT_INVALID", `topK: k must be a non-negative integer, got ${k}`);
  const numLabels = Object.keys(id2label).length;
  if (logits instanceof Tensor) {
    const shape = logits.shape;
    const ok = (shape.length === 2 && shape[1] === numLabels) || (shape.length === 1 && shape[0] === numLabels);
    if (!ok) {
      throw new PerceiverError("SHAPE_MISMATCH", `topK: logits must be [B, ${numLabels}] (id2label has ${numLabels} labels), got [${shape.join(",")}]`);
    }
    const batch = shape.length === 2 ? shape[0] : 1;
    return Array.from({ length: batch }, (_, b) => rowTopK(logits.data.subarray(b * numLabels, (b + 1) * numLabels), k, id2label));
  }
  if (logits.length !== numLabels) {
    const hint = logits.length > numLabels && logits.length % numLabels === 0
      ? ` (it looks like a batch of ${logits.length / numLabels}: pass the logits tensor, topK(logits, k, id2label), for one list per image)`
      : "";
    throw new PerceiverError("SHAPE_MISMATCH", `topK: a row of ${logits.length} logits, but id2label has ${numLabels} labels${hint}`);
  }
  return rowTopK(logits, k, id2label);
}

// one image: logits [numLabels] -> its k best, labels looked up (never invented)
function rowTopK(logits: ArrayLike<number>, k: number, id2label: Readonly<Record<number, string>>): Prediction[] {
  const p = softmax(logits);
  const idx = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
  return idx.slice(0, Math.min(k, idx.length)).map((i) => {
    const label = id2label[i];
    if (typeof label !== "string") throw new PerceiverError("CONFIG_INVALID", `topK: id2label has no label for index ${i}`);
    return { index: i, label, score: p[i] };
  });
}
