/**
 * What the benchmark's parts share: the GEMM shapes of vision-perceiver-conv, the timing rule, the result records
 * that child processes hand back to bench/run.ts, and deterministic inputs.
 */
import { readFileSync } from "node:fs";

/** One matrix product of the model: out [M,N] = a [M,K] · b (as [K,N], or [N,K] for the ·ᵀ products). */
export interface GemmShape {
  label: string;
  m: number;
  n: number;
  k: number;
  /** how perceiver-ts computes it in the model */
  kind: "linear" | "matmulTransB" | "matmul";
  /** row stride of the per-head views inside the [T, 1024] q/k/v buffers (perceiver-ts only) */
  ld?: number;
  note: string;
}

export const GEMM_SHAPES: GemmShape[] = [
  { label: "512x1024x1024", m: 512, n: 1024, k: 1024, kind: "linear", note: "latent q/k/v/o/mlp (x292 per image)" },
  { label: "512x512x128", m: 512, n: 512, k: 128, kind: "matmulTransB", ld: 1024, note: "per-head Q·Kᵀ (x384)" },
  { label: "512x128x512", m: 512, n: 128, k: 512, kind: "matmul", ld: 1024, note: "per-head P·V (x384)" },
  { label: "3025x322x322", m: 3025, n: 322, k: 322, kind: "linear", note: "cross-attention K, V (x2)" },
  { label: "512x3025x322", m: 512, n: 3025, k: 322, kind: "matmulTransB", note: "cross-attention Q·Kᵀ (x1)" },
];

/** GFLOP/s of one shape: best and median of the timed calls (after one warm-up call). */
export interface GemmShapeResult {
  label: string;
  m: number;
  n: number;
  k: number;
  gflops: number;
  medianGflops: number;
  bestMs: number;
  calls: number;
}

/** One engine/backend/thread-count configuration, measured in its own process. */
export interface GemmResult {
  engine: string;
  backend: string;
  threads: number;
  /** why nothing was measured (backend or thread count not available), if so */
  skipped?: string;
  notes: string[];
  shapes: GemmShapeResult[];
  /** os.loadavg() just before this configuration's process started (filled by run.ts) */
  loadAvgBefore?: number[];
}

export interface BatchResult {
  batch: number;
  /** why this batch was not run (its estimated time exceeded the budget), if so */
  skipped?: string;
  /** wall seconds of each timed forward (the whole batch) */
  runsS: number[];
  /** seconds per image of the reported run (the median of the runs after the first when there are any, else the
   * first); null when skipped */
  perImageS: number | null;
  /** peak RSS of the process after this batch, MB */
  maxRssMB: number;
  /**
   * a batch > 1 run after batch 1: seconds of the batch-1 runs just before and just after it (one more batch-1 run
   * follows it), to compare it with batch 1 under the same machine conditions (the machine drifts by 10-30%)
   */
  batch1AroundS?: [number, number];
}

export interface ModelResult {
  engine: string;
  backend: string;
  threads: number;
  skipped?: string;
  notes: string[];
  /** model load until ready to run, seconds */
  loadS?: number;
  batches: BatchResult[];
  /** peak RSS of the whole process (load + every batch run), MB */
  peakRssMB?: number;
  /** peak RSS before the weights were loaded: the runtime with the engine imported (its baseline) */
  rssBeforeLoadMB?: number;
  rssAfterLoadMB?: number;
  /** os.loadavg() just before this configuration's process started (filled by run.ts) */
  loadAvgBefore?: number[];
}

/** One configuration's paired rounds (run.ts): a batch-1 forward per round, taken in turn with the others. */
export interface RoundsResult {
  engine: string;
  backend: string;
  threads: number;
  /** seconds of each round's run (null: that run failed, see errors) */
  seconds: (number | null)[];
  errors: string[];
  /** the 1-minute load average before each round's run */
  loadAvgBefore: number[];
}

/** A model measurement and, when the engine ran, its forward (to serve paired rounds, see child.ts). */
export interface ModelRun {
  result: ModelResult;
  run?: (batch: number) => Promise<void>;
}

/** Marker of the one stdout line a child process answers with. */
export const RESULT_MARK = "@@BENCH_RESULT ";
/**
 * Paired rounds (run.ts): a model child started with `serve` stays alive after its answer and reads commands on
 * stdin, one per line: "run" times one more batch-1 forward and answers ROUND_MARK + JSON { seconds } (or
 * { error }); "exit" (or the end of stdin) ends the process.
 */
export const ROUND_MARK = "@@BENCH_ROUND ";

