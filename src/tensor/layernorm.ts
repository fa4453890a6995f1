import { getBackend } from "./gemm.js";
import { layerNormWasm } from "./wasm/gemm-wasm.js";

// x [rows, dim], weight [dim], bias [dim] -> out [rows, dim], as layerNorm (its TypeScript twin, bit-identical),
// on the wasm backend when it is in use (rows split across its threads)
export function layerNormRows(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): void {
  if (getBackend() === "wasm" && layerNormWasm(x, weight, bias, out, rows, dim, eps)) return;
  layerNorm(x, weight, bias, out, rows, dim, eps);
}

// x [rows, dim], weight [dim], bias [dim] -> out [rows, dim] = (x - mean) / sqrt(var_biased + eps) * weight + bias
// Mean and variance are accumulated in double. `out` may alias `x`.
// Note: HF Perceiver builds every nn.LayerNorm with torch's default eps 1e-5 (the config's layer_norm_eps is unused).
export function layerNorm(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[o + i];
    const mean = sum / dim;
    let sq = 0;
    for (let i = 0; i < dim; i++) {
      const d = x[o + i] - mean;
      sq += d * d;
    }
    const inv = 1 / Math.sqrt(sq / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = (x[o + i] - mean) * inv * weight[i] + bias[i];
  }
}
