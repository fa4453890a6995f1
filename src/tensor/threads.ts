/**
 * A pool of worker threads that run exported functions of one WebAssembly module on one shared memory (or, for
 * the TypeScript backend, a JavaScript job function built from source, see WorkerProgram), called
 * synchronously: the calling thread posts a list of jobs (a function and its arguments each), every thread
 * (the caller too) takes the next job from the list until none is left (an atomic counter, so a slower thread
 * simply takes fewer), and the caller returns once all are done. It knows nothing of GEMM; gemm-wasm.ts decides
 * how to cut a product into jobs.
 *
 *  - Node: `worker_threads` (reached through process.getBuiltinModule, Node >= 20.16, so bundlers see no import).
 *    Browsers: Web Workers from a Blob URL, only where `crossOriginIsolated` (SharedArrayBuffer) holds and the
 *    calling thread may block (a Web Worker, not the page's main thread).
 *  - Every worker instantiates the same compiled module on the same shared WebAssembly.Memory, so a pointer means
 *    the same bytes in every thread. Between jobs workers poll for a short while (SPIN), then sleep in
 *    Atomics.wait; they never return to their event loop, and are unref'd in Node, so an idle pool does not keep
 *    the process alive. The caller polls the same way before it sleeps waiting for the workers.
 *  - Control block (a SharedArrayBuffer): Int32 [0] round number, [1] workers done with the current round,
 *    [2] error flag, [3] stop flag, [4] jobs in the round, [5] next job to take; then MAX_JOBS slots of SLOT
 *    float64: [function index, args...].
 *  - Creating the pool is asynchronous (workers start and compile in parallel); running a job is synchronous.
 */
import { PerceiverError } from "../errors.js";

/** Float64 values per job slot: the function index and up to SLOT - 1 arguments. */
const SLOT = 16;
/** Most jobs in one round. */
export const MAX_JOBS = 64;
/** Byte offset of the slots in the control block. */
const SLOTS_AT = 64;
/** A worker that has not answered after this long is taken for dead (a job lasts milliseconds). */
const JOB_TIMEOUT_MS = 60_000;
/** Polls (Atomics.load) a waiting thread makes before it sleeps in Atomics.wait (a short spin). */
const SPIN = 20_000;
/** Starting workers (spawn + compile) may take this long before the pool gives up. */
const START_TIMEOUT_MS = 30_000;

/**
 * What each worker runs: the exports `names` of a WebAssembly module instantiated on a shared memory, or ("js")
 * the one function that `new Function(...params, body)(...args)` returns (args are structured-cloned: numbers,
 * strings, SharedArrayBuffers).
 */
export type WorkerProgram =
  | { kind: "wasm"; module: WebAssembly.Module; memory: WebAssembly.Memory; names: string[] }
  | { kind: "js"; params: string[]; body: string; args: unknown[] };

/** One call: an exported function's index in `names` (0 for a "js" program) and its arguments (numbers). */
export interface Job {
  fn: number;
  args: number[];
}

