/**
 * Argument checks of the matrix products (O(1) each): a bad shape, offset or stride throws SHAPE_MISMATCH
 * instead of reading undefined or silently dropping writes.
 */
import { PerceiverError } from "../errors.js";
import { PackedWeight } from "./packed-weight.js";

export function checkDims(where: string, dims: Record<string, number>): void {
  for (const name in dims) {
    const v = dims[name];
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new PerceiverError("SHAPE_MISMATCH", `${where}: ${name} must be a non-negative integer, got ${v}`);
    }
  }
}

/** Checks that rows x cols elements at `off` with row stride `ld` fit inside `arr`. */
export function checkRegion(where: string, name: string, arr: Float32Array, off: number, rows: number, cols: number, ld: number): void {
  if (rows === 0 || cols === 0) return;
  const last = off + (rows - 1) * ld + cols - 1;
  if (last >= arr.length) {
    throw new PerceiverError(
      "SHAPE_MISMATCH",
      `${where}: ${name} [${rows},${cols}] at offset ${off} with row stride ${ld} needs ${last + 1} elements, has ${arr.length}`,
    );
  }
}

/** Whether the first a and b elements of two arrays share memory. */
export function overlaps(x: Float32Array, a: number, y: Float32Array, b: number): boolean {
  if (x.buffer !== y.buffer || a === 0 || b === 0) return false;
  return x.byteOffset < y.byteOffset + 4 * b && y.byteOffset < x.byteOffset + 4 * a;
}

export function checkOut(where: string, m: number, n: number, ldo: number): void {
  if (m > 1 && ldo < n) {
    throw new PerceiverError("SHAPE_MISMATCH", `${where}: output row stride ldo=${ldo} is smaller than n=${n} (rows would overlap)`);
  }
}

export function checkLinear(where: string, a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  checkDims(where, { m });
  if (!(w instanceof PackedWeight)) {
    throw new PerceiverError("SHAPE_MISMATCH", `${where}: the weight was not made by packWeight`);
  }
  const { n, k } = w;
  checkRegion(where, "a", a, 0, m, k, k);
  checkRegion(where, "out", out, 0, m, n, n);
  if (bias !== null && bias.length !== n) {
    throw new PerceiverError("SHAPE_MISMATCH", `${where}: bias has ${bias.length} elements, expected ${n}`);
  }
}

export function checkTransB(
  where: string, m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number, out: Float32Array, oOff: number, ldo: number,
): void {
  checkDims(where, { m, n, k, aOff, lda, bOff, ldb, oOff, ldo });
  checkRegion(where, "a", a, aOff, m, k, lda);
  checkRegion(where, "b", b, bOff, n, k, ldb);
  checkRegion(where, "out", out, oOff, m, n, ldo);
  checkOut(where, m, n, ldo);
}


export function checkMatmul(
  where: string, m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number, out: Float32Array, oOff: number, ldo: number,
): void {
  checkDims(where, { m, n, k, aOff, lda, bOff, ldb, oOff, ldo });
  checkRegion(where, "a", a, aOff, m, k, lda);
  checkRegion(where, "b", b, bOff, k, n, ldb);
  checkRegion(where, "out", out, oOff, m, n, ldo);
  checkOut(where, m, n, ldo);
}
