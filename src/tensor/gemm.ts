/**
 * The matrix products every layer calls, dispatched to the selected backend (backend.ts):
 *  - "reference": reference/gemm.ts's triple loops (and, for the fused forms, the separate reference steps);
 *  - "ts": gemm-ts.ts (packed, blocked, asm.js micro-kernel; bit-identical to the reference loops);
 *  - "wasm": wasm/gemm-wasm.ts (SIMD, float32 two-level sums: reference/wasm-sum-model.ts gives its exact bits;
 *    within about 5e-6 relative of the reference for K = 1024), with the epilogues (softmax, GELU, residual) run
 *    on the result while it is still in wasm memory.
 * All backends take the same PackedWeight, a view of the caller's [N,K] array, so a model holds its weights once:
 * the checkpoint's own arrays. Arguments are checked here (gemm-checks.ts) before any backend runs. Outputs must
 * not alias inputs. If the wasm memory cannot grow, the TypeScript kernels run instead.
 */
import { PerceiverError } from "../errors.js";
import { attentionLayout, type AttentionArgs } from "./attention-args.js";
import { add, gelu } from "./activations.js";
import { getBackend } from "./backend.js";
import { checkDims, checkLinear, checkMatmul, checkOut, checkRegion, checkTransB, overlaps } from "./gemm-checks.js";
import { B_PLAIN, B_TRANS } from "./gemm-kinds.js";
import { gemmTs, releaseTsGemmScratch } from "./gemm-ts.js";
import type { PackedWeight } from "./packed-weight.js";
import * as ref from "./reference/index.js";
import { softmaxRows } from "./softmax.js";
import { attentionWasm } from "./wasm/attention-wasm.js";
import { EPILOGUE_GELU, EPILOGUE_RESIDUAL, EPILOGUE_SOFTMAX, gemmWasm } from "./wasm/gemm-wasm.js";
import { releaseWasmGemm } from "./wasm/runtime.js";

export { PackedWeight, packWeight } from "./packed-weight.js";
export type { AttentionArgs } from "./attention-args.js";
// the backend and thread settings, re-exported where the public API has always found them
export { getBackend, setBackend, type Backend, type GemmBackend } from "./backend.js";
export { ensureThreads, getThreads, setThreads, threadsFallbackReason } from "./thread-count.js";

/** Frees the TypeScript kernels' scratch and heap and the wasm memory (they grow back on the next call). */
export function releaseGemmScratch(): void {
  releaseTsGemmScratch();
  releaseWasmGemm();
}

// a [M,K], packed w [N,K], bias [N] | null -> out [M,N] = a · wᵀ + bias
export function linear(a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  const { n, k } = w;
  checkLinear("linear", a, w, bias, out, m);
  const backend = getBackend();
  if (backend === "reference") return ref.linear(a, w.raw, bias, out, m, n, k);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1)) return;
  gemmTs(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1);
}

// a [M,K], w [N,K] (packed), bias [N] | null, residual [M,N] -> out [M,N] = (a·wᵀ + bias) + residual: the product
// rounded to float32, then the float32 add (as linear then add; out must not overlap residual). The wasm backend adds
// the residual in wasm memory before the result is copied out (no pass of JavaScript over the output).
export function linearResidual(
  a: Float32Array, w: PackedWeight, bias: Float32Array | null, residual: Float32Array, out: Float32Array, m: number,
): void {
  const { n, k } = w;
  checkLinear("linearResidual", a, w, bias, out, m);
  checkRegion("linearResidual", "residual", residual, 0, m, n, n);
  if (overlaps(out, m * n, residual, m * n)) {
    throw new PerceiverError("SHAPE_MISMATCH", "linearResidual: out overlaps residual (the product would overwrite it)");
  }
  const backend = getBackend();
  if (backend === "reference") {
    ref.linear(a, w.raw, bias, out, m, n, k);
    ref.add(out, residual, out, m * n);
    return;
  }
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1, EPILOGUE_RESIDUAL, residual)) return;
  gemmTs(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1);
  add(out, residual, out, m * n);
}

