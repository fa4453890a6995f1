/**
 * Multi-head softmax attention (cross or self) on projected queries, keys and values, forward and backward.
 * Per batch item b and head h, with q_h [Tq,dqk], k_h [Tkv,dqk], v_h [Tkv,dv] (head h's column block):
 *   S = α·q_h·k_hᵀ [Tq,Tkv] (α = 1/√dqk),  P = softmax over each row of S,  ctx_h = P·v_h [Tq,dv]
 * Backward, given dctx_h:
 *   dv_h = Pᵀ·dctx_h          dP = dctx_h·v_hᵀ
 *   dS   = P ⊙ (dP - rowsum(dP ⊙ P))          (softmax: ∂P_ij/∂S_ik = P_ij(δ_jk - P_ik))
 *   dq_h = α·dS·k_h            dk_h = α·dSᵀ·q_h
 * These are the readable loops the decoder's fast path (perceiver/train/decoder-fast.ts) is tested against.
 */

export interface AttentionDims {
  batch: number;
  tq: number; // queries per item
  tkv: number; // keys/values per item
  heads: number;
  dqk: number; // query/key channels per head
  dv: number; // value channels per head
}

// q [B·Tq, H·dqk], k [B·Tkv, H·dqk], v [B·Tkv, H·dv] -> ctx [B·Tq, H·dv], probs [B, H, Tq, Tkv]
export function attentionForwardRef(q: Float32Array, k: Float32Array, v: Float32Array, d: AttentionDims, ctx: Float32Array, probs: Float32Array): void {
  const { batch, tq, tkv, heads, dqk, dv } = d;
  const C = heads * dqk, Cv = heads * dv;
  const alpha = 1 / Math.sqrt(dqk);
  const s = new Float64Array(tkv);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        const qi = (b * tq + i) * C + h * dqk;
        let max = -Infinity;
        for (let j = 0; j < tkv; j++) {
          const kj = (b * tkv + j) * C + h * dqk;
          let dot = 0;
          for (let c = 0; c < dqk; c++) dot += q[qi + c] * k[kj + c];
          s[j] = alpha * dot;
          if (s[j] > max) max = s[j];
        }
        let sum = 0;
        for (let j = 0; j < tkv; j++) sum += (s[j] = Math.exp(s[j] - max));
        const po = ((b * heads + h) * tq + i) * tkv;
        for (let j = 0; j < tkv; j++) probs[po + j] = s[j] / sum;
        const co = (b * tq + i) * Cv + h * dv;
        for (let c = 0; c < dv; c++) {
          let acc = 0;
          for (let j = 0; j < tkv; j++) acc += probs[po + j] * v[(b * tkv + j) * Cv + h * dv + c];
          ctx[co + c] = acc;
        }
      }
    }
  }
}

// dctx [B·Tq, H·dv] -> dq [B·Tq, H·dqk], dk [B·Tkv, H·dqk], dv [B·Tkv, H·dv] (written)
export function attentionBackwardRef(
  q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, dctx: Float32Array, d: AttentionDims,
  dq: Float32Array, dk: Float32Array, dvOut: Float32Array,
): void {
  const { batch, tq, tkv, heads, dqk, dv } = d;
  const C = heads * dqk, Cv = heads * dv;
  const alpha = 1 / Math.sqrt(dqk);
  dq.fill(0);
  dk.fill(0);
  dvOut.fill(0);
  const dP = new Float64Array(tkv);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        const po = ((b * heads + h) * tq + i) * tkv;
        const co = (b * tq + i) * Cv + h * dv;
        // dP_j = dctx_i · v_j ;  dv_j += P_ij · dctx_i
        let rowsum = 0;
        for (let j = 0; j < tkv; j++) {
          const vj = (b * tkv + j) * Cv + h * dv;
          let dot = 0;
          for (let c = 0; c < dv; c++) {
            dot += dctx[co + c] * v[vj + c];
            dvOut[vj + c] += probs[po + j] * dctx[co + c];
          }
          dP[j] = dot;
          rowsum += dot * probs[po + j];
        }
        // dS_j = P_j (dP_j - Σ P dP);  dq_i += α dS_j k_j;  dk_j += α dS_j q_i
        const qi = (b * tq + i) * C + h * dqk;
        for (let j = 0; j < tkv; j++) {
          const dS = probs[po + j] * (dP[j] - rowsum);
          const kj = (b * tkv + j) * C + h * dqk;
          for (let c = 0; c < dqk; c++) {
            dq[qi + c] += alpha * dS * k[kj + c];
            dk[kj + c] += alpha * dS * q[qi + c];
          }
        }
      }
    }
  }
}
