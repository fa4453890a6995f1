/**
 * Matrix products: packed, cache-blocked, register-tiled kernels in plain TypeScript, each with a naive twin.
 *
 * All products accumulate in double (JS numbers) with ONE accumulator per output across the whole K, in the
 * same order p = 0..K-1 as the naive twins, starting from the bias (or 0), and round once to float32 on store.
 * Products of two float32 values are exact in double, so the optimized kernels return bit-for-bit the same
 * float32 values as their naive twins; they only run faster.
 *
 * How (GotoBLAS-style, sized for V8 rather than for SIMD):
 *  - Operands are staged into one Float32Array heap (gemm-asm.ts): the bias, B cut into panels of NR = 4 columns
 *    (k-major inside a panel, zero-padded to a multiple of NR columns; `linear`'s weight too, at each call: about
 *    1% of a 512x1024x1024 product, against a second copy of every weight if panels were kept), and A, MC rows at
 *    a time (MC·K ≤ A_BLOCK: a quarter of this machine's L2), as tiles of MR = 4 rows, row-interleaved and
 *    k-major, zero rows up to a whole tile.
 *  - The micro-kernel (gemm-asm.ts's `block`, an asm.js module) keeps a 4x4 tile of double accumulators in
 *    registers, streaming one A tile past one B panel, and writes alpha·(bias + a·b) into a C block in the heap,
 *    whose valid rows and columns are then copied out. asm.js: about 6 GFLOP/s here against about 4 for the best
 *    plain-JS form (a JS array of doubles), see gemm-asm.ts.
 *  - Products with fewer rows than a tile (the decoder's single query) skip the heap and read B in place.
 * The heap is module-level, grows when needed and is reused (no allocation per call in steady state).
 * Outputs must not alias inputs.
 *
 * Backends: `linear`, `matmulTransB` and `matmul` run either the TypeScript kernels here ("ts": double
 * accumulation, bit-exact with the naive twins) or the WebAssembly SIMD kernel of `wasm/` ("wasm", ~7x faster on one thread:
 * float32 products summed over runs of 64 and the runs into a float32 C; within ~5e-6 relative of the twins for
 * K = 1024, see wasm/gemm-kernel.ts). "wasm" is chosen at load when the runtime validates the
 * kernel module (WebAssembly with 128-bit SIMD), else "ts"; `PERCEIVER_BACKEND=ts|wasm` (read once, at load,
 * where `process` exists) or `setBackend` override it. Both backends take the same PackedWeight, a view of the
 * caller's [N,K] array, cut into panels per call (in wasm memory by SIMD code, or in the TypeScript kernels'
 * heap), so a model holds its weights once: the checkpoint's own arrays. Both backends run on worker threads too
 * (`setThreads`, `PERCEIVER_THREADS`; threads.ts; the TypeScript kernels' jobs are in gemm-asm.ts), with
 * bit-identical results for any thread count.
 */
import { PerceiverError } from "../errors.js";
import {
  B_PLAIN, B_TRANS, EPILOGUE_GELU, EPILOGUE_RESIDUAL, EPILOGUE_SOFTMAX, attentionWasm, gemmWasm, releaseWasmGemm, startWasmThreads, wasmGemmSupported, wasmThreads,
} from "./wasm/gemm-wasm.js";
import { add, gelu, geluNaive } from "./activations.js";
import {
  EXCHANGE_FLOATS, asmHeap, releaseAsmHeap, startTsThreads, tsThreadCount, tsThreadPool, type TsThreads,
} from "./gemm-asm.js";
import { copyBlock } from "./layout.js";
import { softmaxRows } from "./softmax.js";
import { availableCores, type Job } from "./threads.js";

/**
 * A weight matrix w [N,K] (HF Linear layout), checked for `linear`. It keeps a view of w, not a copy (do not
 * modify w afterwards): both backends cut w's rows into panels at each call (the wasm backend in wasm memory, in
 * SIMD; the TypeScript kernels in their heap), so a model holds its weights once: the checkpoint's own arrays.
 */
export class PackedWeight {
  /** Use packWeight (it checks the shape). */
  constructor(readonly n: number, readonly k: number, readonly raw: Float32Array) {}
}

