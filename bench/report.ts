/**
 * Markdown tables of one bench run: GEMM GFLOP/s per engine configuration, and the full model (load, seconds per
 * image at each batch, peak RSS, time ratios against each peer at the same thread count).
 * RSS is in MiB (2^20 bytes; see common.ts maxRssMB), the JSON's `…MB` fields included.
 * Rows are keyed by engine, backend and threads, so a new backend or thread count is just another row.
 * "load avg" is the 1-minute load average when the row's process started (the machine is shared).
 */
import { GEMM_SHAPES, median, type GemmResult, type ModelResult, type RoundsResult } from "./common.js";

const fmt = (x: number | null | undefined, digits: number): string =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);

/** 3 significant digits, at most 2 decimals. */
const sig = (x: number | null | undefined): string => {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return x.toFixed(Math.max(0, Math.min(2, 2 - Math.floor(Math.log10(Math.abs(x)) + 1e-9))));
};

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < 3 ? "---" : "--:")).join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

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
      if (!peer || peer === r) return "–";
      const within = r.seconds.flatMap((x, i) => (x !== null && peer.seconds[i] != null ? [x / peer.seconds[i]!] : []));
      if (within.length === 0) return "–";
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
export function skippedLines(gemm: GemmResult[], model: ModelResult[], rounds: RoundsResult[] = []): string[] {
  const lines: string[] = [];
  for (const r of gemm) if (r.skipped) lines.push(`GEMM ${r.engine} ${r.backend} ${r.threads}T: ${r.skipped}`);
  for (const r of model) {
    if (r.skipped) lines.push(`model ${r.engine} ${r.backend} ${r.threads}T: ${r.skipped}`);
    for (const b of r.batches) if (b.skipped) lines.push(`model ${r.engine} ${r.backend} ${r.threads}T batch ${b.batch}: ${b.skipped}`);
  }
  for (const r of rounds) for (const e of r.errors) lines.push(`paired rounds ${r.engine} ${r.backend} ${r.threads}T ${e}`);
  return lines;
}
