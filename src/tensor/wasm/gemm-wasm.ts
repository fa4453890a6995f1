/**
 * The WebAssembly GEMM's driver: stages one product's operands into the runtime's memory (runtime.ts), calls the
 * generated kernel (gemm-kernel.ts) and copies the result out. gemm.ts checks the arguments and picks the backend.
 *
 * Memory layout of one call (byte offsets from CONST_BYTES; every region 16-byte aligned), per block of
 * nc ≤ ~8 MB / (4K) columns (usually all of N):
 *
 *   bias [ncPad] f32 | B panels [ncPad/4][K][4] f32 | A [chunks][rows, A_STRIDE] f32 | C [rows, ncPad+4] f32 |
 *   result [rows, ncPad+4] f32 | (residual [rows, nc], when it does not fit in A's space) |
 *   (raw A [rows, K], when it does not fit in C's space) | KC zeros
 *
 *  - B: matmulTransB's b [N,K] (and linear's weight, a view of the checkpoint's [N,K] array: no packed copy is
 *    kept) and matmul's b [K,N] are copied row by row into the space of A and C (free at that point) and cut into
 *    4-column panels by the kernel module's `transpose` / `panelize` (split across threads when large). Columns
 *    are zero-padded to a multiple of NR = 8.
 *  - A: a round of rows at a time (whole row blocks of MC = 128 rows while C and the result stay within
 *    C_BLOCK_BYTES: all 512 latents for the model's products), copied in as they are ([rows, K], one copy when
 *    a's rows are contiguous) into the space of C and the result (free until the product), then cut by the
 *    module's `stageRows` (split by rows across threads) into K chunks (≤ KC) of row stride A_STRIDE; rows past M
 *    up to a multiple of MR = 4 are zeros (each output row depends only on its own A row: they only cost time).
 *  - C: float32, starts from the bias and takes the kernel's run sums of every chunk; after the last chunk the
 *    kernel writes alpha·C (taken in float64, rounded once) into the result block. When out's rows are contiguous
 *    and every column is real (nc = ncPad: the latents' 1024-column products), the result block has out's row
 *    layout and goes out in one copy (no repacking); else its [mc, nc] part is packed by `copyRows` into the space
 *    of C (done with) and copied out at once when out's rows are contiguous (else row by row). A residual comes in
 *    the same way, into the space of A (done with) when it fits there.
 *  The calling thread makes one JavaScript copy of each operand, not one per row (a view per row would be garbage
 *  for the collector), and the relayout runs on every thread.
 * Each output element is the same sum in the same order whatever M, the row block or the column block: results
 * do not depend on how callers split rows (attention chunks, batch items). reference/wasm-sum-model.ts computes
 * that sum with scalar arithmetic, and the tests hold this kernel to it bit for bit.
 *
 * Threads: each round is cut into jobs (runProduct): a job computes the 8-column pairs [p0, p1) of one row block
 * through every K chunk, on its own slices of C and the result (disjoint), reading the shared A and B. So the
 * threads meet once per round (one per product of the 512 latents, two for the conv model's 3025 inputs), not once
 * per row block and K chunk. The softmax of attention scores (gemm.ts's matmulTransBSoftmax) runs on the result
 * block in place before it is copied out, split by rows.
 */
import { B_PLAIN, B_TRANS } from "../gemm-kinds.js";
import { copyBlock } from "../layout.js";
import { softmaxRows } from "../softmax.js";
import { MAX_JOBS, type Job } from "../threads.js";
import { A_STRIDE, KC, MR, NR } from "./gemm-kernel.js";
import {
  ADD_ROWS, CONST_BYTES, COPY_ROWS, PRODUCT, STAGE_ROWS, loadWasm, minSplitFlop, reserve, roundUp, runGelu, runOnPool,
  runSoftmax, runSplit, runTranspose, type Instance,
} from "./runtime.js";

// What code outside the wasm folder reads about the wasm kernels.
export { wasmGemmKernel, wasmGemmSupported, wasmSplitBlocks } from "./runtime.js";


