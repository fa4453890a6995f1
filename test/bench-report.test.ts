/**
 * The bench's tables (bench/report.ts) on made-up results: the ratios the README quotes come from this arithmetic.
 */
import { describe, expect, it } from "vitest";
import type { ModelResult, RoundsResult } from "../bench/common.js";
import { modelTable, roundsTable } from "../bench/report.js";

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
});
