/**
 * Matrix products: packed, cache-blocked, register-tiled kernels in plain TypeScript, each with a naive twin.
 *
 * All products accumulate in double (JS numbers) with ONE accumulator per output across the whole K, in the
 * same order p = 0..K-1 as the naive twins, starting from the bias (or 0), and round once to float32 on store.
 * Products of two float32 values are exact in double, so the optimized kernels return bit-for-bit the same
 * float32 values as their naive twins; they only run faster.
 *
 * How (GotoBLAS-style, sized for V8 rather than for SIMD):
 *  - B is copied into a scratch array of doubles as panels of NR=4 columns, k-major inside a panel, zero-padded
 *    to a multiple of NR columns. For `linear` the weight is pre-packed once by `packWeight` (float32, same
 *    layout), so each call only widens it to double with a straight copy. The bias (or zeros) goes there too.
 *  - A is copied, MR=4 rows at a time, into the same scratch (row-interleaved, k-major), MC rows per block.
 *  - The 4x4 micro-kernel keeps 16 double accumulators in locals and streams one A micro-panel and one B panel.
 *    Rows left over after the last full 4-row tile go through a 1x4 kernel that reads A directly; products with
 *    fewer than 4 rows (the decoder's single query) skip packing and read B in place.
 *  - The scratch is a plain JS array of doubles (V8's PACKED_DOUBLE_ELEMENTS), not a typed array: V8's optimizing
 *    compiler reads it with ~4 instructions per element (index, bounds check, load) against ~6-8 for a
 *    Float32Array (plus pointer arithmetic, float->double conversion and, once any ArrayBuffer in the process has
 *    been transferred, a detached-buffer check). One array for both operands means one map check per iteration,
 *    and `| 0` on indices avoids overflow checks.
 * Measured on this machine (bench/gemm.ts): tiles from 2x4 to 6x4 were within noise of each other (bigger tiles
 * spill accumulators to the stack), 4x4 was the most consistent, and 4 divides the model's 512/1024/128 sizes.
 * The scratch array is module-level, grows when needed and is reused (no allocation per call in steady state).
 * Outputs must not alias inputs.
 *
 * Backends: `linear`, `matmulTransB` and `matmul` run either the TypeScript kernels here ("ts": double
 * accumulation, bit-exact with the naive twins) or the WebAssembly SIMD kernel of `wasm/` ("wasm", ~8x faster on one thread:
 * float32 products summed in float32 over runs of 64 and the runs in float64, rounded once; within ~4e-6
 * relative of the twins, see wasm/gemm-kernel.ts). "wasm" is chosen at load when the runtime validates the
 * kernel module (WebAssembly with 128-bit SIMD), else "ts"; `PERCEIVER_BACKEND=ts|wasm` (read once, at load,
 * where `process` exists) or `setBackend` override it. Both backends take the same PackedWeight, a view of the
 * caller's [N,K] array: the wasm driver copies its rows into wasm memory and cuts them into panels there per call;
 * the TypeScript kernels build their packed panels on first use. The wasm backend runs on worker threads too
 * (`setThreads`, `PERCEIVER_THREADS`; wasm/threads.ts), with bit-identical results for any thread count.
 */
import { PerceiverError } from "../errors.js";
import {
  B_PLAIN, B_TRANS, EPILOGUE_GELU, EPILOGUE_SOFTMAX, gemmWasm, releaseWasmGemm, startWasmThreads, wasmGemmSupported, wasmThreads,
} from "./wasm/gemm-wasm.js";
import { gelu, geluNaive } from "./activations.js";
import { softmaxRows } from "./softmax.js";
import { availableCores } from "./wasm/threads.js";

/**
 * A weight matrix w [N,K] (HF Linear layout) prepared for `linear`. It keeps a view of w, not a copy (do not
 * modify w afterwards): the wasm backend stages w's rows into wasm memory and cuts them into panels there, in
 * SIMD, at each call; the TypeScript kernels need w packed into 4-column panels, which is done on their first
 * use and kept (so a model on the default wasm backend holds its weights once: the checkpoint's own arrays).
 */
