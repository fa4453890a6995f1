// x [rows, cols] (row stride ld, from off) -> softmax over each row, in place. Numerically stable: the row max is
// subtracted before exp, and the sum is accumulated in double.
export function softmaxRows(x: Float32Array, off: number, rows: number, cols: number, ld: number): void {
  for (let r = 0; r < rows; r++) {
    const o = off + r * ld;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > max) max = x[o + j];
    if (max === -Infinity) max = 0; // a row of -inf (fully masked) gives NaN like torch; keep exp finite otherwise
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(x[o + j] - max);
      x[o + j] = e;
      sum += e;
    }
    // divide by the double sum using the stored (f32-rounded) exponentials, as torch does
    const inv = 1 / sum;
    for (let j = 0; j < cols; j++) x[o + j] *= inv;
  }
}
