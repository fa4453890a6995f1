/**
 * Markdown tables of one bench run: GEMM GFLOP/s per engine configuration, and the full model (load, seconds per
 * image at each batch, peak RSS, time ratios against each peer at the same thread count).
 * RSS is in MiB (2^20 bytes; see common.ts maxRssMB), the JSON's `…MB` fields included.
 * Rows are keyed by engine, backend and threads, so a new backend or thread count is just another row.
 * "load avg" is the 1-minute load average when the row's process started (the machine is shared).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parsePerceiverConfig } from "../src/perceiver/config.js";
import { flopBudget } from "../src/perceiver/flops.js";
import type { CeilingResult } from "./ceiling.js";
import {
  GEMM_SHAPES, median, type BatchProtocol, type GemmResult, type GemmShape, type ModelResult, type RoundsResult,
} from "./common.js";

/** The bench model's config.json (vision-perceiver-conv's): test/fixtures/full/config.json, found from this file up. */
function modelConfigPath(): string {
  const rel = join("test", "fixtures", "full", "config.json");
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, rel))) return join(dir, rel);
    if (dirname(dir) === dir) throw new Error(`bench: ${rel} not found above ${fileURLToPath(import.meta.url)}`);
  }
}

/**
 * Floating-point operations of one 224x224 image through vision-perceiver-conv, in GFLOP to one decimal (369.2):
 * src/perceiver/flops.ts computes it from the config.
 */
export const MODEL_GFLOP = Math.round(flopBudget(parsePerceiverConfig(JSON.parse(readFileSync(modelConfigPath(), "utf8")))).total / 1e8) / 10;

/** Engines the full-model tables compare perceiver-ts against. */
export const MODEL_PEERS = ["onnxruntime-node", "onnxruntime-web", "pytorch"] as const;
/** Configurations slower than this (batch 1, s/image) sit out the paired rounds (perceiver-ts's pure-TS backend). */
export const ROUND_LIMIT_S = 40;
/** Pause before each paired-round run, so that the previous engine's threads have stopped spinning. */
export const ROUND_PAUSE_MS = 1500;

const fmt = (x: number | null | undefined, digits: number): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);

/** 3 significant digits, at most 2 decimals. */
const sig = (x: number | null | undefined): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return x.toFixed(Math.max(0, Math.min(2, 2 - Math.floor(Math.log10(Math.abs(x)) + 1e-9))));
};

/** A markdown table: the first `left` columns left-aligned (names), the rest right-aligned (numbers). */
function table(head: string[], rows: string[][], left = 3): string {
  return [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < left ? "---" : "--:")).join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

const threadsLabel = (t: number) => `${t} thread${t > 1 ? "s" : ""}`;

function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

export function gemmTable(results: GemmResult[]): string {
  const measured = results.filter((r) => !r.skipped && r.shapes.length > 0);
  const ours = measured.find((r) => r.engine === "perceiver-ts" && r.backend === "ts" && r.threads === 1);
  const oursMean = ours ? geomean(ours.shapes.map((s) => s.gflops)) : null;
  const head = ["engine", "backend", "threads", ...GEMM_SHAPES.map((s) => s.label), "geo-mean", "GFLOP/s ÷ perceiver-ts ts 1T", "load avg"];
  const rows = measured.map((r) => {
    const mean = geomean(r.shapes.map((s) => s.gflops));
    return [
      r.engine, r.backend, String(r.threads),
      ...GEMM_SHAPES.map((s) => sig(r.shapes.find((x) => x.label === s.label)?.gflops)),
      sig(mean), oursMean ? `${sig(mean / oursMean)}×` : "–", fmt(r.loadAvgBefore?.[0], 2),
    ];
  });
  return table(head, rows);
}

/** Seconds per image at `batch`, or null. */
function perImage(r: ModelResult, batch: number): number | null {
  return r.batches.find((b) => b.batch === batch)?.perImageS ?? null;
}

/**
 * The full-model table. `weightsBytes`, when given (the checkpoint's size), adds the batch-1 peak RSS over the
 * weights: #7's memory target is at most 1.5x.
 */