/** Rows of A per register tile. */
const MR = 4;
/** Columns of B per register tile and per packed panel. */
const NR = 4;
/** Packed A block size in floats (128 KB: a quarter of this machine's L2). */
const A_BLOCK = 32 * 1024;
/** Packed B block size in floats (1 MB: a slice of L3). */
const B_BLOCK = 256 * 1024;

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

/** Frees the module-level scratch, the TypeScript kernels' heap and the wasm memory (they grow back on the next call). */
export function releaseGemmScratch(): void {
  scratch = doubles(0);
  releaseAsmHeap();
  releaseWasmGemm();
}

// ---------------------------------------------------------------------------------------------------------------
// backend selection

/** Which kernels `linear`, `matmulTransB` and `matmul` run. */
export type GemmBackend = "ts" | "wasm";

let backend: GemmBackend = initialBackend();

/** "wasm" when the runtime supports it, unless PERCEIVER_BACKEND says otherwise (warning on a bad value). */
function initialBackend(): GemmBackend {
  const auto: GemmBackend = wasmGemmSupported() ? "wasm" : "ts";
  const env = typeof process !== "undefined" ? process.env?.PERCEIVER_BACKEND : undefined;
  if (env === undefined || env === "") return auto;
  if (env === "ts" || (env === "wasm" && auto === "wasm")) return env;
  const why = env === "wasm" ? "WebAssembly SIMD is not available in this runtime" : `expected "ts" or "wasm"`;
  process.emitWarning?.(`PERCEIVER_BACKEND=${env} ignored (${why}); using "${auto}"`);
  return auto;
}

/** Selects the GEMM kernels. "wasm" throws CONFIG_UNSUPPORTED where WebAssembly SIMD is missing. */
export function setBackend(b: GemmBackend): void {
  if (b !== "ts" && b !== "wasm") {
    throw new PerceiverError("INPUT_INVALID", `setBackend: expected "ts" or "wasm", got ${JSON.stringify(b)}`);
  }
  if (b === "wasm" && !wasmGemmSupported()) {
    throw new PerceiverError("CONFIG_UNSUPPORTED", "setBackend: WebAssembly SIMD is not available in this runtime");
  }
  backend = b;
}

/** The GEMM kernels in use. */
export function getBackend(): GemmBackend {
  return backend;
}

// ---------------------------------------------------------------------------------------------------------------
// threads (each backend has its own worker pool: threads.ts runs the wasm kernels or gemm-asm.ts's jobs)

/** Most threads setThreads accepts. */
const MAX_THREADS = 64;
/** Threads wanted: PERCEIVER_THREADS, else the available cores. Applied by setThreads or ensureThreads. */
let threadsWanted = initialThreads();
/** Whether each backend's pool was started (or tried) for threadsWanted. */
const threadsApplied: Record<GemmBackend, boolean> = { ts: false, wasm: false };
/** Why the default thread count could not be applied (null if it was, or nothing was tried yet). */
let threadsFallback: string | null = null;

function initialThreads(): number {
  const cores = Math.min(MAX_THREADS, availableCores());
  const env = typeof process !== "undefined" ? process.env?.PERCEIVER_THREADS : undefined;
  if (env === undefined || env === "") return cores;
  const n = Number(env);
  if (Number.isInteger(n) && n >= 1 && n <= MAX_THREADS) return n;
  process.emitWarning?.(`PERCEIVER_THREADS=${env} ignored (expected an integer from 1 to ${MAX_THREADS}); using ${cores}`);
  return cores;
}

/** Starts (or stops) backend b's workers so that its products run on n threads. */
async function startThreads(b: GemmBackend, n: number): Promise<void> {
  if (b === "wasm") {
    if (wasmGemmSupported()) await startWasmThreads(n);
  } else {
    await startTsThreads(n);
  }
}

/**
 * Runs the current backend's matrix products on `n` threads (the caller plus n - 1 workers; results are
 * bit-identical for every n), and the other backend's too once it is selected (on its next forward pass). Resolves
 * once the workers are running. Rejects with a PerceiverError where threads cannot run (no SharedArrayBuffer: a
 * browser page that is not cross-origin isolated; the browser's main thread, which may not block; Node < 20.16;
 * for the ts backend, a Content-Security-Policy that refuses `new Function`), keeping the previous setting.
 */
export async function setThreads(n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new PerceiverError("INPUT_INVALID", `setThreads: expected an integer from 1 to ${MAX_THREADS}, got ${n}`);
  }
  await startThreads(backend, n);
  threadsWanted = n;
  threadsApplied[backend] = true;
  threadsApplied[backend === "ts" ? "wasm" : "ts"] = false;
  threadsFallback = null;
}

