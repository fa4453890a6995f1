/**
 * Softmax cross-entropy averaged over the batch (torch's F.cross_entropy, reduction "mean"):
 *   loss = (1/B)·Σ_b [logsumexp(z_b) - z_b[y_b]]
 *   dz_b = (softmax(z_b) - onehot(y_b)) / B
 */

export interface CrossEntropyResult {
  /** mean loss over the batch */
  loss: number;
  /** rows whose largest logit is the label's (ties: the first largest) */
  correct: number;
}

// logits [B, L], labels [B] in [0, L) -> mean loss; dlogits [B, L] (written unless null)
export function softmaxCrossEntropy(
  logits: Float32Array, labels: ArrayLike<number>, batch: number, numLabels: number, dlogits: Float32Array | null,
): CrossEntropyResult {
  let total = 0;
  let correct = 0;
  for (let b = 0; b < batch; b++) {
    const o = b * numLabels;
    const y = labels[b];
    let max = -Infinity, arg = 0;
    for (let j = 0; j < numLabels; j++) {
      if (logits[o + j] > max) {
        max = logits[o + j];
        arg = j;
      }
    }
    if (arg === y) correct++;
    let sum = 0;
    for (let j = 0; j < numLabels; j++) sum += Math.exp(logits[o + j] - max);
    const lse = max + Math.log(sum);
    total += lse - logits[o + y];
    if (dlogits) {
      for (let j = 0; j < numLabels; j++) {
        const p = Math.exp(logits[o + j] - lse);
        dlogits[o + j] = (p - (j === y ? 1 : 0)) / batch;
      }
    }
  }
  return { loss: total / batch, correct };
}
