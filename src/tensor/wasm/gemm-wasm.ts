/**
 * JS side of the WebAssembly GEMM: owns one WebAssembly.Memory, stages operands into it, calls the generated
 * kernel (gemm-kernel.ts) and copies results out. gemm.ts checks the arguments and picks the backend.
 *
 * Memory layout of one call (byte offsets from 0; every region 16-byte aligned), per block of nc ≤ ~8 MB / (4K)
 * columns (usually all of N):
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
 *    layout and goes out in one copy (a thread round and 2 MB of repacking fewer per product: ~3% of a forward
 *    pass, alternating processes); else its [mc, nc] part is packed by `copyRows` into the space of C (done with)
 *    and copied out at once when out's rows are contiguous (else row by row). A residual comes in the same way,
 *    into the space of A (done with) when it fits there: 1.6 MB less wasm memory for the model's output
 *    projections.
 *  The calling thread makes one JavaScript copy of each operand, not one per row: a view per row was most of what
 *  a forward pass allocated (young-generation garbage and RSS), and the relayout now runs on every thread.
 * Each output element is the same sum in the same order whatever M, the row block or the column block: results
 * do not depend on how callers split rows (attention chunks, batch items).
 *
 * The memory grows on demand and never shrinks; `releaseWasmGemm` drops it (it is rebuilt on the next call).
 * If it cannot grow, `gemmWasm` returns false and gemm.ts runs the TypeScript kernels instead.
 *
 * Threads (`startWasmThreads`): the memory becomes a shared WebAssembly.Memory (maximum MAX_SHARED_PAGES) that
 * every worker of a ThreadPool (threads.ts) instantiates the same module on. The calling thread copies A and B in
 * as above; each round is then cut into jobs (runProduct): a job computes the 8-column pairs [p0, p1) of one row
 * block through every K chunk, on its own slices of C and the result (disjoint), reading the shared A and B. So the
 * threads meet once per round (one per product of the 512 latents, two for the conv model's 3025 inputs), not
 * once per row block and K chunk: the caller's time waiting for the last job halved (0.84 -> 0.39 s of a 2-thread
 * forward pass in node --cpu-prof).
 * Each output element is still one thread's same sum in the same order, so results are bit-identical for any
 * thread count. Rounds under MIN_SPLIT_FLOP run on the calling thread alone. The softmax of attention scores (gemm.ts's
 * matmulTransBSoftmax) runs on the result block in place before it is copied out, split by rows.
 */
import {
  A_STRIDE, KC, MR, NR, gemmKernelModule, type KernelOptions, type PanelizeFn, type ProductFn,
} from "./gemm-kernel.js";
import { ERF_TABLE } from "../activations.js";
import { copyBlock } from "../layout.js";
import { softmaxRows } from "../softmax.js";
import { ERF_TABLE_BYTES } from "./gelu-kernel.js";
import { MAX_JOBS, ThreadPool, type Job } from "../threads.js";
import { ALPHA_AT, ATTEND_ROWS, PARAM, PARAM_BYTES } from "./attention-kernel.js";

/** B layouts (the TypeScript kernels of gemm.ts take the same two). */
export const B_TRANS = 1; // b [N,K] with row stride ldb
export const B_PLAIN = 2; // b [K,N] with row stride ldb

/** Rows of A per row block (one thread's job reads one block's A chunk: 128 x 256 floats, in L2). */
const MC = 128;
/** Most row blocks staged and run in one round (the pool takes at most MAX_JOBS jobs per round). */
const MAX_ROUND_BLOCKS = 16;
/** Largest staged B block (bytes) before columns are split into blocks. */
const B_BLOCK_BYTES = 8 << 20;
/** Largest C + result block (bytes, 8 per element) before columns are split: 6144 columns of 128 rows. */
const C_BLOCK_BYTES = 6 << 20;
const PAGE = 65536;
/** Maximum size of the shared memory used with threads (1 GiB; the staging needs a few tens of MB). */
const MAX_SHARED_PAGES = 16384;
/** Smallest block (floating-point operations) worth splitting across threads. */
const MIN_SPLIT_FLOP = 1 << 21;
/** Jobs per thread a split block is cut into (load balancing; each job costs ~1 µs to hand out). */
const JOBS_PER_THREAD = 8;
/** Exports the pool's workers may call, by index. */
const EXPORTS = ["transpose", "softmax", "gelu", "layernorm", "product", "panelize", "attend", "addRows", "stageRows", "copyRows"];
const TRANSPOSE = EXPORTS.indexOf("transpose");
const SOFTMAX = EXPORTS.indexOf("softmax");
const GELU = EXPORTS.indexOf("gelu");
const LAYERNORM = EXPORTS.indexOf("layernorm");
const PRODUCT = EXPORTS.indexOf("product");
const PANELIZE = EXPORTS.indexOf("panelize");
const ATTEND = EXPORTS.indexOf("attend");
const ADD_ROWS = EXPORTS.indexOf("addRows");
const STAGE_ROWS = EXPORTS.indexOf("stageRows");
const COPY_ROWS = EXPORTS.indexOf("copyRows");
/** Constants at the start of the memory (the erf table of the GELU kernel); the staging regions follow. */
const ERF_TABLE_AT = 0;
const CONST_BYTES = Math.ceil(ERF_TABLE_BYTES / 64) * 64;