/** Rows of A per row block (one thread's job reads one block's A chunk: 128 x 256 floats, in L2). */
const MC = 128;
/** Most row blocks staged and run in one round (the pool takes at most MAX_JOBS jobs per round). */
const MAX_ROUND_BLOCKS = 16;
/** Largest staged B block (bytes) before columns are split into blocks. */
const B_BLOCK_BYTES = 8 << 20;
/** Largest C + result block (bytes, 8 per element) before columns are split: 6144 columns of 128 rows. */
const C_BLOCK_BYTES = 6 << 20;

/** What gemmWasm applies to each result block before copying it out. */
export const EPILOGUE_NONE = 0;
/** softmax over each row (all N columns must fit one column block, else the TypeScript softmax runs after) */
export const EPILOGUE_SOFTMAX = 1;
/** GELU of every element */
export const EPILOGUE_GELU = 2;
/** + residual [M,N] (row stride N), added in float32 to the float32 result, as a separate add would */
export const EPILOGUE_RESIDUAL = 3;

/**
 * The product of one round of staged rows (`tiles` tiles of MR rows, every K chunk staged): on the calling thread,
 * one `product` call per row block of MC rows (so a block's A chunk stays in L2 while the 8-column pairs stream
 * past it); or, when big enough, as one round of jobs for the pool: (row block, range of pairs), up to MAX_JOBS
 * (small jobs: a thread that runs slower, or starts later, takes fewer), each through every K chunk, so the
 * threads meet once per round, not once per row block and K chunk. The job for pairs [p0, p1) of row block r
 * reads its B panels, bias, C and result columns p0·NR columns in and its rows r·MC rows down.
 */
function runProduct(
  w: Instance, a: number, aChunk: number, b: number, panel: number, bias: number, c: number, ldc: number,
  out: number, ldo: number, tiles: number, pairs: number, k: number, kcs: number, alpha: number,
): void {
  const pool = w.pool;
  const blockTiles = MC / MR;
  const rowBlocks = Math.ceil(tiles / blockTiles);
  const rowArgs = (r: number) => {
    const t0 = r * blockTiles;
    return { a: a + t0 * MR * A_STRIDE * 4, c: c + t0 * MR * ldc, out: out + t0 * MR * ldo, tiles: Math.min(blockTiles, tiles - t0) };
  };
  if (pool === null || 2 * tiles * MR * pairs * NR * k < minSplitFlop()) {
    for (let r = 0; r < rowBlocks; r++) {
      const x = rowArgs(r);
      w.product(x.a, aChunk, b, panel, bias, x.c, ldc, x.out, ldo, x.tiles, pairs, k, kcs, alpha);
    }
    return;
  }
  // jobs in row-block order: a thread's next job is usually in the same row block (its A still in L2)
  const colJobs = Math.max(1, Math.min(pairs, Math.floor(MAX_JOBS / rowBlocks)));
  const per = Math.ceil(pairs / colJobs);
  const jobs: Job[] = [];
  for (let r = 0; r < rowBlocks; r++) {
    const x = rowArgs(r);
    for (let p0 = 0; p0 < pairs; p0 += per) {
      const p1 = Math.min(pairs, p0 + per);
      jobs.push({ fn: PRODUCT, args: [
        x.a, aChunk, b + p0 * 2 * panel, panel, bias + p0 * NR * 4, x.c + p0 * NR * 4, ldc, x.out + p0 * NR * 4, ldo,
        x.tiles, p1 - p0, k, kcs, alpha,
      ] });
    }
  }
  runOnPool(w, pool, jobs);
}


/**
 * a [M,K] (stride lda, from aOff), B in one of three layouts, bias [N] | null
 *   -> out [M,N] (stride ldo, from oOff) = alpha·(bias + a·b): runs of SUB products summed into a float32 C;
 *   then the epilogue: softmax over each row of out (in wasm memory when all N columns fit one block), GELU, or
 *   out += residual (EPILOGUE_RESIDUAL: residual [M,N] dense; gemm.ts refuses an out that overlaps it).
 * Arguments are already checked by gemm.ts. Returns false (having written nothing) if the wasm memory could not
 * grow to the size this product needs, or the engine refused the module.
 */