/**
 * This process's peak RSS in MiB. On Linux, VmHWM of /proc/self/status: getrusage's maxRSS (resourceUsage) keeps
 * the high-water mark from before exec, so a child spawned while the parent held ~200 MB (it had just hashed the
 * checkpoint) reported that as its own peak before loading anything. Elsewhere, resourceUsage().maxRSS (KB).
 */
export function maxRssMB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** Deterministic values in [-0.5, 0.5) (LCG). */
export function randomArray(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  return x;
}

/** A normalized-looking pixel batch [B,3,224,224]. */
export function pixelBatch(batch: number): Float32Array {
  const x = randomArray(batch * 3 * 224 * 224, 7);
  for (let i = 0; i < x.length; i++) x[i] *= 4;
  return x;
}

/**
 * Times `fn` (sync or async) after one warm-up call: at least `minCalls` calls and until `minMs` has passed, at
 * most `maxCalls` calls or `budgetMs`. Returns every call's milliseconds.
 */
export async function timeCalls(
  fn: () => unknown, opts: { minCalls?: number; maxCalls?: number; minMs?: number; budgetMs?: number } = {},
): Promise<number[]> {
  const { minCalls = 3, maxCalls = 50, minMs = 600, budgetMs = 4000 } = opts;
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxCalls) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    const elapsed = performance.now() - start;
    if ((times.length >= minCalls && elapsed >= minMs) || elapsed >= budgetMs) break;
  }
  return times;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

export function shapeResult(s: GemmShape, ms: number[]): GemmShapeResult {
  const flop = 2 * s.m * s.n * s.k;
  const best = Math.min(...ms);
  return {
    label: s.label, m: s.m, n: s.n, k: s.k,
    gflops: flop / best / 1e6, medianGflops: flop / median(ms) / 1e6, bestMs: best, calls: ms.length,
  };
}

/** How many times to run each batch (see timeBatches). */
export interface BatchProtocol {
  /** seconds available for extra batch-1 runs after the first */
  extraBudgetS: number;
  /** at most this many extra batch-1 runs */
  maxExtra: number;
  /** skip a batch > 1 whose estimate (batch x batch-1 seconds per image) exceeds this; null: never skip */
  batchBudgetS: number | null;
}

/**
 * The protocol shared by every engine (PyTorch's twin is in pytorch_bench.py): batch 1 runs once, then again while
 * the extra runs fit in `extraBudgetS` (at most `maxExtra`); it reports the median of the extra runs (the first
 * run includes JIT / lazy initialization) or the first run when it was alone. Larger batches run once, after
 * batch 1, unless their estimated time exceeds `batchBudgetS`; each is followed by one more batch-1 run, so that
 * it can also be held against the batch-1 runs just before and after it (`batch1AroundS`).
 */
export async function timeBatches(
  batches: number[], run: (batch: number) => Promise<void>, opts: BatchProtocol,
): Promise<BatchResult[]> {
  const out: BatchResult[] = [];
  let lastBatch1S: number | null = null; // the latest batch-1 run
  for (const batch of [...batches].sort((a, b) => a - b)) {
    const b1 = out.find((r) => r.batch === 1)?.perImageS ?? null;
    if (batch > 1 && b1 !== null && opts.batchBudgetS !== null && batch * b1 > opts.batchBudgetS) {
      const est = batch * b1;
      const skipped = `estimated ${est.toFixed(0)} s > budget ${opts.batchBudgetS} s (ask for it with --batch)`;
      out.push({ batch, skipped, runsS: [], perImageS: null, maxRssMB: maxRssMB() });
      process.stderr.write(`    batch ${batch}: skipped, ${skipped}\n`);
      continue;
    }
    const runsS: number[] = [];
    const t0 = performance.now();
    await run(batch);
    runsS.push((performance.now() - t0) / 1000);
    const first = runsS[0];
    let spent = 0;
    while (batch === 1 && runsS.length - 1 < opts.maxExtra && spent + first <= opts.extraBudgetS) {
      const t = performance.now();
      await run(batch);
      const s = (performance.now() - t) / 1000;
      runsS.push(s);
      spent += s;
    }
    const rep = runsS.length > 1 ? median(runsS.slice(1)) : runsS[0];
    const result: BatchResult = { batch, runsS, perImageS: rep / batch, maxRssMB: maxRssMB() };
    out.push(result);
    process.stderr.write(`    batch ${batch}: ${runsS.map((s) => s.toFixed(2)).join(", ")} s\n`);
    if (batch === 1) lastBatch1S = runsS[runsS.length - 1];
    else if (lastBatch1S !== null) {
      const t = performance.now();
      await run(1);
      const after = (performance.now() - t) / 1000;
      result.batch1AroundS = [lastBatch1S, after];
      lastBatch1S = after;
      process.stderr.write(`    batch 1 again: ${after.toFixed(2)} s\n`);
    }
  }
  return out;
}