/** What gemmWasm applies to each result block before copying it out. */
export const EPILOGUE_NONE = 0;
/** softmax over each row (all N columns must fit one column block, else the TypeScript softmax runs after) */
export const EPILOGUE_SOFTMAX = 1;
/** GELU of every element */
export const EPILOGUE_GELU = 2;
/** + residual [M,N] (row stride N), added in float32 to the float32 result, as a separate add would */
export const EPILOGUE_RESIDUAL = 3;

interface Instance {
  memory: WebAssembly.Memory;
  panelize: PanelizeFn;
  product: ProductFn;
  f32: Float32Array;
  f64: Float64Array;
  /** worker threads sharing `memory` (null: this thread only) */
  pool: ThreadPool | null;
  /** this thread's exports, in EXPORTS order (the pool runs the caller's share through them) */
  fns: ((...args: number[]) => unknown)[];
}

let instance: Instance | null = null;
/** Compiled once (per memory kind); a released instance is re-instantiated from it. */
let compiled: WebAssembly.Module | null = null;
let compiledShared: WebAssembly.Module | null = null;
let supported: boolean | undefined;

/** Whether the runtime accepts the kernel module with relaxed_madd (Relaxed SIMD); cached. */
let fma: boolean | undefined;

function validates(opts: KernelOptions): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(gemmKernelModule(opts));
  } catch {
    return false;
  }
}

/** Whether this runtime accepts the kernel module (WebAssembly with 128-bit SIMD). Cached. */
export function wasmGemmSupported(): boolean {
  supported ??= validates({});
  return supported;
}

/**
 * The kernel variant this runtime gets: "fma" (f32x4.relaxed_madd, where Relaxed SIMD exists: ~1.45x faster
 * here, and fused multiply-adds round less), "mul-add" (plain SIMD), or null without WebAssembly SIMD.
 */
export function wasmGemmKernel(): "fma" | "mul-add" | null {
  if (!wasmGemmSupported()) return null;
  fma ??= validates({ fma: true }) || enableRelaxedSimdInNode();
  return fma ? "fma" : "mul-add";
}

/**
 * Node 20's V8 (11.3) implements Relaxed SIMD behind a flag; V8 11.4 (Chrome 114, Node 22) ships it on. Turn the
 * flag on (node:v8 setFlagsFromString, before our module is compiled) so Node 20 gets the fused kernel too.
 * PERCEIVER_WASM_FMA=0 keeps the plain mul-add kernel. Returns whether the fma module now validates.
 */
function enableRelaxedSimdInNode(): boolean {
  if (typeof process === "undefined" || typeof process.getBuiltinModule !== "function") return false;
  if (process.env?.PERCEIVER_WASM_FMA === "0") return false;
  try {
    const v8 = process.getBuiltinModule("node:v8") as typeof import("node:v8") | undefined;
    v8?.setFlagsFromString("--experimental-wasm-relaxed-simd");
  } catch {
    return false;
  }
  return validates({ fma: true });
}

/** Instantiates the module on `memory` (this thread's side). */
function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory, pool: ThreadPool | null): Instance {
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const fns = EXPORTS.map((n) => exports[n] as (...args: number[]) => unknown);
  const f64 = new Float64Array(memory.buffer);
  f64.set(ERF_TABLE.coefficients, ERF_TABLE_AT >> 3);
  return {
    memory, panelize: exports.panelize as PanelizeFn,
    product: exports.product as ProductFn,
    f32: new Float32Array(memory.buffer), f64, pool, fns,
  };
}

