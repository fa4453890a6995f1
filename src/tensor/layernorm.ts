import { getBackend } from "./backend.js";
import * as ref from "./reference/layernorm.js";
import { layerNormWasm } from "./wasm/layernorm-wasm.js";

// x [rows, dim], weight [dim], bias [dim] -> out [rows, dim]: layer norm of each row on the selected backend:
// reference/layernorm.ts's two passes, `layerNorm` below (ts), or the wasm kernel (bit-identical to layerNorm,
// rows split across its threads). out may alias x.
export function layerNormRows(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): void {
  const backend = getBackend();
  if (backend === "reference") return ref.layerNorm(x, weight, bias, out, rows, dim, eps);
  if (backend === "wasm" && layerNormWasm(x, weight, bias, out, rows, dim, eps)) return;
  layerNorm(x, weight, bias, out, rows, dim, eps);
}

// x [rows, dim], weight [dim], bias [dim] -> out [rows, dim] = (x - mean) / sqrt(var_biased + eps) * weight + bias
// Mean and variance are accumulated in double, in four interleaved sums over groups of 4 (lane j: elements 4i + j,
// combined (s0 + s2) + (s1 + s3)), then the last dim % 4 elements in order: the order of the wasm kernel's two
// float64x2 sums (layernorm-kernel.ts), so both give the same bits. `out` may alias `x`.
// Note: HF Perceiver builds every nn.LayerNorm with torch's default eps 1e-5 (the config's layer_norm_eps is unused).
export function layerNorm(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): void {
  const dim4 = dim & ~3;
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = o; i < o + dim4; i += 4) {
      s0 += x[i];
      s1 += x[i + 1];
      s2 += x[i + 2];
      s3 += x[i + 3];
    }
    let sum = (s0 + s2) + (s1 + s3);
    for (let i = o + dim4; i < o + dim; i++) sum += x[i];
    const mean = sum / dim;
    s0 = s1 = s2 = s3 = 0;
    for (let i = o; i < o + dim4; i += 4) {
      const d0 = x[i] - mean, d1 = x[i + 1] - mean, d2 = x[i + 2] - mean, d3 = x[i + 3] - mean;
      s0 += d0 * d0;
      s1 += d1 * d1;
      s2 += d2 * d2;
      s3 += d3 * d3;
    }
    let sq = (s0 + s2) + (s1 + s3);
    for (let i = o + dim4; i < o + dim; i++) {
      const d = x[i] - mean;
      sq += d * d;
    }
    const inv = 1 / Math.sqrt(sq / dim + eps);
    for (let i = 0; i < dim; i++) out[o + i] = (x[o + i] - mean) * inv * weight[i] + bias[i];
  }
}
