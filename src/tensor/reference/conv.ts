/**
 * The reference convolution-network kernels, NCHW, one batch item per call: direct loops (no im2col), sums in
 * double. The ts and wasm backends run the convolution as matrix products (conv.ts conv2dGemm); max pooling and
 * batch norm have no faster form, every backend runs these loops.
 */

export interface Conv2dParams {
  readonly stride: number;
  /** zero padding: top, bottom, left, right */
  readonly pad: readonly [number, number, number, number];
}

export function conv2dOutputSize(inSize: number, kernel: number, padBefore: number, padAfter: number, stride: number): number {
  return Math.floor((inSize + padBefore + padAfter - kernel) / stride) + 1;
}

// x [C,H,W], w [O,C,KH,KW], bias [O] | null -> out [O,HO,WO]; zero padding `pad`, stride `stride`
export function conv2d(
  x: Float32Array, c: number, h: number, wd: number,
  w: Float32Array, o: number, kh: number, kw: number,
  bias: Float32Array | null, p: Conv2dParams, out: Float32Array,
): void {
  const [pt, pb, pl, pr] = p.pad;
  const s = p.stride;
  const ho = conv2dOutputSize(h, kh, pt, pb, s);
  const wo = conv2dOutputSize(wd, kw, pl, pr, s);
  for (let oc = 0; oc < o; oc++) {
    const b = bias ? bias[oc] : 0;
    for (let oy = 0; oy < ho; oy++) {
      const iy0 = oy * s - pt;
      // kernel rows that land inside the image
      const ky0 = Math.max(0, -iy0);
      const ky1 = Math.min(kh, h - iy0);
      for (let ox = 0; ox < wo; ox++) {
        const ix0 = ox * s - pl;
        const kx0 = Math.max(0, -ix0);
        const kx1 = Math.min(kw, wd - ix0);
        let sum = b;
        for (let ic = 0; ic < c; ic++) {
          const wBase = ((oc * c + ic) * kh) * kw;
          const xBase = ic * h * wd;
          for (let ky = ky0; ky < ky1; ky++) {
            const xRow = xBase + (iy0 + ky) * wd + ix0;
            const wRow = wBase + ky * kw;
            for (let kx = kx0; kx < kx1; kx++) sum += x[xRow + kx] * w[wRow + kx];
          }
        }
        out[(oc * ho + oy) * wo + ox] = sum;
      }
    }
  }
}

// x [C,H,W] -> out [C,HO,WO]: max over KxK windows, stride s, no padding, floor mode
export function maxPool2d(x: Float32Array, c: number, h: number, w: number, k: number, s: number, out: Float32Array): void {
  const ho = Math.floor((h - k) / s) + 1;
  const wo = Math.floor((w - k) / s) + 1;
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        let m = -Infinity;
        for (let ky = 0; ky < k; ky++) {
          const row = (ch * h + oy * s + ky) * w + ox * s;
          for (let kx = 0; kx < k; kx++) {
            const v = x[row + kx];
            if (v > m || v !== v) m = v; // NaN propagates, as in torch
          }
        }
        out[(ch * ho + oy) * wo + ox] = m;
      }
    }
  }
}

// x [C,HW] -> out [C,HW] = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]   (BatchNorm2d in eval mode)
// Evaluated as x·alpha + beta with alpha = weight/sqrt(var+eps), beta = bias - mean·alpha (in double; torch CPU does the same in f32).
export function batchNorm2d(
  x: Float32Array, c: number, hw: number,
  mean: Float32Array, variance: Float32Array, weight: Float32Array, bias: Float32Array, eps: number,
  out: Float32Array,
): void {
  for (let ch = 0; ch < c; ch++) {
    const alpha = weight[ch] / Math.sqrt(variance[ch] + eps);
    const beta = bias[ch] - mean[ch] * alpha;
    const o = ch * hw;
    for (let i = 0; i < hw; i++) out[o + i] = x[o + i] * alpha + beta;
  }
}
