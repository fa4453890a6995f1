/**
 * The classification decoder's forward and backward without forming keys and values over the N latents.
 * With one query per image and frozen latents, write x_j = LN2(z_j) = γ2⊙ẑ_j + β2, where ẑ_j (the latent
 * normalized without affine, normalizeLatents) never changes and is computed once. Per head h (α = 1/√dqk):
 *   scores   s_j = α·q_h·(Wk_h·x_j + bk_h) = ẑ_j·w_h + const,   u_h = α·Wk_hᵀ·q_h [D],  w_h = γ2⊙u_h
 *            (the constant α·q_h·bk_h + β2·u_h is the same for every j: softmax ignores it)
 *   context  c_h = Σ_j p_j·(Wv_h·x_j + bv_h) = Wv_h·x̄_h + bv_h,   x̄_h = γ2⊙ẑ̄_h + β2,  ẑ̄_h = Σ_j p_j·ẑ_j  (Σ p_j = 1)
 * so an image costs O(N·D) for the scores and ẑ̄, and O(D·(C+Cv)) for the projections, not O(N·D·(C+Cv)).
 * Backward, from dc_h:
 *   dWv_h = Σ_b dc_h⊗x̄_h,  dbv_h = Σ_b dc_h,  dx̄_h = Wv_hᵀ·dc_h,  g_h = γ2⊙dx̄_h
 *   dp_j  = ẑ_j·g_h + const  ->  ds_j = p_j·(ẑ_j·g_h - ẑ̄_h·g_h)          (softmax backward; Σ_j ds_j = 0)
 *   r_h   = Σ_j ds_j·ẑ_j,  du_h = γ2⊙Σ_b r_h
 *   dWk_h = α·q_h⊗du_h,  dq_h = α·Wk_h·du_h,  dbk = 0 exactly (its score term is constant over j)
 *   dγ2   = Σ_b Σ_h (u_h⊙r_h + dx̄_h⊙ẑ̄_h),   dβ2 = Σ_b Σ_h dx̄_h
 * decoder-reference.ts is the straightforward version this is tested against.
 */
import { TORCH_LAYERNORM_EPS } from "../../layers/layernorm.js";
import { softmaxCrossEntropy } from "../../layers/grad/softmax-cross-entropy.js";
import { matmul, matmulTransB } from "../../tensor/gemm.js";
import { P, queryBackward, queryForward, tailBackward, tailForward } from "./decoder-common.js";
import type { DecoderParams, DecoderShape } from "./decoder-params.js";
import type { DecoderStepResult } from "./decoder-reference.js";

/**
 * z [N·D] (one image's encoder output) -> ẑ [N·D], each latent normalized to mean 0 and variance 1 (biased,
 * + eps 1e-5: torch's LayerNorm before its affine). `out` may be z itself.
 */
export function normalizeLatents(z: Float32Array, numLatents: number, dim: number, out: Float32Array = new Float32Array(z.length)): Float32Array {
  for (let r = 0; r < numLatents; r++) {
    const o = r * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += z[o + i];
    const mean = sum / dim;
    let sq = 0;
    for (let i = 0; i < dim; i++) {
      const d = z[o + i] - mean;
      sq += d * d;
    }
    const inv = 1 / Math.sqrt(sq / dim + TORCH_LAYERNORM_EPS);
    for (let i = 0; i < dim; i++) out[o + i] = (z[o + i] - mean) * inv;
  }
  return out;
}

// a [D] · b [D] in four interleaved sums
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n4 = n & ~3;
  let i = 0;
  for (; i < n4; i += 4) {
    s0 += a[ao + i] * b[bo + i];
    s1 += a[ao + i + 1] * b[bo + i + 1];
    s2 += a[ao + i + 2] * b[bo + i + 2];
    s3 += a[ao + i + 3] * b[bo + i + 3];
  }
  for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
  return (s0 + s1) + (s2 + s3);
}

// out [D] += c · a [D]
function axpy(c: number, a: Float32Array, ao: number, out: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] += c * a[ao + i];
}

/**
 * zhat: B normalized latent arrays [N·D] (normalizeLatents), labels [B] -> loss, logits; with `grads`, the
 * gradients of the mean loss (as decoderStepReference computes them, up to rounding).
 */