export class PackedWeight {
  private panels: Float32Array | null = null;

  /** Use packWeight (it checks the shape). */
  constructor(readonly n: number, readonly k: number, readonly raw: Float32Array) {}

  /** The panels of the TypeScript kernels (layout private to this module), built on first use. */
  get data(): Float32Array {
    this.panels ??= packPanels(this.raw, this.n, this.k);
    return this.panels;
  }

  /** Whether the TypeScript panels have been built (they hold a second copy of the weight). */
  get packed(): boolean {
    return this.panels !== null;
  }
}

/** Rows of A per register tile. */
const MR = 4;
/** Columns of B per register tile and per packed panel. */
const NR = 4;
/** Packed A block size in doubles (256 KB: half of this machine's L2). */
const A_BLOCK = 32 * 1024;
/** Packed B block size in doubles (2 MB: a slice of L3). */
const B_BLOCK = 256 * 1024;

/** Bias block, packed B block, packed A block (see `gemm`). Holds only doubles (see the header). */
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

/** Frees the module-level scratch array and the wasm memory (a few MB at the model's shapes; they grow back on the next call). */
export function releaseGemmScratch(): void {
  scratch = doubles(0);
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
// threads (the wasm backend's worker pool; the TypeScript kernels run on the calling thread only)

/** Most threads setThreads accepts. */
const MAX_THREADS = 64;
/** Threads wanted: PERCEIVER_THREADS, else the available cores. Applied by setThreads or the first ensureThreads. */
let threadsWanted = initialThreads();
let threadsApplied = false;
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

/**
 * Runs the wasm backend's matrix products on `n` threads (the caller plus n - 1 workers sharing its memory;
 * results are bit-identical for every n). Resolves once the workers are running. Rejects with a PerceiverError
 * where threads cannot run (no SharedArrayBuffer: a browser page that is not cross-origin isolated; the
 * browser's main thread, which may not block; Node < 20.16), keeping the previous setting. The TypeScript backend
 * always runs on one thread (getThreads() says so).
 */
export async function setThreads(n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new PerceiverError("INPUT_INVALID", `setThreads: expected an integer from 1 to ${MAX_THREADS}, got ${n}`);
  }
  if (wasmGemmSupported()) await startWasmThreads(n);
  threadsWanted = n;
  threadsApplied = true;
  threadsFallback = null;
}

/** Threads the current backend's matrix products run on. */
export function getThreads(): number {
  return backend === "wasm" ? wasmThreads() : 1;
}

/**
 * Applies the default thread count (PERCEIVER_THREADS or the available cores) once, unless setThreads already
 * chose one. Where threads cannot start it stays on one thread (threadsFallbackReason() says why; a warning if
 * PERCEIVER_THREADS asked for them). The model calls it before each forward pass.
 */