/** Threads the current backend's matrix products run on. */
export function getThreads(): number {
  return backend === "wasm" ? wasmThreads() : tsThreadCount();
}

/**
 * Applies the wanted thread count (setThreads', else PERCEIVER_THREADS or the available cores) to the current
 * backend, once per backend. Where threads cannot start it stays on one thread (threadsFallbackReason() says
 * why; a warning if PERCEIVER_THREADS asked for them). The model calls it before each forward pass.
 */
export async function ensureThreads(): Promise<void> {
  const b = backend;
  if (threadsApplied[b]) return;
  threadsApplied[b] = true;
  if (threadsWanted === getThreads()) return;
  try {
    await startThreads(b, threadsWanted);
  } catch (e) {
    threadsFallback = (e as Error).message;
    if (typeof process !== "undefined" && process.env?.PERCEIVER_THREADS) {
      process.emitWarning?.(`PERCEIVER_THREADS=${process.env.PERCEIVER_THREADS}: running on 1 thread (${threadsFallback})`);
    }
  }
}

/** Why the default thread count fell back to 1 thread, or null. */
export function threadsFallbackReason(): string | null {
  return threadsFallback;
}

// ---------------------------------------------------------------------------------------------------------------
// argument checks (O(1); bad shapes throw instead of reading undefined or silently dropping writes)

function checkDims(where: string, dims: Record<string, number>): void {
  for (const name in dims) {
    const v = dims[name];
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new PerceiverError("SHAPE_MISMATCH", `${where}: ${name} must be a non-negative integer, got ${v}`);
    }
  }
}

