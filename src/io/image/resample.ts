/**
 * Pillow's BICUBIC resize for 8-bit RGB, bit-exact (Pillow `src/libImaging/Resample.c`):
 * antialiased coefficients in double, 22-bit fixed point, a horizontal pass (only if the width changes) whose
 * result is rounded to uint8, then a vertical pass (only if the height changes). Same size: a copy.
 * `resizeBicubicPilNaive` is the naive twin (same math, one value at a time, no tables).
 */
import { PerceiverError } from "../../errors.js";
import { assertRgbImage, type RgbImage } from "./decode.js";

/** Fixed-point fraction bits: 32 - 8 (sample) - 2 (headroom for negative lobes and sums above 1). */
export const PRECISION_BITS = 22;
export const BICUBIC_SUPPORT = 2.0;

/** Keys cubic kernel with a = -0.5, in Pillow's exact operation order (double precision). */
export function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Resampling weights for one axis. Output sample i reads input [bounds[2i], bounds[2i] + bounds[2i+1]). */
export interface AxisCoeffs {
  inSize: number;
  outSize: number;
  /** Row stride of `weights` / `fixed`. */
  ksize: number;
  /** [outSize * 2]: first input index, number of taps. */
  bounds: Int32Array;
  /** [outSize, ksize] normalized double weights (Σ = 1 per row, zeros past the taps). */
  weights: Float64Array;
  /** [outSize, ksize] the same in 22-bit fixed point (normalize_coeffs_8bpc). */
  fixed: Int32Array;
}

/** Resample.c precompute_coeffs + normalize_coeffs_8bpc, for the box [0, inSize]. */
export function precomputeCoeffs(
  inSize: number,
  outSize: number,
  filter: (x: number) => number = bicubicFilter,
  filterSupport: number = BICUBIC_SUPPORT,
): AxisCoeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0); // downsampling widens the filter (antialias)
  const support = filterSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  const fixed = new Int32Array(outSize * ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = xx * ksize;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = filter((x + xmin - center + 0.5) * ss);
      weights[k + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      if (ww !== 0.0) weights[k + x] /= ww;
      const w = weights[k + x];
      fixed[k + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { inSize, outSize, ksize, bounds, weights, fixed };
}

/** Pillow's clip8: arithmetic shift (floor) out of fixed point, then clamp to 0..255. */
function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

const HALF = 1 << (PRECISION_BITS - 1);

/** Horizontal pass (ImagingResampleHorizontal_8bpc): src [rows, inW, 3] u8 -> out [rows, outW, 3] u8. */
export function resampleHorizontal8bpc(src: Uint8Array, rows: number, c: AxisCoeffs, out: Uint8Array): void {
  const { inSize: inW, outSize: outW, ksize, bounds, fixed } = c;
  for (let yy = 0; yy < rows; yy++) {
    const rowIn = yy * inW * 3;
    const rowOut = yy * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[2 * xx];
      const n = bounds[2 * xx + 1];
      const k0 = xx * ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0, p = rowIn + xmin * 3; x < n; x++, p += 3) {
        const k = fixed[k0 + x];
        s0 += src[p] * k;
        s1 += src[p + 1] * k;
        s2 += src[p + 2] * k;
      }
      const o = rowOut + xx * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
}

/** Vertical pass (ImagingResampleVertical_8bpc): src [inH, width, 3] u8 -> out [outH, width, 3] u8. */
export function resampleVertical8bpc(src: Uint8Array, width: number, c: AxisCoeffs, out: Uint8Array): void {
  const { outSize: outH, ksize, bounds, fixed } = c;
  const stride = width * 3;
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[2 * yy];
    const n = bounds[2 * yy + 1];
    const k0 = yy * ksize;
    const rowOut = yy * stride;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let y = 0, p = ymin * stride + i; y < n; y++, p += stride) s += src[p] * fixed[k0 + y];
      out[rowOut + i] = clip8(s);
    }
  }
}

