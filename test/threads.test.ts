/**
 * Worker threads of both backends (src/tensor/wasm/threads.ts; the wasm backend's jobs in gemm-wasm.ts, the ts
 * backend's in gemm-asm.ts and gemm.ts): products on 2 and 3 threads are bit-identical to 1 thread on odd shapes,
 * write only their output region, really run on the workers, and failures (a trapping job, a closed pool, bad
 * settings) give PerceiverErrors, not hangs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { PerceiverError } from "../src/errors.js";
import {
  attentionHeads, ensureThreads, getThreads, linear, linearResidual, linearGelu, matmul, matmulTransB, matmulTransBSoftmax, packWeight, setBackend, setThreads,
} from "../src/tensor/gemm.js";
import { setTsSplitThreshold, tsSplitProducts } from "../src/tensor/gemm-ts.js";
import { layerNormRows } from "../src/tensor/layernorm.js";
import { Code, F32, I32, wasmModule } from "../src/tensor/wasm/assembler.js";
import { setWasmSplitThreshold, wasmSplitBlocks, wasmThreads } from "../src/tensor/wasm/runtime.js";
import { MAX_JOBS, ThreadPool, availableCores, threadsUnavailableReason } from "../src/tensor/threads.js";
import { SENTINEL, attentionPerHead, countBitDiffs as bitDiffs, rand } from "./helpers/gemm.js";



/** Runs the three products on one problem; returns their outputs (sentinel-filled, larger than the region). */
function products(m: number, n: number, k: number, seed: number): Float32Array[] {
  const a = rand(3 + m * (k + 2), seed), w = rand(n * k, seed + 1), bias = rand(n, seed + 2);
  const bT = rand(1 + n * (k + 1), seed + 3), b = rand(2 + k * (n + 3), seed + 4);
  const o1 = new Float32Array(m * n + 3).fill(SENTINEL);
  const o2 = new Float32Array(5 + m * (n + 1)).fill(SENTINEL);
  const o3 = new Float32Array(m * (n + 2) + 1).fill(SENTINEL);
  const aDense = a.subarray(3, 3 + m * k);
  linear(aDense, packWeight(w, n, k), bias, o1, m);
  matmulTransB(m, n, k, a, 3, k + 2, bT, 1, k + 1, o2, 5, n + 1, 0.37);
  matmul(m, n, k, a, 3, k + 2, b, 2, n + 3, o3, 0, n + 2);
  const o4 = new Float32Array(2 + m * (n + 1)).fill(SENTINEL);
  matmulTransBSoftmax(m, n, k, a, 3, k + 2, bT, 1, k + 1, o4, 2, n + 1, 0.37);
  const o5 = new Float32Array(m * n + 2).fill(SENTINEL);
  linearGelu(aDense, packWeight(w, n, k), bias, o5, m);
  const o6 = new Float32Array(m * k + 1).fill(SENTINEL);
  layerNormRows(aDense, w.subarray(0, k), rand(k, seed + 5), o6, m, k, 1e-5);
  // multi-head attention, m queries and n keys: fused (wasm, at least as many heads as threads) or, as the
  // attention layer does, per head
  const heads = 1 + (k % 3), dqk = 1 + (k % 13), dv = 1 + (n % 11), qkW = heads * dqk, vW = heads * dv;
  const q = rand(3 + m * qkW, seed + 6), kv = rand(n * heads * Math.max(dqk, dv), seed + 7);
  const o7 = new Float32Array(m * vW + 1).fill(SENTINEL);
  if (!attentionHeads({ m, n, heads, dqk, dv, q, qOff: 3, ldq: qkW, k: kv, kOff: 0, ldk: qkW, v: kv, vOff: 0, ldv: vW, out: o7, oOff: 1, ldo: vW, alpha: 0.37 })) {
    attentionPerHead(m, n, heads, dqk, dv, q, 3, qkW, kv, 0, qkW, kv, 0, vW, o7, 1, vW, 0.37);
  }
  const o8 = new Float32Array(m * n + 1).fill(SENTINEL);
  linearResidual(aDense, packWeight(w, n, k), bias, rand(m * n, seed + 8), o8, m);
  return [o1, o2, o3, o4, o5, o6, o7, o8];
}


const SHAPES: [number, number, number][] = [
  [1, 9, 5], [7, 17, 33], [13, 129, 300], [129, 13, 515], [37, 1000, 322], [300, 64, 1030], [5, 8, 7], [64, 130, 1],
];

/**
 * The current backend's products on 2 and 3 threads against 1 thread, bit for bit; `splits` counts the products
 * that ran on the workers (each thread count must split more than one per shape).
 */