export function decoderStepFast(
  p: DecoderParams, s: DecoderShape, zhat: readonly Float32Array[], labels: ArrayLike<number>, grads: DecoderParams | null,
): DecoderStepResult {
  const B = zhat.length, N = s.numLatents, D = s.dLatents, C = s.qkChannels, Cv = s.vChannels, H = s.numHeads;
  const dqk = C / H, dv = Cv / H, alpha = 1 / Math.sqrt(dqk);
  const g2 = p[P.ln2w], b2 = p[P.ln2b], Wk = p[P.wk], Wv = p[P.wv];
  const qs = queryForward(p, s, false);

  // u_h = α·Wk_hᵀ·q_h and w_h = γ2⊙u_h  [H, D]
  const u = new Float32Array(H * D), w = new Float32Array(H * D);
  for (let h = 0; h < H; h++) {
    const acc = new Float64Array(D);
    for (let c = 0; c < dqk; c++) axpy(alpha * qs.q[h * dqk + c], Wk, (h * dqk + c) * D, acc, D);
    for (let i = 0; i < D; i++) {
      u[h * D + i] = acc[i];
      w[h * D + i] = g2[i] * acc[i];
    }
  }

  // per image and head: p = softmax(ẑ·w_h), ẑ̄ = Σ p_j ẑ_j, x̄ = γ2⊙ẑ̄ + β2
  const probs = new Float32Array(B * H * N), zbar = new Float32Array(B * H * D), xbar = new Float32Array(B * H * D);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    const zb = zhat[b];
    if (zb.length !== N * D) throw new RangeError(`decoderStepFast: latents ${b} has ${zb.length} values, expected ${N}·${D}`);
    for (let h = 0; h < H; h++) {
      const po = (b * H + h) * N;
      // one pass over the image (each latent row read once, while in cache): an online softmax keeps the running
      // max m, sum S = Σ exp(s_j - m) and acc = Σ exp(s_j - m)·ẑ_j, rescaled by exp(m_old - m_new) when m grows
      let max = -Infinity, sum = 0;
      acc.fill(0);
      for (let j = 0; j < N; j++) {
        const sj = dot(zb, j * D, w, h * D, D);
        probs[po + j] = sj;
        if (sj > max) {
          const c = max === -Infinity ? 0 : Math.exp(max - sj);
          sum *= c;
          for (let i = 0; i < D; i++) acc[i] *= c;
          max = sj;
        }
        const e = Math.exp(sj - max);
        sum += e;
        axpy(e, zb, j * D, acc, D);
      }
      for (let j = 0; j < N; j++) probs[po + j] = Math.exp(probs[po + j] - max) / sum;
      for (let i = 0; i < D; i++) acc[i] /= sum;
      const o = (b * H + h) * D;
      for (let i = 0; i < D; i++) {
        zbar[o + i] = acc[i];
        xbar[o + i] = g2[i] * acc[i] + b2[i];
      }
    }
  }
  // c_h [B, dv] = x̄_h [B, D] · Wv_hᵀ + bv_h  (x̄_h: rows b·H + h, stride H·D)
  const ctx = new Float32Array(B * Cv);
  for (let h = 0; h < H; h++) matmulTransB(B, dv, D, xbar, h * D, H * D, Wv, h * dv * D, D, ctx, h * dv, Cv, 1);
  const bv = p[P.bv];
  for (let b = 0; b < B; b++) for (let c = 0; c < Cv; c++) ctx[b * Cv + c] += bv[c];

  const tail = tailForward(p, s, ctx, B, false);
  const dlogits = grads ? new Float32Array(B * s.numLabels) : null;
  const { loss, correct } = softmaxCrossEntropy(tail.logits, labels, B, s.numLabels, dlogits);
  if (!grads || !dlogits) return { loss, correct, logits: tail.logits, probs };

  const dq0 = grads[P.query];
  dq0.fill(0);
  const dctx = tailBackward(p, s, tail, dlogits, B, grads, dq0, false);

  // dbv = Σ_b dc;  dWv_h = dc_hᵀ·x̄_h  [dv, D];  dx̄_h = dc_h·Wv_h  [B, D]
  const dbv = grads[P.bv];
  dbv.fill(0);
  for (let b = 0; b < B; b++) for (let c = 0; c < Cv; c++) dbv[c] += dctx[b * Cv + c];
  const dctxT = new Float32Array(Cv * B);
  for (let b = 0; b < B; b++) for (let c = 0; c < Cv; c++) dctxT[c * B + b] = dctx[b * Cv + c];
  const dxbar = new Float32Array(B * H * D);
  for (let h = 0; h < H; h++) {
    matmul(dv, D, B, dctxT, h * dv * B, B, xbar, h * D, H * D, grads[P.wv], h * dv * D, D);
    matmul(B, D, dv, dctx, h * dv, Cv, Wv, h * dv * D, D, dxbar, h * D, H * D);
  }

  // softmax backward through the scores; r_h = Σ_j ds_j ẑ_j
  const dg2 = new Float64Array(D), db2 = new Float64Array(D);
  const du = new Float64Array(H * D);
  const gvec = new Float32Array(D), r = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    const zb = zhat[b];
    for (let h = 0; h < H; h++) {
      const o = (b * H + h) * D, po = (b * H + h) * N;
      for (let i = 0; i < D; i++) gvec[i] = g2[i] * dxbar[o + i];
      const mean = dot(zbar, o, gvec, 0, D); // Σ_j p_j (ẑ_j·g) = ẑ̄·g
      r.fill(0);
      for (let j = 0; j < N; j++) {
        const pj = probs[po + j];
        const ds = pj * (dot(zb, j * D, gvec, 0, D) - mean);
        axpy(ds, zb, j * D, r, D);
      }
      for (let i = 0; i < D; i++) {
        du[h * D + i] += g2[i] * r[i];
        dg2[i] += u[h * D + i] * r[i] + dxbar[o + i] * zbar[o + i];
        db2[i] += dxbar[o + i];
      }
    }
  }
  const gl2w = grads[P.ln2w], gl2b = grads[P.ln2b];
  for (let i = 0; i < D; i++) {
    gl2w[i] = dg2[i];
    gl2b[i] = db2[i];
  }
  // u_h = α·Wk_hᵀ·q_h:  dWk_h = α·q_h⊗du_h,  dq_h = α·Wk_h·du_h
  const dWk = grads[P.wk], dq = new Float32Array(C);
  for (let h = 0; h < H; h++) {
    for (let c = 0; c < dqk; c++) {
      const row = (h * dqk + c) * D;
      const qc = alpha * qs.q[h * dqk + c];
      let sq = 0;
      for (let i = 0; i < D; i++) {
        dWk[row + i] = qc * du[h * D + i];
        sq += Wk[row + i] * du[h * D + i];
      }
      dq[h * dqk + c] = alpha * sq;
    }
  }
  grads[P.bk].fill(0);
  queryBackward(p, s, qs, dq, grads, dq0, false);
  return { loss, correct, logits: tail.logits, probs };
}
