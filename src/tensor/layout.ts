/**
 * Layout changes: channel-major to token-major data (NCHW images -> rows of tokens), strided block copies, and one
 * item's columns repeated across a batch.
 *
 * Small functions on purpose: V8 optimizes a loop only once it has run for a while, counted against the whole
 * function's size, so the same loop inlined in a long method ran mostly unoptimized at each call and boxed every
 * float it read (garbage for the collector on every call).
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

// src [rows, cols] (row stride sld, from sOff) -> dst [rows, cols] (row stride dld, from dOff): one set() when both
// are dense, else a plain loop (a subarray view per row would be garbage for the collector)
export function copyBlock(
  src: Float32Array, sOff: number, sld: number, dst: Float32Array, dOff: number, dld: number, rows: number, cols: number,
): void {
  if (sld === cols && dld === cols) {
    dst.set(src.subarray(sOff, sOff + rows * cols), dOff);
    return;
  }
  for (let i = 0; i < rows; i++) {
    const s = sOff + i * sld, d = dOff + i * dld;
    for (let j = 0; j < cols; j++) dst[d + j] = src[s + j];
  }
}

// x [batch, rows, ld]: columns [c0, ld) of item 0's rows -> the same columns of every other item
export function repeatItemColumns(x: Float32Array, batch: number, rows: number, ld: number, c0: number): void {
  for (let b = 1; b < batch; b++) {
    for (let t = 0; t < rows; t++) x.copyWithin((b * rows + t) * ld + c0, t * ld + c0, (t + 1) * ld);
  }
}