/** Checks that rows x cols elements at `off` with row stride `ld` fit inside `arr`. */
function checkRegion(where: string, name: string, arr: Float32Array, off: number, rows: number, cols: number, ld: number): void {
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
function overlaps(x: Float32Array, a: number, y: Float32Array, b: number): boolean {
  if (x.buffer !== y.buffer || a === 0 || b === 0) return false;
  return x.byteOffset < y.byteOffset + 4 * b && y.byteOffset < x.byteOffset + 4 * a;
}

function checkOut(where: string, m: number, n: number, ldo: number): void {
  if (m > 1 && ldo < n) {
    throw new PerceiverError("SHAPE_MISMATCH", `${where}: output row stride ldo=${ldo} is smaller than n=${n} (rows would overlap)`);
  }
}

function checkLinear(where: string, a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
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

function checkTransB(
  where: string, m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number, out: Float32Array, oOff: number, ldo: number,
): void {
  checkDims(where, { m, n, k, aOff, lda, bOff, ldb, oOff, ldo });
  checkRegion(where, "a", a, aOff, m, k, lda);
  checkRegion(where, "b", b, bOff, n, k, ldb);
  checkRegion(where, "out", out, oOff, m, n, ldo);
  checkOut(where, m, n, ldo);
}

// ---------------------------------------------------------------------------------------------------------------
// packing

// w [N,K] -> PackedWeight for `linear` (a view of w, no copy)
export function packWeight(w: Float32Array, n: number, k: number): PackedWeight {
  checkDims("packWeight", { n, k });
  if (w.length !== n * k) {
    throw new PerceiverError("SHAPE_MISMATCH", `packWeight: weight has ${w.length} elements, expected n*k = ${n}*${k} = ${n * k}`);
  }
  return new PackedWeight(n, k, w);
}

// a [mc,K] rows (stride lda, from aOff) -> h from d: tiles of MR rows [ceil(mc/MR)][K][MR], k-major,
//   row-interleaved; rows past mc up to a whole tile are zeros
function packA(a: Float32Array, aOff: number, lda: number, mc: number, k: number, h: Float32Array, d: number): void {
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

// ---------------------------------------------------------------------------------------------------------------
// driver

// B layouts (shared with the wasm driver): B_TRANS, b [N,K] with row stride ldb; B_PLAIN, b [K,N] with row stride ldb

// bias [N] | null, columns [jc, jc+nc) -> s[0, padded): bias or zeros, zero-padded to a multiple of NR
function packBias(bias: Float32Array | null, jc: number, nc: number, s: number[]): void {
  const padded = Math.ceil(nc / NR) * NR;
  for (let c = 0; c < padded; c++) s[c] = bias !== null && c < nc ? bias[jc + c] : 0;
}

/** Columns of B per staged block (B_BLOCK floats) and rows of A per packed block (A_BLOCK floats) for this K. */
function blockSizes(k: number): { ncMax: number; mcMax: number } {
  const kk = Math.max(k, 1);
  return { ncMax: Math.max(NR, Math.floor(B_BLOCK / kk / NR) * NR), mcMax: Math.max(MR, Math.floor(A_BLOCK / kk / MR) * MR) };
}

// bias [N] | null and B (B_TRANS or B_PLAIN), columns [jc, jc+nc) -> h: bias [ncPad] at zF, panels [ncPad, K] at bF
function stageBiasAndB(
  kind: number, bias: Float32Array | null, b: Float32Array, bOff: number, ldb: number,
  jc: number, nc: number, ncPad: number, k: number, h: Float32Array, zF: number, bF: number,
): void {
  for (let c = 0; c < ncPad; c++) h[zF + c] = bias !== null && c < nc ? bias[jc + c] : 0;
  if (kind === B_TRANS) packBTrans(b, bOff, ldb, jc, nc, k, h, bF);
  else packB(b, bOff, ldb, jc, nc, k, h, bF);
}


// a [M,K] (stride lda), B in one of two layouts, bias [N] | null -> out [M,N] (stride ldo) = alpha·(bias + a·b)
function gemm(
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
// public kernels

// a [M,K], packed w [N,K], bias [N] | null -> out [M,N] = a · wᵀ + bias
export function linear(a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  const { n, k } = w;
  checkLinear("linear", a, w, bias, out, m);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1)) return;
  gemm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1);
}

// a [M,K], w [N,K] (packed), bias [N] | null, residual [M,N] -> out [M,N] = (a·wᵀ + bias) + residual: the product
// rounded to float32, then the float32 add (as linear then add; out must not overlap residual). The wasm backend adds
// the residual in wasm memory before the result is copied out (no pass of JavaScript over the output).
export function linearResidual(
  a: Float32Array, w: PackedWeight, bias: Float32Array | null, residual: Float32Array, out: Float32Array, m: number,
): void {
  const { n, k } = w;
  checkLinear("linearResidual", a, w, bias, out, m);
  checkRegion("linearResidual", "residual", residual, 0, m, n, n);
  if (overlaps(out, m * n, residual, m * n)) {
    throw new PerceiverError("SHAPE_MISMATCH", "linearResidual: out overlaps residual (the product would overwrite it)");
  }
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1, EPILOGUE_RESIDUAL, residual)) return;
  gemm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1);
  add(out, residual, out, m * n);
}

// a [M,K], packed w [N,K], bias [N] | null -> out [M,N] = gelu(a · wᵀ + bias)  (the MLP's first layer)
// The same as linear followed by gelu; the wasm backend applies GELU to each result block in wasm memory, split
// across the threads (bit-identical to `gelu`: wasm/gelu-kernel.ts).
export function linearGelu(a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  const { n, k } = w;
  checkLinear("linearGelu", a, w, bias, out, m);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1, EPILOGUE_GELU)) return;
  gemm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1);
  gelu(out, out, m * n);
}

// naive reference of linearGelu
export function linearGeluNaive(
  a: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, m: number, n: number, k: number,
): void {
  linearNaive(a, w, bias, out, m, n, k);
  geluNaive(out, out, m * n);
}

// a [M,K], w [N,K], bias [N] | null -> out [M,N] = a · wᵀ + bias   (naive reference)
export function linearNaive(
  a: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, m: number, n: number, k: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = bias ? bias[j] : 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * w[j * k + p];
      out[i * n + j] = s;
    }
  }
}

// a [M,K] (row stride lda, from aOff), b [N,K] (row stride ldb, from bOff) -> out [M,N] (row stride ldo, from oOff) = alpha · a · bᵀ
export function matmulTransB(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  checkTransB("matmulTransB", m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha)) return;
  gemm(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha);
}

/**
 * a [M,K], b [N,K] -> out [M,N] = softmax over each row of alpha·(a · bᵀ)  (attention probabilities)
 * The same as matmulTransB followed by softmaxRows. The wasm backend applies the softmax to each block of rows
 * while it is still in wasm memory, split across the threads (see wasm/softmax-kernel.ts).
 */
