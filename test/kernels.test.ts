/** Elementwise, normalization, softmax, convolution and pooling kernels against straightforward references. */
import { describe, expect, it } from "vitest";
import { erf, erfFast, gelu, relu } from "../src/tensor/activations.js";
import { batchNorm2d, conv2dGemm, maxPool2d } from "../src/tensor/conv.js";
import * as ref from "../src/tensor/reference/index.js";
import { getBackend, packWeight, setBackend } from "../src/tensor/gemm.js";
import { layerNorm } from "../src/tensor/layernorm.js";
import { copyBlock, repeatItemColumns, transposeInto } from "../src/tensor/layout.js";
import { indexOfNonFinite } from "../src/tensor/tensor.js";
import { softmaxRows } from "../src/tensor/softmax.js";
import { fourierPositionEncoding, linspaceF32 } from "../src/perceiver/position-encoding.js";

function rand(n: number, seed = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

describe("erf / gelu", () => {
  // reference values of erf (Abramowitz & Stegun tables / mpmath, 16 digits)
  const table: [number, number][] = [
    [0, 0], [1e-8, 1.1283791670955126e-8], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465],
    [1, 0.8427007929497149], [1.5, 0.9661051464753108], [2, 0.9953222650189527],
    [2.5, 0.9995930479825550], [3, 0.9999779095030014], [4, 0.9999999845827421], [5, 0.9999999999984626], [7, 1],
  ];
  it("matches reference values to 1e-12 relative", () => {
    for (const [x, v] of table) {
      const tol = 1e-12;
      expect(Math.abs(erf(x) - v)).toBeLessThanOrEqual(tol * Math.max(Math.abs(v), 1e-300) + 1e-300);
      if (x !== 0) expect(erf(-x)).toBe(-erf(x));
    }
  });
  it("is continuous where the series hands over to the continued fraction (x = 2.5)", () => {
    expect(Math.abs(erf(2.5 - 1e-12) - erf(2.5))).toBeLessThan(1e-13);
  });
  it("erfc tail is accurate (1 - erf at x = 3 and 4)", () => {
    expect(Math.abs(1 - erf(3) - 2.209049699858544e-5) / 2.209049699858544e-5).toBeLessThan(1e-9);
    expect(Math.abs(1 - erf(4) - 1.541725790028002e-8) / 1.541725790028002e-8).toBeLessThan(1e-6);
  });
  it("gelu is the exact erf form, not tanh", () => {
    const x = new Float32Array([-3, -1, -0.5, 0, 0.5, 1, 3, 10, -10]);
    const out = new Float32Array(x.length);
    gelu(x, out, x.length);
    for (let i = 0; i < x.length; i++) {
      expect(out[i]).toBe(Math.fround(0.5 * x[i] * (1 + erf(x[i] / Math.SQRT2))));
    }
    // torch.nn.functional.gelu(torch.tensor(1.0)) = 0.8413447460685429 (tanh approx would give 0.8411920)
    expect(Math.abs(out[5] - 0.8413447460685429)).toBeLessThan(1e-7);
    expect(out[8]).toBe(-0);
  });
  it("erfFast (GELU's) is within 4e-15 of erf on a dense sweep, odd at 0, exact at the edges", () => {
    let worst = 0;
    for (let i = -700_000; i <= 700_000; i++) {
      const x = i * 1e-5 + (i % 7) * 1e-9; // off-grid points too
      worst = Math.max(worst, Math.abs(erfFast(x) - erf(x)));
    }
    console.log(`max |erfFast - erf| on [-7, 7]: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(4e-15);
    expect(erfFast(0)).toBe(0);
    expect(erfFast(6)).toBe(1);
    expect(erfFast(-Infinity)).toBe(-1);
    expect(erfFast(Number.NaN)).toBeNaN();
    expect(erfFast(-1.25)).toBe(-erfFast(1.25));
  });
  // 1 + erf(x/√2) cancels for x << 0, so the bound has an absolute part: 0.5·|x|·4e-15 (the erfFast bound)
  it("gelu matches its naive twin within 1 float32 ulp + 2e-15·|x| (almost always bit-identical)", () => {
    const x = rand(1_000_000, 3).map((v) => v * 8);
    x.set([0, -0, 1e-30, -1e-30, 3.4e38, -3.4e38, 5.999, -8.4853], 0);
    const fast = new Float32Array(x.length), naive = new Float32Array(x.length);
    gelu(x, fast, x.length);
    ref.gelu(x, naive, x.length);
    let diffs = 0; // outside the cancelling tail
    for (let i = 0; i < x.length; i++) {
      if (Object.is(fast[i], naive[i])) continue;
      if (Math.abs(naive[i]) > 1e-6) diffs++;
      const ulp = Math.abs(Math.fround(naive[i] * (1 + 2 ** -23)) - naive[i]) || 2 ** -149;
      expect(Math.abs(fast[i] - naive[i]), `x=${x[i]}`).toBeLessThanOrEqual(ulp + 2e-15 * Math.abs(x[i]));
    }
    console.log(`gelu vs the reference gelu: ${diffs} of ${x.length} differ where |gelu| > 1e-6 (all within the bound)`);
    expect(diffs).toBeLessThan(x.length / 1000);
  });
  it("relu", () => {
    const x = new Float32Array([-1, 0, 2]);
    relu(x, x, 3);
    expect([...x]).toEqual([0, 0, 2]);
  });
});

describe("layerNorm", () => {
  it("matches a float64 reference on odd widths", () => {
    for (const dim of [1, 3, 7, 13, 129, 322]) {
      const rows = 5;
      const x = rand(rows * dim, dim);
      const w = rand(dim, 7), b = rand(dim, 9);
      const out = new Float32Array(rows * dim);
      layerNorm(x, w, b, out, rows, dim, 1e-5);
      for (let r = 0; r < rows; r++) {
        const row = Array.from(x.subarray(r * dim, (r + 1) * dim));
        const mean = row.reduce((p, v) => p + v, 0) / dim;
        const v = row.reduce((p, q) => p + (q - mean) ** 2, 0) / dim;
        for (let i = 0; i < dim; i++) {
          const ref = ((row[i] - mean) / Math.sqrt(v + 1e-5)) * w[i] + b[i];
          expect(Math.abs(out[r * dim + i] - ref)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(ref)));
        }
      }
    }
  });
  it("can run in place", () => {
    const x = rand(2 * 13);
    const out = new Float32Array(26);
    const w = new Float32Array(13).fill(1), b = new Float32Array(13);
    layerNorm(x, w, b, out, 2, 13, 1e-5);
    layerNorm(x, w, b, x, 2, 13, 1e-5);
    expect([...x]).toEqual([...out]);
  });
});

describe("softmaxRows", () => {
  it("is stable for large logits and sums to 1", () => {
    const x = new Float32Array([1000, 1001, 1002, -1000, 0, 1000]);
    softmaxRows(x, 0, 2, 3, 3);
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const s = e[0] + e[1] + e[2];
    for (let i = 0; i < 3; i++) expect(Math.abs(x[i] - e[i] / s)).toBeLessThan(1e-7);
    expect(x[3]).toBe(0);
    expect(Math.abs(x[5] - 1)).toBeLessThan(1e-7);
  });
  it("respects offset and stride", () => {
    const x = new Float32Array([9, 0, 0, 9, 9, 0, 0, 9]);
    softmaxRows(x, 1, 2, 2, 4);
    expect([...x]).toEqual([9, 0.5, 0.5, 9, 9, 0.5, 0.5, 9].map(Math.fround));
  });
});

/** Conv reference: explicit zero-padded copy of the input, then the textbook 6-loop sum. */
function conv2dReference(x: Float32Array, c: number, h: number, w: number, wt: Float32Array, o: number, kh: number, kw: number, bias: Float32Array | null, stride: number, pad: [number, number, number, number]) {
  const [pt, pb, pl, pr] = pad;
  const hp = h + pt + pb, wp = w + pl + pr;
  const xp = new Float64Array(c * hp * wp);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) xp[(ch * hp + i + pt) * wp + j + pl] = x[(ch * h + i) * w + j];
  const ho = Math.floor((hp - kh) / stride) + 1, wo = Math.floor((wp - kw) / stride) + 1;
  const out = new Float32Array(o * ho * wo);
  for (let oc = 0; oc < o; oc++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
    let s = bias ? bias[oc] : 0;
    for (let ch = 0; ch < c; ch++) for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) {
      s += xp[(ch * hp + i * stride + a) * wp + j * stride + b] * wt[((oc * c + ch) * kh + a) * kw + b];
    }
    out[(oc * ho + i) * wo + j] = s;
  }
  return { out, ho, wo };
}

describe("conv2d / maxPool2d / batchNorm2d", () => {
  const cases: [number, number, number, number, number, number, [number, number, number, number]][] = [
    // c, h, w, o, k, stride, pad
    [3, 13, 7, 5, 7, 2, [3, 3, 3, 3]],
    [1, 1, 1, 1, 1, 1, [0, 0, 0, 0]],
    [2, 9, 11, 3, 3, 1, [1, 0, 2, 1]],
    [3, 16, 16, 4, 7, 2, [2, 3, 2, 3]],
    [4, 5, 6, 2, 3, 3, [0, 0, 0, 0]],
  ];
  for (const [c, h, w, o, k, s, pad] of cases) {
    it(`conv ${c}x${h}x${w} -> ${o}, k${k} s${s} pad ${pad.join(",")}`, () => {
      const x = rand(c * h * w, 3), wt = rand(o * c * k * k, 4), bias = rand(o, 5);
      for (const b of [null, bias]) {
        const want = conv2dReference(x, c, h, w, wt, o, k, k, b, s, pad);
        const out = new Float32Array(o * want.ho * want.wo);
        ref.conv2d(x, c, h, w, wt, o, k, k, b, { stride: s, pad }, out);
        for (let i = 0; i < out.length; i++) expect(Math.abs(out[i] - want.out[i])).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(want.out[i])));
      }
    });
    it(`conv2dGemm (im2col + linear) matches conv2d, ${c}x${h}x${w} -> ${o}, k${k} s${s}, on every backend`, () => {
      const x = rand(c * h * w, 3), wt = rand(o * c * k * k, 4), bias = rand(o, 5);
      const before = getBackend();
      try {
        for (const backend of ["ts", "wasm", "reference"] as const) {
          setBackend(backend);
          for (const b of [null, bias]) {
            const twin = conv2dReference(x, c, h, w, wt, o, k, k, b, s, pad);
            const out = new Float32Array(o * twin.ho * twin.wo + 3).fill(777);
            conv2dGemm(x, c, h, w, packWeight(wt, o, c * k * k), k, k, b, { stride: s, pad }, out);
            for (let i = 0; i < twin.out.length; i++) expect(Math.abs(out[i] - twin.out[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(twin.out[i])));
            expect([...out.subarray(twin.out.length)]).toEqual([777, 777, 777]);
          }
        }
      } finally {
        setBackend(before);
      }
    });
  }
  it("conv2dGemm over more than one im2col chunk (64x64 image, 3x3/1) matches conv2d", () => {
    const c = 2, h = 70, w = 66, o = 5, k = 3;
    const x = rand(c * h * w, 8), wt = rand(o * c * k * k, 9);
    const twin = new Float32Array(o * 68 * 64), out = new Float32Array(twin.length);
    ref.conv2d(x, c, h, w, wt, o, k, k, null, { stride: 1, pad: [0, 0, 0, 0] }, twin);
    conv2dGemm(x, c, h, w, packWeight(wt, o, c * k * k), k, k, null, { stride: 1, pad: [0, 0, 0, 0] }, out);
    for (let i = 0; i < out.length; i++) expect(Math.abs(out[i] - twin[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(twin[i])));
    expect(() => conv2dGemm(x, c, h, w, packWeight(wt, o, c * k * k), 5, 5, null, { stride: 1, pad: [0, 0, 0, 0] }, out))
      .toThrow(expect.objectContaining({ code: "SHAPE_MISMATCH" }));
  });
  it("maxPool2d 3x3/2 unpadded, floor mode", () => {
    const c = 2, h = 7, w = 8;
    const x = rand(c * h * w, 11);
    const ho = 3, wo = 3;
    const out = new Float32Array(c * ho * wo);
    maxPool2d(x, c, h, w, 3, 2, out);
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
      let m = -Infinity;
      for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) m = Math.max(m, x[(ch * h + 2 * i + a) * w + 2 * j + b]);
      expect(out[(ch * ho + i) * wo + j]).toBe(m);
    }
  });
  it("batchNorm2d (eval) uses running stats", () => {
    const x = new Float32Array([1, 2, 3, 4]);
    batchNorm2d(x, 2, 2, new Float32Array([1, 2]), new Float32Array([4, 1]), new Float32Array([2, 1]), new Float32Array([0, 1]), 0, x);
    expect([...x]).toEqual([0, 1, 2, 3]);
  });
});

describe("layout: transposeInto, copyBlock, repeatItemColumns / indexOfNonFinite", () => {
  it("channel-major [C, T] -> rows of tokens with a wider stride, offsets on both sides, other elements untouched", () => {
    for (const [rows, cols, ld, sOff, dOff] of [[1, 1, 1, 0, 0], [3, 7, 5, 2, 1], [64, 55 * 55, 322, 0, 3], [5, 1, 9, 4, 0]]) {
      const src = rand(sOff + rows * cols, rows + cols);
      const dst = new Float32Array(dOff + (cols - 1) * ld + rows + 2).fill(-7);
      transposeInto(src, sOff, rows, cols, dst, dOff, ld);
      const want = new Float32Array(dst.length).fill(-7);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) want[dOff + j * ld + i] = src[sOff + i * cols + j];
      expect(dst, `${rows}x${cols} ld ${ld}`).toEqual(want);
    }
  });
  it("copyBlock: strided and dense blocks, other elements untouched", () => {
    for (const [rows, cols, sld, dld, sOff, dOff] of [[1, 1, 1, 1, 0, 0], [4, 6, 6, 6, 3, 2], [5, 3, 7, 4, 1, 0], [3, 9, 9, 12, 0, 5]]) {
      const src = rand(sOff + rows * sld, rows * cols);
      const dst = new Float32Array(dOff + rows * dld + 2).fill(-7);
      copyBlock(src, sOff, sld, dst, dOff, dld, rows, cols);
      const want = new Float32Array(dst.length).fill(-7);
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) want[dOff + i * dld + j] = src[sOff + i * sld + j];
      expect(dst, `${rows}x${cols} ${sld}/${dld}`).toEqual(want);
    }
  });
  it("repeatItemColumns: item 0's columns from c0 on, copied into every other item; the first columns kept", () => {
    const batch = 3, rows = 5, ld = 7, c0 = 2;
    const x = rand(batch * rows * ld, 8);
    const want = Float32Array.from(x);
    for (let b = 1; b < batch; b++) for (let t = 0; t < rows; t++) for (let j = c0; j < ld; j++) want[(b * rows + t) * ld + j] = x[t * ld + j];
    repeatItemColumns(x, batch, rows, ld, c0);
    expect(x).toEqual(want);
  });
  it("finds the first NaN or infinity, -1 when there is none", () => {
    const x = rand(1000, 3);
    expect(indexOfNonFinite(x)).toBe(-1);
    expect(indexOfNonFinite(new Float32Array(0))).toBe(-1);
    x[700] = Infinity;
    x[900] = NaN;
    expect(indexOfNonFinite(x)).toBe(700);
    x[5] = -Infinity;
    expect(indexOfNonFinite(x)).toBe(5);
  });
});

describe("Fourier position encoding (float32 recipe of the spec)", () => {
  it("linspace matches torch's float32 values", () => {
    const g = linspaceF32(-1, 1, 55);
    expect(g[0]).toBe(-1);
    expect(g[54]).toBe(1);
    // the second half counts down from the end, so the middle is 1 - 27·step, not exactly 0 (as in torch)
    expect(g[27]).toBe(Math.fround(1 - 27 * Math.fround(2 / 54)));
    expect(g[1]).toBe(Math.fround(-1 + Math.fround(2 / 54)));
    const fb = linspaceF32(1, 28, 64);
    expect(fb[63]).toBe(28);
  });
  it("first token anchor [-1, -1, 8.742278e-08, 0.974928] and layout", () => {
    const enc = fourierPositionEncoding([55, 55], 64, [56, 56]);
    expect(enc.length).toBe(3025 * 258);
    expect(enc[0]).toBe(-1);
    expect(enc[1]).toBe(-1);
    expect(Math.abs(enc[2] - 8.742278e-8)).toBeLessThan(1e-13);
    expect(Math.abs(enc[3] - 0.974928)).toBeLessThan(1e-6);
    // token 1 is (row 0, col 1): y = -1, x = g[1]
    expect(enc[258]).toBe(-1);
    expect(enc[259]).toBe(linspaceF32(-1, 1, 55)[1]);
    // cos block starts at 2 + 128; cos(pi * -1 * 1) = -1
    expect(Math.abs(enc[130] - -1)).toBeLessThan(1e-7);
  });
});
