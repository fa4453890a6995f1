/**
 * What this machine's cores can do in this run, measured beside the engines (issue #7 sets absolute targets:
 * "about 4 s per image on 2 threads" is 92 GFLOP/s sustained; "8 GFLOP/s per thread" for plain JavaScript):
 *  - wasm-fma-registers: 12 independent f32x4 multiply-add chains on registers only (f32x4.relaxed_madd where the
 *    kernel uses it, else f32x4.mul + f32x4.add): the SIMD arithmetic peak, no memory traffic;
 *  - wasm-fma-kernel-loads: the GEMM kernel's inner loop shape (gemm-kernel.ts, a 4x8 tile: 8 chains, 2 v128
 *    loads and 4 load32_splat per step) on operands cycling through 4 KiB of L1: the kernel's own ceiling;
 *  - js-scalar-registers: plain JavaScript doubles, 12 independent c = c·x + y chains: the scalar peak the pure-TS
 *    backend's asm.js kernel works under (before any typed-array load);
 *  - asm-kernel-block: the pure-TS backend's own asm.js micro-kernel (gemm-asm.ts's block, 4x4 tiles) on one block
 *    as gemm.ts cuts 512x1024x1024 (32 rows x 256 columns x K 1024), the same operands again and again (no packing,
 *    in cache): the most the ts backend's product of that shape can reach.
 * `threads` workers run each probe at the same time (a barrier between probes); a probe's figure is the sum over
 * threads of each thread's median GFLOP/s. Every probe checks the values its chains end with (exact: they add 0.5
 * per step), so a probe whose work the compiler dropped fails instead of reporting a fantasy.
 */
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { Code, F32, I32, V128, wasmModule } from "../src/tensor/wasm/assembler.js";
import { wasmGemmKernel } from "../src/tensor/wasm/gemm-wasm.js";
import { asmHeap } from "../src/tensor/gemm-asm.js";
import { median } from "./common.js";

export const CEILING_PROBES = ["wasm-fma-registers", "wasm-fma-kernel-loads", "js-scalar-registers", "asm-kernel-block"] as const;
export type CeilingProbe = (typeof CEILING_PROBES)[number];

/** One thread count: each probe's GFLOP/s (sum over the threads of each one's median), or why it did not run. */
export interface CeilingResult {
  threads: number;
  /** the multiply-add the wasm probes used: "fma" (relaxed_madd) or "mul-add" */
  kernel?: string;
  skipped?: string;
  probes: { probe: CeilingProbe; gflops: number; perThread: number[] }[];
}

/** Bytes at 0 where the probes store their chains' final values (12 f32x4 at most). */
const RESULT_BYTES = 256;
/** Bytes the kernel-loads probe's vector loads cycle through (after the results). */
const RING_BYTES = 4096;
/** Row stride of the splat operands, in bytes: the kernel's A_STRIDE (gemm-kernel.ts). */
const SPLAT_ROW = 1040;
/** Where the splat operands start: after the ring and the 16 bytes its last second load reads past it. */
const SPLAT_BASE = RESULT_BYTES + RING_BYTES + 64;

/**
 * The probes' module: registers(n, x, y) and kernelLoads(n) each run n steps and store their chains' final values
 * at byte 0 (12 and 8 f32x4). Memory: the results, then the kernel-loads operands up to
 * SPLAT_BASE + 3·SPLAT_ROW + RING_BYTES (written once by probeRunner; no probe stores there).
 */
export function ceilingModule(fma: boolean): Uint8Array<ArrayBuffer> {
  const madd = (f: Code, a: number, b: number, acc: number) => {
    if (fma) f.get(a).get(b).get(acc).f32x4RelaxedMadd().set(acc);
    else f.get(acc).get(a).get(b).f32x4Mul().f32x4Add().set(acc);
  };
  // registers(n, x, y): acc_j += splat(x)·splat(y), 12 chains
  const reg = new Code([I32, F32, F32]);
  {
    const i = reg.local(I32), x = reg.local(V128), y = reg.local(V128);
    const acc = Array.from({ length: 12 }, () => reg.local(V128));
    reg.get(1).f32x4Splat().set(x).get(2).f32x4Splat().set(y);
    for (const a of acc) reg.f32Const(0).f32x4Splat().set(a);
    reg.i32Const(0).set(i);
    reg.block().get(0).i32Eqz().brIf(0).loop();
    for (const a of acc) madd(reg, x, y, a);
    reg.get(i).i32Const(1).i32Add().tee(i).get(0).i32LtU().brIf(0);
    reg.end().end();
    acc.forEach((a, j) => reg.i32Const(16 * j).get(a).v128Store());
  }
  // kernelLoads(n): per step 2 v128 loads (b) and 4 splats (a, SPLAT_ROW apart), acc[r][h] += a_r·b_h
  const ld = new Code([I32]);
  {
    const i = ld.local(I32), p = ld.local(I32);
    const acc = Array.from({ length: 8 }, () => ld.local(V128));
    const b = [ld.local(V128), ld.local(V128)], a = Array.from({ length: 4 }, () => ld.local(V128));
    for (const x of acc) ld.f32Const(0).f32x4Splat().set(x);
    ld.i32Const(0).set(i).i32Const(0).set(p);
    ld.block().get(0).i32Eqz().brIf(0).loop();
    ld.get(p).v128Load(RESULT_BYTES).set(b[0]).get(p).v128Load(RESULT_BYTES + 16).set(b[1]);
    for (let r = 0; r < 4; r++) ld.get(p).v128Load32Splat(SPLAT_BASE + SPLAT_ROW * r).set(a[r]);
    for (let r = 0; r < 4; r++) for (let h = 0; h < 2; h++) madd(ld, a[r], b[h], acc[2 * r + h]);
    ld.get(p).i32Const(16).i32Add().i32Const(RING_BYTES - 1).i32And().set(p);
    ld.get(i).i32Const(1).i32Add().tee(i).get(0).i32LtU().brIf(0);
    ld.end().end();
    acc.forEach((x, j) => ld.i32Const(16 * j).get(x).v128Store());
  }
  return wasmModule({ memoryMinPages: 1, functions: [{ name: "registers", code: reg }, { name: "kernelLoads", code: ld }] });
}