export async function ensureThreads(): Promise<void> {
  if (threadsApplied) return;
  threadsApplied = true;
  if (threadsWanted <= 1 || !wasmGemmSupported()) return;
  try {
    await startWasmThreads(threadsWanted);
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

// w [N,K] -> PackedWeight for `linear` (a view of w: no copy until the TypeScript kernels first need panels)
export function packWeight(w: Float32Array, n: number, k: number): PackedWeight {
  checkDims("packWeight", { n, k });
  if (w.length !== n * k) {
    throw new PerceiverError("SHAPE_MISMATCH", `packWeight: weight has ${w.length} elements, expected n*k = ${n}*${k} = ${n * k}`);
  }
  return new PackedWeight(n, k, w);
}

// w [N,K] -> panels of NR columns [ceil(N/NR)][K][NR], k-major, zero-padded tail panel
function packPanels(w: Float32Array, n: number, k: number): Float32Array {
  const data = new Float32Array(Math.ceil(n / NR) * NR * k);
  for (let j = 0; j < n; j++) {
    const src = j * k;
    let d = (j - (j % NR)) * k + (j % NR);
    for (let p = 0; p < k; p++, d += NR) data[d] = w[src + p];
  }
  return data;
}

// a [MC,K] rows (stride lda, from aOff), mc a multiple of MR -> pa from paOff: tiles of MR rows, k-major, row-interleaved
function packA(a: Float32Array, aOff: number, lda: number, mc: number, k: number, pa: number[], paOff: number): void {
  for (let t = 0; t < mc; t += MR) {
    for (let r = 0; r < MR; r++) {
      const src = aOff + (t + r) * lda;
      let d = paOff + t * k + r;
      for (let p = 0; p < k; p++, d += MR) pa[d] = a[src + p];
    }
  }
}

// b [N,K] rows (stride ldb, from bOff), columns [jc, jc+nc) of the product
//   -> pb from pbOff: panels of NR, k-major, zero-padded
function packBTrans(b: Float32Array, bOff: number, ldb: number, jc: number, nc: number, k: number, pb: number[], pbOff: number): void {
  const padded = Math.ceil(nc / NR) * NR;
  for (let jj = 0; jj < padded; jj++) {
    let d = pbOff + (jj - (jj % NR)) * k + (jj % NR);
    if (jj < nc) {
      const src = bOff + (jc + jj) * ldb;
      for (let p = 0; p < k; p++, d += NR) pb[d] = b[src + p];
    } else {
      for (let p = 0; p < k; p++, d += NR) pb[d] = 0;
    }
  }
}

// b [K,N] rows (stride ldb, from bOff), columns [jc, jc+nc) -> pb from pbOff: panels of NR, k-major, zero-padded
function packB(b: Float32Array, bOff: number, ldb: number, jc: number, nc: number, k: number, pb: number[], pbOff: number): void {
  for (let j0 = 0; j0 < nc; j0 += NR) {
    const w = Math.min(NR, nc - j0);
    let d = pbOff + j0 * k;
    let src = bOff + jc + j0;
    if (w === NR) {
      for (let p = 0; p < k; p++, d += NR, src += ldb) {
        pb[d] = b[src];
        pb[d + 1] = b[src + 1];
        pb[d + 2] = b[src + 2];
        pb[d + 3] = b[src + 3];
      }
    } else {
      for (let p = 0; p < k; p++, d += NR, src += ldb) {
        for (let jj = 0; jj < NR; jj++) pb[d + jj] = jj < w ? b[src + jj] : 0;
      }
    }
  }
}

// packed weight data (float32 panels) from src, size elements -> pb from pbOff (double)
function copyPanels(w: Float32Array, src: number, pbOff: number, size: number, pb: number[]): void {
  for (let q = 0; q < size; q++) pb[pbOff + q] = w[src + q];
}

// ---------------------------------------------------------------------------------------------------------------
// micro-kernels
//
// The kernels have no data-dependent branches around array accesses: they always read NR bias values and always
// store a whole tile. V8 optimizes a function with the type feedback seen so far and bails out ("deopt") when it
// reaches an access it has never seen executed; a rarely taken edge path inside a kernel would bail out on every
// call. Partial tiles (fewer than NR valid columns) are therefore stored whole into `edge` and copied from there.

/** A whole tile's output when fewer than NR columns are valid; `copyEdge` moves the valid part. */
const edge = new Float32Array(MR * NR);

// edge [rows,NR] -> out [rows,nv] at o (row stride ldo)
function copyEdge(rows: number, nv: number, out: Float32Array, o: number, ldo: number): void {
  for (let r = 0; r < rows; r++, o += ldo) {
    for (let c = 0; c < nv; c++) out[o + c] = edge[r * NR + c];
  }
}

// s: packed A tile [MR,K] at ai (row-interleaved), packed B panel [K,NR] at bi, bias [NR] at zi
//   -> out [MR,NR] at o (row stride ldo) = alpha·(bias + a·b)
function kernel4x4(
  s: number[], ai: number, bi: number, zi: number, k: number,
  out: Float32Array, o: number, ldo: number, alpha: number,
): void {
  const z0 = s[zi], z1 = s[zi + 1], z2 = s[zi + 2], z3 = s[zi + 3];
  let c00 = z0, c01 = z1, c02 = z2, c03 = z3;
  let c10 = z0, c11 = z1, c12 = z2, c13 = z3;
  let c20 = z0, c21 = z1, c22 = z2, c23 = z3;
  let c30 = z0, c31 = z1, c32 = z2, c33 = z3;
  const aEnd = (ai + MR * k) | 0;
  for (; ai < aEnd; ai = (ai + 4) | 0, bi = (bi + 4) | 0) {
    const b0 = s[bi], b1 = s[(bi + 1) | 0], b2 = s[(bi + 2) | 0], b3 = s[(bi + 3) | 0];
    const a0 = s[ai];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    const a1 = s[(ai + 1) | 0];
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    const a2 = s[(ai + 2) | 0];
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    const a3 = s[(ai + 3) | 0];
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  out[o] = alpha * c00; out[o + 1] = alpha * c01; out[o + 2] = alpha * c02; out[o + 3] = alpha * c03; o += ldo;
  out[o] = alpha * c10; out[o + 1] = alpha * c11; out[o + 2] = alpha * c12; out[o + 3] = alpha * c13; o += ldo;
  out[o] = alpha * c20; out[o + 1] = alpha * c21; out[o + 2] = alpha * c22; out[o + 3] = alpha * c23; o += ldo;
  out[o] = alpha * c30; out[o + 1] = alpha * c31; out[o + 2] = alpha * c32; out[o + 3] = alpha * c33;
}

// a row [K] at ai (unpacked float32), s: packed B panel [K,NR] at bi, bias [NR] at zi
//   -> out [1,NR] at o = alpha·(bias + a·b)
function kernel1x4(
  a: Float32Array, ai: number, s: number[], bi: number, zi: number, k: number,
  out: Float32Array, o: number, alpha: number,
): void {
  let c0 = s[zi], c1 = s[zi + 1], c2 = s[zi + 2], c3 = s[zi + 3];
  const aEnd = (ai + k) | 0;
  for (; ai < aEnd; ai = (ai + 1) | 0, bi = (bi + 4) | 0) {
    const x = a[ai];
    c0 += x * s[bi]; c1 += x * s[(bi + 1) | 0]; c2 += x * s[(bi + 2) | 0]; c3 += x * s[(bi + 3) | 0];
  }
  out[o] = alpha * c0; out[o + 1] = alpha * c1; out[o + 2] = alpha * c2; out[o + 3] = alpha * c3;
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

// B layouts: B_PACKED, a PackedWeight's panels (float32, built by packPanels; the TypeScript kernels only);
// B_TRANS, b [N,K] with row stride ldb; B_PLAIN, b [K,N] with row stride ldb (both shared with the wasm driver)
const B_PACKED = 0;

// bias [N] | null, columns [jc, jc+nc) -> s[0, padded): bias or zeros, zero-padded to a multiple of NR
function packBias(bias: Float32Array | null, jc: number, nc: number, s: number[]): void {
  const padded = Math.ceil(nc / NR) * NR;
  for (let c = 0; c < padded; c++) s[c] = bias !== null && c < nc ? bias[jc + c] : 0;
}

// a [M,K] (stride lda), B in one of three layouts, bias [N] | null -> out [M,N] (stride ldo) = alpha·(bias + a·b)
function gemm(
  kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): void {
  if (m === 0 || n === 0) return;
  if (m < MR) {
    // scratch: bias [N padded]. b(p, j) = b[bi + p·sp + (j mod NR)·sj] from the start bi of column group j
    const s = grow(Math.ceil(n / NR) * NR);
    packBias(bias, 0, n, s);
    const sp = kind === B_PACKED ? NR : kind === B_TRANS ? 1 : ldb;
    const sj = kind === B_PACKED ? 1 : kind === B_TRANS ? ldb : 1;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j += NR) {
        const bi = kind === B_PACKED ? j * k : kind === B_TRANS ? bOff + j * ldb : bOff + j;
        const nv = Math.min(NR, n - j);
        const o = oOff + i * ldo + j;
        if (nv === NR) {
          kernelDirect1x4(a, aOff + i * lda, b, bi, sp, sj, nv, s, j, k, out, o, alpha);
        } else {
          kernelDirect1x4(a, aOff + i * lda, b, bi, sp, sj, nv, s, j, k, edge, 0, alpha);
          copyEdge(1, nv, out, o, ldo);
        }
      }
    }
    return;
  }
  // scratch: bias block [nc padded] | packed B block [nc padded, K] | packed A block [mc, K]
  const kk = Math.max(k, 1);
  const ncMax = Math.max(NR, Math.floor(B_BLOCK / kk / NR) * NR);
  const mcMax = Math.max(MR, Math.floor(A_BLOCK / kk / MR) * MR);
  for (let jc = 0; jc < n; jc += ncMax) {
    const nc = Math.min(ncMax, n - jc);
    const panels = Math.ceil(nc / NR);
    const zSize = panels * NR;
    const aStart = zSize + panels * NR * k;
    const s = grow(aStart + Math.min(mcMax, m - (m % MR)) * k);
    packBias(bias, jc, nc, s);
    if (kind === B_PACKED) copyPanels(b, jc * k, zSize, panels * NR * k, s);
    else if (kind === B_TRANS) packBTrans(b, bOff, ldb, jc, nc, k, s, zSize);
    else packB(b, bOff, ldb, jc, nc, k, s, zSize);

    for (let ic = 0; ic < m; ic += mcMax) {
      const mc = Math.min(mcMax, m - ic);
      const mFull = mc - (mc % MR);
      packA(a, aOff + ic * lda, lda, mFull, k, s, aStart);
      for (let jp = 0; jp < panels; jp++) {
        const j = jc + jp * NR;
        const nv = Math.min(NR, n - j);
        const bi = zSize + jp * NR * k;
        const zi = jp * NR;
        for (let t = 0; t < mFull; t += MR) {
          const o = oOff + (ic + t) * ldo + j;
          if (nv === NR) {
            kernel4x4(s, aStart + t * k, bi, zi, k, out, o, ldo, alpha);
          } else {
            kernel4x4(s, aStart + t * k, bi, zi, k, edge, 0, NR, alpha);
            copyEdge(MR, nv, out, o, ldo);
          }
        }
        for (let i = ic + mFull; i < ic + mc; i++) {
          const o = oOff + i * ldo + j;
          if (nv === NR) {
            kernel1x4(a, aOff + i * lda, s, bi, zi, k, out, o, alpha);
          } else {
            kernel1x4(a, aOff + i * lda, s, bi, zi, k, edge, 0, alpha);
            copyEdge(1, nv, out, o, ldo);
          }
        }
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
  gemm(B_PACKED, m, n, k, a, 0, k, w.data, 0, k, bias, out, 0, n, 1);
}

// a [M,K], packed w [N,K], bias [N] | null -> out [M,N] = gelu(a · wᵀ + bias)  (the MLP's first layer)
// The same as linear followed by gelu; the wasm backend applies GELU to each result block in wasm memory, split
// across the threads (bit-identical to `gelu`: wasm/gelu-kernel.ts).
export function linearGelu(a: Float32Array, w: PackedWeight, bias: Float32Array | null, out: Float32Array, m: number): void {
  const { n, k } = w;
  checkLinear("linearGelu", a, w, bias, out, m);
  if (backend === "wasm" && gemmWasm(B_TRANS, m, n, k, a, 0, k, w.raw, 0, k, bias, out, 0, n, 1, EPILOGUE_GELU)) return;
  gemm(B_PACKED, m, n, k, a, 0, k, w.data, 0, k, bias, out, 0, n, 1);
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
