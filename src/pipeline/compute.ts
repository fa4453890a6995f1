/**
 * What pipelines share: the matrix-product settings (backend, worker threads) are process-wide (tensor/gemm.ts),
 * so forward passes of all pipelines run one at a time, each under its own pipeline's settings, and the worker
 * threads live as long as some pipeline does:
 *   - runExclusive queues forward passes (JavaScript runs them on one thread anyway: nothing is lost);
 *   - the last live pipeline's dispose() stops the worker threads and frees the kernels' scratch memory; the next
 *     pipeline's first forward pass starts them again with the same count.
 */
import { getBackend, getThreads, releaseGemmScratch, setBackend, setThreads, type GemmBackend } from "../tensor/gemm.js";

export interface ComputeSettings {
  backend?: GemmBackend;
  threads?: number;
}

let queue: Promise<unknown> = Promise.resolve();
const live = new Set<object>();
/** Threads running when the last pipeline stopped them, started again for the next pipeline without a `threads`. */
let threadsToRestore: number | null = null;

/** Runs `fn` after every forward pass queued before it, with `settings` applied. */
export function runExclusive<T>(settings: ComputeSettings, fn: () => Promise<T>): Promise<T> {
  const run = queue.then(async () => {
    await apply(settings);
    return fn();
  });
  queue = run.catch(() => undefined);
  return run;
}

async function apply(settings: ComputeSettings): Promise<void> {
  if (settings.backend !== undefined && settings.backend !== getBackend()) setBackend(settings.backend);
  if (settings.threads !== undefined) {
    if (settings.threads !== getThreads()) await setThreads(settings.threads);
  } else if (threadsToRestore !== null) {
    // best effort: the count that ran before the last pipeline was disposed
    await setThreads(threadsToRestore).catch(() => undefined);
  }
  threadsToRestore = null;
}

export function registerPipeline(owner: object): void {
  live.add(owner);
}

/** Unregisters `owner`; when no pipeline is left, stops the worker threads (after the queued forward passes). */
export function unregisterPipeline(owner: object): Promise<void> {
  if (!live.delete(owner) || live.size > 0) return Promise.resolve();
  const run = queue.then(async () => {
    if (live.size > 0) return; // a new pipeline arrived meanwhile
    const original = getBackend();
    let running = 1;
    for (const b of ["ts", "wasm"] as const) {
      try {
        setBackend(b);
      } catch {
        continue; // wasm unsupported here: it has no threads
      }
      const n = getThreads();
      if (n > 1) {
        running = Math.max(running, n);
        await setThreads(1).catch(() => undefined);
      }
    }
    setBackend(original);
    releaseGemmScratch();
    if (running > 1) threadsToRestore = running;
  });
  queue = run.catch(() => undefined);
  return run;
}

/** For tests: pipelines alive now. */
export function livePipelines(): number {
  return live.size;
}
