/**
 * Layout changes between channel-major and token-major data (NCHW images -> rows of tokens).
 *
 * Small functions on purpose: V8 optimizes a loop only once it has run for a while, counted against the whole
 * function's size, so the same loop inlined in a long method ran mostly unoptimized at each call and boxed every
 * float it read (3 MB of young-generation garbage per forward pass for the conv features alone).
 */

// src [rows, cols] (from sOff) -> dst [cols, rows] with row stride ld (from dOff): dst[dOff + j·ld + i] = src[sOff + i·cols + j]
export function transposeInto(
  src: Float32Array, sOff: number, rows: number, cols: number, dst: Float32Array, dOff: number, ld: number,
): void {
  for (let j = 0; j < cols; j++) {
    const d = dOff + j * ld;
    for (let i = 0; i < rows; i++) dst[d + i] = src[sOff + i * cols + j];
  }
}
