/**
 * The bench's tables (bench/report.ts) on made-up results: the ratios the README quotes come from this arithmetic.
 */
import { describe, expect, it } from "vitest";
import type { GemmResult, ModelResult, RoundsResult } from "../bench/common.js";
import { timeBatches } from "../bench/common.js";
import { modelTable, renderReport, roundsTable, targetsTable, type SavedRun } from "../bench/report.js";

const rowsOf = (markdown: string) => markdown.split("\n").slice(2).map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));

const round = (engine: string, threads: number, seconds: (number | null)[]): RoundsResult =>
  ({ engine, backend: engine === "perceiver-ts" ? "wasm" : "", threads, seconds, errors: [], loadAvgBefore: [] });

describe("bench report", () => {
  it("paired rounds: ratios are taken within a round, then the median (lowest-highest) over the rounds", () => {
    const rounds = [
      round("perceiver-ts", 1, [10, 12, 30]),
      round("onnxruntime-web", 1, [20, 20, 20]),
      round("perceiver-ts", 2, [5, null, 6]), // a failed run drops that round from its ratios
      round("onnxruntime-web", 2, [10, 10, 8]),
    ];
    const rows = rowsOf(roundsTable(rounds, ["onnxruntime-web"]));
    // engine, backend, threads, seconds per round, median, time ÷ onnxruntime-web
    expect(rows[0]).toEqual(["perceiver-ts", "wasm", "1", "10.0, 12.0, 30.0", "12.0", "0.60× (0.50-1.50)"]);
    expect(rows[1][5]).toBe("–"); // not against itself
    expect(rows[2]).toEqual(["perceiver-ts", "wasm", "2", "5.00, failed, 6.00", "5.50", "0.63× (0.50-0.75)"]);
  });

  it("model table: the batch-1 peak RSS column reads the RSS recorded after batch 1", () => {
    const r: ModelResult = {
      engine: "perceiver-ts", backend: "wasm", threads: 1, notes: [], loadS: 0.3, peakRssMB: 370, rssBeforeLoadMB: 56,
      batches: [{ batch: 1, runsS: [13, 12], perImageS: 12, maxRssMB: 310 }, { batch: 4, runsS: [50], perImageS: 12.5, maxRssMB: 370 }],
    };
    const md = modelTable([r], [1, 4], [], 200 * 2 ** 20); // weights of 200 MiB
    const [head] = md.split("\n");
    const row = rowsOf(md)[0];
    const col = (name: string) => row[head.split("|").slice(1, -1).map((c) => c.trim()).indexOf(name)];
    expect(col("peak RSS MiB")).toBe("370");
    expect(col("peak RSS to batch 1 MiB")).toBe("310");
    expect(col("batch-1 peak RSS ÷ weights")).toBe("1.55×"); // 310 / 200
    expect(col("batch 4 s/image")).toBe("12.5");
    // batch 1 only: the peak RSS is the batch-1 figure; without the weights' size, no ratio column
    const only1 = modelTable([{ ...r, batches: [r.batches[0]] }], [1], [], 200 * 2 ** 20);
    const head1 = only1.split("\n")[0].split("|").slice(1, -1).map((c) => c.trim());
    expect(rowsOf(only1)[0][head1.indexOf("batch-1 peak RSS ÷ weights")]).toBe("1.85×"); // 370 / 200
    expect(head1).not.toContain("peak RSS to batch 1 MiB");
    expect(modelTable([r], [1, 4], [])).not.toContain("÷ weights");
  });

  describe("issue #7's targets", () => {
    const model = (engine: string, backend: string, threads: number, b1: number, b4: number | null, rss1: number, loadS = 0.3): ModelResult => ({
      engine, backend, threads, notes: [], loadS, peakRssMB: rss1,
      batches: [{ batch: 1, runsS: [b1], perImageS: b1, maxRssMB: rss1 }, ...(b4 === null ? [] : [{ batch: 4, runsS: [4 * b4], perImageS: b4, maxRssMB: rss1 + 50 }])],
    });
    const gemm = (engine: string, backend: string, threads: number, gflops: number[]): GemmResult => ({
      engine, backend, threads, notes: [],
      shapes: gflops.map((g, i) => ({ label: ["512x1024x1024", "512x512x128"][i], m: 1, n: 1, k: 1, gflops: g, medianGflops: g, bestMs: 1, calls: 3 })),
    });
    const verdicts = (md: string) => rowsOf(md).map((r) => `${r[0]} | ${r[1]} | ${r[3]}`);

    it("a time ratio holds only when the per-engine rows and the paired rounds' median both hold", () => {
      const models = [
        model("perceiver-ts", "wasm", 1, 10, 9, 270), model("onnxruntime-web", "", 1, 21, 21, 800), model("onnxruntime-node", "", 1, 4, 4, 400),
        model("perceiver-ts", "wasm", 2, 6, 6.5, 310), model("onnxruntime-web", "", 2, 13, 13, 800), model("onnxruntime-node", "", 2, 1.9, 2, 400),
      ];
      const rounds = [
        round("perceiver-ts", 1, [10, 10, 10]), round("onnxruntime-web", 1, [19, 22, 19]), // rows 2.1x, paired median 1.9x
        round("onnxruntime-node", 1, [4, 4, 4]),
      ];
      const v = verdicts(targetsTable([], models, rounds, 200 * 2 ** 20));
      expect(v).toContain("accelerated backend at least 2x faster than onnxruntime-web | wasm, 1 thread | **no**");
      expect(v).toContain("accelerated backend at least 2x faster than onnxruntime-web | wasm, 2 threads | yes"); // 13 / 6, no rounds
      expect(v).toContain("accelerated backend within 3x of onnxruntime-node | wasm, 1 thread | yes"); // 2.5x
      expect(v).toContain("accelerated backend within 3x of onnxruntime-node | wasm, 2 threads | **no**"); // 3.16x
      expect(v).toContain("accelerated backend about 4 s per image on 2 threads | wasm, 2 threads | **no**");
      expect(v).toContain("batch-1 peak RSS at most 1.5x the weights | wasm, 1 thread | yes"); // 270 / 200
      expect(v).toContain("batch-1 peak RSS at most 1.5x the weights | wasm, 2 threads | **no**"); // 310 / 200 (1.5x itself would hold)
      expect(rowsOf(targetsTable([], [model("perceiver-ts", "ts", 1, 90, null, 300.6)], [], 200 * 2 ** 20))
        .find((r) => r[0].startsWith("batch-1 peak RSS"))!.slice(2)).toEqual(["300.60 MiB (at most 300.00), 1.5030x", "**no**"]); // not "1.50x, no"
      // 0.03 MiB over the line (bench-2026-11-27T16-14-23): the text must show it
      expect(rowsOf(targetsTable([], [model("perceiver-ts", "ts", 1, 90, null, 278.4140625)], [], 194605104))
        .find((r) => r[0].startsWith("batch-1 peak RSS"))!.slice(2)).toEqual(["278.41 MiB (at most 278.38), 1.5002x", "**no**"]);
      expect(v).toContain("batch 4 no more per image than batch 1 | wasm, 1 thread | yes");
      expect(v).toContain("batch 4 no more per image than batch 1 | wasm, 2 threads | **no**");
      expect(v).toContain("loading the checkpoint at most 1 s | wasm, 2 threads | yes");
      const measured = rowsOf(targetsTable([], models, rounds, 200 * 2 ** 20))[0][2];
      expect(measured).toBe("rows: 2.10x faster; paired rounds: 1.90x faster (rounds 1.90-2.20)");
      // without the pure-TS rows, its targets say so instead of passing or failing
      expect(v).toContain("pure-TS backend about 25 s per image on 2 threads | ts, 2 threads | no data");
      expect(v).toContain("pure-TS GEMM at least 8 GFLOP/s per thread on 512x1024x1024 | ts | no data");
      expect(v).toContain("pure-TS GEMM at least 10x tfjs-backend-cpu (geo-mean over the shapes both ran) | ts, 1 thread | no data");
    });

    it("the pure-TS GEMM: GFLOP/s per thread on 512x1024x1024, and the geo-mean factor over tfjs-backend-cpu", () => {
      const g = [
        gemm("perceiver-ts", "ts", 1, [8.5, 2]), gemm("perceiver-ts", "ts", 2, [15, 4]),
        gemm("tfjs", "cpu", 1, [0.5, 0.5]), // factors 17 and 4: geo-mean 8.25
      ];
      const md = targetsTable(g, [model("perceiver-ts", "ts", 2, 24, null, 250, 1.2)], [], 200 * 2 ** 20);
      const v = verdicts(md);
      expect(v).toContain("pure-TS GEMM at least 8 GFLOP/s per thread on 512x1024x1024 | ts, 1 thread | yes");
      expect(v).toContain("pure-TS GEMM at least 8 GFLOP/s per thread on 512x1024x1024 | ts, 2 threads | **no**"); // 7.5 per thread
      expect(v).toContain("pure-TS GEMM at least 10x tfjs-backend-cpu (geo-mean over the shapes both ran) | ts, 1 thread | **no**");
      expect(rowsOf(md).find((r) => r[0].includes("tfjs"))![2]).toBe("8.25x");
      expect(v).toContain("pure-TS backend about 25 s per image on 2 threads | ts, 2 threads | yes");
      expect(v).toContain("loading the checkpoint at most 1 s | ts, 2 threads | **no**");
      expect(v).toContain("batch 4 no more per image than batch 1 | ts, 2 threads | no data");
      // without wasm rows, its ratio targets say so
      expect(v).toContain("accelerated backend at least 2x faster than onnxruntime-web | wasm | no data");
      expect(v).toContain("accelerated backend within 3x of onnxruntime-node | wasm | no data");
    });

    it("batch 4 holds only against both the batch-1 row and the batch-1 runs just before and after it", () => {
      const withAround = (r: ModelResult, around: [number, number]): ModelResult =>
        ({ ...r, batches: r.batches.map((b) => (b.batch === 4 ? { ...b, batch1AroundS: around } : b)) });
      const base = model("perceiver-ts", "wasm", 1, 10, 9.5, 270); // batch 4 under the batch-1 row
      const row = (r: ModelResult) => rowsOf(targetsTable([], [r], [], 200 * 2 ** 20)).find((x) => x[0].startsWith("batch 4"))!;
      expect(row(base)[3]).toBe("yes");
      // the batch-1 runs around it were faster (the machine sped up): 9.5 against their mean 9.0 does not hold
      const slower = row(withAround(base, [8.8, 9.2]));
      expect(slower[2]).toBe("9.50 against 10.0 s/image; against the batch-1 runs just before and after it (8.80, 9.20 s): 1.06x");
      expect(slower[3]).toBe("**no**");
      expect(row(withAround(base, [9.8, 10.2]))[3]).toBe("yes");
      // and the row still decides when the runs around it are slower
      expect(row(withAround(model("perceiver-ts", "wasm", 1, 10, 10.5, 270), [11, 11]))[3]).toBe("**no**");
    });

    it("timeBatches: each larger batch after batch 1 is followed by one more batch-1 run", async () => {
      const calls: number[] = [];
      const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
      const run = async (b: number) => {
        calls.push(b);
        await sleep(b === 1 ? 5 : 15);
      };
      const out = await timeBatches([4, 1], run, { extraBudgetS: 1, maxExtra: 2, batchBudgetS: null });
      expect(calls).toEqual([1, 1, 1, 4, 1]);
      const b4 = out.find((b) => b.batch === 4)!;
      expect(b4.batch1AroundS).toHaveLength(2);
      expect(b4.batch1AroundS![0]).toBe(out[0].runsS[2]); // the batch-1 run just before it
      expect(b4.batch1AroundS![1]).toBeGreaterThanOrEqual(0.004);
      expect(out[0].batch1AroundS).toBeUndefined();
      // without batch 1 there is nothing to hold it against: no extra run
      calls.length = 0;
      const alone = await timeBatches([4], run, { extraBudgetS: 1, maxExtra: 2, batchBudgetS: null });
      expect(calls).toEqual([4]);
      expect(alone[0].batch1AroundS).toBeUndefined();
    });

    it("renderReport prints every table of a saved run, the targets included", () => {
      const run: SavedRun = {
        started: "2026-11-27T00:00:00.000Z", durationS: 600,
        machine: { cpu: "Test CPU", cores: 2, totalMemGiB: 24, node: "v20", os: "linux", loadAvgStart: [1, 1, 1], loadAvgEnd: [1, 1, 1] },
        versions: { "onnxruntime-web": "1.30.0" },
        options: { batches: [1, 4], protocol: { extraBudgetS: 45, maxExtra: 3, batchBudgetS: 240 }, rounds: 1 },
        weightsBytes: 200 * 2 ** 20,
        gemm: [gemm("perceiver-ts", "wasm", 1, [30, 20])],
        model: [model("perceiver-ts", "wasm", 1, 10, 9, 270), model("onnxruntime-web", "", 1, 21, 21, 800)],
        rounds: [round("perceiver-ts", 1, [10]), round("onnxruntime-web", 1, [19])],
      };
      const md = renderReport(run, "results/x.json");
      for (const heading of ["## GEMM GFLOP/s", "## Full model", "## Paired rounds", "## Issue #7's targets in this run"]) expect(md).toContain(heading);
      expect(md).toContain("machine: Test CPU, 2 cores");
      expect(md).toContain("All numbers: results/x.json (run took 10.0 min)");
      // an older file without paired rounds
      expect(renderReport({ ...run, rounds: undefined }, "x")).not.toContain("## Paired rounds");
      // the extra batch-1 run is described only for runs that made it (older files have no batch1AroundS)
      expect(md).not.toContain("batch 1 runs once more");
      const bracketed = run.model.map((r) => ({ ...r, batches: r.batches.map((b) => (b.batch === 4 ? { ...b, batch1AroundS: [10, 10] as [number, number] } : b)) }));
      expect(renderReport({ ...run, model: bracketed }, "x")).toContain("batch 1 runs once more");
    });
  });
});
