/**
 * The wasm kernels' runtime: the one WebAssembly.Memory and module instance every wasm kernel of this folder
 * stages its operands into (gemm-wasm.ts, attention-wasm.ts, layernorm-wasm.ts), the worker threads that share it,
 * and the helpers that cut a round of work into jobs for them.
 *
 * The memory grows on demand and never shrinks; `releaseWasmGemm` drops it (it is rebuilt on the next call). If it
 * cannot grow, a kernel returns false and the caller runs the TypeScript kernels instead.
 *
 * Threads (`startWasmThreads`): the memory becomes a shared WebAssembly.Memory (maximum MAX_SHARED_PAGES) that
 * every worker of a ThreadPool (threads.ts) instantiates the same module on. A kernel's calling thread copies the
 * operands in; jobs then run the module's exports on disjoint parts of the staged data. Each output element is
 * still one thread's same sum in the same order, so results are bit-identical for any thread count. Rounds under
 * the split threshold run on the calling thread alone.
 */
import { ERF_TABLE } from "../activations.js";
import { MAX_JOBS, ThreadPool, type Job } from "../threads.js";
import { gemmKernelModule, type KernelOptions, type PanelizeFn, type ProductFn } from "./gemm-kernel.js";
import { ERF_TABLE_BYTES } from "./gelu-kernel.js";

const PAGE = 65536;
/** Maximum size of the shared memory used with threads (1 GiB; the staging needs a few tens of MB). */
const MAX_SHARED_PAGES = 16384;
/** Smallest block (floating-point operations) worth splitting across threads. */
const MIN_SPLIT_FLOP = 1 << 21;
/** Jobs per thread a split block is cut into (load balancing: a thread that runs slower takes fewer). */
const JOBS_PER_THREAD = 8;
/** Exports the pool's workers may call, by index. */
const EXPORTS = ["transpose", "softmax", "gelu", "layernorm", "product", "panelize", "attend", "addRows", "stageRows", "copyRows"];
export const TRANSPOSE = EXPORTS.indexOf("transpose");
const SOFTMAX = EXPORTS.indexOf("softmax");
export const GELU = EXPORTS.indexOf("gelu");
export const LAYERNORM = EXPORTS.indexOf("layernorm");
export const PRODUCT = EXPORTS.indexOf("product");
export const PANELIZE = EXPORTS.indexOf("panelize");
export const ATTEND = EXPORTS.indexOf("attend");
export const ADD_ROWS = EXPORTS.indexOf("addRows");
export const STAGE_ROWS = EXPORTS.indexOf("stageRows");
export const COPY_ROWS = EXPORTS.indexOf("copyRows");
/** Constants at the start of the memory (the erf table of the GELU kernel); the staging regions follow. */
const ERF_TABLE_AT = 0;
/** Bytes before the first staging region. */
export const CONST_BYTES = Math.ceil(ERF_TABLE_BYTES / 64) * 64;

export const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

