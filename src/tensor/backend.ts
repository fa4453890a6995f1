/**
 * Which kernels run the tensor operations (matrix products, layer norm, convolution, GELU, softmax):
 *  - "reference": the textbook loops of reference/ on one thread. Slow; written to be read and stepped through,
 *    and the yardstick every optimized kernel is tested against.
 *  - "ts": packed, cache-blocked TypeScript kernels (gemm-ts.ts with the asm.js micro-kernel of gemm-asm.ts) on
 *    worker threads. Its matrix products give bit-for-bit the reference's results.
 *  - "wasm": WebAssembly SIMD kernels (wasm/) on worker threads; float32 sums in two levels (wasm/gemm-kernel.ts).
 * The default is "wasm" where the runtime validates the kernel module (WebAssembly with 128-bit SIMD), else "ts".
 * `PERCEIVER_BACKEND` (read on first use, where `process` exists) or `setBackend` choose another one; an unknown
 * name is an INPUT_INVALID error, and "wasm" where it cannot run a CONFIG_UNSUPPORTED error.
 */
import { PerceiverError } from "../errors.js";
import { wasmGemmSupported } from "./wasm/runtime.js";

export type Backend = "ts" | "wasm" | "reference";
/** The public name of Backend (kept for compatibility). */
export type GemmBackend = Backend;
export const BACKENDS: readonly Backend[] = ["wasm", "ts", "reference"];

let backend: Backend | null = null;

function isBackend(name: unknown): name is Backend {
  return typeof name === "string" && (BACKENDS as readonly string[]).includes(name);
}

/** Refuses a name that is not a backend, or "wasm" where WebAssembly SIMD is missing. */
function check(name: unknown, where: string): Backend {
  if (!isBackend(name)) {
    throw new PerceiverError("INPUT_INVALID", `${where}: expected one of ${BACKENDS.map((b) => `"${b}"`).join(", ")}, got ${JSON.stringify(name)}`);
  }
  if (name === "wasm" && !wasmGemmSupported()) {
    throw new PerceiverError("CONFIG_UNSUPPORTED", `${where}: WebAssembly SIMD is not available in this runtime`);
  }
  return name;
}

/** PERCEIVER_BACKEND when set, else "wasm" when the runtime supports it, else "ts". */
function initialBackend(): Backend {
  const env = typeof process !== "undefined" ? process.env?.PERCEIVER_BACKEND : undefined;
  if (env !== undefined && env !== "") return check(env, "PERCEIVER_BACKEND");
  return wasmGemmSupported() ? "wasm" : "ts";
}

/** Selects the kernels every tensor operation runs from now on. */
export function setBackend(b: Backend): void {
  backend = check(b, "setBackend");
}

/** The kernels in use (resolved from PERCEIVER_BACKEND on the first call). */
export function getBackend(): Backend {
  return (backend ??= initialBackend());
}
