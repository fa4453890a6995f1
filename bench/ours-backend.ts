/**
 * Selects perceiver-ts's GEMM backend and thread count for this process, using whatever src/tensor/gemm.ts
 * exports at run time: `setBackend("ts"|"wasm")` / `getBackend()` (the WebAssembly SIMD backend) and
 * `setThreads(n)` / `getThreads()` (worker threads). Without them only the "ts" backend at 1 thread exists.
 * bench/run.ts also sets PERCEIVER_BACKEND and PERCEIVER_THREADS in the child's environment.
 */
import * as gemm from "../src/tensor/gemm.js";

interface OptionalGemmApi {
  setBackend?: (name: string) => unknown;
  getBackend?: () => string;
  setThreads?: (n: number) => unknown;
  getThreads?: () => number;
}

const api = gemm as unknown as OptionalGemmApi;

/** Returns null when the backend runs with `threads` threads, or the reason it cannot. */
export async function selectOurBackend(backend: string, threads: number): Promise<string | null> {
  if (typeof api.setBackend === "function") {
    try {
      await api.setBackend(backend);
    } catch (e) {
      return `setBackend("${backend}") failed: ${(e as Error).message}`;
    }
  } else if (backend !== "ts") {
    return `src/tensor/gemm.ts has no setBackend(): only the "ts" backend exists`;
  }
  const active = typeof api.getBackend === "function" ? api.getBackend() : "ts";
  if (active !== backend) return `asked for backend "${backend}", getBackend() says "${active}"`;

  if (typeof api.setThreads === "function") {
    try {
      await api.setThreads(threads);
    } catch (e) {
      return `setThreads(${threads}) failed: ${(e as Error).message}`;
    }
  }
  const effective = typeof api.getThreads === "function" ? api.getThreads() : 1;
  if (effective !== threads) {
    return typeof api.getThreads === "function"
      ? `asked for ${threads} threads, getThreads() says ${effective}`
      : `perceiver-ts runs on 1 thread (src/tensor/gemm.ts has no getThreads() yet)`;
  }
  return null;
}
