// x [rows, cols] (row stride ld, from off) -> in place, each row r: x[r, j] = exp(x[r, j] - max_r) / Σ_j' exp(x[r, j'] - max_r)
// Subtracting the row max keeps exp finite; the sum is taken in double, then each stored exponential is scaled
// by 1/sum. A row of -inf (fully masked) gives NaN, as in torch.
export function softmaxRows(x: Float32Array, off: number, rows: number, cols: number, ld: number): void {
  for (let r = 0; r < rows; r++) {
    const o = off + r * ld;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > max) max = x[o + j];
    if (max === -Infinity) max = 0;
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(x[o + j] - max);
      x[o + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j < cols; j++) x[o + j] *= inv;
  }
}