/** Plain JavaScript: 12 chains c = c·x + y over n steps; returns their sum (x = 1, y = 0.5: exactly 6·n). */
export function jsScalar(n: number, x: number, y: number): number {
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, c6 = 0, c7 = 0, c8 = 0, c9 = 0, c10 = 0, c11 = 0;
  // (i + 1) | 0: no overflow check, whose deoptimization point would keep every chain's previous value on the stack
  for (let i = 0; i < n; i = (i + 1) | 0) {
    c0 = c0 * x + y; c1 = c1 * x + y; c2 = c2 * x + y; c3 = c3 * x + y; c4 = c4 * x + y; c5 = c5 * x + y;
    c6 = c6 * x + y; c7 = c7 * x + y; c8 = c8 * x + y; c9 = c9 * x + y; c10 = c10 * x + y; c11 = c11 * x + y;
  }
  return c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
}

/** One thread's probes: steps per timed call of each probe, and how they run. */
export interface ProbeRunner {
  /** runs `probe` for n steps, checks the result, returns its floating-point operations */
  run(probe: CeilingProbe, n: number): number;
}

/** Instantiates the probe module (compiled by the caller) and checks every run's final values. */
export function probeRunner(module: WebAssembly.Module): ProbeRunner {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const ex = new WebAssembly.Instance(module, { env: { memory } }).exports as {
    registers: (n: number, x: number, y: number) => void;
    kernelLoads: (n: number) => void;
  };
  const f32 = new Float32Array(memory.buffer);
  // b vectors 0.5 (the ring), splat operands 1.0 (row r's step p at SPLAT_BASE + r·SPLAT_ROW + p): every step adds
  // 0.5 to every lane
  f32.fill(0.5, RESULT_BYTES / 4, SPLAT_BASE / 4);
  f32.fill(1, SPLAT_BASE / 4, (SPLAT_BASE + 3 * SPLAT_ROW + RING_BYTES) / 4);
  let asm: AsmBlock | null = null;
  const check = (what: string, lanes: number, n: number) => {
    const want = Math.fround(0.5 * n);
    for (let j = 0; j < lanes; j++) {
      if (f32[j] !== want) throw new Error(`ceiling probe ${what}: lane ${j} ended at ${f32[j]}, expected ${want} (the work was not done)`);
    }
  };
  return {
    run(probe, n) {
      if (!(Number.isInteger(n) && n >= 1 && n <= 1 << 24)) throw new Error(`ceiling probe: steps must be 1..2^24 (exact float32 sums), got ${n}`);
      if (probe === "wasm-fma-registers") {
        ex.registers(n, 1, 0.5);
        check(probe, 48, n);
        return n * 12 * 8;
      }
      if (probe === "wasm-fma-kernel-loads") {
        ex.kernelLoads(n);
        check(probe, 32, n);
        return n * 8 * 8;
      }
      if (probe === "asm-kernel-block") return (asm ??= asmBlock()).run(n);
      const sum = jsScalar(n, 1, 0.5);
      if (sum !== 6 * n) throw new Error(`ceiling probe ${probe}: ended at ${sum}, expected ${6 * n} (the work was not done)`);
      return n * 12 * 2;
    },
  };
}

/** The asm-kernel-block product: rows (8 tiles), columns (64 panels), K, as gemm.ts's blockSizes cut K = 1024. */
const ASM_M = 32, ASM_N = 256, ASM_K = 1024;

interface AsmBlock {
  /** n calls of block, C checked after the last; returns the floating-point operations */
  run(n: number): number;
}

/**
 * The asm.js kernel's block on C [32,256] = A [32,1024]·B [1024,256] (A ones, B halves, zero bias: every C element
 * 512), its operands staged once (block only writes C, which each call overwrites; C is zeroed before each run).
 */
