import { attentionHeads, matmul, matmulTransBSoftmax } from "../tensor/gemm.js";
import type { Linear } from "./linear.js";
import { QUERIES_THEN_MLP_HIDDEN, type Scratch } from "./scratch.js";

/** Query rows per chunk of attention scores once Tq·Tkv exceeds ATTENTION_UNCHUNKED_LIMIT. */
export const ATTENTION_CHUNK_ROWS = 64;
/**
 * Largest score matrix [Tq, Tkv] (elements, 4 MB of float32) computed in one piece: the self-attention's
 * [512, 512]; the conv model's cross-attention [512, 3025] goes in chunks (5 MB less peak memory, ~1% more time
 * in that layer, for staging K and V once per chunk).
 */
export const ATTENTION_UNCHUNKED_LIMIT = 1 << 20;

/** Query rows per score chunk: all of them for small products, else ATTENTION_CHUNK_ROWS. */
export function attentionChunkRows(tq: number, tkv: number): number {
  return tq * tkv <= ATTENTION_UNCHUNKED_LIMIT ? tq : Math.min(tq, ATTENTION_CHUNK_ROWS);
}

/**
 * Multi-head attention of HF PerceiverSelfAttention + PerceiverSelfOutput (cross- or self-attention):
 * Q = q·Wqᵀ, K = kv·Wkᵀ, V = kv·Wvᵀ; per head h: P = softmax(Q_h·K_hᵀ / sqrt(qkChannels/heads)), C_h = P·V_h;
 * out = concat_h(C_h)·Woᵀ. Heads are column blocks of Q/K/V, read in place through strides (no transposed copies).
 * Layer norms and residuals belong to PerceiverLayer.
 *
 * Memory: K and V are projected one batch item at a time, and the scores of a head are computed for a chunk of
 * query rows at a time ([chunk, Tkv]), so the scratch stays bounded when the inputs are long (the Fourier and
 * learned ImageNet models attend 512 latents to 50176 pixels: a full [512, 50176] score matrix is 103 MB).
 * Each output element is the same sum in the same order either way (softmax is per row, the GEMMs are exact
 * per element), so chunking does not change a single bit.
 *
 * On the wasm backend, unless probabilities are requested, gemm.ts's attentionHeads runs every head of a batch item
 * in wasm memory instead (Q, K, V staged once, a head per thread job, no score matrix copied out and back in:
 * 12% faster on one thread and 32% on two for the self-attention's 8 heads of 512x512, measured on the kernel
 * alone); it gives the same bits as the loop here, which stays for the ts backend, attention maps, more keys than
 * it takes, and fewer heads than threads.
 */
export class MultiHeadAttention {
  readonly qkChannelsPerHead: number;
  readonly vChannelsPerHead: number;

  constructor(
    readonly query: Linear,
    readonly key: Linear,
    readonly value: Linear,
    readonly output: Linear,
    readonly numHeads: number,
    /** query rows per score chunk; by default attentionChunkRows(Tq, Tkv) */
    readonly chunkRows?: number,
  ) {
    this.qkChannelsPerHead = query.outFeatures / numHeads;
    this.vChannelsPerHead = value.outFeatures / numHeads;
  }

  /**
   * q [B·Tq, qDim], kv [B·Tkv, kvDim] (already layer-normed) -> out [B·Tq, outChannels] (+ residual
   * [B·Tq, outChannels] when given, added by the output projection; out must not overlap it).
   * probs, when given, receives the attention probabilities [B, heads, Tq, Tkv].
   */
  forward(
    q: Float32Array, kv: Float32Array, batch: number, tq: number, tkv: number,
    out: Float32Array, scratch: Scratch, probs?: Float32Array, residual?: Float32Array,
  ): void {
    const qk = this.query.outFeatures;
    const v = this.value.outFeatures;
    const heads = this.numHeads;
    const dqk = this.qkChannelsPerHead;
    const dv = this.vChannelsPerHead;
    const chunk = Math.max(1, Math.min(tq, this.chunkRows ?? attentionChunkRows(tq, tkv)));

    const Q = scratch.get(QUERIES_THEN_MLP_HIDDEN, batch * tq * qk); // q, kv and out must not be in it
    const K = scratch.get("attn.k", tkv * qk); // one item's keys
    const V = scratch.get("attn.v", tkv * v); // one item's values
    const context = scratch.get("attn.context", batch * tq * v);
    let scores: Float32Array | null = null; // taken only when the per-head loop runs
    this.query.forward(q, batch * tq, Q);

    const scale = 1 / Math.sqrt(dqk);
    for (let b = 0; b < batch; b++) {
      this.key.forward(kv.subarray(b * tkv * this.key.inFeatures), tkv, K);
      this.value.forward(kv.subarray(b * tkv * this.value.inFeatures), tkv, V);
      // the wasm backend runs every head in wasm memory (bit-identical to the loop below)
      if (!probs && attentionHeads({ m: tq, n: tkv, heads, dqk, dv, q: Q, qOff: b * tq * qk, k: K, v: V, out: context, oOff: b * tq * v, alpha: scale })) {
        continue;
      }
      for (let h = 0; h < heads; h++) {
        for (let r0 = 0; r0 < tq; r0 += chunk) {
          const rows = Math.min(chunk, tq - r0);
          // the chunk's probabilities go straight into probs when it is requested
          const s = probs ?? (scores ??= scratch.get("attn.scores", chunk * tkv));
          const so = probs ? ((b * heads + h) * tq + r0) * tkv : 0;
          // P [rows, Tkv] = softmax(Q_h[r0 : r0+rows] [rows, dqk] · K_hᵀ · scale) over each row
          matmulTransBSoftmax(rows, tkv, dqk, Q, (b * tq + r0) * qk + h * dqk, qk, K, h * dqk, qk, s, so, tkv, scale);
          // context_h [rows, dv] = P [rows, Tkv] · V_h [Tkv, dv], written into its column block of context
          matmul(rows, dv, tkv, s, so, tkv, V, h * dv, v, context, (b * tq + r0) * v + h * dv, v);
        }
      }
    }
    if (residual) this.output.forwardResidual(context, batch * tq, residual, out);
    else this.output.forward(context, batch * tq, out);
  }
}
