/**
 * Convolution-network kernels, NCHW, one batch item per call. The convolution runs as matrix products on the
 * selected backend (conv2dGemm); the reference backend runs reference/conv.ts's direct loops instead.
 */
import { PerceiverError } from "../errors.js";
import { getBackend } from "./backend.js";
import { linear } from "./gemm.js";
import type { PackedWeight } from "./packed-weight.js";
import { conv2d, conv2dOutputSize, type Conv2dParams } from "./reference/conv.js";

// max pooling and batch norm have no faster form: every backend runs the reference loops
export { batchNorm2d, conv2dOutputSize, maxPool2d, type Conv2dParams } from "./reference/conv.js";

/** Output pixels per im2col chunk of conv2dGemm (1024 x 147 floats = 0.6 MB for a 7x7 kernel on 3 channels). */
const IM2COL_CHUNK = 1024;

// x [C,H,W], w packWeight(weight [O,C,KH,KW] as [O, C·KH·KW]), bias [O] | null -> out [O,HO,WO]
// The convolution of reference/conv.ts's conv2d as matrix products: chunks of output pixels are unfolded into
// rows of C·KH·KW inputs (im2col, zeros for the padding) and multiplied by the weight with `linear`, so it runs
// on the fast GEMM backend and its threads. Scratch: two chunk-sized arrays, allocated per call.
export function conv2dGemm(
  x: Float32Array, c: number, h: number, wd: number,
  w: PackedWeight, kh: number, kw: number,
  bias: Float32Array | null, p: Conv2dParams, out: Float32Array,
): void {
  const kk = c * kh * kw;
  if (w.k !== kk) throw new PerceiverError("SHAPE_MISMATCH", `conv2dGemm: weight has ${w.k} inputs per filter, expected ${c}·${kh}·${kw} = ${kk}`);
  const o = w.n;
  const [pt, pb, pl, pr] = p.pad;
  const s = p.stride;
  const ho = conv2dOutputSize(h, kh, pt, pb, s);
  const wo = conv2dOutputSize(wd, kw, pl, pr, s);
  const pixels = ho * wo;
  if (out.length < o * pixels) throw new PerceiverError("SHAPE_MISMATCH", `conv2dGemm: out has ${out.length} elements, needs ${o * pixels}`);
  if (getBackend() === "reference") {
    conv2d(x, c, h, wd, w.raw, o, kh, kw, bias, p, out);
    return;
  }
  const chunk = Math.min(IM2COL_CHUNK, pixels);
  const cols = new Float32Array(chunk * kk);
  const res = new Float32Array(chunk * o);
  for (let p0 = 0; p0 < pixels; p0 += chunk) {
    const n = Math.min(chunk, pixels - p0);
    for (let i = 0; i < n; i++) {
      const oy = Math.floor((p0 + i) / wo);
      const ox = p0 + i - oy * wo;
      const iy0 = oy * s - pt;
      const ix0 = ox * s - pl;
      let d = i * kk;
      for (let ic = 0; ic < c; ic++) {
        for (let ky = 0; ky < kh; ky++) {
          const iy = iy0 + ky;
          const inside = iy >= 0 && iy < h;
          const row = (ic * h + iy) * wd;
          for (let kx = 0; kx < kw; kx++, d++) {
            const ix = ix0 + kx;
            cols[d] = inside && ix >= 0 && ix < wd ? x[row + ix] : 0;
          }
        }
      }
    }
    linear(cols, w, bias, res, n);
    for (let oc = 0; oc < o; oc++) {
      const dst = oc * pixels + p0;
      for (let i = 0; i < n; i++) out[dst + i] = res[i * o + oc];
    }
  }
}