export function modelTable(results: ModelResult[], batches: number[], peers: string[], weightsBytes?: number): string {
  const measured = results.filter((r) => !r.skipped);
  const batch1Rss = batches.includes(1) && batches.length > 1; // else it is the peak RSS column
  const rssTo1 = (r: ModelResult) => (batch1Rss ? r.batches.find((b) => b.batch === 1)?.maxRssMB : r.peakRssMB);
  const weightsMiB = weightsBytes !== undefined && weightsBytes > 0 ? weightsBytes / 2 ** 20 : null;
  const head = [
    "engine", "backend", "threads", "load s", ...batches.map((b) => `batch ${b} s/image`), "peak RSS MiB",
    ...(batch1Rss ? ["peak RSS to batch 1 MiB"] : []), ...(weightsMiB !== null ? ["batch-1 peak RSS ÷ weights"] : []),
    "RSS before load MiB",
    ...peers.map((p) => `time ÷ ${p} (${batches.map((b) => `b${b}`).join(" / ")})`), "load avg",
  ];
  const rows = measured.map((r) => {
    const ratios = peers.map((p) => {
      const peer = measured.find((x) => x.engine === p && x.threads === r.threads);
      if (!peer) return "–";
      return batches.map((b) => {
        const mine = perImage(r, b), theirs = perImage(peer, b);
        return mine !== null && theirs !== null ? `${sig(mine / theirs)}×` : "–";
      }).join(" / ");
    });
    return [
      r.engine, r.backend, String(r.threads), fmt(r.loadS, 2),
      ...batches.map((b) => {
        const br = r.batches.find((x) => x.batch === b);
        return br?.skipped ? "skipped" : sig(br?.perImageS);
      }),
      fmt(r.peakRssMB, 0), ...(batch1Rss ? [fmt(rssTo1(r), 0)] : []),
      ...(weightsMiB !== null ? [((x) => (x === undefined ? "–" : `${sig(x / weightsMiB)}×`))(rssTo1(r))] : []),
      fmt(r.rssBeforeLoadMB, 0), ...ratios, fmt(r.loadAvgBefore?.[0], 2),
    ];
  });
  return table(head, rows);
}

/** The within-round ratios (a's seconds over b's) of two configurations' paired rounds, or null without both. */
function withinRounds(a: RoundsResult | undefined, b: RoundsResult | undefined): number[] | null {
  if (!a || !b) return null;
  const r = a.seconds.flatMap((x, i) => (x !== null && b.seconds[i] != null ? [x / b.seconds[i]!] : []));
  return r.length ? r : null;
}

/**
 * Paired rounds: each configuration's seconds per round and their median, and against each peer of the same thread
 * count the median (lowest-highest) over the rounds of the two runs' ratio within a round.
 */
export function roundsTable(rounds: RoundsResult[], peers: string[]): string {
  const head = ["engine", "backend", "threads", "batch 1 s, round by round", "median s", ...peers.map((p) => `time ÷ ${p}`)];
  const rows = rounds.map((r) => {
    const done = r.seconds.filter((x): x is number => x !== null);
    const ratios = peers.map((p) => {
      const peer = rounds.find((x) => x.engine === p && x.threads === r.threads);
      const within = peer === r ? null : withinRounds(r, peer);
      if (within === null) return "–";
      return `${sig(median(within))}× (${sig(Math.min(...within))}-${sig(Math.max(...within))})`;
    });
    return [
      r.engine, r.backend, String(r.threads), r.seconds.map((x) => (x === null ? "failed" : sig(x))).join(", "),
      done.length ? sig(median(done)) : "–", ...ratios,
    ];
  });
  return table(head, rows);
}

/** One line per configuration or batch that was not measured, with the reason. */
export function skippedLines(gemm: GemmResult[], model: ModelResult[], rounds: RoundsResult[] = [], ceiling: CeilingResult[] = []): string[] {
  const lines: string[] = [];
  for (const r of gemm) if (r.skipped) lines.push(`GEMM ${r.engine} ${r.backend} ${r.threads}T: ${r.skipped}`);
  for (const r of model) {
    if (r.skipped) lines.push(`model ${r.engine} ${r.backend} ${r.threads}T: ${r.skipped}`);
    for (const b of r.batches) if (b.skipped) lines.push(`model ${r.engine} ${r.backend} ${r.threads}T batch ${b.batch}: ${b.skipped}`);
  }
  for (const r of rounds) for (const e of r.errors) lines.push(`paired rounds ${r.engine} ${r.backend} ${r.threads}T ${e}`);
  for (const c of ceiling) if (c.skipped) lines.push(`ceiling probes ${c.threads}T: ${c.skipped}`);
  return lines;
}

