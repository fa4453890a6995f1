/**
 * Runs fuzz cases against the targets and checks the property (see check.ts) on each: the outcome, the time taken
 * (limit: `timeLimitMs`) and the process's peak memory (limit: `memoryLimitBytes` over the start).
 *
 * In-process (default) cases run on this thread: fast, but a hang cannot be interrupted (an overrun is reported
 * after the fact). Isolated (`isolate: true`) cases run in a worker thread that is terminated and replaced when a
 * case overruns, so a hang is a reported failure, not a stuck run.
 *
 * Every failure names target, seed and case index; `caseIndex` replays exactly that case.
 */
import { Worker } from "node:worker_threads";
import { runCase, type CaseOutcome, type FailureKind } from "./check.js";
import { caseSeedName, createTargets, defaultFixturesDir, makeCase, TARGET_NAMES, type FuzzTarget, type TargetName } from "./targets.js";
import type { WorkerRequest } from "./worker.js";

export interface FuzzOptions {
  seed: number;
  /** Cases in total, split evenly over the targets. */
  cases: number;
  targets?: readonly TargetName[];
  /** Replay only this case index (of each selected target). */
  caseIndex?: number;
  /** Per-case time limit (default 2000 ms). */
  timeLimitMs?: number;
  /** Largest growth of the process's peak RSS over its value at the start (default 1 GiB): a case that pushes the
   *  peak past it is a "memory" failure. */
  memoryLimitBytes?: number;
  /** Isolated runs: the worker's V8 heap (old generation) limit in MiB (default 512); a case that exhausts it kills
   *  the worker and is a "memory" failure instead of aborting the process. */
  heapLimitMb?: number;
  /** Run cases in a worker thread that is terminated on a timeout (default false). */
  isolate?: boolean;
  fixturesDir?: string;
  /** Tests: build these targets instead of the real ones (in-process runs, and seed names of isolated runs). */
  makeTargets?: () => Record<TargetName, FuzzTarget>;
  /** Tests: a plain-JS worker module speaking worker.ts's protocol, instead of worker.ts. */
  workerUrl?: URL;
  onFailure?: (f: FuzzFailure) => void;
  /** Called every 1000 cases and at the end of each target. */
  onProgress?: (target: TargetName, done: number, total: number) => void;
}

export interface FuzzFailure {
  target: TargetName;
  seed: number;
  caseIndex: number;
  kind: FailureKind;
  message: string;
  seedName: string;
  ms: number;
  /** The command that replays this case. */
  replay: string;
}

export interface TargetStats {
  cases: number;
  ok: number;
  rejected: number;
  failures: number;
  /** rejections per PerceiverError code */
  codes: Record<string, number>;
  seconds: number;
  maxCaseMs: number;
}

export interface FuzzReport {
  seed: number;
  seconds: number;
  perTarget: Partial<Record<TargetName, TargetStats>>;
  failures: FuzzFailure[];
  /** Growth of the peak RSS over the run. */
  peakRssGrowthBytes: number;
}

const peakRss = () => process.resourceUsage().maxRSS * 1024;

/** One worker thread running cases; replaced after a timeout or a crash of the thread itself. */
class IsolatedRunner {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  private pending: ((o: CaseOutcome) => void) | null = null;

  constructor(private readonly fixturesDir: string, private readonly workerUrl?: URL, private readonly heapLimitMb = 512) {}

  private spawn(): void {
    const self = import.meta.url;
    const workerData = { fixturesDir: this.fixturesDir };
    const resourceLimits = { maxOldGenerationSizeMb: this.heapLimitMb };
    let w: Worker;
    if (this.workerUrl) {
      w = new Worker(this.workerUrl, { workerData, resourceLimits });
    } else if (self.endsWith(".ts")) {
      // Running from source (tsx, vitest): the worker registers tsx itself, hooks are not inherited.
      const url = new URL("./worker.ts", self).href;
      w = new Worker(`import("tsx/esm/api").then((api) => { api.register(); return import(${JSON.stringify(url)}); })`, { eval: true, workerData, resourceLimits });
    } else {
      w = new Worker(new URL("./worker.js", self), { workerData, resourceLimits });
    }
    this.worker = w;
    this.ready = new Promise((resolve, reject) => {
      const onReady = (m: unknown) => {
        if (m !== "ready") return;
        w.off("message", onReady);
        w.off("error", reject);
        w.on("message", (o: CaseOutcome) => this.settle(o));
        resolve();
      };
      w.on("message", onReady);
      w.once("error", reject);
    });
    // A worker that was replaced (timeout) is ignored; one that dies by itself fails the case it was running.
    w.on("error", (e) => {
      if (this.worker !== w) return;
      this.worker = null;
      this.settle({ status: "failure", kind: /out of memory/i.test(e.message) ? "memory" : "crash", message: `worker died: ${e.message}`, ms: 0 });
    });
    w.on("exit", () => {
      if (this.worker !== w) return;
      this.worker = null;
      this.settle({ status: "failure", kind: "crash", message: "worker exited during the case", ms: 0 });
    });
  }

