/**
 * The reference backend (src/tensor/reference/) as the yardstick of every optimized kernel, on odd shapes:
 *  - the ts backend's matrix products give exactly the reference's bits (same double sums, same order);
 *  - the wasm GEMM gives exactly the bits of reference/wasm-sum-model.ts, the scalar model of its two-level
 *    float32 sums (the fused variant here; the plain one in gemm-wasm.test.ts's child process);
 *  - the fused and approximate kernels (softmax, GELU, residual, multi-head attention, layer norm) stay within
 *    |got − want| ≤ 1e-5·(1 + Σ|terms|) of the reference;
 *  - setBackend("reference") routes every operation to the reference loops, on one thread.
 */
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import {
  attentionHeads, getBackend, getThreads, linear, linearGelu, linearResidual, matmul, matmulTransB, matmulTransBSoftmax,
  packWeight, setBackend, setThreads,
} from "../src/tensor/gemm.js";
import { B_PLAIN, B_TRANS } from "../src/tensor/gemm-kinds.js";
import { layerNormRows } from "../src/tensor/layernorm.js";
import * as ref from "../src/tensor/reference/index.js";
import { wasmGemmKernel } from "../src/tensor/wasm/runtime.js";
import { ROOT } from "./helpers/cli.js";
import { abs, attentionPerHead, countBitDiffs, linearGeluRef, matmulTransBSoftmaxRef, rand, worst } from "./helpers/gemm.js";

const ODD_M = [1, 3, 5, 13];
const ODD_N = [1, 7, 9, 17];
/** K values that cross the wasm kernel's runs (64) and chunks (256) unevenly */
const ODD_K = [1, 7, 63, 65, 257, 515];

afterAll(async () => {
  setBackend("wasm");
  await setThreads(1);
});

/** Runs `f` on the given backend, restoring the previous one. */
function on<T>(backend: "ts" | "wasm" | "reference", f: () => T): T {
  const before = getBackend();
  setBackend(backend);
  try {
    return f();
  } finally {
    setBackend(before);
  }
}

describe("ts backend = reference, bit for bit", () => {
  it("linear, matmulTransB (strided, alpha), matmul (strided), linearResidual", () => {
    let seed = 1, checked = 0;
    for (const m of ODD_M) for (const n of ODD_N) for (const k of ODD_K) {
      const a = rand(5 + m * (k + 3), seed++), b = rand(2 + Math.max(n * (k + 1), k * (n + 1)), seed++), bias = rand(n, seed++);
      const res = rand(m * n, seed++);
      const got = new Float32Array(7 + m * (n + 2)), want = new Float32Array(got.length);
      const w = b.subarray(0, n * k);
      on("ts", () => linear(a.subarray(0, m * k), packWeight(w, n, k), bias, got, m));
      ref.linear(a.subarray(0, m * k), w, bias, want, m, n, k);
      expect(countBitDiffs(got, want)).toBe(0);
      on("ts", () => matmulTransB(m, n, k, a, 5, k + 3, b, 2, k + 1, got, 7, n + 2, -0.3));
      ref.matmulTransB(m, n, k, a, 5, k + 3, b, 2, k + 1, want, 7, n + 2, -0.3);
      expect(countBitDiffs(got, want)).toBe(0);
      on("ts", () => matmul(m, n, k, a, 5, k + 3, b, 2, n + 1, got, 7, n + 2));
      ref.matmul(m, n, k, a, 5, k + 3, b, 2, n + 1, want, 7, n + 2);
      expect(countBitDiffs(got, want)).toBe(0);
      const o = new Float32Array(m * n), r = new Float32Array(m * n);
      on("ts", () => linearResidual(a.subarray(0, m * k), packWeight(w, n, k), bias, res, o, m));
      ref.linear(a.subarray(0, m * k), w, bias, r, m, n, k);
      ref.add(r, res, r, m * n);
      expect(countBitDiffs(o, r)).toBe(0);
      checked++;
    }
    expect(checked).toBe(ODD_M.length * ODD_N.length * ODD_K.length);
  });

  it("softmax of scores and per-head attention", () => {
    for (const [m, n, heads, dqk, dv] of [[5, 9, 3, 7, 5], [13, 17, 2, 65, 3], [1, 33, 1, 4, 9]]) {
      const q = rand(m * heads * dqk, m), k = rand(n * heads * dqk, n), v = rand(n * heads * dv, dv);
      const got = new Float32Array(m * n), want = new Float32Array(m * n);
      on("ts", () => matmulTransBSoftmax(m, n, dqk, q, 0, heads * dqk, k, 0, heads * dqk, got, 0, n, 0.4));
      matmulTransBSoftmaxRef(m, n, dqk, q, 0, heads * dqk, k, 0, heads * dqk, want, 0, n, 0.4);
      expect(countBitDiffs(got, want)).toBe(0);
      const o = new Float32Array(m * heads * dv), r = new Float32Array(o.length);
      on("ts", () => {
        expect(attentionHeads({ m, n, heads, dqk, dv, q, k, v, out: o, alpha: 0.4 })).toBe(false); // no fused form on ts
        attentionPerHead(m, n, heads, dqk, dv, q, 0, heads * dqk, k, 0, heads * dqk, v, 0, heads * dv, o, 0, heads * dv, 0.4);
      });
      ref.attention({ m, n, heads, dqk, dv, q, k, v, out: r, alpha: 0.4 });
      expect(countBitDiffs(o, r)).toBe(0);
    }
  });
});

