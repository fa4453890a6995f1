/**
 * The reference matrix products: textbook triple loops. Each output is one sum in double (JS numbers), starting
 * from the bias (or 0), over p = 0..K-1 in order, rounded once to float32 when stored. A product of two float32
 * values is exact in double, so the TypeScript backend (gemm-ts.ts), which sums in the same order, gives exactly
 * these bits; the wasm backend sums in float32 (see wasm-sum-model.ts) and lands within its error bound of them.
 */

// a [M,K], w [N,K], bias [N] | null -> out [M,N] = a · wᵀ + bias   (nn.Linear)
export function linear(
  a: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, m: number, n: number, k: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const ai = i * k, wj = j * k; // row i of a, row j of w
      let s = bias ? bias[j] : 0;
      for (let p = 0; p < k; p++) s += a[ai + p] * w[wj + p];
      out[i * n + j] = s;
    }
  }
}

// a [M,K] (row stride lda, from aOff), b [N,K] (row stride ldb, from bOff)
//   -> out [M,N] (row stride ldo, from oOff) = alpha · a · bᵀ
export function matmulTransB(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const ai = aOff + i * lda, bj = bOff + j * ldb; // row i of a, row j of b
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ai + p] * b[bj + p];
      out[oOff + i * ldo + j] = alpha * s;
    }
  }
}

// a [M,K] (row stride lda, from aOff), b [K,N] (row stride ldb, from bOff)
//   -> out [M,N] (row stride ldo, from oOff) = a · b
export function matmul(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const ai = aOff + i * lda, bj = bOff + j; // row i of a, column j of b
      let s = 0;
      for (let p = 0; p < k; p++) s += a[ai + p] * b[bj + p * ldb];
      out[oOff + i * ldo + j] = s;
    }
  }
}