  private settle(o: CaseOutcome): void {
    const p = this.pending;
    this.pending = null;
    p?.(o);
  }

  async run(req: WorkerRequest, timeLimitMs: number): Promise<CaseOutcome> {
    if (this.worker === null) this.spawn();
    await this.ready;
    const w = this.worker!;
    return new Promise<CaseOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.pending = null;
        this.worker = null;
        void w.terminate();
        resolve({ status: "failure", kind: "timeout", message: `no answer within ${timeLimitMs} ms (worker terminated)`, ms: timeLimitMs });
      }, timeLimitMs);
      this.pending = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
      w.postMessage(req);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.pending = null;
    if (w) await w.terminate();
  }
}

export function replayCommand(target: TargetName, seed: number, index: number): string {
  return `npm run fuzz -- --target ${target} --seed ${seed} --case ${index}`;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const names = opts.targets ?? TARGET_NAMES;
  const fixturesDir = opts.fixturesDir ?? defaultFixturesDir();
  const targets = opts.makeTargets ? opts.makeTargets() : createTargets(fixturesDir);
  const timeLimitMs = opts.timeLimitMs ?? 2000;
  const memoryLimit = opts.memoryLimitBytes ?? 2 ** 30;
  const perTargetCases = Math.ceil(opts.cases / names.length);
  const isolated = opts.isolate ? new IsolatedRunner(fixturesDir, opts.workerUrl, opts.heapLimitMb) : null;
  const report: FuzzReport = { seed: opts.seed, seconds: 0, perTarget: {}, failures: [], peakRssGrowthBytes: 0 };
  const t0 = performance.now();
  const rss0 = peakRss();
  let lastPeak = rss0;

  try {
    for (const name of names) {
      const target: FuzzTarget = targets[name];
      const stats: TargetStats = { cases: 0, ok: 0, rejected: 0, failures: 0, codes: {}, seconds: 0, maxCaseMs: 0 };
      report.perTarget[name] = stats;
      const tt = performance.now();
      const indices = opts.caseIndex !== undefined ? [opts.caseIndex] : Array.from({ length: perTargetCases }, (_, i) => i);
      for (const index of indices) {
        let outcome: CaseOutcome;
        let seedName: string;
        if (isolated) {
          seedName = caseSeedName(target, opts.seed, index); // the case itself is built in the worker
          outcome = await isolated.run({ target: name, seed: opts.seed, index }, timeLimitMs);
        } else {
          const c = makeCase(target, opts.seed, index);
          seedName = c.seedName;
          outcome = runCase((x) => target.run(x), c.input);
        }
        // memory first: a case that allocates too much is usually slow too, and the memory is the cause
        const peak = peakRss();
        if (outcome.status !== "failure" && peak > lastPeak && peak - rss0 > memoryLimit) {
          outcome = { status: "failure", kind: "memory", message: `peak RSS grew by ${((peak - rss0) / 2 ** 20).toFixed(0)} MiB (limit ${(memoryLimit / 2 ** 20).toFixed(0)} MiB)`, ms: outcome.ms };
        }
        lastPeak = Math.max(lastPeak, peak);
        if (outcome.status !== "failure" && outcome.ms > timeLimitMs) {
          outcome = { status: "failure", kind: "timeout", message: `took ${outcome.ms.toFixed(0)} ms (limit ${timeLimitMs} ms)`, ms: outcome.ms };
        }
        stats.cases++;
        stats.maxCaseMs = Math.max(stats.maxCaseMs, outcome.ms);
        if (outcome.status === "ok") stats.ok++;
        else if (outcome.status === "rejected") {
          stats.rejected++;
          stats.codes[outcome.code!] = (stats.codes[outcome.code!] ?? 0) + 1;
        } else {
          stats.failures++;
          const f: FuzzFailure = {
            target: name, seed: opts.seed, caseIndex: index, kind: outcome.kind!, message: outcome.message ?? "",
            seedName, ms: outcome.ms, replay: replayCommand(name, opts.seed, index),
          };
          report.failures.push(f);
          opts.onFailure?.(f);
        }
        if (stats.cases % 1000 === 0) opts.onProgress?.(name, stats.cases, indices.length);
      }
      stats.seconds = (performance.now() - tt) / 1000;
      opts.onProgress?.(name, stats.cases, indices.length);
    }
  } finally {
    await isolated?.close();
  }
  report.seconds = (performance.now() - t0) / 1000;
  report.peakRssGrowthBytes = peakRss() - rss0;
  return report;
}