function asmBlock(): AsmBlock {
  const h = asmHeap(4 * (4 + ASM_N + ASM_N * ASM_K + ASM_M * ASM_K + ASM_M * ASM_N));
  const zF = 4, bF = zF + ASM_N, aF = bF + ASM_N * ASM_K, cF = aF + ASM_M * ASM_K; // float offsets, as gemm.ts lays them
  h.f64[0] = 1; // alpha
  h.f32.fill(0, zF, bF);
  h.f32.fill(0.5, bF, aF);
  h.f32.fill(1, aF, cF);
  return {
    run(n) {
      h.f32.fill(0, cF, cF + ASM_M * ASM_N);
      for (let i = 0; i < n; i++) h.block(aF * 4, bF * 4, zF * 4, ASM_K, ASM_M / 4, ASM_N / 4, cF * 4, ASM_N * 4);
      for (let j = 0; j < ASM_M * ASM_N; j++) {
        if (h.f32[cF + j] !== 0.5 * ASM_K) throw new Error(`ceiling probe asm-kernel-block: C[${j}] = ${h.f32[cF + j]}, expected ${0.5 * ASM_K} (the work was not done)`);
      }
      return n * 2 * ASM_M * ASM_N * ASM_K;
    },
  };
}

/** Steps per timed call (about 20-60 ms each here) and timed calls per probe. */
const STEPS: Record<CeilingProbe, number> = {
  "wasm-fma-registers": 1 << 23, "wasm-fma-kernel-loads": 1 << 23, "js-scalar-registers": 1 << 24, "asm-kernel-block": 16,
};
const CALLS = 25;

/** Times one probe on this thread: GFLOP/s of each of `calls` calls, after warm-up calls (see below). */
export function timeProbe(runner: ProbeRunner, probe: CeilingProbe, steps: number, calls: number): number[] {
  // warm-up: short calls first, so that the optimizing compiler sees whole calls (not only an on-stack replacement)
  const short = Math.max(1, Math.min(4096, steps >> 4));
  for (let w = 0; w < 30; w++) runner.run(probe, short);
  runner.run(probe, Math.max(1, steps >> 4));
  const out: number[] = [];
  for (let c = 0; c < calls; c++) {
    const t0 = performance.now();
    const flop = runner.run(probe, steps);
    out.push(flop / ((performance.now() - t0) * 1e6));
  }
  return out;
}

interface WorkerInput {
  module: WebAssembly.Module;
  barrier: SharedArrayBuffer;
  threads: number;
  steps: Record<CeilingProbe, number>;
  calls: number;
}

/** Waits until all `threads` parties arrived (a generation counter in shared[1], arrivals in shared[0]). */
function barrierWait(shared: Int32Array, threads: number): void {
  const gen = Atomics.load(shared, 1);
  if (Atomics.add(shared, 0, 1) === threads - 1) {
    Atomics.store(shared, 0, 0);
    Atomics.add(shared, 1, 1);
    Atomics.notify(shared, 1);
  } else {
    while (Atomics.load(shared, 1) === gen) Atomics.wait(shared, 1, gen, 60_000);
  }
}

function workerMain(input: WorkerInput): void {
  const shared = new Int32Array(input.barrier);
  const runner = probeRunner(input.module);
  const medians: number[] = [];
  for (const probe of CEILING_PROBES) {
    barrierWait(shared, input.threads);
    medians.push(median(timeProbe(runner, probe, input.steps[probe], input.calls)));
  }
  parentPort!.postMessage(medians);
}

if (!isMainThread && (workerData as { ceiling?: WorkerInput } | null)?.ceiling) {
  workerMain((workerData as { ceiling: WorkerInput }).ceiling);
}

/**
 * Runs every probe on `threads` worker threads at once. `steps`/`calls` default to the bench's (about 1 s per
 * probe); tests pass fewer.
 */
export async function measureCeiling(
  threads: number, opts: { steps?: Partial<Record<CeilingProbe, number>>; calls?: number } = {},
): Promise<CeilingResult> {
  const kernel = wasmGemmKernel(); // on Node 20 this turns on Relaxed SIMD, as the GEMM kernel does
  if (kernel === null) return { threads, skipped: "WebAssembly SIMD is not available", probes: [] };
  const module = new WebAssembly.Module(ceilingModule(kernel === "fma"));
  const input: WorkerInput = {
    module, barrier: new SharedArrayBuffer(8), threads, steps: { ...STEPS, ...opts.steps }, calls: opts.calls ?? CALLS,
  };
  // under tsx (the tests) a worker first registers tsx's loader, then imports this .ts file
  const viaTsx = import.meta.url.endsWith(".ts")
    ? `import("tsx/esm/api").then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`
    : null;
  const perThread = await Promise.all(
    Array.from({ length: threads }, () => new Promise<number[]>((done, fail) => {
      const w = new Worker(viaTsx ?? new URL(import.meta.url), { eval: viaTsx !== null, workerData: { ceiling: input } });
      w.once("message", (m: number[]) => done(m));
      w.once("error", fail);
      w.once("exit", (code) => fail(new Error(`ceiling worker exited with code ${code} before answering`)));
    })),
  );
  return {
    threads, kernel,
    probes: CEILING_PROBES.map((probe, i) => {
      const each = perThread.map((m) => m[i]);
      return { probe, gflops: each.reduce((s, x) => s + x, 0), perThread: each };
    }),
  };
}
