import { attentionHeads, matmul, matmulTransBSoftmax } from "../tensor/gemm.js";
import type { Linear } from "./linear.js";
import type { LayerBuffers } from "./buffers.js";

/** Query rows per chunk of attention scores once Tq·Tkv exceeds ATTENTION_UNCHUNKED_LIMIT. */
export const ATTENTION_CHUNK_ROWS = 64;
/**
 * Largest score matrix [Tq, Tkv] (elements, 4 MB of float32) computed in one piece: the self-attention's
 * [512, 512]; the conv model's cross-attention [512, 3025] goes in chunks (less peak memory, for staging K and V
 * once per chunk).
 */
const ATTENTION_UNCHUNKED_LIMIT = 1 << 20;

/** Query rows per score chunk: all of them for small products, else ATTENTION_CHUNK_ROWS. */
export function attentionChunkRows(tq: number, tkv: number): number {
  return tq * tkv <= ATTENTION_UNCHUNKED_LIMIT ? tq : Math.min(tq, ATTENTION_CHUNK_ROWS);
}

export interface MultiHeadAttentionWeights {
  /** HF self.query [qkChannels, qDim], self.key [qkChannels, kvDim], self.value [vChannels, kvDim], output.dense [out, vChannels] */
  query: Linear;
  key: Linear;
  value: Linear;
  output: Linear;
  numHeads: number;
  /** query rows per score chunk; by default attentionChunkRows(Tq, Tkv) */
  chunkRows?: number;
}

export interface AttentionForward {
  /** queries' input [B·Tq, qDim] and keys' and values' input [B·Tkv, kvDim], both already layer-normed */
  q: Float32Array;
  kv: Float32Array;
  batch: number;
  tq: number;
  tkv: number;
  /** [B·Tq, outChannels]; must not overlap residual, and q, kv, out must not be in buffers */
  out: Float32Array;
  buffers: LayerBuffers;
  /** receives the attention probabilities [B, heads, Tq, Tkv] when given */
  probs?: Float32Array;
  /** [B·Tq, outChannels], added by the output projection when given */
  residual?: Float32Array;
}

/**
 * Multi-head attention of HF PerceiverSelfAttention + PerceiverSelfOutput (cross- or self-attention):
 *   Q = q·Wqᵀ, K = kv·Wkᵀ, V = kv·Wvᵀ; per head h: P = softmax(Q_h·K_hᵀ / √(qkChannels/heads)), C_h = P·V_h;
 *   out = concat_h(C_h)·Woᵀ.
 * Heads are column blocks of Q/K/V, read in place through strides (no transposed copies). Layer norms and
 * residuals belong to PerceiverLayer.
 *
 * Memory: K and V are projected one image at a time, and the scores of a head are computed for a chunk of query
 * rows at a time ([chunk, Tkv]), so the buffers stay bounded when the inputs are long (the Fourier and learned
 * ImageNet models attend 512 latents to 50176 pixels: a full [512, 50176] score matrix is 103 MB). Each output
 * element is the same sum in the same order either way (softmax is per row, the products are exact per element),
 * so chunking does not change a single bit.
 *
 * Unless probabilities are requested, attentionHeads runs every head of an image in one call where the backend has
 * a fused form (wasm: in wasm memory, a head per thread job, no score matrix copied out and back in; reference: the
 * textbook loop). It gives the same bits as the per-head loop here, which runs on the ts backend, for attention
 * maps, and where the fused form declines (more keys than it takes, fewer heads than threads).
 */
export class MultiHeadAttention {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly output: Linear;
  readonly numHeads: number;
  readonly chunkRows?: number;
  readonly qkChannelsPerHead: number;
  readonly vChannelsPerHead: number;

  constructor(w: MultiHeadAttentionWeights) {
    ({ query: this.query, key: this.key, value: this.value, output: this.output, numHeads: this.numHeads, chunkRows: this.chunkRows } = w);
    this.qkChannelsPerHead = w.query.outFeatures / w.numHeads;
    this.vChannelsPerHead = w.value.outFeatures / w.numHeads;
  }

  // q [B·Tq, qDim], kv [B·Tkv, kvDim] -> out [B·Tq, outChannels] (+ residual)
  forward({ q, kv, batch, tq, tkv, out, buffers, probs, residual }: AttentionForward): void {
    const qk = this.query.outFeatures;
    const v = this.value.outFeatures;
    const heads = this.numHeads;
    const dqk = this.qkChannelsPerHead;
    const dv = this.vChannelsPerHead;
    const chunk = Math.max(1, Math.min(tq, this.chunkRows ?? attentionChunkRows(tq, tkv)));

    const Q = buffers.queriesThenMlpHidden.take(batch * tq * qk); // [B·Tq, qk]
    const K = buffers.keys.take(tkv * qk); // one image's [Tkv, qk]
    const V = buffers.values.take(tkv * v); // one image's [Tkv, v]
    const context = buffers.context.take(batch * tq * v); // [B·Tq, v]
    let scores: Float32Array | null = null; // [chunk, Tkv], taken only when the per-head loop runs without probs
    this.query.forward(q, batch * tq, Q);

    const scale = 1 / Math.sqrt(dqk);
    for (let b = 0; b < batch; b++) {
      this.key.forward(kv.subarray(b * tkv * this.key.inFeatures), tkv, K);
      this.value.forward(kv.subarray(b * tkv * this.value.inFeatures), tkv, V);
      const qOff = b * tq * qk, oOff = b * tq * v; // image b's rows of Q and context
      if (!probs && attentionHeads({ m: tq, n: tkv, heads, dqk, dv, q: Q, qOff, k: K, v: V, out: context, oOff, alpha: scale })) {
        continue;
      }
      for (let h = 0; h < heads; h++) {
        for (let r0 = 0; r0 < tq; r0 += chunk) {
          const rows = Math.min(chunk, tq - r0);
          // the chunk's probabilities go straight into probs when it is requested
          const s = probs ?? (scores ??= buffers.scores.take(chunk * tkv));
          const so = probs ? ((b * heads + h) * tq + r0) * tkv : 0;
          // P [rows, Tkv] = softmax(Q_h[r0 : r0+rows] [rows, dqk] · K_hᵀ · scale) over each row
          matmulTransBSoftmax(rows, tkv, dqk, Q, qOff + r0 * qk + h * dqk, qk, K, h * dqk, qk, s, so, tkv, scale);
          // context_h [rows, dv] = P [rows, Tkv] · V_h [Tkv, dv], written into its column block of context
          matmul(rows, dv, tkv, s, so, tkv, V, h * dv, v, context, oOff + r0 * v + h * dv, v);
        }
      }
    }
    if (residual) this.output.forwardResidual(context, batch * tq, residual, out);
    else this.output.forward(context, batch * tq, out);
  }
}