describe("wasm GEMM = its scalar model (two-level float32 sums), bit for bit", () => {
  const fused = wasmGemmKernel() === "fma";

  it("fmaF32 rounds a·b + c once (where rounding to double first would land on a float32 midpoint)", () => {
    const a = Math.fround(1 + 2 ** -12), c = 2 ** -80; // a·a + c = 1 + 2^-11 + 2^-24 + 2^-80
    expect(Math.fround(a * a + c)).toBe(1 + 2 ** -11); // double rounding: to the midpoint, then to even
    expect(ref.fmaF32(a, a, c)).toBe(1 + 2 ** -11 + 2 ** -23); // rounded once: up
    expect(ref.fmaF32(a, a, -c)).toBe(1 + 2 ** -11);
    expect(ref.fmaF32(3, 5, 0.5)).toBe(15.5);
  });

  for (const threads of [1, 2]) {
    it(`linear (bias), matmulTransB (strided, alpha), matmul (strided) on ${threads} thread(s), ${fused ? "fused" : "mul-add"} kernel`, async () => {
      setBackend("wasm");
      await setThreads(threads);
      let seed = 100, diffs = 0, outputs = 0;
      for (const m of ODD_M) for (const n of ODD_N) for (const k of ODD_K) {
        const a = rand(5 + m * (k + 3), seed++), b = rand(2 + Math.max(n * (k + 1), k * (n + 1)), seed++), bias = rand(n, seed++);
        const got = new Float32Array(7 + m * (n + 2)), model = new Float32Array(got.length);
        linear(a.subarray(0, m * k), packWeight(b.subarray(0, n * k), n, k), bias, got, m);
        ref.wasmGemmModel(B_TRANS, m, n, k, a, 0, k, b, 0, k, bias, model, 0, n, 1, fused);
        diffs += countBitDiffs(got, model);
        matmulTransB(m, n, k, a, 5, k + 3, b, 2, k + 1, got, 7, n + 2, -0.3);
        ref.wasmGemmModel(B_TRANS, m, n, k, a, 5, k + 3, b, 2, k + 1, null, model, 7, n + 2, -0.3, fused);
        diffs += countBitDiffs(got, model);
        matmul(m, n, k, a, 5, k + 3, b, 2, n + 1, got, 7, n + 2);
        ref.wasmGemmModel(B_PLAIN, m, n, k, a, 5, k + 3, b, 2, n + 1, null, model, 7, n + 2, 1, fused);
        diffs += countBitDiffs(got, model);
        outputs += 3 * got.length;
      }
      expect(outputs).toBeGreaterThan(0);
      expect(diffs).toBe(0);
      // and the model is not the reference: the float32 runs round differently somewhere
      const a = rand(13 * 515, 7), b = rand(9 * 515, 8), got = new Float32Array(13 * 9), want = new Float32Array(13 * 9);
      ref.wasmGemmModel(B_TRANS, 13, 9, 515, a, 0, 515, b, 0, 515, null, got, 0, 9, 1, fused);
      ref.matmulTransB(13, 9, 515, a, 0, 515, b, 0, 515, want, 0, 9, 1);
      expect(countBitDiffs(got, want)).toBeGreaterThan(0);
      await setThreads(1);
    });
  }
});

