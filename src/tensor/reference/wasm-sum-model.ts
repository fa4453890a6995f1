/**
 * The wasm GEMM's arithmetic in scalar JavaScript: for each output, the same float32 operations in the same order
 * as the SIMD kernel (wasm/gemm-kernel.ts), so the two give bit-identical results (the tests compare them). It
 * documents exactly what the fast kernel computes, next to the reference loops it is measured against.
 *
 * The kernel sums a row of A times a column of B in two levels of float32:
 *   K is cut into chunks of kcs = ceil(K / chunks) steps (chunks = ceil(K / KC)), each chunk into runs of SUB steps;
 *   a run sums its products in a float32 register starting from 0; each run's sum is added to C (float32,
 *   starting from the bias); out = float32(alpha · C), the product taken in double.
 * Error: about (SUB + K/SUB)·2^-24·Σ|a·b| against K·2^-24·Σ|a·b| for one running float32 sum.
 * `fused`: the kernel variant with f32x4.relaxed_madd, which (on hardware with fused multiply-add) rounds
 * a·b + run once; the plain variant rounds the product, then the sum.
 */
import { B_TRANS } from "../gemm-kinds.js";
import { KC, SUB } from "../wasm/gemm-kernel.js";

const f32 = Math.fround;
const bits = new Float32Array(1);
const word = new Int32Array(bits.buffer);

/** The float32 next to x (a finite nonzero float32) away from zero (up = true) or toward zero. */
function nextF32(x: number, up: boolean): number {
  bits[0] = x;
  word[0] += up ? 1 : -1;
  return bits[0];
}

/** float32(a·b + c), rounded once (a, b, c float32): the fused multiply-add of the "fma" kernel variant. */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 significant bits fit a double's 53
  const s = p + c; // rounded to double; e is what that rounding dropped (Knuth's two-sum): p + c = s + e exactly
  const v = s - p;
  const e = (p - (s - v)) + (c - v);
  const r = f32(s);
  // rounding twice (to double, then to float32) differs from rounding once only when s lies exactly halfway
  // between two float32 values and the dropped e decides the side
  if (e === 0 || r === s || !Number.isFinite(r) || r === 0) return r;
  const other = nextF32(r, Math.abs(s) > Math.abs(r));
  if (Math.abs(s - r) !== Math.abs(other - s)) return r;
  return e > 0 ? Math.max(r, other) : Math.min(r, other);
}

// a [M,K] (row stride lda, from aOff), b [N,K] (kind B_TRANS) or [K,N] (B_PLAIN) (row stride ldb, from bOff),
// bias [N] | null -> out [M,N] (row stride ldo, from oOff) = float32(alpha · (bias + a·b)) summed as the wasm kernel
export function wasmGemmModel(
  kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number, fused: boolean,
): void {
  const chunks = Math.max(1, Math.ceil(k / KC));
  const kcs = Math.ceil(k / chunks);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const bAt = (p: number) => (kind === B_TRANS ? b[bOff + j * ldb + p] : b[bOff + p * ldb + j]);
      let c = bias ? bias[j] : 0;
      for (let q0 = 0; q0 < k; q0 += kcs) {
        const q1 = Math.min(k, q0 + kcs);
        for (let r0 = q0; r0 < q1; r0 += SUB) {
          const r1 = Math.min(q1, r0 + SUB);
          let run = 0;
          for (let p = r0; p < r1; p++) {
            const x = a[aOff + i * lda + p], y = bAt(p);
            run = fused ? fmaF32(x, y, run) : f32(run + f32(x * y));
          }
          c = f32(c + run);
        }
      }
      out[oOff + i * ldo + j] = alpha * c;
    }
  }
}
