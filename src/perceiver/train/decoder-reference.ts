/**
 * The classification decoder's forward and backward, the straightforward way: LayerNorm all N latents, project
 * them to keys and values [N, C] and [N, Cv], attend, and run every backward (src/layers/grad/*Ref) in turn.
 * O(N·D·(C+Cv)) per image. It is the readable reference decoder-fast.ts is tested against, and the one the
 * PyTorch autograd goldens check first.
 *   x = LN2(z) [B·N, D];  K = x·Wkᵀ + bk,  V = x·Wvᵀ + bv;  q from decoder-common's query side
 *   ctx_b = Attention(q, K_b, V_b) (H heads, one query);  then decoder-common's tail -> logits
 */
import { TORCH_LAYERNORM_EPS } from "../../layers/layernorm.js";
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from "../../layers/grad/attention-backward.js";
import { layerNormForward, layerNormParamGrads } from "../../layers/grad/layernorm-backward.js";
import { linearBackwardRef, linearForwardRef } from "../../layers/grad/linear-backward.js";
import { softmaxCrossEntropy } from "../../layers/grad/softmax-cross-entropy.js";
import { P, queryBackward, queryForward, tailBackward, tailForward } from "./decoder-common.js";
import type { DecoderParams, DecoderShape } from "./decoder-params.js";

export interface DecoderStepResult {
  /** mean cross-entropy over the batch */
  loss: number;
  /** images whose top logit is their label */
  correct: number;
  /** [B, L] */
  logits: Float32Array;
  /** decoder attention probabilities [B, H, N] */
  probs: Float32Array;
}

/**
 * z: B raw latent arrays [N·D] (the encoder output), labels [B] -> loss; with `grads`, the gradient of the mean
 * loss with respect to every decoder parameter is written into it.
 */
export function decoderStepReference(
  p: DecoderParams, s: DecoderShape, z: readonly Float32Array[], labels: ArrayLike<number>, grads: DecoderParams | null,
): DecoderStepResult {
  const B = z.length, N = s.numLatents, D = s.dLatents, C = s.qkChannels, Cv = s.vChannels, H = s.numHeads;
  const rows = B * N;
  const zAll = new Float32Array(rows * D);
  z.forEach((zb, b) => zAll.set(zb, b * N * D));
  const x = new Float32Array(rows * D), xhat = new Float32Array(rows * D), xrstd = new Float32Array(rows);
  layerNormForward(zAll, p[P.ln2w], p[P.ln2b], rows, D, TORCH_LAYERNORM_EPS, x, xhat, xrstd);
  const K = new Float32Array(rows * C), V = new Float32Array(rows * Cv);
  linearForwardRef(x, p[P.wk], p[P.bk], rows, D, C, K);
  linearForwardRef(x, p[P.wv], p[P.bv], rows, D, Cv, V);

  const qs = queryForward(p, s, true);
  const Q = new Float32Array(B * C);
  for (let b = 0; b < B; b++) Q.set(qs.q, b * C);
  const dims: AttentionDims = { batch: B, tq: 1, tkv: N, heads: H, dqk: C / H, dv: Cv / H };
  const ctx = new Float32Array(B * Cv), probs = new Float32Array(B * H * N);
  attentionForwardRef(Q, K, V, dims, ctx, probs);
  const tail = tailForward(p, s, ctx, B, true);
  const dlogits = grads ? new Float32Array(B * s.numLabels) : null;
  const { loss, correct } = softmaxCrossEntropy(tail.logits, labels, B, s.numLabels, dlogits);
  if (!grads || !dlogits) return { loss, correct, logits: tail.logits, probs };

  const dq0 = grads[P.query];
  dq0.fill(0);
  const dctx = tailBackward(p, s, tail, dlogits, B, grads, dq0, true);
  const dQ = new Float32Array(B * C), dK = new Float32Array(rows * C), dV = new Float32Array(rows * Cv);
  attentionBackwardRef(Q, K, V, probs, dctx, dims, dQ, dK, dV);
  // the one query was broadcast to B rows: its gradient is the sum over them
  const dq = new Float32Array(C);
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) dq[c] += dQ[b * C + c];
  queryBackward(p, s, qs, dq, grads, dq0, true);
  const dxK = new Float32Array(rows * D), dxV = new Float32Array(rows * D);
  linearBackwardRef(x, p[P.wk], dK, rows, D, C, dxK, grads[P.wk], grads[P.bk]);
  linearBackwardRef(x, p[P.wv], dV, rows, D, Cv, dxV, grads[P.wv], grads[P.bv]);
  for (let i = 0; i < rows * D; i++) dxK[i] += dxV[i]; // x feeds both keys and values
  // the latents are frozen: only LN2's γ and β get gradients
  layerNormParamGrads(dxK, xhat, rows, D, grads[P.ln2w], grads[P.ln2b]);
  return { loss, correct, logits: tail.logits, probs };
}
