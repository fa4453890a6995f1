/**
 * nn.LayerNorm over the last dimension, forward (keeping what the backward needs) and backward.
 *   μ = mean(x),  σ² = mean((x-μ)²),  r = 1/√(σ²+ε),  x̂ = (x-μ)·r,  y = γ⊙x̂ + β
 *   dγ = Σ_rows dy⊙x̂,   dβ = Σ_rows dy
 *   with g = dy⊙γ:  ∂x̂_j/∂x_i = r·(δ_ij - 1/D - x̂_i·x̂_j/D), so
 *   dx = r·(g - mean(g) - x̂·mean(g⊙x̂))
 * layerNormBackwardRef sums the Jacobian element by element (O(D²) per row); layerNormBackward uses the closed form.
 */
import { rowMeanRstd } from "../../tensor/reference/layernorm.js";

// x [rows, dim] -> out [rows, dim] = γ⊙x̂ + β, xhat [rows, dim], rstd [rows]
export function layerNormForward(
  x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, dim: number, eps: number,
  out: Float32Array, xhat: Float32Array, rstd: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const { mean, rstd: inv } = rowMeanRstd(x, o, dim, eps);
    rstd[r] = inv;
    for (let i = 0; i < dim; i++) {
      const h = (x[o + i] - mean) * inv;
      xhat[o + i] = h;
      out[o + i] = h * gamma[i] + beta[i];
    }
  }
}

// dγ [dim], dβ [dim] = the parameter gradients (written)
export function layerNormParamGrads(dy: Float32Array, xhat: Float32Array, rows: number, dim: number, dgamma: Float32Array, dbeta: Float32Array): void {
  for (let i = 0; i < dim; i++) {
    let g = 0, b = 0;
    for (let r = 0; r < rows; r++) {
      g += dy[r * dim + i] * xhat[r * dim + i];
      b += dy[r * dim + i];
    }
    dgamma[i] = g;
    dbeta[i] = b;
  }
}

// dy [rows, dim] -> dx [rows, dim] (null: skipped) and dγ, dβ (written), by the closed form
export function layerNormBackward(
  dy: Float32Array, xhat: Float32Array, rstd: Float32Array, gamma: Float32Array, rows: number, dim: number,
  dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
): void {
  layerNormParamGrads(dy, xhat, rows, dim, dgamma, dbeta);
  if (!dx) return;
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mg = 0, mgx = 0;
    for (let i = 0; i < dim; i++) {
      const g = dy[o + i] * gamma[i];
      mg += g;
      mgx += g * xhat[o + i];
    }
    mg /= dim;
    mgx /= dim;
    for (let i = 0; i < dim; i++) dx[o + i] = rstd[r] * (dy[o + i] * gamma[i] - mg - xhat[o + i] * mgx);
  }
}

// the same, with dx summed from the Jacobian ∂x̂_j/∂x_i = r·(δ_ij - 1/D - x̂_i·x̂_j/D) term by term
export function layerNormBackwardRef(
  dy: Float32Array, xhat: Float32Array, rstd: Float32Array, gamma: Float32Array, rows: number, dim: number,
  dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
): void {
  layerNormParamGrads(dy, xhat, rows, dim, dgamma, dbeta);
  if (!dx) return;
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let i = 0; i < dim; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) {
        const jac = rstd[r] * ((i === j ? 1 : 0) - 1 / dim - (xhat[o + i] * xhat[o + j]) / dim);
        s += dy[o + j] * gamma[j] * jac;
      }
      dx[o + i] = s;
    }
  }
}
