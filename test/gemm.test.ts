/**
 * The optimized matrix products against their reference loops.
 *
 * Tolerance (every comparison): |got − want| ≤ 1e-5 · (1 + Σ|terms|) per output, where Σ|terms| is the same
 * product on absolute values (|bias| + Σ_p |a·b|, times |alpha|). By design (one double accumulator per output,
 * same summation order as the twin) the results are in fact bit-for-bit equal; one test pins that down.
 * Every output buffer is larger than its region and pre-filled with a sentinel, to catch stray writes.
 * These are the TypeScript kernels: the backend is pinned to "ts" (test/gemm-wasm.test.ts covers "wasm"). Every
 * test runs twice: with the micro-kernel as the asm.js module (gemm-asm.ts) and as its TypeScript twin `blockTs`
 * (what runs where `new Function` is refused).
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import {
  linear, matmul, matmulTransB, packWeight, setBackend,
} from "../src/tensor/gemm.js";
import * as ref from "../src/tensor/reference/index.js";
import { ASM_GEMM_SOURCE, asmHeap, releaseAsmHeap, setAsmBlockForTests } from "../src/tensor/gemm-asm.js";
import {
  ODD, SENTINEL, abs, countBitDiffs, dense, expectOnlyRegionWritten, filled, rand, runLinear, runMatmul,
  runTransB, strided, worst,
} from "./helpers/gemm.js";

beforeAll(() => setBackend("ts"));
afterAll(() => setAsmBlockForTests(false));

describe("the asm.js micro-kernel", () => {
  /** What Node prints (stderr) when it compiles and links `source` as the kernel module, in a child process. */
  const linkMessages = (source: string): string => {
    const r = spawnSync(process.execPath, [
      "-e", `new Function("stdlib", "foreign", "heap", process.env.ASM_SOURCE)(globalThis, {}, new ArrayBuffer(1 << 24));`,
    ], { encoding: "utf8", env: { ...process.env, ASM_SOURCE: source } });
    expect(r.status, r.stderr).toBe(0);
    return r.stderr;
  };

  it("V8 validates and links the module as asm.js: Node prints no asm.js warning", () => {
    expect(linkMessages(ASM_GEMM_SOURCE)).not.toMatch(/asm\.js/i);
  });

  it("a module with a type error does print that warning (so the check above can fail)", () => {
    const bad = ASM_GEMM_SOURCE.replace("var alpha = 0.0", "var alpha = 0");
    expect(bad).not.toBe(ASM_GEMM_SOURCE);
    expect(linkMessages(bad)).toMatch(/Invalid asm\.js/);
  });

  it("the TypeScript kernels' heap runs the module; heap sizes are multiples of 16 MB", () => {
    releaseAsmHeap();
    const heap = asmHeap(1);
    expect(heap.kind).toBe("asm.js");
    expect(heap.f32.byteLength % (1 << 24)).toBe(0);
    expect(asmHeap((1 << 24) + 4).f32.byteLength).toBe(2 << 24);
    const [got, want, scale] = runLinear(9, 7, 33, true, 1);
    expect(worst(got, want, scale)).toBeLessThanOrEqual(0);
  });
});

