/**
 * The WebAssembly SIMD backend of the matrix products (src/tensor/wasm/) against the reference loops, plus the
 * assembler, wasm memory handling and backend selection.
 *
 * Tolerance (every comparison with a reference): |got − want| ≤ 1e-5 · (1 + Σ|terms|) per output, where Σ|terms|
 * is the same product on absolute values (|bias| + Σ_p |a·b|, times |alpha|). The kernel sums runs of SUB = 64
 * products and adds the runs into a float32 C, so its error is at most about (SUB + K/SUB)·2^-24·Σ|terms|
 * (5e-6·Σ|terms| for K = 1024); one test pins down that the runs really are summed separately.
 * Every output buffer is larger than its region and pre-filled with a sentinel, to catch stray writes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { PerceiverError } from "../src/errors.js";
import {
  attentionHeads, getBackend, linear, linearGelu, linearResidual, matmul, matmulTransB, matmulTransBSoftmax, packWeight,
  releaseGemmScratch, setBackend,
} from "../src/tensor/gemm.js";
import * as ref from "../src/tensor/reference/index.js";
import { ATTENTION_MAX_KEYS } from "../src/tensor/wasm/attention-wasm.js";
import { Code, I32, sleb, uleb, wasmModule } from "../src/tensor/wasm/assembler.js";
import { KC, SUB, gemmKernelModule } from "../src/tensor/wasm/gemm-kernel.js";
import { add, gelu } from "../src/tensor/activations.js";
import { softmaxRows } from "../src/tensor/softmax.js";
import { layerNorm, layerNormRows } from "../src/tensor/layernorm.js";
import { wasmGemmKernel, wasmGemmMemoryBytes, wasmGemmSupported } from "../src/tensor/wasm/runtime.js";
import {
  ODD, REL, SENTINEL, abs, attentionPerHead, countBitDiffs, dense, expectOnlyRegionWritten, filled, linearGeluRef, matmulTransBSoftmaxRef, rand, runLinear, runMatmul,
  runTransB, strided, worst,
} from "./helpers/gemm.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** K values that cross SUB runs and KC chunks unevenly (ODD: the odd sizes). */
const ODD_K = [1, 3, 7, 13, 33, 129, 300, 515];

// ---------------------------------------------------------------------------------------------------------------

describe("assembler", () => {
  it("encodes LEB128 like the spec's examples", () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(sleb(0)).toEqual([0]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(sleb(-0x80000000)).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
  });

  it("builds a module that runs (i32 loop summing 1..n)", () => {
    const f = new Code([I32], [I32]);
    const i = f.local(I32), s = f.local(I32);
    f.block().loop();
    f.get(i).get(0).i32GeU().brIf(1);
    f.get(i).i32Const(1).i32Add().tee(i).get(s).i32Add().set(s);
    f.br(0);
    f.end().end();
    f.get(s);
    const bytes = wasmModule({ memoryMinPages: 1, functions: [{ name: "sum", code: f }] });
    expect(WebAssembly.validate(bytes)).toBe(true);
    const memory = new WebAssembly.Memory({ initial: 1 });
    const sum = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports.sum as (n: number) => number;
    expect(sum(100)).toBe(5050);
    expect(sum(0)).toBe(0);
  });

  it("memory.grow/size, f32 load/store, call, if/else, return", () => {
    const twice = new Code([I32], [I32]);
    twice.get(0).i32Const(2).i32Mul().return();
    const grow = new Code([I32], [I32]);
    grow.get(0).memoryGrow().drop().memorySize();
    const copy = new Code([I32, I32]);
    copy.get(1).get(0).f32Load(4).f32Store(8);
    const pick = new Code([I32], [I32]);
    const r = pick.local(I32);
    pick.get(0).if().i32Const(21).call(0).set(r).else().i32Const(7).set(r).end().get(r);
    const bytes = wasmModule({
      memoryMinPages: 1,
      functions: [{ name: "twice", code: twice }, { name: "grow", code: grow }, { name: "copy", code: copy }, { name: "pick", code: pick }],
    });
    const memory = new WebAssembly.Memory({ initial: 1 });
    const e = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<string, (...x: number[]) => number>;
    expect(e.twice(-21)).toBe(-42);
    expect([e.pick(1), e.pick(0)]).toEqual([42, 7]);
    expect(e.grow(2)).toBe(3);
    expect(memory.buffer.byteLength).toBe(3 * 65536);
    new Float32Array(memory.buffer)[26] = 1.5; // byte 104 = 100 + 4
    e.copy(100, 200);
    expect(new Float32Array(memory.buffer)[52]).toBe(1.5); // byte 208 = 200 + 8
  });

  it("the kernel module validates and stays within its size budget (8 KB; compiled synchronously)", () => {
    // Chrome 114+ compiles up to 8 MB synchronously on a page's main thread (4 KB before); the budget keeps the
    // generated module small to compile and to read
    const bytes = gemmKernelModule();
    expect(WebAssembly.validate(bytes)).toBe(true);
    expect(bytes.length).toBeLessThan(8192);
    expect(wasmGemmSupported()).toBe(true); // Node 20 has WebAssembly SIMD
  });
});