/**
 * Issue #7's targets, each checked against this run's numbers: one row per target and configuration, with what
 * was measured and whether it holds ("no data" when the run did not measure it, e.g. --only ours). Where the run
 * has paired rounds, a time ratio holds only if it holds both in the per-engine rows and in the rounds' median;
 * batch 4 holds only if it costs no more per image than both the batch-1 row and the mean of the batch-1 runs just
 * before and after it (when recorded).
 */
export function targetsTable(
  gemm: GemmResult[], model: ModelResult[], rounds: RoundsResult[], weightsBytes?: number, ceiling: CeilingResult[] = [],
): string {
  const rows: string[][] = [];
  const verdict = (ok: boolean | null): string => (ok === null ? "no data" : ok ? "yes" : "**no**");
  const add = (target: string, config: string, measured: string, ok: boolean | null) => rows.push([target, config, measured, verdict(ok)]);
  const row = (engine: string, backend: string | null, t: number) =>
    model.find((r) => r.engine === engine && (backend === null || r.backend === backend) && r.threads === t && !r.skipped);
  const roundOf = (engine: string, backend: string | null, t: number) =>
    rounds.find((r) => r.engine === engine && (backend === null || r.backend === backend) && r.threads === t);
  const ours = model.filter((r) => r.engine === "perceiver-ts" && !r.skipped);
  const threadsOf = (backend: string) => [...new Set(ours.filter((r) => r.backend === backend).map((r) => r.threads))].sort((a, b) => a - b);

  // time ratios of the wasm backend against a peer at the same thread count, as `shown` (of the peer's time over ours)
  const ratioTarget = (target: string, peer: string, shown: (factor: number) => number, unit: string, holds: (x: number) => boolean) => {
    if (threadsOf("wasm").length === 0) add(target, "wasm", "–", null);
    for (const t of threadsOf("wasm")) {
      const mine = perImage(row("perceiver-ts", "wasm", t)!, 1);
      const theirs = row(peer, null, t);
      const theirS = theirs ? perImage(theirs, 1) : null;
      const fromRows = mine !== null && theirS !== null ? shown(theirS / mine) : null;
      const within = withinRounds(roundOf(peer, null, t), roundOf("perceiver-ts", "wasm", t))?.map(shown) ?? null;
      const paired = within ? median(within) : null;
      const parts = [
        fromRows !== null ? `rows: ${sig(fromRows)}x ${unit}` : null,
        paired !== null ? `paired rounds: ${sig(paired)}x ${unit} (rounds ${sig(Math.min(...within!))}-${sig(Math.max(...within!))})` : null,
      ].filter((x): x is string => x !== null);
      const ok = fromRows === null && paired === null ? null : [fromRows, paired].every((x) => x === null || holds(x));
      add(target, `wasm, ${threadsLabel(t)}`, parts.join("; ") || "–", ok);
    }
  };
  ratioTarget("accelerated backend at least 2x faster than onnxruntime-web", "onnxruntime-web", (f) => f, "faster", (x) => x >= 2);
  ratioTarget("accelerated backend within 3x of onnxruntime-node", "onnxruntime-node", (f) => 1 / f, "the time", (x) => x <= 3);
  const wasm2 = row("perceiver-ts", "wasm", 2);
  const wasm2S = wasm2 ? perImage(wasm2, 1) : null;
  // the absolute targets, beside what this run's ceiling probes (ceiling.ts) measured the cores could do at most
  const peak = (t: number, probe: string) => ceiling.find((c) => c.threads === t)?.probes.find((p) => p.probe === probe)?.gflops;
  const wasmPeak2 = peak(2, "wasm-fma-kernel-loads"), regPeak2 = peak(2, "wasm-fma-registers");
  const fourS = `needs ${sig(MODEL_GFLOP / 4)} GFLOP/s` + (wasmPeak2 !== undefined && regPeak2 !== undefined
    ? `; this run's 2-thread f32x4 ceiling: ${sig(wasmPeak2)} with the kernel's loads, ${sig(regPeak2)} on registers alone` : "");
  add("accelerated backend about 4 s per image on 2 threads", "wasm, 2 threads",
    wasm2S !== null ? `${sig(wasm2S)} s (${sig(MODEL_GFLOP / wasm2S)} GFLOP/s; ${fourS})` : "–", wasm2S === null ? null : wasm2S <= 4);

  // the pure-TS GEMM
  const big = GEMM_SHAPES[0].label; // 512x1024x1024
  const tsGemm = gemm.filter((r) => r.engine === "perceiver-ts" && r.backend === "ts" && !r.skipped && r.shapes.length > 0);
  for (const r of tsGemm.length ? tsGemm : [null]) {
    const s = r?.shapes.find((x) => x.label === big);
    const perThread = r && s ? s.gflops / r.threads : null;
    const js = r ? peak(r.threads, "js-scalar-registers") : undefined;
    const asm = r ? peak(r.threads, "asm-kernel-block") : undefined;
    const ceilings = [
      asm !== undefined ? `its asm.js kernel on one block in cache ${sig(asm / r!.threads)}` : null,
      js !== undefined ? `scalar JavaScript on registers alone ${sig(js / r!.threads)}` : null,
    ].filter((x) => x !== null);
    add(`pure-TS GEMM at least 8 GFLOP/s per thread on ${big}`, r ? `ts, ${threadsLabel(r.threads)}` : "ts",
      perThread !== null ? `${sig(perThread)} GFLOP/s per thread` + (ceilings.length ? ` (this run's ceilings per thread: ${ceilings.join("; ")})` : "") : "–",
      perThread === null ? null : perThread >= 8);
  }
  // tfjs-backend-cpu runs on one thread: against the ts backend on one thread
  const ts1 = tsGemm.find((r) => r.threads === 1);
  const tfjs = gemm.find((x) => x.engine === "tfjs" && x.backend === "cpu" && x.threads === 1 && !x.skipped && x.shapes.length > 0);
  const both = ts1 && tfjs ? ts1.shapes.filter((s) => tfjs.shapes.some((x) => x.label === s.label)) : [];
  const tfjsFactor = both.length ? geomean(both.map((s) => s.gflops / tfjs!.shapes.find((x) => x.label === s.label)!.gflops)) : null;
  add("pure-TS GEMM at least 10x tfjs-backend-cpu (geo-mean over the shapes both ran)", "ts, 1 thread",
    tfjsFactor !== null ? `${sig(tfjsFactor)}x` : "–", tfjsFactor === null ? null : tfjsFactor >= 10);
  const ts2 = row("perceiver-ts", "ts", 2);
  const ts2S = ts2 ? perImage(ts2, 1) : null;
  add("pure-TS backend about 25 s per image on 2 threads", "ts, 2 threads",
    ts2S !== null ? `${sig(ts2S)} s (${sig(MODEL_GFLOP / ts2S)} GFLOP/s; needs ${sig(MODEL_GFLOP / 25)})` : "–", ts2S === null ? null : ts2S <= 25);

  // loading, memory, batching: every perceiver-ts configuration
  const weightsMiB = weightsBytes !== undefined && weightsBytes > 0 ? weightsBytes / 2 ** 20 : null;
  for (const r of ours) {
    const config = `${r.backend}, ${threadsLabel(r.threads)}`;
    add("loading the checkpoint at most 1 s", config, r.loadS !== undefined ? `${fmt(r.loadS, 2)} s` : "–", r.loadS === undefined ? null : r.loadS <= 1);
  }
  for (const r of ours) {
    const rss = r.batches.find((b) => b.batch === 1)?.maxRssMB;
    const factor = rss !== undefined && weightsMiB !== null ? rss / weightsMiB : null;
    add("batch-1 peak RSS at most 1.5x the weights", `${r.backend}, ${threadsLabel(r.threads)}`,
      // 2 decimals and the limit: 278.41 MiB against 278.38 allowed fails, which "278.4 MiB, 1.500x" hid
      factor !== null ? `${fmt(rss, 2)} MiB (at most ${fmt(1.5 * weightsMiB!, 2)}), ${fmt(factor, 4)}x` : "–", factor === null ? null : factor <= 1.5);
  }
  // batch 4 against the batch-1 row and, when recorded, against the batch-1 runs just before and after it
  for (const r of ours) {
    const b1 = perImage(r, 1), b4 = perImage(r, 4);
    const around = r.batches.find((b) => b.batch === 4)?.batch1AroundS;
    const aroundMean = around ? (around[0] + around[1]) / 2 : null;
    const measured = b1 !== null && b4 !== null
      ? `${sig(b4)} against ${sig(b1)} s/image` +
        (around ? `; against the batch-1 runs just before and after it (${sig(around[0])}, ${sig(around[1])} s): ${sig(b4 / aroundMean!)}x` : "")
      : "–";
    add("batch 4 no more per image than batch 1", `${r.backend}, ${threadsLabel(r.threads)}`, measured,
      b1 === null || b4 === null ? null : b4 <= b1 && (aroundMean === null || b4 <= aroundMean));
  }
  rows.push(["every golden test on every backend and thread count", "–", "not a benchmark: `npm test`", "see the tests"]);
  return table(["target (issue #7)", "configuration", "measured in this run", "holds"], rows);
}

