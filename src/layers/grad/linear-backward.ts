/**
 * nn.Linear forward and backward.  y = x·Wᵀ + b,  x [M,K], W [N,K] (HF layout), b [N], y [M,N].
 *   dx = dy·W          [M,K]   (∂y[m,n]/∂x[m,k] = W[n,k])
 *   dW = dyᵀ·x         [N,K]   (∂y[m,n]/∂W[n,k] = x[m,k], summed over the rows m)
 *   db = Σ_m dy[m,:]   [N]
 * The *Ref functions are the readable loops; the others run the same sums through the GEMM kernels
 * (tensor/gemm.ts). Gradients are written, not accumulated.
 */
import { matmul, matmulTransB } from "../../tensor/gemm.js";

// x [M,K], w [N,K], b [N] | null -> out [M,N] = x·wᵀ + b
export function linearForwardRef(x: Float32Array, w: Float32Array, b: Float32Array | null, m: number, k: number, n: number, out: Float32Array): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = b ? b[j] : 0;
      for (let p = 0; p < k; p++) s += x[i * k + p] * w[j * k + p];
      out[i * n + j] = s;
    }
  }
}

// dy [M,N] -> dx [M,K] (skipped when null), dw [N,K], db [N]
export function linearBackwardRef(
  x: Float32Array, w: Float32Array, dy: Float32Array, m: number, k: number, n: number,
  dx: Float32Array | null, dw: Float32Array, db: Float32Array | null,
): void {
  if (dx) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += dy[i * n + j] * w[j * k + p];
        dx[i * k + p] = s;
      }
    }
  }
  for (let j = 0; j < n; j++) {
    for (let p = 0; p < k; p++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += dy[i * n + j] * x[i * k + p];
      dw[j * k + p] = s;
    }
  }
  if (db) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += dy[i * n + j];
      db[j] = s;
    }
  }
}

// as linearForwardRef, through matmulTransB
export function linearForward(x: Float32Array, w: Float32Array, b: Float32Array | null, m: number, k: number, n: number, out: Float32Array): void {
  matmulTransB(m, n, k, x, 0, k, w, 0, k, out, 0, n, 1);
  if (b) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[i * n + j] += b[j];
}

// as linearBackwardRef, through matmul (dyT: scratch of at least N·M floats for dyᵀ)
export function linearBackward(
  x: Float32Array, w: Float32Array, dy: Float32Array, m: number, k: number, n: number,
  dx: Float32Array | null, dw: Float32Array, db: Float32Array | null, dyT: Float32Array = new Float32Array(n * m),
): void {
  if (dx) matmul(m, k, n, dy, 0, n, w, 0, k, dx, 0, k);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) dyT[j * m + i] = dy[i * n + j];
  matmul(n, k, m, dyT, 0, m, x, 0, k, dw, 0, k);
  if (db) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += dyT[j * m + i];
      db[j] = s;
    }
  }
}