export function gemmWasm(
  kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
  epilogue = EPILOGUE_NONE, residual: Float32Array | null = null,
): boolean {
  if (m === 0 || n === 0) return true;
  const w = loadWasm();
  if (w === null) return false;
  const chunks = Math.max(1, Math.ceil(k / KC));
  const kcs = Math.ceil(k / chunks);
  const mPad = roundUp(m, MR);
  const mcMax = Math.min(MC, mPad);
  // columns per block: a multiple of NR, at least NR, so that B and C (of one row block) stay within their budgets
  const colBytes = Math.max(Math.max(1, k) * 4 + 16, (mcMax * 8 * B_BLOCK_BYTES) / C_BLOCK_BYTES);
  const ncMax = Math.max(NR, Math.floor(B_BLOCK_BYTES / colBytes / NR) * NR);
  const softmaxInWasm = epilogue === EPILOGUE_SOFTMAX && n <= ncMax;

  for (let jc = 0; jc < n; jc += ncMax) {
    const nc = Math.min(ncMax, n - jc);
    const ncPad = roundUp(nc, NR);
    const pairs = ncPad / NR;
    const ldc = ncPad + 4; // row stride of C and of the result (floats)
    // rows per round (staged at once, every K chunk): whole row blocks while C and the result fit C_BLOCK_BYTES
    const roundRows = Math.min(mPad, MC * Math.max(1, Math.min(MAX_ROUND_BLOCKS, Math.floor(C_BLOCK_BYTES / (ldc * 8) / MC))));
    const aChunk = roundRows * A_STRIDE * 4; // bytes of one K chunk of the staged rows
    // panel length in k steps: k, but transposed panels come in steps of 4 (k rounded up; the tail is never read)
    const kp = kind === B_TRANS ? roundUp(k, 4) : k;
    // byte offsets; the raw rows of matmul's and matmulTransB's B share the space of A and C (used before them)
    const biasB = CONST_BYTES;
    const bB = biasB + ncPad * 4;
    const aB = bB + ncPad * kp * 4;
    const cB = aB + chunks * aChunk;
    const oB = cB + roundRows * ldc * 4;
    const rawBytes = kind === B_TRANS ? ncPad * kp * 4 : kind === B_PLAIN ? k * ncPad * 4 : 0;
    const withResidual = epilogue === EPILOGUE_RESIDUAL && residual !== null;
    // the residual block (EPILOGUE_RESIDUAL), laid out as the result block: in the space of the staged A (only the
    // product reads it, and the residual comes in after) when it fits, else after the result
    const residualInA = ldc <= chunks * A_STRIDE;
    const resB = residualInA ? aB : oB + roundRows * ldc * 4;
    const endB = oB + roundRows * ldc * 4 + (withResidual && !residualInA ? roundRows * ldc * 4 : 0);
    // a round's A rows arrive in one copy into `rawA` and are cut into chunks by the kernel's stageRows: in the space
    // of C and the result (not written before the product) when they fit, else after everything; then KC zeros
    const rawABytes = roundRows * k * 4;
    const rawA = rawABytes <= roundRows * ldc * 8 ? cB : endB;
    const zerosB = Math.max(endB, rawA + rawABytes);
    if (!reserve(w, Math.max(zerosB + KC * 4, aB + rawBytes))) return false;
    const f = w.f32;
    f.fill(0, zerosB >> 2, (zerosB >> 2) + KC);
    // the output and residual rows of this column block are contiguous in memory: one copy each (else row by row)
    const wholeRows = jc === 0 && nc === n;
    const packed = wholeRows && ldo === n && nc === ncPad;

    // bias (or zeros), padded
    const biasF = biasB >> 2;
    if (bias !== null) f.set(bias.subarray(jc, jc + nc), biasF);
    else f.fill(0, biasF, biasF + nc);
    f.fill(0, biasF + nc, biasF + ncPad);

    // B block -> panels of 4 columns [ncPad/4][kp][4] at bB
    const bF = bB >> 2;
    const rawF = aB >> 2;
    if (kind === B_TRANS) {
      // raw rows [ncPad, kp] (zero rows past nc; columns past k are never read), transposed in wasm
      if (ldb === kp) {
        // contiguous rows (a linear's weight): one copy
        const src = bOff + jc * ldb;
        f.set(b.subarray(src, src + nc * ldb), rawF);
      } else {
        copyBlock(b, bOff + jc * ldb, ldb, f, rawF, kp, nc, k);
      }
      f.fill(0, rawF + nc * kp, rawF + ncPad * kp);
      runTranspose(w, aB, kp * 4, bB, ncPad / 4, kp);
    } else {
      // raw rows [k, ncPad] (zero columns past nc), cut into panels in wasm
      copyBlock(b, bOff + jc, ldb, f, rawF, ncPad, k, nc);
      if (ncPad > nc) for (let p = 0; p < k; p++) f.fill(0, rawF + p * ncPad + nc, rawF + (p + 1) * ncPad);
      w.panelize(aB, ncPad * 4, bB, ncPad / 4, k);
    }

    for (let ic = 0; ic < m; ic += roundRows) {
      const mc = Math.min(roundRows, m - ic);
      const tiles = Math.ceil(mc / MR);
      // A rows [ic, ic+mc) -> rawA [mc, K] (one copy when a's rows are contiguous), then cut by stageRows into
      // chunk q at aB + q·aChunk (rows past mc up to a whole tile: zeros)
      copyBlock(a, aOff + ic * lda, lda, f, rawA >> 2, k, mc, k);
      runSplit(w, STAGE_ROWS, tiles * MR, mc * k >= minSplitFlop() / 16, (r0, rows) =>
        [rawA + r0 * k * 4, k * 4, Math.max(0, Math.min(rows, mc - r0)), k, rows, aB + r0 * A_STRIDE * 4, aChunk, kcs, zerosB]);
      // the result block: rows of nc floats, as out's rows, when every column is real (nc = ncPad) and out's rows
      // are contiguous (one copy out, no repacking); else rows of ldc floats
      const ldr = packed ? nc : ldc;
      runProduct(w, aB, aChunk, bB, kp * 16, biasB, cB, ldc * 4, oB, ldr * 4, tiles, pairs, k, kcs, alpha);
      if (softmaxInWasm) runSoftmax(w, oB, mc, nc, ldr * 4);
      else if (epilogue === EPILOGUE_GELU) runGelu(w, oB, mc, nc, ldr * 4);
      else if (withResidual) {
        // residual rows [mc, nc] at resB, row stride lr floats
        const lr = wholeRows ? nc : ldc;
        copyBlock(residual, ic * n + jc, n, f, resB >> 2, lr, mc, nc);
        runSplit(w, ADD_ROWS, mc, mc * nc >= minSplitFlop() / 16, (r0, rows) => [resB + r0 * lr * 4, lr * 4, oB + r0 * ldr * 4, ldr * 4, rows, nc]);
      }
      if (packed) {
        out.set(f.subarray(oB >> 2, (oB >> 2) + mc * nc), oOff + ic * ldo);
      } else if (wholeRows && ldo === n) {
        // the result rows packed by copyRows into the space of C (done with), then one copy out
        runSplit(w, COPY_ROWS, mc, mc * nc >= minSplitFlop() / 16, (r0, rows) => [oB + r0 * ldc * 4, ldc * 4, cB + r0 * nc * 4, nc * 4, rows, nc]);
        out.set(f.subarray(cB >> 2, (cB >> 2) + mc * nc), oOff + ic * ldo);
      } else {
        const oF = oB >> 2;
        copyBlock(f, oF, ldc, out, oOff + ic * ldo + jc, ldo, mc, nc);
      }
    }
  }
  if (epilogue === EPILOGUE_SOFTMAX && !softmaxInWasm) softmaxRows(out, oOff, m, n, ldo);
  return true;
}
