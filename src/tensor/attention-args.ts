/** The arguments of multi-head attention on row-major buffers (attentionHeads and its reference). */

/**
 * q [M, heads·dqk], k [N, heads·dqk], v [N, heads·dv] -> out [M, heads·dv]: per head h (its column block of q, k,
 * v and out), out_h = softmax(alpha · q_h·k_hᵀ over each row) · v_h. Each buffer is read from its offset (default
 * 0) with its row stride (default: the row width above).
 */
export interface AttentionArgs {
  /** query rows M, key/value rows N */
  m: number;
  n: number;
  heads: number;
  /** channels per head of q and k, of v and out */
  dqk: number;
  dv: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  out: Float32Array;
  /** the scale of the scores, 1/√dqk in the model */
  alpha: number;
  qOff?: number;
  ldq?: number;
  kOff?: number;
  ldk?: number;
  vOff?: number;
  ldv?: number;
  oOff?: number;
  ldo?: number;
}

/** AttentionArgs with every offset and stride filled in. */
export type AttentionLayout = Required<AttentionArgs>;

export function attentionLayout(x: AttentionArgs): AttentionLayout {
  const qkW = x.heads * x.dqk, vW = x.heads * x.dv;
  return {
    ...x,
    qOff: x.qOff ?? 0, ldq: x.ldq ?? qkW, kOff: x.kOff ?? 0, ldk: x.ldk ?? qkW,
    vOff: x.vOff ?? 0, ldv: x.ldv ?? vW, oOff: x.oOff ?? 0, ldo: x.ldo ?? vW,
  };
}