/** Runs inside each worker (Node worker_threads or a Web Worker). Plain JavaScript: no imports, no bundler. */
const WORKER_SOURCE = `
"use strict";
const nodePort = typeof self === "undefined" ? require("node:worker_threads").parentPort : null;
const send = (m) => (nodePort ? nodePort.postMessage(m) : self.postMessage(m));
const onInit = (d) => {
  let fns;
  try {
    if (d.kind === "js") {
      fns = [new Function(...d.params, d.body)(...d.args)];
    } else {
      const exports = new WebAssembly.Instance(d.module, { env: { memory: d.memory } }).exports;
      fns = d.names.map((n) => exports[n]);
    }
  } catch (e) {
    send({ error: String(e && e.message || e) });
    return;
  }
  const ctl = new Int32Array(d.control);
  const slots = new Float64Array(d.control, d.slotsAt, d.maxJobs * d.slot);
  // read the round number before announcing readiness: a round posted right after "ready" must not be missed
  let seq = Atomics.load(ctl, 0);
  send({ ready: true });
  for (;;) {
    // spin a little first: rounds of one product come back to back, and waking a sleeping thread is slow
    for (let i = 0; i < d.spin && Atomics.load(ctl, 0) === seq; i++);
    Atomics.wait(ctl, 0, seq);
    if (Atomics.load(ctl, 3) !== 0) return;
    const now = Atomics.load(ctl, 0);
    if (now === seq) continue;
    seq = now;
    const count = Atomics.load(ctl, 4);
    for (let j = Atomics.add(ctl, 5, 1); j < count; j = Atomics.add(ctl, 5, 1)) {
      const o = j * d.slot;
      try {
        fns[slots[o]](slots[o + 1], slots[o + 2], slots[o + 3], slots[o + 4], slots[o + 5], slots[o + 6], slots[o + 7],
          slots[o + 8], slots[o + 9], slots[o + 10], slots[o + 11], slots[o + 12], slots[o + 13], slots[o + 14], slots[o + 15]);
      } catch (e) {
        Atomics.store(ctl, 2, 1);
      }
    }
    if (Atomics.add(ctl, 1, 1) + 1 === d.workers) Atomics.notify(ctl, 1);
  }
};
if (nodePort) nodePort.once("message", onInit);
else self.onmessage = (e) => { self.onmessage = null; onInit(e.data); };
`;

interface AnyWorker {
  postMessage(m: unknown): void;
  terminate(): unknown;
}

/** Why worker threads cannot run here, or null when they can. */
export function threadsUnavailableReason(): string | null {
  if (typeof SharedArrayBuffer === "undefined" || typeof Atomics === "undefined") {
    return "SharedArrayBuffer is not available (in a browser the page must be cross-origin isolated: COOP/COEP headers)";
  }
  try {
    // the calling thread must be allowed to block (not a browser's main thread)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
  } catch {
    return "this thread may not block (Atomics.wait): run the model in a Web Worker";
  }
  if (isNode()) {
    if (typeof process.getBuiltinModule !== "function") return `Node ${process.version} lacks process.getBuiltinModule (needs >= 20.16)`;
    return null;
  }
  if (typeof Worker === "undefined" || typeof Blob === "undefined" || typeof URL?.createObjectURL !== "function") {
    return "Web Workers are not available";
  }
  return null;
}

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

/** Number of logical cores (Node: os.availableParallelism; browsers: navigator.hardwareConcurrency); 1 if unknown. */
export function availableCores(): number {
  try {
    if (isNode()) {
      const os = process.getBuiltinModule?.("node:os") as typeof import("node:os") | undefined;
      if (os) return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
    }
    const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
    if (typeof n === "number" && n >= 1) return Math.floor(n);
  } catch {
    // fall through
  }
  return 1;
}

export class ThreadPool {
  private readonly ctl: Int32Array;
  private readonly slots: Float64Array;
  private closed = false;

  private constructor(
    private readonly workers: AnyWorker[],
    control: SharedArrayBuffer,
  ) {
    this.ctl = new Int32Array(control);
    this.slots = new Float64Array(control, SLOTS_AT);
  }

