/**
 * Packing for the TypeScript GEMM (gemm-ts.ts), GotoBLAS-style: operands are copied into one Float32Array heap
 * (gemm-asm.ts) in the order the micro-kernel reads them.
 *  - B is cut into panels of NR columns, k-major inside a panel, zero-padded to a multiple of NR columns
 *    (`linear`'s weight too, at each call: a small cost against keeping a second copy of every weight);
 *  - A is packed MC rows at a time (MC·K ≤ A_BLOCK, sized to stay in L2) as tiles of MR rows, row-interleaved
 *    and k-major, zero rows up to a whole tile.
 */
import { B_TRANS } from "./gemm-kinds.js";

/** Rows of A per register tile. */
export const MR = 4;
/** Columns of B per register tile and per packed panel. */
export const NR = 4;
/** Packed A block size in floats (128 KB: a part of L2). */
const A_BLOCK = 32 * 1024;
/** Packed B block size in floats (1 MB: a slice of L3). */
const B_BLOCK = 256 * 1024;


//   row-interleaved; rows past mc up to a whole tile are zeros
export function packA(a: Float32Array, aOff: number, lda: number, mc: number, k: number, h: Float32Array, d: number): void {
  const mPad = Math.ceil(mc / MR) * MR;
  for (let i = 0; i < mPad; i++) {
    let o = d + (i - (i % MR)) * k + (i % MR);
    if (i < mc) {
      const src = aOff + i * lda;
      for (let p = 0; p < k; p++, o += MR) h[o] = a[src + p];
    } else {
      for (let p = 0; p < k; p++, o += MR) h[o] = 0;
    }
  }
}

// b [N,K] rows (stride ldb, from bOff), columns [jc, jc+nc) of the product
//   -> h from d: panels of NR, k-major, zero-padded
function packBTrans(b: Float32Array, bOff: number, ldb: number, jc: number, nc: number, k: number, h: Float32Array, d0: number): void {
  const padded = Math.ceil(nc / NR) * NR;
  for (let jj = 0; jj < padded; jj++) {
    let d = d0 + (jj - (jj % NR)) * k + (jj % NR);
    if (jj < nc) {
      const src = bOff + (jc + jj) * ldb;
      for (let p = 0; p < k; p++, d += NR) h[d] = b[src + p];
    } else {
      for (let p = 0; p < k; p++, d += NR) h[d] = 0;
    }
  }
}

// b [K,N] rows (stride ldb, from bOff), columns [jc, jc+nc) -> h from d0: panels of NR, k-major, zero-padded
function packB(b: Float32Array, bOff: number, ldb: number, jc: number, nc: number, k: number, h: Float32Array, d0: number): void {
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const w = Math.min(NR, nc - j0);
    let d = d0 + j0 * k;
    let src = bOff + jc + j0;
    if (w === NR) {
      for (let p = 0; p < k; p++, d += NR, src += ldb) {
        h[d] = b[src];
        h[d + 1] = b[src + 1];
        h[d + 2] = b[src + 2];
        h[d + 3] = b[src + 3];
      }
    } else {
      for (let p = 0; p < k; p++, d += NR, src += ldb) {
        for (let jj = 0; jj < NR; jj++) h[d + jj] = jj < w ? b[src + jj] : 0;
      }
    }
  }
}

// bias [N] | null, columns [jc, jc+nc) -> s[0, padded): bias or zeros, zero-padded to a multiple of NR
export function packBias(bias: Float32Array | null, jc: number, nc: number, s: number[]): void {
  const padded = Math.ceil(nc / NR) * NR;
  for (let c = 0; c < padded; c++) s[c] = bias !== null && c < nc ? bias[jc + c] : 0;
}

/** Columns of B per staged block (B_BLOCK floats) and rows of A per packed block (A_BLOCK floats) for this K. */
export function blockSizes(k: number): { ncMax: number; mcMax: number } {
  const kk = Math.max(k, 1);
  return { ncMax: Math.max(NR, Math.floor(B_BLOCK / kk / NR) * NR), mcMax: Math.max(MR, Math.floor(A_BLOCK / kk / MR) * MR) };
}

// bias [N] | null and B (B_TRANS or B_PLAIN), columns [jc, jc+nc) -> h: bias [ncPad] at zF, panels [ncPad, K] at bF
export function stageBiasAndB(
  kind: number, bias: Float32Array | null, b: Float32Array, bOff: number, ldb: number,
  jc: number, nc: number, ncPad: number, k: number, h: Float32Array, zF: number, bF: number,
): void {
  for (let c = 0; c < ncPad; c++) h[zF + c] = bias !== null && c < nc ? bias[jc + c] : 0;
  if (kind === B_TRANS) packBTrans(b, bOff, ldb, jc, nc, k, h, bF);
  else packB(b, bOff, ldb, jc, nc, k, h, bF);
}


