/**
 * The bench's ceiling probes (bench/ceiling.ts): they must do the work they time (each checks the values its chains
 * end with), run on several threads at once, and the report must quote them beside #7's absolute targets.
 */
import { describe, expect, it } from "vitest";
import { CEILING_PROBES, ceilingModule, jsScalar, measureCeiling, probeRunner, timeProbe, type CeilingResult } from "../bench/ceiling.js";
import type { ModelResult } from "../bench/common.js";
import { ceilingTable, renderReport, targetsTable, type SavedRun } from "../bench/report.js";
import { Code, F32, I32, wasmModule } from "../src/tensor/wasm/assembler.js";
import { wasmGemmKernel } from "../src/tensor/wasm/gemm-wasm.js";

const rowsOf = (markdown: string) => markdown.split("\n").slice(2).map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));
const kernel = wasmGemmKernel();

describe.skipIf(kernel === null)("bench ceiling probes", () => {
  it("each probe runs its steps and returns their floating-point operations", () => {
    const runner = probeRunner(new WebAssembly.Module(ceilingModule(kernel === "fma")));
    // odd step counts: the kernel-loads ring wraps mid-way, the checks still see 0.5 per step in every lane
    expect(runner.run("wasm-fma-registers", 1001)).toBe(1001 * 12 * 8);
    expect(runner.run("wasm-fma-kernel-loads", 777)).toBe(777 * 8 * 8);
    expect(runner.run("wasm-fma-kernel-loads", 300)).toBe(300 * 8 * 8); // a run's stores leave the operands alone
    expect(runner.run("js-scalar-registers", 999)).toBe(999 * 12 * 2);
    expect(runner.run("asm-kernel-block", 2)).toBe(2 * 2 * 32 * 256 * 1024);
    expect(runner.run("asm-kernel-block", 1)).toBe(2 * 32 * 256 * 1024); // operands staged once, C zeroed per run
    expect(jsScalar(10, 1, 0.5)).toBe(60);
    expect(() => runner.run("wasm-fma-registers", 0)).toThrow(/steps must be/);
    expect(() => runner.run("wasm-fma-registers", 2 ** 24 + 1)).toThrow(/exact float32 sums/);
    const g = timeProbe(runner, "wasm-fma-kernel-loads", 4096, 3);
    expect(g).toHaveLength(3);
    for (const x of g) expect(x).toBeGreaterThan(0);
  });

  it("a probe whose work was not done fails instead of reporting a speed", () => {
    // the same exports doing nothing: the checks must catch it
    const empty = (params: number[]) => new Code(params as never);
    const hollow = wasmModule({
      memoryMinPages: 1,
      functions: [{ name: "registers", code: empty([I32, F32, F32]) }, { name: "kernelLoads", code: empty([I32]) }],
    });
    const runner = probeRunner(new WebAssembly.Module(hollow));
    expect(() => runner.run("wasm-fma-registers", 100)).toThrow(/the work was not done/);
    expect(() => runner.run("wasm-fma-kernel-loads", 100)).toThrow(/the work was not done/);
  });

  it("runs every probe on 2 threads at once and sums the threads", async () => {
    const steps = { "wasm-fma-registers": 1 << 14, "wasm-fma-kernel-loads": 1 << 14, "js-scalar-registers": 1 << 14, "asm-kernel-block": 1 };
    const r = await measureCeiling(2, { steps, calls: 2 });
    expect(r.skipped).toBeUndefined();
    expect(r.kernel).toBe(kernel);
    expect(r.probes.map((p) => p.probe)).toEqual([...CEILING_PROBES]);
    for (const p of r.probes) {
      expect(p.perThread).toHaveLength(2);
      expect(p.gflops).toBeCloseTo(p.perThread[0] + p.perThread[1], 9);
      expect(p.gflops).toBeGreaterThan(0);
    }
  }, 60_000);
});