describe("wasm backend", () => {
  beforeAll(() => setBackend("wasm"));
  afterAll(() => setBackend("wasm"));

  it("linear matches the reference linear on odd shapes, with and without bias", () => {
    let seed = 1;
    for (const m of ODD) for (const n of ODD) for (const k of ODD_K) for (const withBias of [false, true]) {
      const [got, want, scale] = runLinear(m, n, k, withBias, seed++);
      expect(worst(got, want, scale), `m=${m} n=${n} k=${k} bias=${withBias}`).toBeLessThanOrEqual(0);
    }
  });

  it("matmulTransB matches its twin on odd shapes, dense and strided with offsets, alpha != 1", () => {
    let seed = 1000;
    for (const m of ODD) for (const n of ODD) for (const k of ODD_K) {
      for (const [layout, alpha] of [[dense, 1], [strided, 0.08838834764831845], [strided, -1.5]] as const) {
        const [got, want, scale] = runTransB(m, n, k, layout(m, n, k, true), alpha, seed++);
        expect(worst(got, want, scale), `m=${m} n=${n} k=${k} alpha=${alpha}`).toBeLessThanOrEqual(0);
      }
    }
  });

  it("matmul matches its twin on odd shapes, dense and strided with offsets", () => {
    let seed = 5000;
    for (const m of ODD) for (const n of ODD) for (const k of ODD_K) {
      for (const layout of [dense, strided]) {
        const [got, want, scale] = runMatmul(m, n, k, layout(m, n, k, false), seed++);
        expect(worst(got, want, scale), `m=${m} n=${n} k=${k}`).toBeLessThanOrEqual(0);
      }
    }
  });

  it("k = 0 gives alpha·bias (or 0); m = 0 and n = 0 write nothing", () => {
    const bias = rand(5, 9);
    const out = filled(3 * 5 + 2);
    linear(new Float32Array(0), packWeight(new Float32Array(0), 5, 0), bias, out, 3);
    for (let i = 0; i < 3; i++) expect(Array.from(out.subarray(i * 5, i * 5 + 5))).toEqual(Array.from(bias));
    expectOnlyRegionWritten(out, 3, 5, 0, 5);
    const [got] = runTransB(5, 6, 0, strided(5, 6, 0, true), 0.5, 3);
    const s = strided(5, 6, 0, true);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 6; j++) expect(got[s.oOff + i * s.ldo + j]).toBe(0);

    const untouched = filled(4);
    linear(new Float32Array(0), packWeight(rand(5 * 7, 1), 5, 7), bias, untouched, 0);
    linear(rand(3 * 7, 2), packWeight(new Float32Array(0), 0, 7), null, untouched, 3);
    matmul(0, 3, 4, new Float32Array(0), 0, 4, rand(12, 1), 0, 3, untouched, 0, 3);
    expect(Array.from(untouched).every((v) => v === SENTINEL)).toBe(true);
  });

  it("sums runs of SUB products, then the runs (what one running float32 sum would lose)", () => {
    // 1 + (K-1) products of 2^-25: a float32 running sum stays at 1 (each 2^-25 is half an ulp of 1 and rounds
    // away); a run of SUB of them sums exactly to SUB·2^-25 = 2^-19, which C keeps, so the two-level sum loses only
    // the SUB-1 that share the first run with the 1.
    const k = 4096, tiny = 2 ** -25;
    const a = new Float32Array(k).fill(tiny), w = new Float32Array(k).fill(1);
    a[0] = 1;
    const out = new Float32Array(1);
    linear(a, packWeight(w, 1, k), null, out, 1);
    const exact = 1 + (k - 1) * tiny; // 1.000122
    const f32Running = 1;
    expect(Math.abs(out[0] - exact)).toBeLessThanOrEqual((SUB - 1) * tiny + 2 ** -24);
    expect(Math.abs(out[0] - f32Running)).toBeGreaterThan(1e-4);
  });

  it("results do not depend on how rows are blocked (per-row sums, same order)", () => {
    const m = 300, n = 37, k = 2 * KC + 5;
    const a = rand(m * k, 77), pw = packWeight(rand(n * k, 78), n, k), bias = rand(n, 79);
    const all = new Float32Array(m * n);
    linear(a, pw, bias, all, m);
    const rows = new Float32Array(n);
    for (const i of [0, 1, 127, 128, 129, 298, 299]) {
      linear(a.subarray(i * k, (i + 1) * k), pw, bias, rows, 1);
      expect(countBitDiffs(rows, all.subarray(i * n, (i + 1) * n)), `row ${i}`).toBe(0);
    }
  });

  it("per-head attention views (heads side by side in one [T, H·dh] buffer)", () => {
    const T = 37, S = 29, H = 4, dh = 16, C = H * dh;
    const q = rand(T * C, 11), kx = rand(S * C, 12), v = rand(S * C, 13);
    const got = filled(H * T * S), want = filled(H * T * S), scale = filled(H * T * S);
    const ctx = filled(T * C + 3), ctxWant = filled(T * C + 3), ctxScale = filled(T * C + 3);
    for (let h = 0; h < H; h++) {
      matmulTransB(T, S, dh, q, h * dh, C, kx, h * dh, C, got, h * T * S, S, 0.25);
      ref.matmulTransB(T, S, dh, q, h * dh, C, kx, h * dh, C, want, h * T * S, S, 0.25);
      ref.matmulTransB(T, S, dh, abs(q), h * dh, C, abs(kx), h * dh, C, scale, h * T * S, S, 0.25);
    }
    expect(worst(got, want, scale)).toBeLessThanOrEqual(0);
    for (let h = 0; h < H; h++) {
      matmul(T, dh, S, got, h * T * S, S, v, h * dh, C, ctx, h * dh, C);
      ref.matmul(T, dh, S, got, h * T * S, S, v, h * dh, C, ctxWant, h * dh, C);
      ref.matmul(T, dh, S, abs(got), h * T * S, S, abs(v), h * dh, C, ctxScale, h * dh, C);
    }
    expect(worst(ctx, ctxWant, ctxScale)).toBeLessThanOrEqual(0);
    expectOnlyRegionWritten(ctx, T, C, 0, C);
  });

  it("model-size shapes: linear 512x1024x1024 and attention views with ld = 1024 (sampled rows)", () => {
    const m = 512, n = 1024, k = 1024;
    const a = rand(m * k, 31), w = rand(n * k, 32), bias = rand(n, 33);
    const out = new Float32Array(m * n);
    linear(a, packWeight(w, n, k), bias, out, m);
    const want = new Float32Array(n), scale = new Float32Array(n);
    for (const i of [0, 1, 255, 256, 511]) {
      const row = a.subarray(i * k, (i + 1) * k);
      ref.linear(row, w, bias, want, 1, n, k);
      ref.linear(abs(row), abs(w), abs(bias), scale, 1, n, k);
      expect(worst(out.subarray(i * n, (i + 1) * n), want, scale), `row ${i}`).toBeLessThanOrEqual(0);
    }
    const T = 512, C = 1024, dh = 128, h = 5, alpha = 1 / Math.sqrt(dh);
    const s = new Float32Array(T * T), ctx = filled(T * C);
    matmulTransB(T, T, dh, a, h * dh, C, w, h * dh, C, s, 0, T, alpha);
    matmul(T, dh, T, s, 0, T, a, h * dh, C, ctx, h * dh, C);
    expectOnlyRegionWritten(ctx, T, dh, h * dh, C);
    const sw = new Float32Array(T), ss = new Float32Array(T), cw = new Float32Array(dh), cs = new Float32Array(dh);
    for (const i of [0, 3, 300, 511]) {
      ref.matmulTransB(1, T, dh, a, i * C + h * dh, C, w, h * dh, C, sw, 0, T, alpha);
      ref.matmulTransB(1, T, dh, abs(a), i * C + h * dh, C, abs(w), h * dh, C, ss, 0, T, alpha);
      expect(worst(s.subarray(i * T, (i + 1) * T), sw, ss), `scores row ${i}`).toBeLessThanOrEqual(0);
      ref.matmul(1, dh, T, s, i * T, T, a, h * dh, C, cw, 0, dh);
      ref.matmul(1, dh, T, abs(s), i * T, T, abs(a), h * dh, C, cs, 0, dh);
      expect(worst(ctx.subarray(i * C + h * dh, i * C + h * dh + dh), cw, cs), `P·V row ${i}`).toBeLessThanOrEqual(0);
    }
  });

  it("wasm memory grows across calls and results stay right before and after (views are refreshed)", () => {
    releaseGemmScratch();
    expect(wasmGemmMemoryBytes()).toBe(0);
    const small = () => {
      const [got, want, scale] = runTransB(9, 10, 11, strided(9, 10, 11, true), 0.5, 42);
      expect(worst(got, want, scale)).toBeLessThanOrEqual(0);
    };
    small();
    const before = wasmGemmMemoryBytes();
    expect(before).toBeGreaterThan(0);
    // B_TRANS with n = 2000, k = 700: 5.6 MB of staged B, more than the first call's memory
    const [got, want, scale] = runTransB(5, 2000, 700, dense(5, 2000, 700, true), 1, 43);
    expect(worst(got, want, scale)).toBeLessThanOrEqual(0);
    expect(wasmGemmMemoryBytes()).toBeGreaterThan(before);
    small();
  });

  it("products larger than one staged block are split into column blocks", () => {
    // 8 MB per B block: k = 5000 gives blocks of 416 columns, n = 900 three of them
    const m = 2, n = 900, k = 5000;
    const [got, want, scale] = runLinear(m, n, k, true, 44);
    expect(worst(got, want, scale)).toBeLessThanOrEqual(0);
    const [g2, w2, s2] = runMatmul(m, n, k, strided(m, n, k, false), 45);
    expect(worst(g2, w2, s2)).toBeLessThanOrEqual(0);
    // 6 MB per C block: 128 rows give blocks of 4096 columns, n = 9000 three of them
    const [g3, w3, s3] = runTransB(130, 9000, 5, strided(130, 9000, 5, true), 0.25, 46);
    expect(worst(g3, w3, s3)).toBeLessThanOrEqual(0);
  });

  it("falls back to the TypeScript kernels when the wasm memory cannot grow", () => {
    releaseGemmScratch();
    const grow = vi.spyOn(WebAssembly.Memory.prototype, "grow").mockImplementation(() => {
      throw new RangeError("WebAssembly.Memory.grow(): Maximum memory size exceeded");
    });
    try {
      const [got, want] = runLinear(40, 400, 700, true, 46); // B alone is 1.1 MB, more than the initial 1 MB
      expect(grow).toHaveBeenCalled();
      expect(countBitDiffs(got, want)).toBe(0); // the TS kernels are bit-exact with the twin
    } finally {
      grow.mockRestore();
      releaseGemmScratch();
    }
  });
});