for (const block of ["asm.js", "typescript"] as const) {
  describe(`micro-kernel: ${block}`, () => {
    beforeAll(() => {
      setAsmBlockForTests(block === "typescript");
      expect(asmHeap(1).kind).toBe(block);
    });

    // ---------------------------------------------------------------------------------------------------------------

    describe("linear", () => {
      it("matches the reference linear on odd shapes, with and without bias", () => {
        let seed = 1;
        for (const m of ODD) for (const n of ODD) for (const k of ODD) for (const withBias of [false, true]) {
          const [got, want, scale] = runLinear(m, n, k, withBias, seed++);
          expect(worst(got, want, scale), `m=${m} n=${n} k=${k} bias=${withBias}`).toBeLessThanOrEqual(0);
        }
      });

      it("k = 0 gives the bias (or 0); m = 0 and n = 0 write nothing", () => {
        const bias = rand(5, 9);
        const out = filled(3 * 5 + 2);
        linear(new Float32Array(0), packWeight(new Float32Array(0), 5, 0), bias, out, 3);
        for (let i = 0; i < 3; i++) expect(Array.from(out.subarray(i * 5, i * 5 + 5))).toEqual(Array.from(bias));
        expectOnlyRegionWritten(out, 3, 5, 0, 5);
        linear(new Float32Array(0), packWeight(new Float32Array(0), 5, 0), null, out, 3);
        expect(Array.from(out.subarray(0, 15)).every((v) => v === 0)).toBe(true);

        const untouched = filled(4);
        linear(new Float32Array(0), packWeight(rand(5 * 7, 1), 5, 7), bias, untouched, 0);
        linear(rand(3 * 7, 2), packWeight(new Float32Array(0), 0, 7), null, untouched, 3);
        expect(Array.from(untouched).every((v) => v === SENTINEL)).toBe(true);
      });

      it("works on subarray views and oversized (reused) buffers", () => {
        const m = 9, n = 6, k = 11;
        const big = rand(1000, 3);
        const a = big.subarray(17, 17 + m * k + 40); // longer than m*k: only the first m*k are read
        const w = rand(n * k, 4), bias = rand(n, 5);
        const backing = filled(200);
        const got = backing.subarray(30, 30 + m * n + 10);
        const want = filled(m * n);
        linear(a, packWeight(w, n, k), bias, got, m);
        ref.linear(a, w, bias, want, m, n, k);
        expect(countBitDiffs(got.subarray(0, m * n), want)).toBe(0);
        expectOnlyRegionWritten(backing, 1, m * n, 30, m * n);
      });

      it("one packed weight serves many calls (scratch reuse leaves no stale data)", () => {
        const n = 10, k = 33;
        const w = rand(n * k, 6), pw = packWeight(w, n, k);
        for (const m of [50, 1, 7, 50, 2]) {
          const a = rand(m * k, 100 + m);
          const got = filled(m * n), want = filled(m * n);
          linear(a, pw, null, got, m);
          // a differently shaped product in between reuses the same scratch
          runTransB(5, 3, 200, dense(5, 3, 200, true), 1, 7);
          ref.linear(a, w, null, want, m, n, k);
          expect(countBitDiffs(got, want), `m=${m}`).toBe(0);
        }
      });
    });

    describe("matmulTransB", () => {
      it("matches the reference matmulTransB on odd shapes, dense and strided with offsets, alpha != 1", () => {
        let seed = 1000;
        for (const m of ODD) for (const n of ODD) for (const k of ODD) {
          for (const [layout, alpha] of [[dense, 1], [strided, 0.08838834764831845], [strided, -1.5]] as const) {
            const [got, want, scale] = runTransB(m, n, k, layout(m, n, k, true), alpha, seed++);
            expect(worst(got, want, scale), `m=${m} n=${n} k=${k} alpha=${alpha}`).toBeLessThanOrEqual(0);
          }
        }
      });

      it("k = 0 writes zeros into exactly the region", () => {
        const [got] = runTransB(5, 6, 0, strided(5, 6, 0, true), 0.5, 3);
        const s = strided(5, 6, 0, true);
        for (let i = 0; i < 5; i++) for (let j = 0; j < 6; j++) expect(got[s.oOff + i * s.ldo + j]).toBe(0);
      });

      it("per-head attention views (heads side by side in one [T, H·dh] buffer)", () => {
        const T = 37, S = 29, H = 4, dh = 16, C = H * dh;
        const q = rand(T * C, 11), kx = rand(S * C, 12);
        const got = filled(H * T * S), want = filled(H * T * S);
        for (let h = 0; h < H; h++) {
          matmulTransB(T, S, dh, q, h * dh, C, kx, h * dh, C, got, h * T * S, S, 0.25);
          ref.matmulTransB(T, S, dh, q, h * dh, C, kx, h * dh, C, want, h * T * S, S, 0.25);
        }
        expect(countBitDiffs(got, want)).toBe(0);
      });
    });

    describe("matmul", () => {
      it("matches the reference matmul on odd shapes, dense and strided with offsets", () => {
        let seed = 5000;
        for (const m of ODD) for (const n of ODD) for (const k of ODD) {
          for (const layout of [dense, strided]) {
            const [got, want, scale] = runMatmul(m, n, k, layout(m, n, k, false), seed++);
            expect(worst(got, want, scale), `m=${m} n=${n} k=${k}`).toBeLessThanOrEqual(0);
          }
        }
      });

      it("per-head P·V written into the head's columns of a [T, H·dh] buffer", () => {
        const T = 21, S = 30, H = 3, dh = 10, C = H * dh;
        const p = rand(H * T * S, 21), v = rand(S * C, 22);
        const got = filled(T * C + 3), want = filled(T * C + 3);
        for (let h = 0; h < H; h++) {
          matmul(T, dh, S, p, h * T * S, S, v, h * dh, C, got, h * dh, C);
          ref.matmul(T, dh, S, p, h * T * S, S, v, h * dh, C, want, h * dh, C);
        }
        expect(countBitDiffs(got, want)).toBe(0);
        expectOnlyRegionWritten(got, T, C, 0, C);
      });
    });

    describe("bit-exactness (same summation order as the reference loops)", () => {
      it("all three kernels equal their twins bit for bit on mixed odd shapes", () => {
        const shapes = [[1, 1, 1], [3, 129, 7], [129, 3, 13], [13, 7, 129], [7, 13, 3], [6, 5, 1], [129, 129, 129]];
        const gotVsWant = ([got, want]: Float32Array[]) => countBitDiffs(got, want);
        let diffs = 0;
        let seed = 9000;
        for (const [m, n, k] of shapes) {
          for (const bias of [false, true]) diffs += gotVsWant(runLinear(m, n, k, bias, seed++));
          diffs += gotVsWant(runTransB(m, n, k, strided(m, n, k, true), 0.3, seed++));
          diffs += gotVsWant(runMatmul(m, n, k, strided(m, n, k, false), seed++));
        }
        expect(diffs).toBe(0);
      });
    });

    describe("model-size shapes (sampled rows against the reference loops)", () => {
      /** Rows 0, 1, last, and a spread in between. */
      const sampleRows = (m: number) => [...new Set([0, 1, 2, 3, Math.floor(m / 3), Math.floor(m / 2) + 1, m - 2, m - 1])];

      for (const [m, n, k, seed, what] of [
        [512, 1024, 1024, 31, "the latent self-attention projections"],
        [3025, 322, 322, 41, "cross-attention K/V: partial column panel and a leftover row"],
      ] as const) {
        it(`linear ${m}x${n}x${k} with bias (${what})`, () => {
          const a = rand(m * k, seed), w = rand(n * k, seed + 1), bias = rand(n, seed + 2);
          const out = new Float32Array(m * n);
          linear(a, packWeight(w, n, k), bias, out, m);
          const want = new Float32Array(n), scale = new Float32Array(n);
          for (const i of sampleRows(m)) {
            const row = a.subarray(i * k, (i + 1) * k);
            ref.linear(row, w, bias, want, 1, n, k);
            ref.linear(abs(row), abs(w), abs(bias), scale, 1, n, k);
            expect(worst(out.subarray(i * n, (i + 1) * n), want, scale), `row ${i}`).toBeLessThanOrEqual(0);
          }
        });
      }

      it("attention 512x512x128 scores and 512x128x512 P·V on per-head strided views (lda = ldb = ldo = 1024)", () => {
        const T = 512, C = 1024, dh = 128, h = 5, alpha = 1 / Math.sqrt(dh);
        const q = rand(T * C, 51), kx = rand(T * C, 52), v = rand(T * C, 53);
        const s = new Float32Array(T * T), ctx = filled(T * C);
        matmulTransB(T, T, dh, q, h * dh, C, kx, h * dh, C, s, 0, T, alpha);
        matmul(T, dh, T, s, 0, T, v, h * dh, C, ctx, h * dh, C);
        expectOnlyRegionWritten(ctx, T, dh, h * dh, C);
        const sw = new Float32Array(T), ss = new Float32Array(T), cw = new Float32Array(dh), cs = new Float32Array(dh);
        for (const i of sampleRows(T)) {
          ref.matmulTransB(1, T, dh, q, i * C + h * dh, C, kx, h * dh, C, sw, 0, T, alpha);
          ref.matmulTransB(1, T, dh, abs(q), i * C + h * dh, C, abs(kx), h * dh, C, ss, 0, T, alpha);
          expect(worst(s.subarray(i * T, (i + 1) * T), sw, ss), `scores row ${i}`).toBeLessThanOrEqual(0);
          ref.matmul(1, dh, T, s, i * T, T, v, h * dh, C, cw, 0, dh);
          ref.matmul(1, dh, T, abs(s), i * T, T, abs(v), h * dh, C, cs, 0, dh);
          expect(worst(ctx.subarray(i * C + h * dh, i * C + h * dh + dh), cw, cs), `P·V row ${i}`).toBeLessThanOrEqual(0);
        }
      });
    });

  });
}