describe("bench report: ceilings", () => {
  const ceiling: CeilingResult[] = [
    { threads: 1, kernel: "fma", probes: [
      { probe: "wasm-fma-registers", gflops: 50, perThread: [50] }, { probe: "wasm-fma-kernel-loads", gflops: 40, perThread: [40] },
      { probe: "js-scalar-registers", gflops: 9, perThread: [9] }, { probe: "asm-kernel-block", gflops: 6, perThread: [6] },
    ] },
    { threads: 2, kernel: "fma", probes: [
      { probe: "wasm-fma-registers", gflops: 100, perThread: [50, 50] }, { probe: "wasm-fma-kernel-loads", gflops: 85, perThread: [45, 40] },
      { probe: "js-scalar-registers", gflops: 17, perThread: [8.5, 8.5] }, { probe: "asm-kernel-block", gflops: 11.5, perThread: [6, 5.5] },
    ] },
  ];
  const wasm2: ModelResult = {
    engine: "perceiver-ts", backend: "wasm", threads: 2, notes: [], loadS: 0.3, peakRssMB: 300,
    batches: [{ batch: 1, runsS: [6.5], perImageS: 6.5, maxRssMB: 300 }],
  };

  it("the table has a column per thread count, with each thread's share", () => {
    const rows = rowsOf(ceilingTable(ceiling));
    expect(rows.map((r) => r.slice(1))).toEqual([
      ["50.0", "100 (50.0 + 50.0)"], ["40.0", "85.0 (45.0 + 40.0)"], ["9.00", "17.0 (8.50 + 8.50)"], ["6.00", "11.5 (6.00 + 5.50)"],
    ]);
  });

  it("the absolute targets quote what they need and what the cores did", () => {
    const gemmTs = {
      engine: "perceiver-ts", backend: "ts", threads: 2, notes: [],
      shapes: [{ label: "512x1024x1024", m: 512, n: 1024, k: 1024, gflops: 9, medianGflops: 9, bestMs: 1, calls: 3 }],
    };
    const rows = rowsOf(targetsTable([gemmTs], [wasm2], [], undefined, ceiling));
    const four = rows.find((r) => r[0].includes("about 4 s"))!;
    expect(four[2]).toBe("6.50 s (56.8 GFLOP/s; needs 92.3 GFLOP/s; this run's 2-thread f32x4 ceiling: 85.0 with the kernel's loads, 100 on registers alone)");
    expect(four[3]).toBe("**no**");
    const ts = rows.find((r) => r[0].startsWith("pure-TS GEMM at least 8"))!;
    expect(ts[2]).toBe("4.50 GFLOP/s per thread (this run's ceilings per thread: its asm.js kernel on one block in cache 5.75; scalar JavaScript on registers alone 8.50)");
    // without probes the rows say only what was measured
    expect(rowsOf(targetsTable([], [wasm2], [])).find((r) => r[0].includes("about 4 s"))![2]).toBe("6.50 s (56.8 GFLOP/s; needs 92.3 GFLOP/s)");
  });

  it("renderReport prints the section only for runs that probed, and lists a failed probe", () => {
    const run: SavedRun = {
      started: "2026-11-27T00:00:00.000Z", durationS: 60,
      machine: { cpu: "Test CPU", cores: 2, totalMemGiB: 24, node: "v20", os: "linux", loadAvgStart: [1, 1, 1], loadAvgEnd: [1, 1, 1] },
      versions: {}, options: { batches: [1], protocol: { extraBudgetS: 45, maxExtra: 3, batchBudgetS: 240 }, rounds: 0 },
      gemm: [], model: [wasm2], ceiling,
    };
    expect(renderReport(run, "x")).toContain("## What the cores did in this run");
    expect(renderReport(run, "x")).toContain("f32x4.relaxed_madd");
    expect(renderReport({ ...run, ceiling: undefined }, "x")).not.toContain("## What the cores did");
    const failed = renderReport({ ...run, ceiling: [{ threads: 2, skipped: "error: boom", probes: [] }] }, "x");
    expect(failed).not.toContain("## What the cores did");
    expect(failed).toContain("- ceiling probes 2T: error: boom");
  });
});