  /** Threads that run a job: the caller plus the workers. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Starts threads - 1 workers, each running `program` (for "wasm": instantiating the module on the shared memory,
   * able to call the exports listed in `names`, by index). Rejects with a PerceiverError (and stops whatever
   * started) if any worker fails.
   */
  static async create(threads: number, program: WorkerProgram): Promise<ThreadPool> {
    const why = threadsUnavailableReason();
    if (why) throw new PerceiverError("CONFIG_UNSUPPORTED", `worker threads are not available: ${why}`);
    const n = threads - 1;
    const control = new SharedArrayBuffer(SLOTS_AT + MAX_JOBS * SLOT * 8);
    const workers: AnyWorker[] = [];
    const started: Promise<void>[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const { worker, ready } = spawn();
        workers.push(worker);
        ready.catch(() => {}); // a worker stopped after a failure elsewhere rejects late: not unhandled
        started.push(ready);
        worker.postMessage({ ...program, control, workers: n, slot: SLOT, slotsAt: SLOTS_AT, maxJobs: MAX_JOBS, spin: SPIN });
      }
      await withTimeout(Promise.all(started), START_TIMEOUT_MS, "worker threads did not start");
    } catch (e) {
      for (const w of workers) void w.terminate();
      if (e instanceof PerceiverError) throw e;
      throw new PerceiverError("THREADS", `worker threads could not start: ${(e as Error).message ?? e}`);
    }
    return new ThreadPool(workers, control);
  }

  /**
   * Runs every job (at most MAX_JOBS, each on whichever thread takes it first, the caller included; `self` are
   * the caller's own export functions) and returns when all are done. Jobs must not depend on each other's
   * order. Throws a PerceiverError (THREADS) if any job threw, after all of them finished.
   */
  run(jobs: Job[], self: ((...args: number[]) => unknown)[]): void {
    if (this.closed) throw new PerceiverError("THREADS", "thread pool used after close()");
    if (jobs.length > MAX_JOBS) throw new PerceiverError("THREADS", `at most ${MAX_JOBS} jobs per round, got ${jobs.length}`);
    const n = this.workers.length;
    const slots = this.slots;
    for (let j = 0; j < jobs.length; j++) {
      const o = j * SLOT;
      slots[o] = jobs[j].fn;
      const args = jobs[j].args;
      for (let a = 0; a < args.length; a++) slots[o + 1 + a] = args[a];
    }
    const ctl = this.ctl;
    Atomics.store(ctl, 1, 0);
    Atomics.store(ctl, 2, 0);
    Atomics.store(ctl, 4, jobs.length);
    Atomics.store(ctl, 5, 0);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    let failure: unknown = null;
    for (let j = Atomics.add(ctl, 5, 1); j < jobs.length; j = Atomics.add(ctl, 5, 1)) {
      try {
        self[jobs[j].fn](...jobs[j].args);
      } catch (e) {
        failure = e;
      }
    }
    // wait for every worker even if a job failed: they may still be writing into the shared memory
    for (let i = 0; i < SPIN && Atomics.load(ctl, 1) !== n; i++);
    for (let done = Atomics.load(ctl, 1); done !== n; done = Atomics.load(ctl, 1)) {
      if (Atomics.wait(ctl, 1, done, JOB_TIMEOUT_MS) === "timed-out" && Atomics.load(ctl, 1) === done) {
        this.close();
        throw new PerceiverError("THREADS", `a worker thread did not finish its job within ${JOB_TIMEOUT_MS / 1000} s; threads are stopped`);
      }
    }
    if (failure !== null || Atomics.load(ctl, 2) !== 0) {
      const why = failure !== null ? `: ${(failure as Error).message ?? failure}` : " on a worker thread";
      throw new PerceiverError("THREADS", `a job failed${why}`, failure !== null ? { cause: failure } : undefined);
    }
  }

  /** Stops the workers (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, 3, 1);
    Atomics.add(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    for (const w of this.workers) void w.terminate();
  }
}

/** Starts one worker running WORKER_SOURCE; `ready` settles on its first message. */
function spawn(): { worker: AnyWorker; ready: Promise<void> } {
  if (isNode()) {
    const wt = process.getBuiltinModule!("node:worker_threads") as typeof import("node:worker_threads");
    const worker = new wt.Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    const ready = new Promise<void>((resolve, reject) => {
      worker.once("message", (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error ?? "bad message"))));
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`worker exited with code ${code}`)));
    });
    return { worker, ready };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const worker = new Worker(url);
  const ready = new Promise<void>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ ready?: boolean; error?: string }>) => {
      worker.onmessage = null;
      URL.revokeObjectURL(url);
      if (e.data.ready) resolve();
      else reject(new Error(e.data.error ?? "bad message"));
    };
    worker.onerror = (e) => reject(new Error(e.message || "worker failed to start"));
  });
  return { worker, ready };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
