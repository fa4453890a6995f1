import { matmul, matmulTransB } from "../tensor/gemm.js";
import { softmaxRows } from "../tensor/softmax.js";
import type { Linear } from "./linear.js";
import type { Scratch } from "./scratch.js";

/**
 * Multi-head attention of HF PerceiverSelfAttention + PerceiverSelfOutput (cross- or self-attention):
 * Q = q·Wqᵀ, K = kv·Wkᵀ, V = kv·Wvᵀ; per head h: P = softmax(Q_h·K_hᵀ / sqrt(qkChannels/heads)), C_h = P·V_h;
 * out = concat_h(C_h)·Woᵀ. Heads are column blocks of Q/K/V, read in place through strides (no transposed copies).
 * Layer norms and residuals belong to PerceiverLayer.
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
  ) {
    this.qkChannelsPerHead = query.outFeatures / numHeads;
    this.vChannelsPerHead = value.outFeatures / numHeads;
  }

  /**
   * q [B·Tq, qDim], kv [B·Tkv, kvDim] (already layer-normed) -> out [B·Tq, outChannels].
   * probs, when given, receives the attention probabilities [B, heads, Tq, Tkv].
   */
  forward(
    q: Float32Array, kv: Float32Array, batch: number, tq: number, tkv: number,
    out: Float32Array, scratch: Scratch, probs?: Float32Array,
  ): void {
    const qk = this.query.outFeatures;
    const v = this.value.outFeatures;
    const heads = this.numHeads;
    const dqk = this.qkChannelsPerHead;
    const dv = this.vChannelsPerHead;

    const Q = scratch.get("attn.q", batch * tq * qk);
    const K = scratch.get("attn.k", batch * tkv * qk);
    const V = scratch.get("attn.v", batch * tkv * v);
    const context = scratch.get("attn.context", batch * tq * v);
    const scores = scratch.get("attn.scores", tq * tkv);
    this.query.forward(q, batch * tq, Q);
    this.key.forward(kv, batch * tkv, K);
    this.value.forward(kv, batch * tkv, V);

    const scale = 1 / Math.sqrt(dqk);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        // scores [Tq, Tkv] = Q_h [Tq, dqk] · K_hᵀ, scaled
        matmulTransB(tq, tkv, dqk, Q, b * tq * qk + h * dqk, qk, K, b * tkv * qk + h * dqk, qk, scores, 0, tkv, scale);
        softmaxRows(scores, 0, tq, tkv, tkv);
        if (probs) probs.set(scores, (b * heads + h) * tq * tkv);
        // context_h [Tq, dv] = P [Tq, Tkv] · V_h [Tkv, dv], written into its column block of context
        matmul(tq, dv, tkv, scores, 0, tkv, V, b * tkv * v + h * dv, v, context, b * tq * v + h * dv, v);
      }
    }
    this.output.forward(context, batch * tq, out);
  }
}