describe("optimized kernels within 1e-5·(1 + Σ|terms|) of the reference", () => {
  for (const backend of ["wasm", "ts"] as const) {
    it(`${backend}: linearGelu, softmax of scores, fused attention, layer norm`, () => {
      setBackend(backend);
      let seed = 300;
      for (const m of ODD_M) for (const n of ODD_N) for (const k of [7, 65, 257]) {
        const a = rand(m * k, seed++), w = rand(n * k, seed++), bias = rand(n, seed++);
        const got = new Float32Array(m * n), want = new Float32Array(m * n), scale = new Float32Array(m * n);
        linearGelu(a, packWeight(w, n, k), bias, got, m);
        linearGeluRef(a, w, bias, want, m, n, k);
        ref.linear(abs(a), abs(w), abs(bias), scale, m, n, k); // |gelu'| ≤ 1.13: the product's bound carries over
        expect(worst(got, want, scale)).toBeLessThanOrEqual(0);
        matmulTransBSoftmax(m, n, k, a, 0, k, w, 0, k, got, 0, n, 0.2);
        matmulTransBSoftmaxRef(m, n, k, a, 0, k, w, 0, k, want, 0, n, 0.2);
        expect(worst(got, want, new Float32Array(m * n))).toBeLessThanOrEqual(0); // probabilities: |p| ≤ 1
      }
      for (const [m, n, heads, dqk, dv] of [[5, 9, 3, 7, 5], [13, 17, 2, 65, 3], [1, 33, 1, 4, 9], [7, 300, 4, 5, 6]]) {
        const q = rand(m * heads * dqk, m), k = rand(n * heads * dqk, n), v = rand(n * heads * dv, dv);
        const got = new Float32Array(m * heads * dv), want = new Float32Array(got.length);
        if (!attentionHeads({ m, n, heads, dqk, dv, q, k, v, out: got, alpha: 0.3 })) {
          attentionPerHead(m, n, heads, dqk, dv, q, 0, heads * dqk, k, 0, heads * dqk, v, 0, heads * dv, got, 0, heads * dv, 0.3);
        }
        ref.attention({ m, n, heads, dqk, dv, q, k, v, out: want, alpha: 0.3 });
        // out = P·V with Σ_j p_j = 1 and |v| < 1: scale 1 per output
        expect(worst(got, want, new Float32Array(got.length).fill(1))).toBeLessThanOrEqual(0);
      }
      for (const [rows, dim] of [[1, 1], [3, 7], [5, 64], [13, 322]]) {
        const x = rand(rows * dim, dim).map((t, i) => t * 3 + (i % 5)), wt = rand(dim, 2), b = rand(dim, 3);
        const got = new Float32Array(rows * dim), want = new Float32Array(rows * dim);
        layerNormRows(x, wt, b, got, rows, dim, 1e-5);
        ref.layerNorm(x, wt, b, want, rows, dim, 1e-5);
        // |(x - mean)/σ| ≤ √dim per element: scale by it
        expect(worst(got, want, new Float32Array(got.length).fill(Math.sqrt(dim)))).toBeLessThanOrEqual(0);
      }
      setBackend("wasm");
    });
  }
});

describe("the reference backend", () => {
  it("runs every product and layer norm through the reference loops", () => {
    setBackend("reference");
    const m = 5, n = 7, k = 9;
    const a = rand(m * k, 1), w = rand(n * k, 2), bias = rand(n, 3), res = rand(m * n, 4);
    const got = new Float32Array(m * n), want = new Float32Array(m * n);
    linearGelu(a, packWeight(w, n, k), bias, got, m);
    linearGeluRef(a, w, bias, want, m, n, k);
    expect(countBitDiffs(got, want)).toBe(0);
    linearResidual(a, packWeight(w, n, k), bias, res, got, m);
    ref.linear(a, w, bias, want, m, n, k);
    ref.add(want, res, want, m * n);
    expect(countBitDiffs(got, want)).toBe(0);
    const q = rand(4 * 6, 5), kk = rand(3 * 6, 6), v = rand(3 * 4, 7), o = new Float32Array(16), r = new Float32Array(16);
    expect(attentionHeads({ m: 4, n: 3, heads: 2, dqk: 3, dv: 2, q, k: kk, v, out: o, alpha: 0.5 })).toBe(true);
    ref.attention({ m: 4, n: 3, heads: 2, dqk: 3, dv: 2, q, k: kk, v, out: r, alpha: 0.5 });
    expect(countBitDiffs(o, r)).toBe(0);
    const x = rand(3 * 10, 8).map((t) => t + 5), lw = rand(10, 9), lb = rand(10, 10);
    const ln = new Float32Array(30), lr = new Float32Array(30);
    layerNormRows(x, lw, lb, ln, 3, 10, 1e-5);
    ref.layerNorm(x, lw, lb, lr, 3, 10, 1e-5);
    expect(countBitDiffs(ln, lr)).toBe(0);
    setBackend("wasm");
  });

  it("stays on one thread whatever setThreads asks", async () => {
    setBackend("reference");
    await setThreads(2);
    expect(getThreads()).toBe(1);
    await setThreads(1);
    setBackend("wasm");
  });

  it("refuses an unknown backend name with a typed error, keeping the current one", () => {
    setBackend("ts");
    const e = (() => {
      try {
        setBackend("gpu" as never);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(PerceiverError);
    expect((e as PerceiverError).code).toBe("INPUT_INVALID");
    expect((e as Error).message).toMatch(/expected one of "wasm", "ts", "reference", got "gpu"/);
    expect(getBackend()).toBe("ts");
    setBackend("wasm");
  });

  it("examples/reference-step.ts (the documented walk through a tiny checkpoint) prints every stage's shape", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "examples/reference-step.ts"], { cwd: ROOT, encoding: "utf8", timeout: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    for (const line of [
      /^pixels +\[1,3,224,224\]$/m, /^convnet +\[1,64,55,55\]$/m, /^preprocessor +\[1,3025,322\]$/m,
      /^cross_attention +\[1,16,64\]$/m, /^self_attend_1\.call1 +\[1,16,64\]$/m, /^decoder +\[1,64\]$/m, /^logits \[1,10\]$/m,
    ]) expect(r.stdout).toMatch(line);
  }, 300_000);
});