// a [M,K], packed w [N,K], bias [N] | null -> out [M,N] = gelu(a · wᵀ + bias)  (the MLP's first layer)
// The same as linear followed by gelu; the wasm backend applies GELU to each result block in wasm memory, split
// across the threads (bit-identical to `gelu`: wasm/gelu-kernel.ts).
export function linearGelu(a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  const { n, k } = w;
  checkLinear("linearGelu", a, w, bias, out, m);
  const backend = getBackend();
  if (backend === "reference") {
    ref.linear(a, w.raw, bias, out, m, n, k);
    ref.gelu(out, out, m * n);
    return;
  }
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1, EPILOGUE_GELU)) return;
  gemmTs(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1);
  gelu(out, out, m * n);
}

// a [M,K] (row stride lda, from aOff), b [N,K] (row stride ldb, from bOff) -> out [M,N] (row stride ldo, from oOff) = alpha · a · bᵀ
export function matmulTransB(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  checkTransB("matmulTransB", m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
  const backend = getBackend();
  if (backend === "reference") return ref.matmulTransB(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo, alpha);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha)) return;
  gemmTs(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha);
}

/**
 * a [M,K], b [N,K] -> out [M,N] = softmax over each row of alpha·(a · bᵀ)  (attention probabilities)
 * The same as matmulTransB followed by softmaxRows. The wasm backend applies the softmax to each block of rows
 * while it is still in wasm memory, split across the threads (see wasm/softmax-kernel.ts).
 */
export function matmulTransBSoftmax(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  checkTransB("matmulTransBSoftmax", m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
  const backend = getBackend();
  if (backend === "reference") {
    ref.matmulTransB(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo, alpha);
    ref.softmaxRows(out, oOff, m, n, ldo);
    return;
  }
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha, EPILOGUE_SOFTMAX)) return;
  gemmTs(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha);
  softmaxRows(out, oOff, m, n, ldo);
}

// a [M,K] (row stride lda, from aOff), b [K,N] (row stride ldb, from bOff) -> out [M,N] (row stride ldo, from oOff) = a · b
export function matmul(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
): void {
  checkMatmul("matmul", m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
  const backend = getBackend();
  if (backend === "reference") return ref.matmul(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
  if (backend === "wasm" && gemmWasm(B_PLAIN, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, 1)) return;
  gemmTs(B_PLAIN, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, 1);
}

/**
 * Multi-head attention in one call: q [M, heads·dqk], k [N, heads·dqk], v [N, heads·dv] -> out [M, heads·dv],
 * per head h (its column block) out_h = softmax(alpha·q_h·k_hᵀ over each row)·v_h (see AttentionArgs).
 * The reference backend runs reference/attention.ts. The wasm backend runs every head in wasm memory (a head per
 * thread job), bit-identical to matmulTransBSoftmax followed by matmul on each head there. Returns false, having
 * written nothing, where no fused form runs (the ts backend; on wasm, more than ATTENTION_MAX_KEYS keys, fewer
 * heads than threads, no wasm memory): the caller then runs those two products per head (with chunks of rows, in
 * bounded memory).
 */
export function attentionHeads(args: AttentionArgs): boolean {
  const x = attentionLayout(args);
  const { m, n, heads, dqk, dv } = x;
  const where = "attentionHeads";
  checkDims(where, { m, n, heads, dqk, dv, qOff: x.qOff, ldq: x.ldq, kOff: x.kOff, ldk: x.ldk, vOff: x.vOff, ldv: x.ldv, oOff: x.oOff, ldo: x.ldo });
  checkRegion(where, "q", x.q, x.qOff, m, heads * dqk, x.ldq);
  checkRegion(where, "k", x.k, x.kOff, n, heads * dqk, x.ldk);
  checkRegion(where, "v", x.v, x.vOff, n, heads * dv, x.ldv);
  checkRegion(where, "out", x.out, x.oOff, m, heads * dv, x.ldo);
  checkOut(where, m, heads * dv, x.ldo);
  const backend = getBackend();
  if (backend === "reference") {
    ref.attention(x);
    return true;
  }
  return backend === "wasm" && attentionWasm(x);
}
