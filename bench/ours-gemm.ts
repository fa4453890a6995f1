/**
 * perceiver-ts GEMM GFLOP/s on the model's shapes, with the kernel and memory layout the model uses for each
 * (packed-weight `linear` with bias, strided per-head `matmulTransB` / `matmul`), for the backend selected in this
 * process (see ours-backend.ts).
 */
import { linear, matmul, matmulTransB, packWeight } from "../src/tensor/gemm.js";
import { GEMM_SHAPES, randomArray, shapeResult, timeCalls, type GemmResult, type GemmShape } from "./common.js";
import { selectOurBackend } from "./ours-backend.js";

/** One call of `s` as the model makes it, with its operands allocated once. */
function prepare(s: GemmShape): () => void {
  const { m, n, k } = s;
  if (s.kind === "linear") {
    const a = randomArray(m * k, 1), bias = randomArray(n, 3), out = new Float32Array(m * n);
    const w = packWeight(randomArray(n * k, 2), n, k);
    return () => linear(a, w, bias, out, m);
  }
  const ld = s.ld;
  if (s.kind === "matmulTransB") {
    // q [M,K] and k [N,K] views with row stride ld -> scores [M,N]
    const lda = ld ?? k, ldb = ld ?? k;
    const a = randomArray(m * lda, 1), b = randomArray(n * ldb, 2), out = new Float32Array(m * n);
    return () => matmulTransB(m, n, k, a, 0, lda, b, 0, ldb, out, 0, n, 0.125);
  }
  // probs [M,K] · v [K,N] view with row stride ld -> context [M,N] view with row stride ld
  const ldb = ld ?? n, ldo = ld ?? n;
  const a = randomArray(m * k, 1), b = randomArray(k * ldb, 2), out = new Float32Array(m * ldo);
  return () => matmul(m, n, k, a, 0, k, b, 0, ldb, out, 0, ldo);
}

export async function oursGemm(backend: string, threads: number): Promise<GemmResult> {
  const result: GemmResult = { engine: "perceiver-ts", backend, threads, notes: [], shapes: [] };
  const reason = await selectOurBackend(backend, threads);
  if (reason !== null) return { ...result, skipped: reason };
  for (const s of GEMM_SHAPES) {
    const call = prepare(s);
    result.shapes.push(shapeResult(s, await timeCalls(call)));
  }
  return result;
}