/** The instance, created on first use (single-threaded); null if the engine refuses to compile or instantiate it. */
function load(): Instance | null {
  if (instance) return instance;
  try {
    // synchronous compile: the module is ~6.6 KB. A page's main thread may compile up to 8 MB so in Chrome 114+
    // (Firefox and Safari: no limit); older Chromes refuse above 4 KB, and the TypeScript kernels run instead
    compiled ??= new WebAssembly.Module(gemmKernelModule({ fma: wasmGemmKernel() === "fma" }));
    instance = instantiate(compiled, new WebAssembly.Memory({ initial: 16 }), null);
  } catch {
    return null;
  }
  return instance;
}

/**
 * Runs the wasm GEMM on `threads` threads from now on: starts threads - 1 workers on a shared memory (replacing
 * any previous pool), or with threads = 1 goes back to a private memory. Rejects with a PerceiverError
 * (CONFIG_UNSUPPORTED where SharedArrayBuffer, blocking waits or workers are missing; THREADS if a worker fails
 * to start), leaving the previous setting in place.
 */
export async function startWasmThreads(threads: number): Promise<void> {
  if (threads === wasmThreads()) return;
  if (threads === 1) {
    stopWasmThreads();
    return;
  }
  compiledShared ??= new WebAssembly.Module(
    gemmKernelModule({ fma: wasmGemmKernel() === "fma", sharedMaxPages: MAX_SHARED_PAGES }),
  );
  const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_SHARED_PAGES, shared: true });
  const pool = await ThreadPool.create(threads, { kind: "wasm", module: compiledShared, memory, names: EXPORTS });
  stopWasmThreads();
  instance = instantiate(compiledShared, memory, pool);
}

/** Stops the worker threads (if any) and drops the shared memory; the next call runs single-threaded. */
export function stopWasmThreads(): void {
  if (instance?.pool) {
    instance.pool.close();
    instance = null;
  }
}

let minSplitFlop = MIN_SPLIT_FLOP;
let splitBlocks = 0;

/** For tests: split blocks from `flop` operations up (default MIN_SPLIT_FLOP); returns the previous threshold. */
export function setWasmSplitThreshold(flop: number): number {
  const prev = minSplitFlop;
  minSplitFlop = flop;
  return prev;
}

/** How many rounds (products, transposes, epilogues) have been split across threads so far (tests check that threads were really used). */
export function wasmSplitBlocks(): number {
  return splitBlocks;
}

