// x [rows, dim], weight [dim], bias [dim] -> out [rows, dim]; each row: out = (x - mean) / √(var + eps) · weight + bias
// Two passes over the row in double: the mean, then the biased variance Σ(x - mean)² / dim. out may alias x.
export function layerNorm(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const { mean, rstd } = rowMeanRstd(x, o, dim, eps);
    for (let i = 0; i < dim; i++) out[o + i] = (x[o + i] - mean) * rstd * weight[i] + bias[i];
  }
}

// x[o .. o+dim) -> its mean and rstd = 1 / √(var + eps), var = Σ(x - mean)² / dim (biased), two passes in double
export function rowMeanRstd(x: Float32Array, o: number, dim: number, eps: number): { mean: number; rstd: number } {
  let sum = 0;
  for (let i = 0; i < dim; i++) sum += x[o + i];
  const mean = sum / dim;
  let sq = 0;
  for (let i = 0; i < dim; i++) sq += (x[o + i] - mean) * (x[o + i] - mean);
  return { mean, rstd: 1 / Math.sqrt(sq / dim + eps) };
}