async function expectSameOnThreads(splits: () => number): Promise<void> {
  await setThreads(1);
  const single = SHAPES.map(([m, n, k], i) => products(m, n, k, 10 * i));
  for (const threads of [2, 3]) {
    await setThreads(threads);
    expect(getThreads()).toBe(threads);
    const before = splits();
    SHAPES.forEach(([m, n, k], i) => {
      const multi = products(m, n, k, 10 * i);
      for (let p = 0; p < multi.length; p++) {
        expect(bitDiffs(multi[p], single[i][p]), `threads=${threads} m=${m} n=${n} k=${k} product ${p}`).toBe(0);
      }
    });
    expect(splits() - before).toBeGreaterThan(SHAPES.length); // the workers did take part
  }
  // the sentinels around each region survived (stray writes by a worker would change them)
  for (const outs of single) for (const o of outs) expect(o.includes(SENTINEL)).toBe(true);
}

describe("thread pool of the wasm backend", () => {
  let defaultSplit = 0;
  beforeAll(() => {
    setBackend("wasm");
    defaultSplit = setWasmSplitThreshold(0); // split every block, however small
  });
  afterAll(async () => {
    setWasmSplitThreshold(defaultSplit);
    await setThreads(1);
  });

  it("runs here (Node >= 20.16 with SharedArrayBuffer)", () => {
    expect(threadsUnavailableReason()).toBeNull();
    expect(availableCores()).toBeGreaterThanOrEqual(1);
  });

  it("products on 2 and 3 threads are bit-identical to 1 thread on odd shapes and write only their region", () =>
    expectSameOnThreads(wasmSplitBlocks));

  it("the latents' products (512 rows x 1024 columns) stage and multiply all their rows in one round", async () => {
    // one meeting of the threads per step: B's transpose, then stageRows and the product of the one round; the
    // result comes out in out's row layout (no copyRows). With a float64 C (before 2026-11-27) only 384 rows fitted
    // C_BLOCK_BYTES: two rounds of stageRows, product and copyRows, 7 meetings; then 4 until the packed result.
    await setThreads(2);
    const m = 512, n = 1024, k = 64;
    const a = rand(m * k, 5), out = new Float32Array(m * n);
    const before = wasmSplitBlocks();
    linear(a, packWeight(rand(n * k, 6), n, k), rand(n, 7), out, m);
    expect(wasmSplitBlocks() - before).toBe(3);
    await setThreads(1);
  });

  it("the memory grows while workers are attached (a large product after small ones)", async () => {
    await setThreads(2);
    const [small] = products(3, 9, 5, 1);
    const [big] = products(700, 1030, 1100, 2);
    await setThreads(1);
    const [big1] = products(700, 1030, 1100, 2);
    const [small1] = products(3, 9, 5, 1);
    expect(bitDiffs(big, big1)).toBe(0);
    expect(bitDiffs(small, small1)).toBe(0);
  });

  it("setThreads refuses bad counts with INPUT_INVALID and keeps the previous setting", async () => {
    await setThreads(2);
    for (const bad of [0, -1, 1.5, 65, Number.NaN]) {
      await expect(setThreads(bad)).rejects.toMatchObject({ name: "PerceiverError", code: "INPUT_INVALID" });
    }
    expect(getThreads()).toBe(2);
  });

  it("switching to ts starts its own pool on the next ensureThreads; switching back to wasm uses the wasm pool", async () => {
    await setThreads(2);
    setBackend("ts");
    expect(getThreads()).toBe(1); // not started yet
    await ensureThreads(); // what the next forward pass does
    expect(getThreads()).toBe(2);
    setBackend("wasm");
    expect(getThreads()).toBe(2);
    expect(wasmThreads()).toBe(2);
    setBackend("ts");
    await setThreads(1);
    setBackend("wasm");
  });
});

describe("thread pool of the ts backend (asm.js jobs on private heaps, operands through an exchange buffer)", () => {
  let defaultSplit = 0;
  beforeAll(() => {
    setBackend("ts");
    defaultSplit = setTsSplitThreshold(0); // split every product of 4 rows or more
  });
  afterAll(async () => {
    setTsSplitThreshold(defaultSplit);
    await setThreads(1);
    setBackend("wasm");
  });

  it("products on 2 and 3 threads are bit-identical to 1 thread on odd shapes and write only their region", () =>
    expectSameOnThreads(tsSplitProducts));

  it("a product too large for the exchange buffer runs on the calling thread, with the same result", async () => {
    await setThreads(1);
    const k = 1 << 21; // 4 rows of A alone fill half the exchange: no room for them and a column block of B
    const a = rand(4 * k, 7), w = rand(4 * k, 8);
    const one = new Float32Array(16);
    linear(a, packWeight(w, 4, k), null, one, 4);
    await setThreads(2);
    const before = tsSplitProducts();
    const two = new Float32Array(16);
    linear(a, packWeight(w, 4, k), null, two, 4);
    expect(tsSplitProducts()).toBe(before);
    expect(bitDiffs(two, one)).toBe(0);
  });
});

