/** Turning logits into labelled predictions. */

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

/** The k most probable classes, best first (ties: lower index first). */
export function topK(logits: ArrayLike<number>, k: number, id2label: Readonly<Record<number, string>>): Prediction[] {
  const p = softmax(logits);
  const idx = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
  return idx.slice(0, Math.max(0, Math.min(k, idx.length))).map((i) => ({ index: i, label: id2label[i] ?? `LABEL_${i}`, score: p[i] }));
}