export interface Instance {
  memory: WebAssembly.Memory;
  panelize: PanelizeFn;
  product: ProductFn;
  /** views of the whole memory (renewed when it grows) */
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
 * The kernel variant this runtime gets: "fma" (f32x4.relaxed_madd, where Relaxed SIMD exists: faster, and fused
 * multiply-adds round less), "mul-add" (plain SIMD), or null without WebAssembly SIMD.
 */
export function wasmGemmKernel(): "fma" | "mul-add" | null {
  if (!wasmGemmSupported()) return null;
  fma ??= !fmaTurnedOff() && (validates({ fma: true }) || enableRelaxedSimdInNode());
  return fma ? "fma" : "mul-add";
}

/** PERCEIVER_WASM_FMA=0 keeps the plain mul-add kernel on every runtime (with or without Relaxed SIMD). */
function fmaTurnedOff(): boolean {
  return typeof process !== "undefined" && process.env?.PERCEIVER_WASM_FMA === "0";
}

/**
 * Some engines implement Relaxed SIMD behind a flag (Node 20's). Turn the flag on (node:v8 setFlagsFromString,
 * before our module is compiled) so they get the fused kernel too. Returns whether the fma module now validates.
 */
function enableRelaxedSimdInNode(): boolean {
  if (typeof process === "undefined" || typeof process.getBuiltinModule !== "function") return false;
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
export function loadWasm(): Instance | null {
  if (instance) return instance;
  try {
    // synchronous compile: the module is a few KB, within what a browser page's main thread may compile so
    // (engines that refuse return null here, and the TypeScript kernels run instead)
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

let splitFlop = MIN_SPLIT_FLOP;
let splitBlocks = 0;

/** For tests: split blocks from `flop` operations up (default MIN_SPLIT_FLOP); returns the previous threshold. */
export function setWasmSplitThreshold(flop: number): number {
  const prev = splitFlop;
  splitFlop = flop;
  return prev;
}

/** How many rounds (products, transposes, epilogues) have been split across threads so far (tests check that threads were really used). */
export function wasmSplitBlocks(): number {
  return splitBlocks;
}

/** The current split threshold (floating-point operations), see setWasmSplitThreshold. */
export function minSplitFlop(): number {
  return splitFlop;
}

/** Threads the wasm GEMM runs on (1 without a pool). */
export function wasmThreads(): number {
  return instance?.pool?.threads ?? 1;
}

/** Hands `jobs` to the pool's threads, at most MAX_JOBS per round, and counts the split (wasmSplitBlocks). */
export function runOnPool(w: Instance, pool: ThreadPool, jobs: Job[]): void {
  splitBlocks++;
  if (jobs.length <= MAX_JOBS) pool.run(jobs, w.fns);
  else for (let j0 = 0; j0 < jobs.length; j0 += MAX_JOBS) pool.run(jobs.slice(j0, j0 + MAX_JOBS), w.fns);
}

/** Runs independent jobs: on the pool when there is one and `flop` is worth splitting, else one after another here. */
export function runJobs(w: Instance, jobs: Job[], flop: number): void {
  if (w.pool !== null && jobs.length > 1 && flop >= splitFlop) {
    runOnPool(w, w.pool, jobs);
    return;
  }
  for (const j of jobs) w.fns[j.fn](...j.args);
}

/**
 * Runs export `fn` over `count` independent units: on the calling thread as fn(...argsOf(0, count)), or, when
 * `worth` it, cut into jobs of consecutive units [u0, u0 + n) for the pool's threads, fn(...argsOf(u0, n)).
 */
export function runSplit(w: Instance, fn: number, count: number, worth: boolean, argsOf: (u0: number, n: number) => number[]): void {
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
export function runTranspose(w: Instance, src: number, lds: number, dst: number, panels: number, k4: number): void {
  runSplit(w, TRANSPOSE, panels, panels * k4 * 4 >= splitFlop / 8, (p0, n) => [src + p0 * 4 * lds, lds, dst + p0 * k4 * 16, n, k4]);
}

/** Rows [r0, r0 + n) of rows `ld` bytes apart from p, then `rest`: the arguments of the row kernels. */
export const rowsFrom = (p: number, ld: number, rest: number[]) => (r0: number, n: number) => [p + r0 * ld, n, ...rest];

/** GELU / softmax of `rows` rows of `cols` floats at byte address p (row stride ld bytes), split by rows. */
export function runGelu(w: Instance, p: number, rows: number, cols: number, ld: number): void {
  runSplit(w, GELU, rows, rows * cols >= splitFlop / 64, rowsFrom(p, ld, [cols, ld, ERF_TABLE_AT]));
}
export function runSoftmax(w: Instance, p: number, rows: number, cols: number, ld: number): void {
  runSplit(w, SOFTMAX, rows, rows * cols >= splitFlop / 64, rowsFrom(p, ld, [cols, ld]));
}

/** Grows the memory to at least `bytes`; false when the engine refuses (the caller falls back to TypeScript). */
export function reserve(w: Instance, bytes: number): boolean {
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

