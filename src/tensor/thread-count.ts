/**
 * How many threads the kernels run on. Each backend with threads has its own worker pool (threads.ts runs the
 * wasm kernels, or gemm-asm.ts's jobs for the TypeScript kernels); the reference backend runs on the calling
 * thread alone. Results are bit-identical for every thread count.
 */
import { PerceiverError } from "../errors.js";
import { getBackend, type Backend } from "./backend.js";
import { startTsThreads, tsThreadCount } from "./gemm-asm.js";
import { availableCores } from "./threads.js";
import { startWasmThreads, wasmGemmSupported, wasmThreads } from "./wasm/runtime.js";

/** Most threads setThreads accepts. */
const MAX_THREADS = 64;
/** Threads wanted: PERCEIVER_THREADS, else the available cores. Applied by setThreads or ensureThreads. */
let threadsWanted = initialThreads();
/** Whether each backend's pool was started (or tried) for threadsWanted. */
const threadsApplied: Record<Backend, boolean> = { ts: false, wasm: false, reference: false };
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

/** Starts (or stops) backend b's workers so that its kernels run on n threads (the reference backend has none). */
async function startThreads(b: Backend, n: number): Promise<void> {
  if (b === "wasm") {
    if (wasmGemmSupported()) await startWasmThreads(n);
  } else if (b === "ts") {
    await startTsThreads(n);
  }
}

/**
 * Runs the current backend's kernels on `n` threads (the caller plus n - 1 workers; results are bit-identical for
 * every n), and the other backends' too once they are selected (on their next forward pass). Resolves once the
 * workers are running. Rejects with a PerceiverError where threads cannot run (no SharedArrayBuffer: a browser page
 * that is not cross-origin isolated; the browser's main thread, which may not block; Node < 20.16; for the ts
 * backend, a Content-Security-Policy that refuses `new Function`), keeping the previous setting. The reference
 * backend stays on one thread whatever n is.
 */
export async function setThreads(n: number): Promise<void> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new PerceiverError("INPUT_INVALID", `setThreads: expected an integer from 1 to ${MAX_THREADS}, got ${n}`);
  }
  const backend = getBackend();
  await startThreads(backend, n);
  threadsWanted = n;
  for (const b of Object.keys(threadsApplied) as Backend[]) threadsApplied[b] = b === backend;
  threadsFallback = null;
}

/** Threads the current backend's kernels run on. */
export function getThreads(): number {
  const b = getBackend();
  return b === "wasm" ? wasmThreads() : b === "ts" ? tsThreadCount() : 1;
}

/**
 * Applies the wanted thread count (setThreads', else PERCEIVER_THREADS or the available cores) to the current
 * backend, once per backend. Where threads cannot start it stays on one thread (threadsFallbackReason() says
 * why; a warning if PERCEIVER_THREADS asked for them). The model calls it before each forward pass.
 */
export async function ensureThreads(): Promise<void> {
  const b = getBackend();
  if (threadsApplied[b]) return;
  threadsApplied[b] = true;
  if (b === "reference" || threadsWanted === getThreads()) return;
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