describe("relaxed-SIMD (fma) kernel", () => {
  // Every test above ran the kernel this process picked: "fma" (f32x4.relaxed_madd; on Node 20 gemm-wasm.ts turns
  // V8's --experimental-wasm-relaxed-simd on itself). The plain mul-add kernel, used where Relaxed SIMD is missing
  // (or with PERCEIVER_WASM_FMA=0), runs the same products in a child process here.
  it("the kernel in use is fma here; mul-add (child process, PERCEIVER_WASM_FMA=0) also matches the reference loops", () => {
    expect(wasmGemmKernel()).toBe("fma");
    const dir = mkdtempSync(join(tmpdir(), "perceiver-fma-"));
    const src = (f: string) => JSON.stringify(pathToFileURL(join(ROOT, "src/tensor", f)).href);
    const script = `
      import * as g from ${src("gemm.ts")};
      import { wasmGemmKernel } from ${src("wasm/gemm-wasm.ts")};
      import * as ref from ${src("reference/index.ts")};
      ${rand.toString()}
      const abs = (x) => x.map(Math.abs);
      let worst = 0, modelDiffs = 0, modelChecked = 0;
      const check = (got, want, scale) => {
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (${REL} * (1 + scale[i])));
      };
      let seed = 1;
      for (const m of [1, 7, 13, 129]) for (const n of [3, 13, 129]) for (const k of [1, 33, 300, 515]) {
        const a = rand(m * (k + 3), seed++), b = rand(n * (k + 2) + k * (n + 2), seed++), bias = rand(n, seed++);
        const run = (f, twin, ...args) => {
          const got = new Float32Array(m * (n + 1)), want = new Float32Array(got.length), scale = new Float32Array(got.length);
          f(got, a, b, bias, ...args); twin(want, a, b, bias, ...args); twin(scale, abs(a), abs(b), abs(bias), ...args);
          check(got, want, scale);
        };
        run((o, a, b, bias) => g.linear(a.subarray(0, m * k), g.packWeight(b.subarray(0, n * k), n, k), bias, o, m),
          (o, a, b, bias) => ref.linear(a.subarray(0, m * k), b.subarray(0, n * k), bias, o, m, n, k));
        run((o, a, b) => g.matmulTransB(m, n, k, a, 3, k + 3, b, 0, k + 2, o, 1, n + 1, -0.7),
          (o, a, b) => ref.matmulTransB(m, n, k, a, 3, k + 3, b, 0, k + 2, o, 1, n + 1, -0.7));
        run((o, a, b) => g.matmul(m, n, k, a, 3, k + 3, b, 1, n + 2, o, 0, n + 1),
          (o, a, b) => ref.matmul(m, n, k, a, 3, k + 3, b, 1, n + 2, o, 0, n + 1));
        // the mul-add kernel against the scalar model of its sums (unfused): bit for bit
        const got = new Float32Array(m * (n + 1)), model = new Float32Array(got.length);
        g.matmulTransB(m, n, k, a, 3, k + 3, b, 0, k + 2, got, 1, n + 1, -0.7);
        ref.wasmGemmModel(1, m, n, k, a, 3, k + 3, b, 0, k + 2, null, model, 1, n + 1, -0.7, false);
        for (let i = 0; i < got.length; i++) if (!Object.is(got[i], model[i])) modelDiffs++;
        modelChecked += got.length;
      }
      console.log(JSON.stringify({ kernel: wasmGemmKernel(), backend: g.getBackend(), worst, modelDiffs, modelChecked }));
    `;
    try {
      const file = join(dir, "fma-check.mjs");
      writeFileSync(file, script);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], {
        cwd: ROOT, encoding: "utf8", env: { ...process.env, PERCEIVER_BACKEND: "", PERCEIVER_WASM_FMA: "0" },
      });
      expect(r.status, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout.trim().split("\n").pop()!);
      expect(result.kernel).toBe("mul-add"); // PERCEIVER_WASM_FMA=0 turns the fused kernel off on every Node version
      expect(result.backend).toBe("wasm");
      console.log(`${result.kernel} kernel in a child process: worst |got - want| / (1e-5·(1 + Σ|terms|)) = ${result.worst.toExponential(2)}`);
      expect(result.worst).toBeGreaterThan(0); // it did compute something
      expect(result.worst).toBeLessThanOrEqual(1);
      expect(result.modelChecked).toBeGreaterThan(0);
      expect(result.modelDiffs).toBe(0); // bit-identical to reference/wasm-sum-model.ts (unfused)
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("matmulTransBSoftmax (attention probabilities)", () => {
  afterAll(() => setBackend("wasm"));
  // scores within ~4e-6·Σ|terms| (the GEMM bound) move a probability by about that much, relatively
  const check = (got: Float32Array, want: Float32Array, what: string) => {
    for (let i = 0; i < want.length; i++) {
      expect(Math.abs(got[i] - want[i]), `${what} [${i}]`).toBeLessThanOrEqual(1e-4 * Math.abs(want[i]) + 1e-7);
    }
  };
  for (const backend of ["wasm", "ts"] as const) {
    it(`${backend}: matches its reference on odd shapes, strided, rows summing to 1`, () => {
      setBackend(backend);
      let seed = 300;
      for (const m of [1, 3, 13, 129]) for (const n of [1, 3, 7, 130, 3025]) for (const k of [1, 7, 33, 515]) {
        if (m * n * k > 4e6) continue;
        const s = strided(m, n, k, true);
        const a = rand(s.aOff + m * s.lda + 3, seed++), b = rand(s.bOff + n * s.ldb + 3, seed++);
        const size = s.oOff + m * s.ldo + 4;
        const got = filled(size), want = filled(size);
        matmulTransBSoftmax(m, n, k, a, s.aOff, s.lda, b, s.bOff, s.ldb, got, s.oOff, s.ldo, 0.1);
        matmulTransBSoftmaxRef(m, n, k, a, s.aOff, s.lda, b, s.bOff, s.ldb, want, s.oOff, s.ldo, 0.1);
        expectOnlyRegionWritten(got, m, n, s.oOff, s.ldo);
        check(got, want, `m=${m} n=${n} k=${k}`);
        for (let i = 0; i < m; i++) {
          let sum = 0;
          for (let j = 0; j < n; j++) sum += got[s.oOff + i * s.ldo + j];
          expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
        }
      }
    });
  }
  it("wasm: rows wider than one column block fall back to the TypeScript softmax after the product", () => {
    setBackend("wasm");
    const m = 5, n = 9000, k = 300;
    const a = rand(m * k, 1), b = rand(n * k, 2);
    const got = new Float32Array(m * n), want = new Float32Array(m * n);
    matmulTransBSoftmax(m, n, k, a, 0, k, b, 0, k, got, 0, n, 0.1);
    matmulTransBSoftmaxRef(m, n, k, a, 0, k, b, 0, k, want, 0, n, 0.1);
    check(got, want, "wide rows");
  });
  it("wasm: the float32 exp stays within 4 float32 ulps of Math.exp over the whole range (exact scores)", () => {
    setBackend("wasm");
    // a [M,1] = 1, b [N,1] = scores: the product is the scores exactly, so only the softmax differs.
    // Row r holds N scores spread over [-r·10, 0] plus one 0 (the max), so x - m is exact in float32.
    const n = 1023, rowsN = 11;
    const a = new Float32Array(rowsN).fill(1);
    const got = new Float32Array(rowsN * n), want = new Float32Array(rowsN * n);
    let worstUlps = 0;
    for (let r = 0; r < rowsN; r++) {
      const scores = new Float32Array(n);
      for (let j = 1; j < n; j++) scores[j] = -((j * 7919) % n) / n * (r === rowsN - 1 ? 90 : r * 10);
      matmulTransBSoftmax(1, n, 1, a, r, 1, scores, 0, 1, got, r * n, n, 1);
      want.set(scores, r * n);
      softmaxRows(want, r * n, 1, n, n);
    }
    for (let i = 0; i < got.length; i++) {
      const ulp = Math.max(2 ** -149, 2 ** (Math.floor(Math.log2(Math.abs(want[i]) || 2 ** -149)) - 23));
      if (want[i] < 2 ** -126) {
        expect(Math.abs(got[i] - want[i]), `[${i}] below the normal range`).toBeLessThanOrEqual(2 ** -126);
        continue;
      }
      worstUlps = Math.max(worstUlps, Math.abs(got[i] - want[i]) / ulp);
    }
    expect(worstUlps).toBeLessThanOrEqual(4);
    expect(worstUlps).toBeGreaterThan(0); // a float32 exp, not Math.exp
  });
  it("wasm: a row of -inf scores gives NaN like softmaxRows and torch; large scores do not overflow", () => {
    setBackend("wasm");
    const k = 2, n = 6;
    const a = new Float32Array([1, 0, -Infinity, 0, 500, 0]); // row 1: all -inf (times finite b > 0)
    const b = new Float32Array([1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0]);
    const got = new Float32Array(3 * n), want = new Float32Array(3 * n);
    matmulTransBSoftmax(3, n, k, a, 0, k, b, 0, k, got, 0, n, 1);
    matmulTransBSoftmaxRef(3, n, k, a, 0, k, b, 0, k, want, 0, n, 1);
    expect(got.subarray(n, 2 * n).every(Number.isNaN)).toBe(true);
    check(got.subarray(0, n), want.subarray(0, n), "row 0");
    check(got.subarray(2 * n), want.subarray(2 * n), "row 2 (scores up to 3000)");
    expect(got[3 * n - 1]).toBe(1);
  });
  it("wasm: a NaN score, in a 4-float group or in the tail, makes its row NaN, as in softmaxRows", () => {
    setBackend("wasm");
    for (const at of [1, 5, 8]) { // n = 9: groups of 4 at 0 and 4, the tail at 8
      const n = 9;
      const a = new Float32Array([1]);
      const b = new Float32Array(n).map((_, j) => j - 4);
      b[at] = NaN;
      const got = new Float32Array(n), want = new Float32Array(n);
      matmulTransBSoftmax(1, n, 1, a, 0, 1, b, 0, 1, got, 0, n, 1);
      matmulTransBSoftmaxRef(1, n, 1, a, 0, 1, b, 0, 1, want, 0, n, 1);
      expect(want.every(Number.isNaN), `naive, NaN at ${at}`).toBe(true);
      expect(got.every(Number.isNaN), `wasm, NaN at ${at}`).toBe(true);
    }
  });
});

describe("linearResidual (the output projections with their residual)", () => {
  afterAll(() => setBackend("wasm"));
  for (const backend of ["wasm", "ts"] as const) {
    it(`${backend}: bit-identical to linear followed by the TypeScript add, over row rounds and column blocks`, () => {
      setBackend(backend);
      let seed = 520;
      const shapes = backend === "wasm" ? [[1, 1, 1], [3, 7, 13], [13, 129, 300], [600, 1030, 70], [5, 9000, 33]] : [[1, 1, 1], [3, 7, 13], [13, 129, 300]];
      for (const [m, n, k] of shapes) {
        const a = rand(m * k, seed++), w = packWeight(rand(n * k, seed++), n, k), bias = rand(n, seed++);
        const residual = rand(m * n, seed++).map((v) => v * 100); // big enough that the float32 add rounds
        const fused = filled(m * n + 3), separate = filled(m * n + 3);
        linearResidual(a, w, bias, residual, fused, m);
        linear(a, w, bias, separate, m);
        add(separate, residual, separate, m * n);
        expect(countBitDiffs(fused, separate), `m=${m} n=${n} k=${k}`).toBe(0);
        expect([...fused.subarray(m * n)]).toEqual([SENTINEL, SENTINEL, SENTINEL]);
      }
    });
  }
  it("wasm: the residual block takes the staged A's space (no more wasm memory than linear alone, model size)", () => {
    setBackend("wasm");
    const m = 512, n = 1024, k = 1024;
    const a = rand(m * k, 530), w = packWeight(rand(n * k, 531), n, k), residual = rand(m * n, 532);
    const plainOut = new Float32Array(m * n), fusedOut = new Float32Array(m * n);
    releaseGemmScratch();
    linear(a, w, null, plainOut, m);
    const plain = wasmGemmMemoryBytes();
    releaseGemmScratch();
    linearResidual(a, w, null, residual, fusedOut, m);
    expect(wasmGemmMemoryBytes()).toBe(plain);
    add(plainOut, residual, plainOut, m * n);
    expect(countBitDiffs(fusedOut, plainOut)).toBe(0);
  });
  it("an output overlapping the residual throws SHAPE_MISMATCH", () => {
    const a = rand(6, 1), w = packWeight(rand(6, 2), 2, 3), buf = rand(8, 3);
    expect(() => linearResidual(a, w, null, buf.subarray(0, 4), buf.subarray(2, 6), 2)).toThrow(/overlaps residual/);
    expect(() => linearResidual(a, w, null, buf.subarray(0, 3), buf.subarray(4, 8), 2)).toThrow(/residual \[2,2\]/);
  });
});

describe("wasm: results in out's row layout (n a multiple of 8, dense out: no repacking)", () => {
  afterAll(() => setBackend("wasm"));
  it("every epilogue gives the bits of the repacked path and of the separate TypeScript steps", () => {
    setBackend("wasm");
    let seed = 700;
    for (const [m, n, k] of [[1, 8, 1], [9, 16, 40], [130, 1024, 70], [515, 64, 300]]) {
      const a = rand(m * k, seed++), wRaw = rand(n * k, seed++), w = packWeight(wRaw, n, k), bias = rand(n, seed++);
      const residual = rand(m * n, seed++).map((v) => v * 100);
      // the product: dense out (result rows as out's) against out rows one float wider (the repacked path)
      const dense = filled(m * n + 3), wide = filled(m * (n + 1) + 3);
      matmulTransB(m, n, k, a, 0, k, wRaw, 0, k, dense, 0, n, 0.3);
      matmulTransB(m, n, k, a, 0, k, wRaw, 0, k, wide, 0, n + 1, 0.3);
      let diffs = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) if (!Object.is(dense[i * n + j], wide[i * (n + 1) + j])) diffs++;
      expect(diffs, `transB m=${m} n=${n} k=${k}`).toBe(0);
      expect([...dense.subarray(m * n)]).toEqual([SENTINEL, SENTINEL, SENTINEL]);
      // linear against its reference (on this shape), then the GELU and residual epilogues against linear followed
      // by the TypeScript step
      const [got, want, scale] = runLinear(m, n, k, true, seed++);
      expect(worst(got, want, scale), `linear m=${m} n=${n} k=${k}`).toBeLessThanOrEqual(0);
      const plain = filled(m * n + 3), fused = filled(m * n + 3), separate = filled(m * n + 3);
      linear(a, w, bias, plain, m);
      linearGelu(a, w, bias, fused, m);
      separate.set(plain);
      gelu(separate, separate, m * n);
      expect(countBitDiffs(fused, separate), `gelu m=${m} n=${n} k=${k}`).toBe(0);
      linearResidual(a, w, bias, residual, fused, m);
      add(plain, residual, separate, m * n);
      expect(countBitDiffs(fused, separate), `residual m=${m} n=${n} k=${k}`).toBe(0);
      // the softmax epilogue: dense scores against the repacked path, rows summing to 1
      const sDense = filled(m * n), sWide = filled(m * (n + 1));
      matmulTransBSoftmax(m, n, k, a, 0, k, wRaw, 0, k, sDense, 0, n, 0.1);
      matmulTransBSoftmax(m, n, k, a, 0, k, wRaw, 0, k, sWide, 0, n + 1, 0.1);
      diffs = 0;
      for (let i = 0; i < m; i++) {
        let sum = 0;
        for (let j = 0; j < n; j++) {
          if (!Object.is(sDense[i * n + j], sWide[i * (n + 1) + j])) diffs++;
          sum += sDense[i * n + j];
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
      }
      expect(diffs, `softmax m=${m} n=${n} k=${k}`).toBe(0);
    }
  });
});

describe("linearGelu (the MLP's first layer)", () => {
  afterAll(() => setBackend("wasm"));
  it("wasm: GELU in wasm memory is bit-identical to linear followed by the TypeScript gelu", () => {
    setBackend("wasm");
    let seed = 500;
    for (const [m, n, k] of [[1, 1, 1], [3, 7, 13], [13, 129, 300], [130, 1030, 70], [5, 9000, 33]]) {
      const a = rand(m * k, seed++).map((v) => v * 3), w = packWeight(rand(n * k, seed++), n, k), bias = rand(n, seed++);
      const fused = filled(m * n + 3), separate = filled(m * n + 3);
      linearGelu(a, w, bias, fused, m);
      linear(a, w, bias, separate, m);
      gelu(separate, separate, m * n);
      expect(countBitDiffs(fused, separate), `m=${m} n=${n} k=${k}`).toBe(0);
      expect([...fused.subarray(m * n)]).toEqual([SENTINEL, SENTINEL, SENTINEL]);
    }
  });
  it("wasm: GELU of special values (±0, tiny, the erf cut-off 6·√2, huge, ±Inf, NaN) is the TypeScript gelu's, in the 4-wide loop and the tail", () => {
    setBackend("wasm");
    // a [m,1] times a weight of ones [n,1], no bias: every output row is a[i] (x·1 + 0: -0 becomes +0)
    const values = [0, -0, 1e-30, -1e-30, 0.5, -0.5, 1 / 32, 3 / 32, -5.99, 6 * Math.SQRT2, -6 * Math.SQRT2, Math.fround(6 * Math.SQRT2) * (1 - 2 ** -23),
      8.49, -8.49, 100, -100, 3.4e38, -3.4e38, Infinity, -Infinity, NaN];
    const a = new Float32Array(values);
    for (const n of [1, 3, 4, 5, 8, 11]) {
      const got = filled(values.length * n), want = filled(values.length * n), w = packWeight(new Float32Array(n).fill(1), n, 1);
      linearGelu(a, w, null, got, values.length);
      linear(a, w, null, want, values.length);
      for (let i = 0; i < want.length; i++) expect(Object.is(want[i], a[Math.floor(i / n)] + 0), `linear: x=${a[Math.floor(i / n)]}`).toBe(true);
      gelu(want, want, want.length);
      for (let i = 0; i < want.length; i++) {
        if (Number.isNaN(want[i])) expect(got[i], `n=${n} x=${a[Math.floor(i / n)]}`).toBeNaN();
        else expect(Object.is(got[i], want[i]), `n=${n} x=${a[Math.floor(i / n)]}: ${got[i]} vs ${want[i]}`).toBe(true);
      }
    }
  });
  for (const backend of ["wasm", "ts"] as const) {
    it(`${backend}: matches the reference linearGelu on odd shapes`, () => {
      setBackend(backend);
      let seed = 600;
      for (const m of [1, 7, 129]) for (const n of [3, 13, 129]) for (const k of [1, 33, 300]) {
        const a = rand(m * k, seed++), w = rand(n * k, seed++), bias = rand(n, seed++);
        const got = filled(m * n), want = filled(m * n), scale = filled(m * n);
        linearGelu(a, packWeight(w, n, k), bias, got, m);
        linearGeluRef(a, w, bias, want, m, n, k);
        ref.linear(abs(a), abs(w), abs(bias), scale, m, n, k); // |gelu'| <= 1.13: the product's bound carries over
        for (let i = 0; i < got.length; i++) {
          expect(Math.abs(got[i] - want[i]), `m=${m} n=${n} k=${k} [${i}]`).toBeLessThanOrEqual(1.2 * REL * (1 + scale[i]));
        }
      }
    });
  }
});

describe("attentionHeads (multi-head attention in wasm memory)", () => {
  afterAll(() => setBackend("wasm"));
  /** q, k, v of `heads` heads with offsets and row strides wider than the heads; out sentinel-filled around its region */
  const problem = (m: number, n: number, heads: number, dqk: number, dv: number, seed: number) => {
    const ldq = heads * dqk + 3, ldk = heads * dqk + 1, ldv = heads * dv + 2, ldo = heads * dv + 5;
    return {
      q: rand(2 + m * ldq, seed).map((x) => x * 4), ldq, k: rand(1 + n * ldk, seed + 1), ldk,
      v: rand(3 + n * ldv, seed + 2), ldv, ldo, out: () => filled(4 + m * ldo),
    };
  };
  // (m queries, n keys, heads, qk channels per head, v channels per head): odd sizes, row blocks of 128 crossed,
  // keys crossing KC chunks, one head and eight
  const SHAPES_ATT = [[1, 1, 1, 1, 1], [5, 7, 3, 5, 3], [130, 257, 2, 13, 9], [300, 600, 3, 33, 17], [64, 2000, 1, 256, 256], [129, 64, 8, 128, 128]];

  it("wasm: bit-identical to matmulTransBSoftmax then matmul per head, close to the reference, writes only its region", () => {
    setBackend("wasm");
    let seed = 900;
    for (const [m, n, heads, dqk, dv] of SHAPES_ATT) {
      const x = problem(m, n, heads, dqk, dv, (seed += 3));
      const got = x.out(), perHead = x.out(), naive = x.out();
      expect(attentionHeads({ m, n, heads, dqk, dv, q: x.q, qOff: 2, ldq: x.ldq, k: x.k, kOff: 1, ldk: x.ldk, v: x.v, vOff: 3, ldv: x.ldv, out: got, oOff: 4, ldo: x.ldo, alpha: 0.3 })).toBe(true);
      attentionPerHead(m, n, heads, dqk, dv, x.q, 2, x.ldq, x.k, 1, x.ldk, x.v, 3, x.ldv, perHead, 4, x.ldo, 0.3);
      ref.attention({ m, n, heads, dqk, dv, q: x.q, qOff: 2, ldq: x.ldq, k: x.k, kOff: 1, ldk: x.ldk, v: x.v, vOff: 3, ldv: x.ldv, out: naive, oOff: 4, ldo: x.ldo, alpha: 0.3 });
      const shape = `m=${m} n=${n} heads=${heads} dqk=${dqk} dv=${dv}`;
      expect(countBitDiffs(got, perHead), shape).toBe(0);
      let err = 0;
      for (let i = 0; i < got.length; i++) err = Math.max(err, Math.abs(got[i] - naive[i]));
      expect(err, shape).toBeLessThan(1e-5); // |v| <= 0.5 and the probabilities sum to 1: float32 rounding only
      expectOnlyRegionWritten(got, m, heads * dv, 4, x.ldo);
    }
  });

  it("wasm: the context and working blocks take the staged K and V rows' space (the self-attention's shape)", () => {
    setBackend("wasm");
    // 512 queries and keys, 8 heads of 128: Q, K, V, key panels and value panels are 2 MB each; the context (2 MB)
    // and one job's working blocks (1.4 MB) fit where K and V were staged, so the whole is about 10.5 MB
    const m = 512, n = 512, heads = 8, d = 128, C = heads * d;
    const q = rand(m * C, 940), kk = rand(n * C, 941), v = rand(n * C, 942);
    const got = new Float32Array(m * C), perHead = new Float32Array(m * C);
    releaseGemmScratch();
    expect(attentionHeads({ m, n, heads, dqk: d, dv: d, q, qOff: 0, ldq: C, k: kk, kOff: 0, ldk: C, v, vOff: 0, ldv: C, out: got, oOff: 0, ldo: C, alpha: 0.1 })).toBe(true);
    const staged = 5 * m * C * 4;
    expect(wasmGemmMemoryBytes()).toBeGreaterThan(staged);
    expect(wasmGemmMemoryBytes()).toBeLessThan(staged + 0.7e6);
    attentionPerHead(m, n, heads, d, d, q, 0, C, kk, 0, C, v, 0, C, perHead, 0, C, 0.1);
    expect(countBitDiffs(got, perHead)).toBe(0);
  });

  it("returns false and writes nothing on the ts backend and past ATTENTION_MAX_KEYS keys", () => {
    const x = problem(3, 5, 2, 4, 4, 950);
    setBackend("ts");
    const out = x.out();
    expect(attentionHeads({ m: 3, n: 5, heads: 2, dqk: 4, dv: 4, q: x.q, qOff: 2, ldq: x.ldq, k: x.k, kOff: 1, ldk: x.ldk, v: x.v, vOff: 3, ldv: x.ldv, out, oOff: 4, ldo: x.ldo, alpha: 1 })).toBe(false);
    expect(out.every((v) => v === SENTINEL)).toBe(true);
    setBackend("wasm");
    const n = ATTENTION_MAX_KEYS + 1;
    const k = rand(n * 4, 951), v = rand(n * 4, 952), q = rand(3 * 4, 953), o = filled(3 * 4);
    expect(attentionHeads({ m: 3, n, heads: 1, dqk: 4, dv: 4, q, qOff: 0, ldq: 4, k, kOff: 0, ldk: 4, v, vOff: 0, ldv: 4, out: o, oOff: 0, ldo: 4, alpha: 1 })).toBe(false);
    expect(o.every((e) => e === SENTINEL)).toBe(true);
  });

  it("bad shapes throw SHAPE_MISMATCH before anything runs", () => {
    const q = rand(10, 1), k = rand(10, 2), v = rand(10, 3), out = filled(10);
    const call = (m: number, ldq: number, ldo: number) => () => attentionHeads({ m, n: 2, heads: 1, dqk: 4, dv: 4, q, qOff: 0, ldq, k, kOff: 0, ldk: 4, v, vOff: 0, ldv: 4, out, oOff: 0, ldo, alpha: 1 });
    expect(call(3, 4, 4)).toThrow(/q \[3,4\]/); // 12 floats of q, 10 given
    expect(call(2, 4, 3)).toThrow(/row stride ldo=3/);
    expect(call(-1, 4, 4)).toThrow(PerceiverError);
  });
});

describe("layerNormRows (layer norm in wasm memory)", () => {
  afterAll(() => setBackend("wasm"));
  it("wasm: bit-identical to the TypeScript layerNorm on odd shapes, in place too; writes only its rows", () => {
    setBackend("wasm");
    let seed = 700;
    for (const [rows, dim] of [[1, 1], [3, 7], [5, 322], [130, 1024], [4000, 1030], [2, 100_000]]) {
      const x = rand(rows * dim + 3, seed++).map((v, i) => v * 5 + (i % 7)); // an offset: mean far from 0
      const w = rand(dim, seed++), b = rand(dim, seed++);
      const got = filled(rows * dim + 2), want = filled(rows * dim + 2);
      layerNormRows(x, w, b, got, rows, dim, 1e-5);
      layerNorm(x, w, b, want, rows, dim, 1e-5);
      expect(countBitDiffs(got, want), `rows=${rows} dim=${dim}`).toBe(0);
      const inPlace = x.slice();
      layerNormRows(inPlace, w, b, inPlace, rows, dim, 1e-5);
      expect(countBitDiffs(inPlace.subarray(0, rows * dim), want.subarray(0, rows * dim))).toBe(0);
      expect([...inPlace.subarray(rows * dim)]).toEqual([...x.subarray(rows * dim)]);
    }
  });
});

describe("backend selection", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    vi.resetModules();
    setBackend("wasm");
  });

  it("setBackend / getBackend switch kernels; ts is bit-exact with the twins, wasm is not", () => {
    const m = 13, n = 129, k = 300;
    setBackend("ts");
    expect(getBackend()).toBe("ts");
    const [tsGot, want] = runLinear(m, n, k, true, 50);
    expect(countBitDiffs(tsGot, want)).toBe(0);
    setBackend("wasm");
    expect(getBackend()).toBe("wasm");
    const [wasmGot, want2, scale] = runLinear(m, n, k, true, 50);
    expect(worst(wasmGot, want2, scale)).toBeLessThanOrEqual(0);
    expect(countBitDiffs(wasmGot, want2)).toBeGreaterThan(0); // float32 runs round differently
  });

  it("setBackend rejects unknown names with INPUT_INVALID", () => {
    expect(() => setBackend("gpu" as never)).toThrow(PerceiverError);
    try {
      setBackend("gpu" as never);
    } catch (e) {
      expect((e as PerceiverError).code).toBe("INPUT_INVALID");
    }
  });

  it("without WebAssembly SIMD (validate fails) the backend is ts, wasm is refused, and the products still work", async () => {
    vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    vi.resetModules();
    const g = await import("../src/tensor/gemm.js");
    expect(g.getBackend()).toBe("ts");
    let code: string | undefined;
    try {
      g.setBackend("wasm");
    } catch (e) {
      code = e instanceof PerceiverError || (e as { name?: string }).name === "PerceiverError" ? (e as PerceiverError).code : "other";
    }
    expect(code).toBe("CONFIG_UNSUPPORTED");
    expect(g.getBackend()).toBe("ts");
    const a = rand(7 * 9, 1), w = rand(5 * 9, 2), got = new Float32Array(35), want = new Float32Array(35);
    g.linear(a, g.packWeight(w, 5, 9), null, got, 7);
    ref.linear(a, w, null, want, 7, 5, 9);
    expect(countBitDiffs(got, want)).toBe(0);
  });

  it("PERCEIVER_BACKEND=wasm|ts|reference is read on first use; unset means automatic; another name is a typed error", async () => {
    const load = async (value: string) => {
      vi.stubEnv("PERCEIVER_BACKEND", value);
      vi.resetModules();
      return (await import("../src/tensor/gemm.js")).getBackend();
    };
    expect(await load("")).toBe("wasm"); // automatic: WebAssembly SIMD exists in Node 20
    expect(await load("ts")).toBe("ts");
    expect(await load("wasm")).toBe("wasm");
    expect(await load("reference")).toBe("reference");
    const e = await load("fast").then(() => null, (err: unknown) => err);
    expect((e as { name?: string }).name).toBe("PerceiverError");
    expect((e as PerceiverError).code).toBe("INPUT_INVALID");
    expect((e as Error).message).toMatch(/PERCEIVER_BACKEND: expected one of "wasm", "ts", "reference", got "fast"/);
    // setBackend still works after a bad variable (and replaces it)
    const g = await import("../src/tensor/gemm.js");
    g.setBackend("ts");
    expect(g.getBackend()).toBe("ts");
  });

  it("PERCEIVER_BACKEND=wasm without WebAssembly SIMD is a CONFIG_UNSUPPORTED error, not a fallback", async () => {
    vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    vi.stubEnv("PERCEIVER_BACKEND", "wasm");
    vi.resetModules();
    const g = await import("../src/tensor/gemm.js");
    const e = (() => {
      try {
        g.getBackend();
        return null;
      } catch (err) {
        return err;
      }
    })();
    expect((e as PerceiverError).code).toBe("CONFIG_UNSUPPORTED");
    expect((e as Error).message).toMatch(/WebAssembly SIMD is not available/);
  });
});
