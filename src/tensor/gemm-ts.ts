/**
 * The TypeScript backend's matrix products: packed, cache-blocked, register-tiled (GotoBLAS-style, sized for V8
 * rather than for SIMD).
 *  - Operands are staged into one Float32Array heap (gemm-asm.ts): the bias, B cut into panels and A packed a
 *    block of rows at a time (gemm-pack.ts).
 *  - The micro-kernel (gemm-asm.ts's `block`, an asm.js module) keeps a 4x4 tile of double accumulators in
 *    registers, streaming one A tile past one B panel, and writes alpha·(bias + a·b) into a C block in the heap,
 *    whose valid rows and columns are then copied out.
 *  - Products with fewer rows than a tile (the decoder's single query) skip the heap and read B in place.
 *  - Large products run on the backend's worker threads (gemmThreaded; the jobs are in gemm-asm.ts).
 * Every output is ONE double accumulator across the whole K, in the order p = 0..K-1, starting from the bias (or
 * 0), rounded once to float32 on store. Products of two float32 values are exact in double, so the results are
 * bit-for-bit those of the reference loops (reference/gemm.ts), for any thread count.
 * The heap is module-level, grows when needed and is reused (no allocation per call in steady state).
 * Outputs must not alias inputs.
 */
import { copyBlock } from "./layout.js";
import { EXCHANGE_FLOATS, asmHeap, releaseAsmHeap, tsThreadPool, type TsThreads } from "./gemm-asm.js";
import { B_TRANS } from "./gemm-kinds.js";
import { MR, NR, blockSizes, packA, packBias, stageBiasAndB } from "./gemm-pack.js";
import type { Job } from "./threads.js";

/** The bias of the few-row path (`gemmFewRows`), as doubles. */
let scratch = doubles(0);

/** A packed (no holes) JS array of `size` doubles. Filled by push so V8 never sees a hole or a non-double. */
function doubles(size: number): number[] {
  const x: number[] = [0.5];
  for (let i = 1; i < size; i++) x.push(0.5);
  return x;
}

function grow(size: number): number[] {
  if (scratch.length < size) scratch = doubles(size);
  return scratch;
}

/** Frees the few-row scratch and the heap (they grow back on the next call). */
export function releaseTsGemmScratch(): void {
  scratch = doubles(0);
  releaseAsmHeap();
}

// a [M,K] (stride lda), B (B_TRANS: b [N,K], B_PLAIN: b [K,N]; stride ldb), bias [N] | null
//   -> out [M,N] (stride ldo) = alpha·(bias + a·b)
export function gemmTs(
  kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): void {
  if (m === 0 || n === 0) return;
  if (m < MR) {
    gemmFewRows(kind, m, n, k, a, aOff, lda, b, bOff, ldb, bias, out, oOff, ldo, alpha);
    return;
  }
  const threads = tsThreadPool();
  if (threads !== null && 2 * m * n * k >= tsMinSplitFlop && gemmThreaded(threads, kind, m, n, k, a, aOff, lda, b, bOff, ldb, bias, out, oOff, ldo, alpha)) {
    return;
  }
  // heap (floats): alpha (a float64) | bias block [ncPad] | packed B block [ncPad, K] | packed A block [mcPad, K] |
  //   C block [mcPad, ncPad]
  const sizes = blockSizes(k);
  const ncMax = sizes.ncMax;
  const mcMax = Math.min(sizes.mcMax, Math.ceil(m / MR) * MR);
  for (let jc = 0; jc < n; jc += ncMax) {
    const nc = Math.min(ncMax, n - jc);
    const panels = Math.ceil(nc / NR);
    const ncPad = panels * NR;
    const zF = 4;
    const bF = zF + ncPad;
    const aF = bF + ncPad * k;
    const cF = aF + mcMax * k;
    const heap = asmHeap((cF + mcMax * ncPad) * 4);
    const h = heap.f32;
    heap.f64[0] = alpha;
    stageBiasAndB(kind, bias, b, bOff, ldb, jc, nc, ncPad, k, h, zF, bF);

    for (let ic = 0; ic < m; ic += mcMax) {
      const mc = Math.min(mcMax, m - ic);
      packA(a, aOff + ic * lda, lda, mc, k, h, aF);
      heap.block(aF * 4, bF * 4, zF * 4, k, Math.ceil(mc / MR), panels, cF * 4, ncPad * 4);
      copyBlock(h, cF, ncPad, out, oOff + ic * ldo + jc, ldo, mc, nc);
    }
  }
}

/** Smallest product (floating-point operations) worth splitting across the TypeScript backend's threads. */

const MIN_SPLIT_FLOP = 1 << 22;
let tsMinSplitFlop = MIN_SPLIT_FLOP;
let tsSplits = 0;
/** Staging number of the B panels in the exchange (jobs keep their copy of one staging's panels). */
let exchangeGen = 0;

/** For tests: split the TypeScript backend's products from `flop` operations up; returns the previous threshold. */
export function setTsSplitThreshold(flop: number): number {
  const prev = tsMinSplitFlop;
  tsMinSplitFlop = flop;
  return prev;
}

/** How many TypeScript-backend products ran on its threads so far (tests check the workers took part). */
export function tsSplitProducts(): number {
  return tsSplits;
}