describe("bad arguments throw PerceiverError", () => {
  const code = (fn: () => void): string | undefined => {
    try {
      fn();
    } catch (e) {
      if (e instanceof PerceiverError) return e.code;
      throw e;
    }
    return undefined;
  };

  it("linear", () => {
    const w = rand(6 * 4, 1), pw = packWeight(w, 6, 4);
    expect(code(() => linear(rand(8, 1), { n: 6, k: 4, data: w } as never, null, new Float32Array(12), 2))).toBe("SHAPE_MISMATCH");
    expect(code(() => linear(rand(7, 1), pw, null, new Float32Array(12), 2))).toBe("SHAPE_MISMATCH");
    expect(code(() => linear(rand(8, 1), pw, null, new Float32Array(11), 2))).toBe("SHAPE_MISMATCH");
    expect(code(() => linear(rand(8, 1), pw, rand(5, 1), new Float32Array(12), 2))).toBe("SHAPE_MISMATCH");
    expect(code(() => linear(rand(8, 1), pw, null, new Float32Array(12), -1))).toBe("SHAPE_MISMATCH");
    expect(code(() => linear(rand(8, 1), pw, null, new Float32Array(12), 1.5))).toBe("SHAPE_MISMATCH");
    expect(code(() => linear(rand(8, 1), pw, rand(6, 1), new Float32Array(12), 2))).toBeUndefined();
  });

  it("packWeight", () => {
    expect(code(() => packWeight(rand(23, 1), 6, 4))).toBe("SHAPE_MISMATCH");
    expect(code(() => packWeight(rand(24, 1), 6, -4))).toBe("SHAPE_MISMATCH");
  });

  it("matmulTransB and matmul", () => {
    const a = rand(20, 1), b = rand(20, 2), out = new Float32Array(20);
    expect(code(() => matmulTransB(4, 4, 5, a, 1, 5, b, 0, 5, out, 0, 4, 1))).toBe("SHAPE_MISMATCH"); // a overruns
    expect(code(() => matmulTransB(4, 4, 5, a, 0, 5, b, 0, 5, out, 5, 4, 1))).toBe("SHAPE_MISMATCH"); // out overruns
    expect(code(() => matmulTransB(2, 4, 5, a, 0, 5, b, 0, 5, out, 0, 3, 1))).toBe("SHAPE_MISMATCH"); // rows overlap
    expect(code(() => matmulTransB(4, 4, 5, a, 0, 5, b, 0, 5, out, 0, 4, 1))).toBeUndefined();
    expect(code(() => matmul(4, 4, 5, a, 0, 5, b, 1, 4, out, 0, 4))).toBe("SHAPE_MISMATCH"); // b [5,4] from 1 overruns
    expect(code(() => matmul(Number.NaN, 4, 5, a, 0, 5, b, 0, 4, out, 0, 4))).toBe("SHAPE_MISMATCH");
    expect(code(() => matmul(4, 4, 5, a, 0, 5, b, 0, -4, out, 0, 4))).toBe("SHAPE_MISMATCH");
    expect(code(() => matmul(4, 4, 5, a, 0, 5, b, 0, 4, out, 0, 4))).toBeUndefined();
  });
});