/** Threads the wasm GEMM runs on (1 without a pool). */
export function wasmThreads(): number {
  return instance?.pool?.threads ?? 1;
}

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
  if (pool === null || 2 * tiles * MR * pairs * NR * k < minSplitFlop) {
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

/** Hands `jobs` to the pool's threads, at most MAX_JOBS per round, and counts the split (wasmSplitBlocks). */
function runOnPool(w: Instance, pool: ThreadPool, jobs: Job[]): void {
  splitBlocks++;
  if (jobs.length <= MAX_JOBS) pool.run(jobs, w.fns);
  else for (let j0 = 0; j0 < jobs.length; j0 += MAX_JOBS) pool.run(jobs.slice(j0, j0 + MAX_JOBS), w.fns);
}

/**
 * Runs export `fn` over `count` independent units: on the calling thread as fn(...argsOf(0, count)), or, when
 * `worth` it, cut into jobs of consecutive units [u0, u0 + n) for the pool's threads, fn(...argsOf(u0, n)).
 */
function runSplit(w: Instance, fn: number, count: number, worth: boolean, argsOf: (u0: number, n: number) => number[]): void {
  const pool = w.pool;
  if (pool === null || count < 2 || !worth) {
    w.fns[fn](...argsOf(0, count));
    return;
  }
  const per = Math.ceil(count / Math.min(count, pool.threads * JOBS_PER_THREAD, MAX_JOBS));
  const jobs: Job[] = [];
  for (let u0 = 0; u0 < count; u0 += per) jobs.push({ fn, args: argsOf(u0, Math.min(per, count - u0)) });
  runOnPool(w, pool, jobs);
}

/** transpose(...) of `panels` 4-row panels, split by panels across threads for big blocks (see transposeCode). */
function runTranspose(w: Instance, src: number, lds: number, dst: number, panels: number, k4: number): void {
  runSplit(w, TRANSPOSE, panels, panels * k4 * 4 >= minSplitFlop / 8, (p0, n) => [src + p0 * 4 * lds, lds, dst + p0 * k4 * 16, n, k4]);
}

/** Rows [r0, r0 + n) of rows `ld` bytes apart from p, then `rest`: the arguments of the row kernels. */
const rowsFrom = (p: number, ld: number, rest: number[]) => (r0: number, n: number) => [p + r0 * ld, n, ...rest];

/** GELU / softmax of `rows` rows of `cols` floats at byte address p (row stride ld bytes), split by rows. */
function runGelu(w: Instance, p: number, rows: number, cols: number, ld: number): void {
  runSplit(w, GELU, rows, rows * cols >= minSplitFlop / 64, rowsFrom(p, ld, [cols, ld, ERF_TABLE_AT]));
}
function runSoftmax(w: Instance, p: number, rows: number, cols: number, ld: number): void {
  runSplit(w, SOFTMAX, rows, rows * cols >= minSplitFlop / 64, rowsFrom(p, ld, [cols, ld]));
}

/**
 * x [rows, dim], weight [dim], bias [dim] -> out [rows, dim] = layer norm of each row (the TypeScript layerNorm's
 * arithmetic, bit-identical: layernorm-kernel.ts), in wasm memory, split by rows across threads. out may alias x.
 * Returns false (having written nothing) if the memory could not grow or the module is refused.
 */
export function layerNormWasm(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): boolean {
  if (rows === 0 || dim === 0) return true;
  const w = load();
  if (w === null) return false;
  const wB = CONST_BYTES;
  const bB = wB + Math.ceil(dim / 4) * 16;
  // rows per pass: all of them, up to about 16 MB of staging
  const per = Math.max(1, Math.min(rows, Math.floor((16 << 20) / (dim * 4))));
  const xB = bB + Math.ceil(dim / 4) * 16;
  if (!reserve(w, xB + per * dim * 4)) return false;
  const f = w.f32;
  f.set(weight.subarray(0, dim), wB >> 2);
  f.set(bias.subarray(0, dim), bB >> 2);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const n = Math.min(per, rows - r0);
    f.set(x.subarray(r0 * dim, (r0 + n) * dim), xB >> 2);
    runSplit(w, LAYERNORM, n, n * dim >= minSplitFlop / 32, rowsFrom(xB, dim * 4, [dim, wB, bB, eps]));
    out.set(f.subarray(xB >> 2, (xB >> 2) + n * dim), r0 * dim);
  }
  return true;
}

/** Grows the memory to at least `bytes`; false when the engine refuses (the caller falls back to TypeScript). */
function reserve(w: Instance, bytes: number): boolean {
  const have = w.memory.buffer.byteLength;
  if (bytes > have) {
    try {
      w.memory.grow(Math.ceil((bytes - have) / PAGE));
    } catch {
      return false;
    }
  }
  if (w.f32.buffer.byteLength !== w.memory.buffer.byteLength) { // (a shared memory's buffer is a new object each time)
    w.f32 = new Float32Array(w.memory.buffer);
    w.f64 = new Float64Array(w.memory.buffer);
  }
  return true;
}

/** Drops the wasm instance and its memory (rebuilt on the next call); a thread pool keeps its shared memory. */
export function releaseWasmGemm(): void {
  if (instance?.pool) return;
  instance = null;
}