export function matmulTransBSoftmax(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  checkTransB("matmulTransBSoftmax", m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha, EPILOGUE_SOFTMAX)) return;
  gemm(B_TRANS, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, alpha);
  softmaxRows(out, oOff, m, n, ldo);
}

// naive reference of matmulTransBSoftmax
export function matmulTransBSoftmaxNaive(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  matmulTransBNaive(m, n, k, a, aOff, lda, b, bOff, ldb, out, oOff, ldo, alpha);
  softmaxRows(out, oOff, m, n, ldo);
}

// naive reference of matmulTransB
export function matmulTransBNaive(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
  alpha: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[aOff + i * lda + p] * b[bOff + j * ldb + p];
      out[oOff + i * ldo + j] = alpha * s;
    }
  }
}

// a [M,K] (row stride lda, from aOff), b [K,N] (row stride ldb, from bOff) -> out [M,N] (row stride ldo, from oOff) = a · b
export function matmul(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
): void {
  checkDims("matmul", { m, n, k, aOff, lda, bOff, ldb, oOff, ldo });
  checkRegion("matmul", "a", a, aOff, m, k, lda);
  checkRegion("matmul", "b", b, bOff, k, n, ldb);
  checkRegion("matmul", "out", out, oOff, m, n, ldo);
  checkOut("matmul", m, n, ldo);
  if (backend === "wasm" && gemmWasm(B_PLAIN, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, 1)) return;
  gemm(B_PLAIN, m, n, k, a, aOff, lda, b, bOff, ldb, null, out, oOff, ldo, 1);
}

// naive reference of matmul
export function matmulNaive(
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  out: Float32Array, oOff: number, ldo: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[aOff + i * lda + p] * b[bOff + p * ldb + j];
      out[oOff + i * ldo + j] = s;
    }
  }
}

// q [M, heads·dqk] (row stride ldq, from qOff), k [N, heads·dqk] (ldk), v [N, heads·dv] (ldv)
//   -> out [M, heads·dv] (ldo) = per head h (its column block): softmax(alpha·q_h·k_hᵀ over each row)·v_h
// The fused multi-head attention of the wasm backend (every head in wasm memory, a head per thread job), bit-identical
// to matmulTransBSoftmax followed by matmul on each head there. Returns false, having written nothing, where it does
// not run (the ts backend, more than ATTENTION_MAX_KEYS keys, fewer heads than threads, no wasm memory): the caller
// then runs those two products per head (with chunks of rows, in bounded memory).
export function attentionHeads(
  m: number, n: number, heads: number, dqk: number, dv: number,
  q: Float32Array, qOff: number, ldq: number,
  k: Float32Array, kOff: number, ldk: number,
  v: Float32Array, vOff: number, ldv: number,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): boolean {
  const where = "attentionHeads";
  checkDims(where, { m, n, heads, dqk, dv, qOff, ldq, kOff, ldk, vOff, ldv, oOff, ldo });
  checkRegion(where, "q", q, qOff, m, heads * dqk, ldq);
  checkRegion(where, "k", k, kOff, n, heads * dqk, ldk);
  checkRegion(where, "v", v, vOff, n, heads * dv, ldv);
  checkRegion(where, "out", out, oOff, m, heads * dv, ldo);
  checkOut(where, m, heads * dv, ldo);
  return backend === "wasm" && attentionWasm(m, n, heads, dqk, dv, q, qOff, ldq, k, kOff, ldk, v, vOff, ldv, out, oOff, ldo, alpha);
}

// naive twin of attentionHeads (always computes): per head, matmulTransBSoftmaxNaive then matmulNaive
export function attentionHeadsNaive(
  m: number, n: number, heads: number, dqk: number, dv: number,
  q: Float32Array, qOff: number, ldq: number,
  k: Float32Array, kOff: number, ldk: number,
  v: Float32Array, vOff: number, ldv: number,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): void {
  const p = new Float32Array(m * n);
  for (let h = 0; h < heads; h++) {
    matmulTransBSoftmaxNaive(m, n, dqk, q, qOff + h * dqk, ldq, k, kOff + h * dqk, ldk, p, 0, n, alpha);
    matmulNaive(m, dv, n, p, 0, n, v, vOff + h * dv, ldv, out, oOff + h * dv, ldo);
  }
}
