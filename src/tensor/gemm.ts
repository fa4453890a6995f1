/**
 * Matrix products. PLACEHOLDER: the optimized kernels below currently call the naive twins; the
 * packed / cache-blocked / register-tiled versions replace them with the same signatures.
 * All products accumulate in double (JS numbers) and round once to float32 on store.
 */

/** A weight matrix w [N,K] (HF Linear layout) prepared once for `linear`. */
export interface PackedWeight {
  readonly n: number;
  readonly k: number;
  /** layout private to this module */
  readonly data: Float32Array;
}

// w [N,K] -> packed panels for `linear`
export function packWeight(w: Float32Array, n: number, k: number): PackedWeight {
  return { n, k, data: w };
}

// a [M,K], packed w [N,K], bias [N] | null -> out [M,N] = a · wᵀ + bias
export function linear(a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  linearNaive(a, w.data, bias, out, m, w.n, w.k);
}

// a [M,K], w [N,K], bias [N] | null -> out [M,N] = a · wᵀ + bias   (naive reference)
export function linearNaive(
  a: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, m: number, n: number, k: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * w[j * k + p];
      out[i * n + j] = s;
    }
  }
}

// a [M,K] (row stride lda, from aOff), b [N,K] (row stride ldb, from bOff) -> out [M,N] (row stride ldo, from oOff) = alpha · a · bᵀ
export function matmulTransB(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  matmulTransBNaive(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo, alpha);
}

// naive reference of matmulTransB
export function matmulTransBNaive(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[aOff + i * lda + p] * b[bOff + j * ldb + p];
      out[oOff + i * ldo + j] = alpha * s;
    }
  }
}

// a [M,K] (row stride lda, from aOff), b [K,N] (row stride ldb, from bOff) -> out [M,N] (row stride ldo, from oOff) = a · b
export function matmul(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
): void {
  matmulNaive(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
}

// naive reference of matmul
export function matmulNaive(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[aOff + i * lda + p] * b[bOff + p * ldb + j];
      out[oOff + i * ldo + j] = s;
    }
  }
}