function checkOutSize(outW: number, outH: number, where: string): void {
  if (!Number.isSafeInteger(outW) || !Number.isSafeInteger(outH) || outW < 1 || outH < 1) {
    throw new PerceiverError("INPUT_INVALID", `${where}: output size must be positive integers, got ${outW}x${outH}`);
  }
}

/** `Image.resize((outW, outH), Image.BICUBIC)` on an RGB image, bit-exact with Pillow. img [H,W,3] -> [outH,outW,3]. */
export function resizeBicubicPil(img: RgbImage, outW: number, outH: number): RgbImage {
  assertRgbImage(img, "resizeBicubicPil");
  checkOutSize(outW, outH, "resizeBicubicPil");
  const { width: w, height: h } = img;
  if (outW === w && outH === h) return { width: w, height: h, data: img.data.slice() };
  let cur = img.data;
  // (Pillow runs the horizontal pass only over the rows the vertical pass reads; the values are the same.)
  if (outW !== w) {
    const tmp = new Uint8Array(outW * h * 3);
    resampleHorizontal8bpc(cur, h, precomputeCoeffs(w, outW), tmp);
    cur = tmp;
  }
  if (outH !== h) {
    const out = new Uint8Array(outW * outH * 3);
    resampleVertical8bpc(cur, outW, precomputeCoeffs(h, outH), out);
    cur = out;
  }
  return { width: outW, height: outH, data: cur };
}

/** Fixed-point taps of output sample `i` on one axis, computed on the spot (used by the naive twin). */
function tapsAt(inSize: number, outSize: number, i: number): { first: number; k: number[] } {
  const scale = inSize / outSize;
  const fs = Math.max(scale, 1.0);
  const support = BICUBIC_SUPPORT * fs;
  const center = (i + 0.5) * scale;
  const first = Math.max(Math.trunc(center - support + 0.5), 0);
  const last = Math.min(Math.trunc(center + support + 0.5), inSize);
  const w: number[] = [];
  for (let x = first; x < last; x++) w.push(bicubicFilter((x - center + 0.5) * (1.0 / fs)));
  const sum = w.reduce((a, b) => a + b, 0);
  const k = w.map((v) => (sum !== 0 ? v / sum : v)).map((v) => Math.trunc(v * 2 ** PRECISION_BITS + (v < 0 ? -0.5 : 0.5)));
  return { first, k };
}

/**
 * Naive twin of resizeBicubicPil: the same math one output value at a time, no precomputed tables.
 * Must agree bit for bit. img [H,W,3] -> [outH,outW,3].
 */
export function resizeBicubicPilNaive(img: RgbImage, outW: number, outH: number): RgbImage {
  assertRgbImage(img, "resizeBicubicPilNaive");
  checkOutSize(outW, outH, "resizeBicubicPilNaive");
  const { width: w, height: h } = img;
  const px = (d: Uint8Array, width: number, x: number, y: number, ch: number) => d[(y * width + x) * 3 + ch];
  const fix = (s: number) => Math.min(255, Math.max(0, Math.floor(s / 2 ** PRECISION_BITS)));
  let cur = img.data;
  if (outW !== w) {
    const tmp = new Uint8Array(outW * h * 3);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const { first, k } = tapsAt(w, outW, xx);
        for (let ch = 0; ch < 3; ch++) {
          let s = 2 ** (PRECISION_BITS - 1);
          k.forEach((kv, t) => (s += px(cur, w, first + t, y, ch) * kv));
          tmp[(y * outW + xx) * 3 + ch] = fix(s);
        }
      }
    }
    cur = tmp;
  }
  if (outH !== h) {
    const out = new Uint8Array(outW * outH * 3);
    for (let yy = 0; yy < outH; yy++) {
      const { first, k } = tapsAt(h, outH, yy);
      for (let x = 0; x < outW; x++) {
        for (let ch = 0; ch < 3; ch++) {
          let s = 2 ** (PRECISION_BITS - 1);
          k.forEach((kv, t) => (s += px(cur, outW, x, first + t, ch) * kv));
          out[(yy * outW + x) * 3 + ch] = fix(s);
        }
      }
    }
    cur = out;
  }
  return { width: outW, height: outH, data: cur === img.data ? cur.slice() : cur };
}
