import { attentionLayout, type AttentionArgs } from "../attention-args.js";
import { matmul, matmulTransB } from "./gemm.js";
import { softmaxRows } from "./softmax.js";

// q [M, heads·dqk], k [N, heads·dqk], v [N, heads·dv] -> out [M, heads·dv] (offsets and strides: AttentionArgs)
// For each head h, on its column block of q, k, v and out:
//   scores P [M, N] = softmax over each row of alpha · Q_h · K_hᵀ     (alpha = 1/√dqk: scaled dot-product)
//   out_h  [M, dv] = P · V_h
export function attention(args: AttentionArgs): void {
  const { m, n, heads, dqk, dv, q, k, v, out, alpha, qOff, ldq, kOff, ldk, vOff, ldv, oOff, ldo } = attentionLayout(args);
  const p = new Float32Array(m * n);
  for (let h = 0; h < heads; h++) {
    matmulTransB(m, n, dqk, q, qOff + h * dqk, ldq, k, kOff + h * dqk, ldk, p, 0, n, alpha);
    softmaxRows(p, 0, m, n, n);
    matmul(m, dv, n, p, 0, n, v, vOff + h * dv, ldv, out, oOff + h * dv, ldo);
  }
}
