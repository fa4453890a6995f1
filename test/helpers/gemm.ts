/**
 * What the matrix-product tests share (test/gemm.test.ts for the TypeScript kernels, test/gemm-wasm.test.ts for
 * WebAssembly): seeded inputs, the tolerance, and runners that do one (strided) problem three times: the optimized
 * kernel, its reference (src/tensor/reference/), and the reference on absolute values (the scale of the tolerance).
 *
 * Tolerance: |got − want| ≤ REL · (1 + Σ|terms|) per output, Σ|terms| the same product on absolute values.
 * Every output buffer is larger than its region and pre-filled with SENTINEL, to catch stray writes.
 */
import { expect } from "vitest";
import { linear, matmul, matmulTransB, matmulTransBSoftmax, packWeight } from "../../src/tensor/gemm.js";
import * as ref from "../../src/tensor/reference/index.js";

/** The reference of matmulTransBSoftmax: the reference product, then the reference row softmax. */
export function matmulTransBSoftmaxRef(
  m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number, b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): void {
  ref.matmulTransB(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo, alpha);
  ref.softmaxRows(out, oOff, m, n, ldo);
}

/** The reference of linearGelu: the reference product, then the exact-erf GELU. */
export function linearGeluRef(
  a: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, m: number, n: number, k: number,
): void {
  ref.linear(a, w, bias, out, m, n, k);
  ref.gelu(out, out, m * n);
}

export const REL = 1e-5;
export const SENTINEL = 777.25;
export const ODD = [1, 3, 7, 13, 129];

/**
 * Multi-head attention as the attention layer's per-head path computes it (matmulTransBSoftmax, then matmul, per
 * head; arguments as attentionHeads'): what the fused attentionHeads must match bit for bit.
 */
export function attentionPerHead(
  m: number, n: number, heads: number, dqk: number, dv: number,
  q: Float32Array, qOff: number, ldq: number, k: Float32Array, kOff: number, ldk: number,
  v: Float32Array, vOff: number, ldv: number, out: Float32Array, oOff: number, ldo: number, alpha: number,
): void {
  const p = new Float32Array(m * n);
  for (let h = 0; h < heads; h++) {
    matmulTransBSoftmax(m, n, dqk, q, qOff + h * dqk, ldq, k, kOff + h * dqk, ldk, p, 0, n, alpha);
    matmul(m, dv, n, p, 0, n, v, vOff + h * dv, ldv, out, oOff + h * dv, ldo);
  }
}

/** Deterministic uniform values in [-1, 1) (mulberry32). */
export function rand(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    x[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return x;
}

export function abs(x: Float32Array): Float32Array {
  return x.map(Math.abs);
}

export function filled(n: number): Float32Array {
  return new Float32Array(n).fill(SENTINEL);
}

/** Largest violation of the tolerance (≤ 0 means all within), over the whole buffers. */
export function worst(got: Float32Array, want: Float32Array, scale: Float32Array): number {
  let w = -Infinity;
  for (let i = 0; i < got.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - REL * (1 + Math.abs(scale[i]));
    if (!(excess <= w)) w = Number.isNaN(excess) ? Infinity : excess;
  }
  return w;
}

export function countBitDiffs(got: Float32Array, want: Float32Array): number {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let d = 0;
  for (let i = 0; i < g.length; i++) if (g[i] !== w[i]) d++;
  return d;
}

/** Checks that only the [m,n] region at oOff with stride ldo changed from the sentinel. */
export function expectOnlyRegionWritten(out: Float32Array, m: number, n: number, oOff: number, ldo: number): void {
  let stray = 0;
  let missing = 0;
  for (let idx = 0; idx < out.length; idx++) {
    const rel = idx - oOff;
    const inRegion = rel >= 0 && Math.floor(rel / ldo) < m && rel % ldo < n;
    if (!inRegion && out[idx] !== SENTINEL) stray++;
    if (inRegion && out[idx] === SENTINEL) missing++;
  }
  expect({ stray, missing }).toEqual({ stray: 0, missing: 0 });
}

// ---------------------------------------------------------------------------------------------------------------
// runners: optimized, naive and |.|-scale on the same (strided) problem; return [got, want, scale]

export interface Strides { aOff: number; lda: number; bOff: number; ldb: number; oOff: number; ldo: number }

export function runLinear(m: number, n: number, k: number, withBias: boolean, seed: number): Float32Array[] {
  const a = rand(m * k, seed), w = rand(n * k, seed + 1);
  const bias = withBias ? rand(n, seed + 2) : null;
  const got = filled(m * n + 5), want = filled(m * n + 5), scale = filled(m * n + 5);
  linear(a, packWeight(w, n, k), bias, got, m);
  ref.linear(a, w, bias, want, m, n, k);
  ref.linear(abs(a), abs(w), bias && abs(bias), scale, m, n, k);
  expectOnlyRegionWritten(got, m, n, 0, n);
  return [got, want, scale];
}

export function runTransB(m: number, n: number, k: number, s: Strides, alpha: number, seed: number): Float32Array[] {
  const a = rand(s.aOff + m * s.lda + 3, seed), b = rand(s.bOff + n * s.ldb + 3, seed + 1);
  const size = s.oOff + m * s.ldo + 4;
  const got = filled(size), want = filled(size), scale = filled(size);
  matmulTransB(m, n, k, a, s.aOff, s.lda, b, s.bOff, s.ldb, got, s.oOff, s.ldo, alpha);
  ref.matmulTransB(m, n, k, a, s.aOff, s.lda, b, s.bOff, s.ldb, want, s.oOff, s.ldo, alpha);
  ref.matmulTransB(m, n, k, abs(a), s.aOff, s.lda, abs(b), s.bOff, s.ldb, scale, s.oOff, s.ldo, Math.abs(alpha));
  expectOnlyRegionWritten(got, m, n, s.oOff, s.ldo);
  return [got, want, scale];
}

export function runMatmul(m: number, n: number, k: number, s: Strides, seed: number): Float32Array[] {
  const a = rand(s.aOff + m * s.lda + 3, seed), b = rand(s.bOff + k * s.ldb + 3, seed + 1);
  const size = s.oOff + m * s.ldo + 4;
  const got = filled(size), want = filled(size), scale = filled(size);
  matmul(m, n, k, a, s.aOff, s.lda, b, s.bOff, s.ldb, got, s.oOff, s.ldo);
  ref.matmul(m, n, k, a, s.aOff, s.lda, b, s.bOff, s.ldb, want, s.oOff, s.ldo);
  ref.matmul(m, n, k, abs(a), s.aOff, s.lda, abs(b), s.bOff, s.ldb, scale, s.oOff, s.ldo);
  expectOnlyRegionWritten(got, m, n, s.oOff, s.ldo);
  return [got, want, scale];
}

export const dense = (m: number, n: number, k: number, transB: boolean): Strides =>
  ({ aOff: 0, lda: k, bOff: 0, ldb: transB ? k : n, oOff: 0, ldo: n });
export const strided = (m: number, n: number, k: number, transB: boolean): Strides =>
  ({ aOff: 5, lda: k + 3, bOff: 2, ldb: (transB ? k : n) + 1, oOff: 7, ldo: n + 2 });