const PROBE_LABELS: Record<string, string> = {
  "wasm-fma-registers": "f32x4 multiply-adds, registers only (12 chains)",
  "wasm-fma-kernel-loads": "f32x4 multiply-adds with the GEMM kernel's loads (4x8 tile: 2 loads, 4 splats per 8, in L1)",
  "js-scalar-registers": "plain JavaScript doubles, registers only (12 mul+add chains)",
  "asm-kernel-block": "the ts backend's asm.js kernel on one 32x256x1024 block, operands in cache (no packing)",
};

/** The ceiling probes' table: one row per probe, one column per thread count (all threads at once). */
export function ceilingTable(ceiling: CeilingResult[]): string {
  const measured = ceiling.filter((c) => !c.skipped && c.probes.length > 0).sort((a, b) => a.threads - b.threads);
  const probes = [...new Set(measured.flatMap((c) => c.probes.map((p) => p.probe)))];
  const head = ["what ran", ...measured.map((c) => `${threadsLabel(c.threads)}, GFLOP/s`)];
  const rows = probes.map((probe) => [
    PROBE_LABELS[probe] ?? probe,
    ...measured.map((c) => {
      const p = c.probes.find((x) => x.probe === probe);
      return p ? `${sig(p.gflops)}${p.perThread.length > 1 ? ` (${p.perThread.map(sig).join(" + ")})` : ""}` : "–";
    }),
  ]);
  return table(head, rows, 1);
}