// gemm on the TypeScript backend's threads (gemm-asm.ts): the operands are staged into the exchange buffer
// (bias [ncPad] | B panels [ncPad, K] | packed A [rows, K] | C [rows, ncPad]) and each thread's job computes a
// range of panels for every staged row. Returns false, having written nothing, when one column block of B and
// four rows of A do not fit the exchange (then the one-thread path runs).
function gemmThreaded(
  threads: TsThreads, kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): boolean {
  const { ncMax, mcMax } = blockSizes(k);
  const rowsFor = (ncPad: number) => Math.floor((EXCHANGE_FLOATS - ncPad * (k + 1)) / (k + ncPad) / MR) * MR;
  if (rowsFor(Math.min(ncMax, Math.ceil(n / NR) * NR)) < MR) return false;
  const h = threads.exchange;
  const count = threads.pool.threads;
  tsSplits++;
  for (let jc = 0; jc < n; jc += ncMax) {
    const nc = Math.min(ncMax, n - jc);
    const panels = Math.ceil(nc / NR);
    const ncPad = panels * NR;
    const zF = 0;
    const bF = zF + ncPad;
    const aF = bF + ncPad * k;
    const rowsMax = Math.min(rowsFor(ncPad), Math.ceil(m / MR) * MR);
    const cF = aF + rowsMax * k;
    stageBiasAndB(kind, bias, b, bOff, ldb, jc, nc, ncPad, k, h, zF, bF);
    const gen = ++exchangeGen;
    // one job per thread (each copies the staged A rows into its heap once)
    const per = Math.ceil(panels / Math.min(panels, count));
    for (let ic = 0; ic < m; ic += rowsMax) {
      const mc = Math.min(rowsMax, m - ic);
      const rows = Math.ceil(mc / MR) * MR;
      packA(a, aOff + ic * lda, lda, mc, k, h, aF);
      const jobs: Job[] = [];
      for (let p0 = 0; p0 < panels; p0 += per) {
        jobs.push({ fn: 0, args: [gen, aF, bF, zF, cF, k, rows, ncPad, p0, Math.min(panels, p0 + per), mcMax, alpha] });
      }
      threads.pool.run(jobs, [threads.job as (...args: number[]) => unknown]);
      copyBlock(h, cF, ncPad, out, oOff + ic * ldo + jc, ldo, mc, nc);
    }
  }
  return true;
}

// the same for m < MR rows: no packing, B read in place (packing would cost as much as the product itself)
function gemmFewRows(
  kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): void {
  // scratch: bias [N padded]. b(p, j) = b[bi + p·sp + (j mod NR)·sj] from the start bi of column group j
  const s = grow(Math.ceil(n / NR) * NR);
  packBias(bias, 0, n, s);
  const sp = kind === B_TRANS ? 1 : ldb;
  const sj = kind === B_TRANS ? ldb : 1;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j += NR) {
      const bi = kind === B_TRANS ? bOff + j * ldb : bOff + j;
      const nv = Math.min(NR, n - j);
      const o = oOff + i * ldo + j;
      if (nv === NR) {
        kernelDirect1x4(a, aOff + i * lda, b, bi, sp, sj, nv, s, j, k, out, o, alpha);
      } else {
        kernelDirect1x4(a, aOff + i * lda, b, bi, sp, sj, nv, s, j, k, edge, 0, alpha);
        copyEdge(nv, out, o);
      }
    }
  }
}


// ---------------------------------------------------------------------------------------------------------------
// the few-row kernel (the 4x4 micro-kernel is gemm-asm.ts's block)
//
// It has no data-dependent branches around array accesses: it always reads NR bias values and always stores a
// whole row of NR. V8 optimizes a function with the type feedback seen so far and bails out ("deopt") when it
// reaches an access it has never seen executed; a rarely taken edge path inside a kernel would bail out on every
// call. Partial rows (fewer than NR valid columns) are therefore stored whole into `edge` and copied from there.

/** A whole row of NR outputs when fewer than NR columns are valid; `copyEdge` moves the valid part. */
const edge = new Float32Array(NR);

// edge [NR] -> out [nv] at o
function copyEdge(nv: number, out: Float32Array, o: number): void {
  for (let c = 0; c < nv; c++) out[o + c] = edge[c];
}

// a row [K] at ai, unpacked b with b(p, j + c) at bi + p·sp + c·sj (nv valid columns), s: bias [NR] at zi
//   -> out [1,NR] at o = alpha·(bias + a·b); columns past nv re-read column 0 (in range) and are discarded.
// For products with fewer rows than a tile, where packing B would cost as much as the product itself.
function kernelDirect1x4(
  a: Float32Array, ai: number, b: Float32Array, bi: number, sp: number, sj: number, nv: number,
  s: number[], zi: number, k: number, out: Float32Array, o: number, alpha: number,
): void {
  const sj2 = 2 * sj, sj3 = 3 * sj; // computed on every call, so no operation here lacks type feedback
  const o1 = nv > 1 ? sj : 0, o2 = nv > 2 ? sj2 : 0, o3 = nv > 3 ? sj3 : 0;
  let c0 = s[zi], c1 = s[zi + 1], c2 = s[zi + 2], c3 = s[zi + 3];
  const aEnd = (ai + k) | 0;
  for (; ai < aEnd; ai = (ai + 1) | 0, bi = (bi + sp) | 0) {
    const x = a[ai];
    c0 += x * b[bi]; c1 += x * b[(bi + o1) | 0]; c2 += x * b[(bi + o2) | 0]; c3 += x * b[(bi + o3) | 0];
  }
  out[o] = alpha * c0; out[o + 1] = alpha * c1; out[o + 2] = alpha * c2; out[o + 3] = alpha * c3;
}