describe("ThreadPool", () => {
  /** A module on a shared memory: trap(addr) loads from addr (out of bounds traps), put(addr, v) stores v. */
  function testModule(): { module: WebAssembly.Module; memory: WebAssembly.Memory; self: ((...a: number[]) => unknown)[] } {
    const trap = new Code([I32]);
    trap.get(0).f32Load(0).drop();
    const put = new Code([I32, F32]);
    put.get(0).get(1).f32Store(0);
    const bytes = wasmModule({ memoryMinPages: 1, sharedMaxPages: 4, functions: [{ name: "trap", code: trap }, { name: "put", code: put }] });
    const module = new WebAssembly.Module(bytes);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 4, shared: true });
    const e = new WebAssembly.Instance(module, { env: { memory } }).exports;
    return { module, memory, self: [e.trap as never, e.put as never] };
  }

  it("runs every job of a round, on whichever thread takes it, and returns when all are done", async () => {
    const { module, memory, self } = testModule();
    const pool = await ThreadPool.create(3, { kind: "wasm", module, memory, names: ["trap", "put"] });
    try {
      const view = new Float32Array(memory.buffer);
      for (let round = 0; round < 200; round++) {
        const count = 1 + (round % MAX_JOBS);
        pool.run(Array.from({ length: count }, (_, j) => ({ fn: 1, args: [4 * j, round * 100 + j] })), self);
        for (let j = 0; j < count; j++) expect(view[j]).toBe(round * 100 + j);
      }
      pool.run([], self); // an empty round is fine
      expect(() => pool.run(Array.from({ length: MAX_JOBS + 1 }, () => ({ fn: 1, args: [0, 0] })), self)).toThrow(
        expect.objectContaining({ code: "THREADS" }),
      );
    } finally {
      pool.close();
    }
  });

  it("a job that traps throws THREADS after the others finished, and the pool keeps working", async () => {
    const { module, memory, self } = testModule();
    const pool = await ThreadPool.create(2, { kind: "wasm", module, memory, names: ["trap", "put"] });
    try {
      const view = new Float32Array(memory.buffer);
      for (let round = 0; round < 20; round++) {
        const jobs = Array.from({ length: 8 }, (_, j) => ({ fn: 1, args: [4 * j, round + j] }));
        jobs[round % 8] = { fn: 0, args: [1 << 30] }; // out of bounds: traps on whichever thread runs it
        expect(() => pool.run(jobs, self)).toThrow(expect.objectContaining({ name: "PerceiverError", code: "THREADS" }));
        for (let j = 0; j < 8; j++) if (j !== round % 8) expect(view[j]).toBe(round + j);
      }
      pool.run([{ fn: 1, args: [12, 99] }], self);
      expect(view[3]).toBe(99);
    } finally {
      pool.close();
    }
  });

  it("a closed pool refuses jobs with THREADS", async () => {
    const { module, memory, self } = testModule();
    const pool = await ThreadPool.create(2, { kind: "wasm", module, memory, names: ["trap", "put"] });
    pool.close();
    pool.close(); // idempotent
    expect(() => pool.run([{ fn: 1, args: [0, 1] }], self)).toThrow(expect.objectContaining({ code: "THREADS" }));
  });

  it("a module the workers cannot instantiate fails create with THREADS", async () => {
    const { module } = testModule();
    const unshared = new WebAssembly.Memory({ initial: 1 }); // the module imports a shared memory
    await expect(ThreadPool.create(2, { kind: "wasm", module, memory: unshared as WebAssembly.Memory, names: ["trap"] })).rejects.toMatchObject({ code: "THREADS" });
  });
});

describe("default thread count", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  const fresh = async (env: string | undefined) => {
    vi.resetModules();
    if (env !== undefined) vi.stubEnv("PERCEIVER_THREADS", env);
    return import("../src/tensor/gemm.js");
  };

  it("PERCEIVER_THREADS=1 keeps one thread; =2 starts a worker on the first forward (ensureThreads)", async () => {
    const g1 = await fresh("1");
    await g1.ensureThreads();
    expect(g1.getThreads()).toBe(1);
    const g2 = await fresh("2");
    expect(g2.getThreads()).toBe(1); // nothing started at import
    await g2.ensureThreads();
    expect(g2.getThreads()).toBe(2);
    await g2.setThreads(1);
  });

  it("a bad PERCEIVER_THREADS warns and falls back to the available cores", async () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const g = await fresh("lots");
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("PERCEIVER_THREADS=lots ignored"));
    await g.ensureThreads();
    expect(g.getThreads()).toBe(Math.min(64, availableCores()));
    await g.setThreads(1);
    warn.mockRestore();
  });

  it("ensureThreads after setThreads keeps the explicit choice", async () => {
    await setThreads(1);
    await ensureThreads();
    expect(getThreads()).toBe(1);
  });
});