/** A bench run as bench/run.ts saves it in bench/results/bench-<date>.json (older files lack some fields). */
export interface SavedRun {
  started: string;
  durationS: number;
  machine: { cpu: string; cores: number; totalMemGiB: number; node: string; os: string; loadAvgStart: number[]; loadAvgEnd: number[] };
  versions: Record<string, string>;
  options: { batches: number[]; protocol: BatchProtocol; rounds: number };
  weightsBytes?: number;
  gemmShapes?: GemmShape[];
  gemm: GemmResult[];
  model: ModelResult[];
  rounds?: RoundsResult[];
  /** the machine's ceiling probes (bench/ceiling.ts), per thread count */
  ceiling?: CeilingResult[];
}

/** The whole markdown report of a run (what `npm run bench` prints, and `npm run bench -- --report FILE` again). */
export function renderReport(run: SavedRun, file: string): string {
  const { machine, versions, options: o, weightsBytes, gemm, model } = run;
  const rounds = run.rounds ?? [];
  const ceiling = run.ceiling ?? [];
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(" ");
  const pytorch = model.find((r) => r.engine === "pytorch" && !r.skipped);
  const lines = [
    `# perceiver-ts vs peers (${run.started})`,
    "",
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.totalMemGiB.toFixed(1)} GiB, ${machine.os}, Node ${machine.node}`,
    `load average (1/5/15 min): ${load(machine.loadAvgStart)} at start, ${load(machine.loadAvgEnd)} at end (the machine is shared: compare ratios, not absolute times)`,
    `peers: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(", ")}${pytorch ? `, pytorch ${pytorch.backend}` : ""}`,
    "",
  ];
  if (gemm.length) {
    lines.push(
      "## GEMM GFLOP/s (M x N x K, best of the timed calls after a warm-up; peers: A·B with both operands as inputs, result read back)",
      "", gemmTable(gemm), "",
    );
  }
  if (model.length) {
    const peers = MODEL_PEERS.filter((p) => model.some((r) => r.engine === p && !r.skipped));
    lines.push(
      `## Full model: vision-perceiver-conv, 224x224, ${Math.round(MODEL_GFLOP)} GFLOP/image`,
      "",
      modelTable(model, o.batches, peers, weightsBytes),
      "",
      "load: weights file to ready session/model. batch 1: median of the runs after the first when there was time for " +
        `more (${o.protocol.maxExtra} at most, ${o.protocol.extraBudgetS} s budget), else the first run; larger batches: one run, ` +
        "after batch 1, divided by the batch" +
        (model.some((r) => r.batches.some((b) => b.batch1AroundS)) ? " (then batch 1 runs once more, for the targets' batch-4 check)" : "") +
        ". RSS in MiB (2^20 bytes). peak RSS: the whole child process (load + every batch); peak RSS to batch 1: " +
        "the same, read after the batch-1 runs (load + batch 1 only)" +
        (weightsBytes ? `; ÷ weights: over model.safetensors, ${(weightsBytes / 2 ** 20).toFixed(1)} MiB (${(weightsBytes / 1e6).toFixed(1)} MB)` : "") +
        "; RSS before load: " +
        "the same process with the engine imported, before the weights (the runtime's own share). " +
        "time ÷ X: this row's seconds per image over X's at the same thread count (>1: slower than X).",
      "",
    );
  }
  if (rounds.length) {
    const peers = MODEL_PEERS.filter((p) => rounds.some((r) => r.engine === p));
    lines.push(
      `## Paired rounds: batch 1, every engine of a thread count in turn, ${o.rounds} round(s)`,
      "",
      roundsTable(rounds, peers),
      "",
      "Each round runs one batch-1 forward per engine, one after another (the order rotating from round to round, " +
        `${ROUND_PAUSE_MS / 1000} s apart), each engine in a fresh process of its own that ran batch 1 once before (warm-up). time ÷ X: the median over the rounds of ` +
        "this row's seconds over X's in the same round, with the lowest and highest in brackets. Configurations slower " +
        `than ${ROUND_LIMIT_S} s/image sit out.`,
      "",
    );
  }
  if (ceiling.some((c) => !c.skipped)) {
    const kernel = ceiling.find((c) => c.kernel)?.kernel;
    lines.push(
      "## What the cores did in this run (bench/ceiling.ts)",
      "",
      ceilingTable(ceiling),
      "",
      "Each probe runs on every thread at once (a barrier between probes); a figure is the sum of the threads' medians " +
        `(each thread's in brackets). The f32x4 probes use ${kernel === "fma" ? "f32x4.relaxed_madd" : "f32x4.mul + f32x4.add"}, as the GEMM kernel does here. ` +
        "The probe with the kernel's loads is the wasm GEMM kernel's inner loop with every operand in L1, and the asm.js probe " +
        "the ts backend's kernel without the packing around it: upper bounds for those kernels' products in the same minutes " +
        "(the machine's speed drifts from minute to minute).",
      "",
    );
  }
  if (gemm.length || model.length) {
    lines.push(
      "## Issue #7's targets in this run",
      "",
      targetsTable(gemm, model, rounds, weightsBytes, ceiling),
      "",
      "A time ratio holds only if it holds in the per-engine rows and, when the run has paired rounds, in their median; " +
        "batch 4 only if it holds against the batch-1 row and against the batch-1 runs just before and after it.",
      "",
    );
  }
  const skipped = skippedLines(gemm, model, rounds, ceiling);
  if (skipped.length) lines.push("Not measured:", ...skipped.map((s) => `- ${s}`), "");
  lines.push(`All numbers: ${file} (run took ${(run.durationS / 60).toFixed(1)} min)`);
  return lines.join("\n");
}