/** Bytes of wasm memory currently held (0 when released). */
export function wasmGemmMemoryBytes(): number {
  return instance ? instance.memory.buffer.byteLength : 0;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

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
  const w = load();
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
      runSplit(w, STAGE_ROWS, tiles * MR, mc * k >= minSplitFlop / 16, (r0, rows) =>
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
        runSplit(w, ADD_ROWS, mc, mc * nc >= minSplitFlop / 16, (r0, rows) => [resB + r0 * lr * 4, lr * 4, oB + r0 * ldr * 4, ldr * 4, rows, nc]);
      }
      if (packed) {
        out.set(f.subarray(oB >> 2, (oB >> 2) + mc * nc), oOff + ic * ldo);
      } else if (wholeRows && ldo === n) {
        // the result rows packed by copyRows into the space of C (done with), then one copy out
        runSplit(w, COPY_ROWS, mc, mc * nc >= minSplitFlop / 16, (r0, rows) => [oB + r0 * ldc * 4, ldc * 4, cB + r0 * nc * 4, nc * 4, rows, nc]);
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

/**
 * Most keys attentionWasm takes; longer inputs take the per-head products, whose score chunks keep memory bounded.
 * (Its working set grows with the keys: the conv model's cross-attention, 3025 keys of 322 channels, would need
 * 16 MB of wasm memory against 10.5 MB for the self-attention, for a layer that is 1% of the work.)
 */
export const ATTENTION_MAX_KEYS = 2048;

/**
 * q [M, heads·dqk] (row stride ldq, from qOff), k [N, heads·dqk] (ldk, kOff), v [N, heads·dv] (ldv, vOff)
 *   -> out [M, heads·dv] (ldo, oOff): per head h (its column block of q, k, v and out),
 *      out_h = softmax(alpha·q_h·k_hᵀ over each row)·v_h
 * All in wasm memory (attention-kernel.ts): Q, K and V are staged once; the keys and values of each head are cut
 * into panels (one job per head); then each job runs `attend` on its heads (a group of heads per job, each job
 * with its own working blocks), and the context is copied out once. Bit-identical to gemmWasm's scores with the
 * softmax epilogue followed by its P·V product, head by head (the same sums in the same order).
 * Returns false (having written nothing) when N > ATTENTION_MAX_KEYS, when threads outnumber the heads (the
 * per-head products split each product across the threads instead), the memory cannot grow, or the module is
 * refused: the caller then runs the per-head products.
 */
export function attentionWasm(
  m: number, n: number, heads: number, dqk: number, dv: number,
  q: Float32Array, qOff: number, ldq: number,
  k: Float32Array, kOff: number, ldk: number,
  v: Float32Array, vOff: number, ldv: number,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): boolean {
  if (m === 0 || heads === 0 || dv === 0) return true;
  if (n === 0 || dqk === 0 || n > ATTENTION_MAX_KEYS) return false;
  const w = load();
  if (w === null || (w.pool !== null && heads < w.pool.threads)) return false;
  const qkW = heads * dqk, vW = heads * dv; // floats per staged row of Q and K, of V and the context
  const nPad = roundUp(n, NR), kp = roundUp(dqk, 4), dvPad = roundUp(dv, NR);
  const chunksQ = Math.max(1, Math.ceil(dqk / KC)), kcsQ = Math.ceil(dqk / chunksQ);
  const chunksP = Math.max(1, Math.ceil(n / KC)), kcsP = Math.ceil(n / chunksP);
  const aChunk = ATTEND_ROWS * A_STRIDE * 4;
  // row strides (bytes) of the scores' C and result blocks, and of P·V's: each product's two share one
  const ldc = (nPad + 4) * 4, ldr = ldc, ldc2 = (dvPad + 4) * 4, ldr2 = ldc2;
  // jobs: every head on one thread; with a pool, up to two jobs per thread (each job's heads share its blocks)
  const jobs = w.pool === null ? 1 : Math.min(heads, 2 * w.pool.threads);
  // byte layout (16-byte aligned regions): parameter blocks, zeros, Q, K (+ zero rows to nPad, + 4 floats the
  // last head's transpose may read), V (+ NR floats its panelize may read), key and value panels per head, then
  // the context and each job's working blocks (in the space of K and V when they fit, see below)
  const al = (x: number) => roundUp(x, 64);
  const paramB = CONST_BYTES;
  const zerosB = al(paramB + heads * PARAM_BYTES);
  const zeroBytes = Math.max(nPad, dvPad, KC) * 4;
  const qB = al(zerosB + zeroBytes);
  const kB = al(qB + m * qkW * 4);
  const vB = al(kB + (nPad * qkW + 4) * 4);
  const kpB = al(vB + (n * vW + NR) * 4);
  const kpBytes = nPad * kp * 4;
  const vpB = al(kpB + heads * kpBytes);
  const vpBytes = dvPad * n * 4;
  const work = { aQ: 0, c: 0, r: 0, aP: 0, c2: 0, r2: 0 };
  let workBytes = 0;
  for (const [name, bytes] of [
    ["aQ", chunksQ * aChunk], ["c", ATTEND_ROWS * ldc], ["r", ATTEND_ROWS * ldr], ["aP", chunksP * aChunk],
    ["c2", ATTEND_ROWS * ldc2], ["r2", ATTEND_ROWS * ldr2],
  ] as const) {
    work[name] = workBytes;
    workBytes = al(workBytes + bytes);
  }
  // the context, then the jobs' working blocks, go where the staged K and V rows were (dead once cut into panels,
  // before any attend job runs) as far as they fit, else after the panels: for the self-attention 10.5 MB of wasm
  // memory instead of 14 on one thread (context and blocks both fit), 16 instead of 18 on two (the context)
  const panelsEnd = al(vpB + heads * vpBytes);
  const ctxB = al(m * vW * 4) <= kpB - kB ? kB : panelsEnd;
  const afterCtx = al(ctxB + m * vW * 4);
  const workB = ctxB === kB && afterCtx + jobs * workBytes <= kpB ? afterCtx : Math.max(panelsEnd, afterCtx);
  if (!reserve(w, Math.max(panelsEnd, workB + jobs * workBytes))) return false;
  const f = w.f32;
  const i32 = new Int32Array(w.memory.buffer);
  const f64 = w.f64;

  // stage Q, K, V (rows of heads·dqk or heads·dv floats) and the zeros
  f.fill(0, zerosB >> 2, (zerosB + zeroBytes) >> 2);
  copyBlock(q, qOff, ldq, f, qB >> 2, qkW, m, qkW);
  copyBlock(k, kOff, ldk, f, kB >> 2, qkW, n, qkW);
  f.fill(0, (kB >> 2) + n * qkW, (kB >> 2) + nPad * qkW + 4);
  copyBlock(v, vOff, ldv, f, vB >> 2, vW, n, vW);
  f.fill(0, (vB >> 2) + n * vW, (vB >> 2) + n * vW + NR);

  // panels of each head's keys (transpose) and values (panelize): one round of 2·heads jobs
  const panelJobs: Job[] = [];
  for (let h = 0; h < heads; h++) {
    panelJobs.push({ fn: TRANSPOSE, args: [kB + h * dqk * 4, qkW * 4, kpB + h * kpBytes, nPad / 4, kp] });
    panelJobs.push({ fn: PANELIZE, args: [vB + h * dv * 4, vW * 4, vpB + h * vpBytes, dvPad / 4, n] });
  }
  runJobs(w, panelJobs, 2 * m * n * (dqk + dv) * heads);

  // parameter blocks, grouped by job (job j takes heads j, j + jobs, ...)
  const attendJobs: Job[] = [];
  let block = 0;
  for (let j = 0; j < jobs; j++) {
    const first = block;
    for (let h = j; h < heads; h += jobs, block++) {
      const p = (paramB + block * PARAM_BYTES) >> 2;
      const wb = workB + j * workBytes;
      const fields: Record<keyof typeof PARAM, number> = {
        q: qB + h * dqk * 4, ldq: qkW * 4, kp: kpB + h * kpBytes, kpPanel: kp * 16, vp: vpB + h * vpBytes,
        vpPanel: n * 16, m, n, dqk, dv, out: ctxB + h * dv * 4, ldo: vW * 4,
        aQ: wb + work.aQ, c: wb + work.c, r: wb + work.r, aP: wb + work.aP, c2: wb + work.c2, r2: wb + work.r2,
        zeros: zerosB, pairsS: nPad / NR, pairsV: dvPad / NR, ldc, ldr, ldc2, ldr2, kcsQ, kcsP, aChunk,
      };
      for (const key of Object.keys(PARAM) as (keyof typeof PARAM)[]) i32[p + PARAM[key]] = fields[key];
      f64[(paramB + block * PARAM_BYTES + ALPHA_AT) >> 3] = alpha;
    }
    attendJobs.push({ fn: ATTEND, args: [paramB + first * PARAM_BYTES, block - first] });
  }
  runJobs(w, attendJobs, 2 * m * n * (dqk + dv) * heads);

  // the context out
  const ctxF = ctxB >> 2;
  copyBlock(f, ctxF, vW, out, oOff, ldo, m, vW);
  return true;
}

/** Runs independent jobs: on the pool when there is one and `flop` is worth splitting, else one after another here. */
function runJobs(w: Instance, jobs: Job[], flop: number): void {
  if (w.pool !== null && jobs.length > 1 && flop >= minSplitFlop) {
    runOnPool(w, w.pool, jobs);
    return;
  }
  for (const j of jobs) w.fns[j.fn](...j.args);
}
