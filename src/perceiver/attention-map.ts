/**
 * Cross-attention maps as pictures (the paper's attention figures), from `forward(pixels, { outputAttentions: true })`:
 *   crossAttentions[0] = enc [B, heads, N latents, T inputs]   each latent's softmax over the input tokens
 *   crossAttentions[1] = dec [B, decHeads, 1, N]                the decoder query's softmax over the latents
 * The class-weighted map of an image is map[t] = sum_n dec[n] · enc[n, t] (both averaged over their heads): where
 * the latents that the classifier reads looked in the image. It sums to 1 over the T tokens. The decoder has one
 * query for all classes, so the weighting is the same whatever label is predicted.
 * The token index is t = row·gridWidth + col (`model.preprocessor.gridSize(h, w)` gives the grid; 55x55 for the
 * conv model at 224x224), so a map of length T is already the [gridHeight, gridWidth] image, row-major.
 * Pure functions on typed arrays: browser-safe.
 */
import { PerceiverError } from "../errors.js";
import { colormapIndex, type Colormap } from "../io/image/colormap.js";
import { assertRgbImage, type RgbImage } from "../io/image/decode.js";
import type { Tensor } from "../tensor/tensor.js";

/** A latent and the decoder query's attention on it. */
export interface LatentWeight {
  latent: number;
  weight: number;
}

function checkItem(t: Tensor, item: number, where: string): void {
  if (!Number.isSafeInteger(item) || item < 0 || item >= t.shape[0]) {
    throw new PerceiverError("INPUT_INVALID", `${where}: item ${item} is out of range for a batch of ${t.shape[0]}`);
  }
}

function checkEncoder(enc: Tensor, where: string): [number, number, number] {
  if (enc.shape.length !== 4 || enc.shape.some((d) => d < 1)) {
    throw new PerceiverError("SHAPE_MISMATCH", `${where}: encoder attention must be [B, heads, latents, inputs], got [${enc.shape.join(",")}]`);
  }
  const [, heads, n, t] = enc.shape;
  return [heads, n, t];
}

function checkDecoder(dec: Tensor, where: string): [number, number] {
  if (dec.shape.length !== 4 || dec.shape[2] !== 1 || dec.shape.some((d) => d < 1)) {
    throw new PerceiverError("SHAPE_MISMATCH", `${where}: decoder attention must be [B, heads, 1, latents], got [${dec.shape.join(",")}]`);
  }
  return [dec.shape[1], dec.shape[3]];
}

/** The decoder query's attention over the latents, averaged over its heads: dec [B, H, 1, N] -> [N]. */
export function decoderWeights(dec: Tensor, item: number): Float32Array {
  const [heads, n] = checkDecoder(dec, "decoderWeights");
  checkItem(dec, item, "decoderWeights");
  const out = new Float32Array(n);
  const base = item * heads * n;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let h = 0; h < heads; h++) s += dec.data[base + h * n + j];
    out[j] = s / heads;
  }
  return out;
}

/** map[t] = sum_n w[n] · mean_h enc[item, h, n, t], w = decoderWeights: enc [B,H,N,T], dec [B,Hd,1,N] -> [T]. */
export function classWeightedMap(enc: Tensor, dec: Tensor, item: number): Float32Array {
  const [heads, n, t] = checkEncoder(enc, "classWeightedMap");
  const [, dn] = checkDecoder(dec, "classWeightedMap");
  if (dn !== n || dec.shape[0] !== enc.shape[0]) {
    throw new PerceiverError(
      "SHAPE_MISMATCH",
      `classWeightedMap: decoder attention [${dec.shape.join(",")}] does not match encoder attention [${enc.shape.join(",")}] (batch and latents must agree)`,
    );
  }
  checkItem(enc, item, "classWeightedMap");
  const w = decoderWeights(dec, item);
  const acc = new Float64Array(t);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < n; j++) {
      const wj = w[j] / heads;
      const row = enc.data.subarray(((item * heads + h) * n + j) * t, ((item * heads + h) * n + j + 1) * t);
      for (let i = 0; i < t; i++) acc[i] += wj * row[i];
    }
  }
  return Float32Array.from(acc);
}

/** One latent's attention over the inputs, averaged over heads: enc [B, H, N, T] -> [T]. */
export function latentMap(enc: Tensor, item: number, latent: number): Float32Array {
  const [heads, n, t] = checkEncoder(enc, "latentMap");
  checkItem(enc, item, "latentMap");
  if (!Number.isSafeInteger(latent) || latent < 0 || latent >= n) {
    throw new PerceiverError("INPUT_INVALID", `latentMap: latent ${latent} is out of range (the model has ${n} latents, 0..${n - 1})`);
  }
  const acc = new Float64Array(t);
  for (let h = 0; h < heads; h++) {
    const o = ((item * heads + h) * n + latent) * t;
    for (let i = 0; i < t; i++) acc[i] += enc.data[o + i];
  }
  const out = new Float32Array(t);
  for (let i = 0; i < t; i++) out[i] = acc[i] / heads;
  return out;
}

/** The k latents with the largest decoder weight, largest first (ties: lower index first); k > N gives all N. */
export function topLatents(dec: Tensor, item: number, k: number): LatentWeight[] {
  if (!Number.isSafeInteger(k) || k < 1) throw new PerceiverError("INPUT_INVALID", `topLatents: k must be a positive integer, got ${k}`);
  const w = decoderWeights(dec, item);
  const all = Array.from(w, (weight, latent) => ({ latent, weight }));
  all.sort((a, b) => b.weight - a.weight || a.latent - b.latent);
  return all.slice(0, k);
}

/** map / max(map), for display (attention is non-negative); an all-zero map stays zero. Non-finite values throw. */
export function normalizeMax(map: Float32Array): Float32Array {
  let max = 0;
  for (let i = 0; i < map.length; i++) {
    const v = map[i];
    if (!Number.isFinite(v)) throw new PerceiverError("INPUT_INVALID", `normalizeMax: non-finite value ${v} at index ${i}`);
    if (v > max) max = v;
  }
  const out = new Float32Array(map.length);
  if (max > 0) for (let i = 0; i < map.length; i++) out[i] = map[i] / max;
  return out;
}

/**
 * Attention as a multiple of uniform attention: map[t] · inputs, where `inputs` is the number of inputs the softmax
 * ran over (T tokens: the map's own length, before any resizing). 1.0 = every input got the same share; 10 = ten
 * times its share. This is the unit of the colour bars, so maps of different flatness compare on one scale.
 */
export function relativeToUniform(map: Float32Array, inputs: number = map.length): Float32Array {
  if (!Number.isSafeInteger(inputs) || inputs < 1) throw new PerceiverError("INPUT_INVALID", `relativeToUniform: inputs must be a positive integer, got ${inputs}`);
  const out = new Float32Array(map.length);
  for (let i = 0; i < map.length; i++) out[i] = map[i] * inputs;
  return out;
}

/** A display range: values lo..hi are coloured from the colormap's first to its last colour. */
export interface DisplayRange {
  lo: number;
  hi: number;
}

/**
 * The range that shows `maps` on one scale: by default 0 to the largest value of any of them (attention is
 * non-negative, so 0 keeps colour proportional to attention: a nearly flat map shows as nearly flat, not
 * stretched); with `fromZero: false`, the smallest to the largest value (stretches the contrast: shows the shape
 * of a flat map, and says so by its range). A range that would be empty widens to lo..lo+1 (0..1 for all-zero
 * maps). Non-finite values throw.
 */
export function displayRange(maps: readonly Float32Array[], { fromZero = true } = {}): DisplayRange {
  let lo = Infinity;
  let hi = -Infinity;
  maps.forEach((m, k) => {
    for (let i = 0; i < m.length; i++) {
      const v = m[i];
      if (!Number.isFinite(v)) throw new PerceiverError("INPUT_INVALID", `displayRange: map ${k} has a non-finite value ${v} at index ${i}`);
      if (v > hi) hi = v;
      if (v < lo) lo = v;
    }
  });
  if (hi === -Infinity) return { lo: 0, hi: 1 };
  if (fromZero) lo = Math.min(0, lo);
  return hi > lo ? { lo, hi } : { lo, hi: lo + 1 };
}

/** (map - lo) / (hi - lo): the range onto [0, 1] for the colormap (values outside are clamped when coloured). */
export function scaleToRange(map: Float32Array, range: DisplayRange): Float32Array {
  const { lo, hi } = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) {
    throw new PerceiverError("INPUT_INVALID", `scaleToRange: the range must have finite lo < hi, got ${lo}..${hi}`);
  }
  const out = new Float32Array(map.length);
  const span = hi - lo;
  for (let i = 0; i < map.length; i++) out[i] = (map[i] - lo) / span;
  return out;
}

/**
 * Bilinear resize with half-pixel centers (PyTorch `interpolate(mode="bilinear", align_corners=False)`, no
 * antialiasing): map [h, w] -> [outH, outW]. Source coordinate of output pixel x: (x + 0.5)·w/outW - 0.5, clamped
 * to [0, w-1].
 */
export function upsampleBilinear(map: Float32Array, h: number, w: number, outH: number, outW: number): Float32Array {
  for (const [name, v] of [["h", h], ["w", w], ["outH", outH], ["outW", outW]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new PerceiverError("INPUT_INVALID", `upsampleBilinear: ${name} must be a positive integer, got ${v}`);
  }
  if (map.length !== h * w) throw new PerceiverError("SHAPE_MISMATCH", `upsampleBilinear: a ${h}x${w} map has ${h * w} values, got ${map.length}`);
  const axis = (n: number, outN: number) => {
    const i0 = new Int32Array(outN);
    const i1 = new Int32Array(outN);
    const f = new Float64Array(outN);
    for (let o = 0; o < outN; o++) {
      const s = Math.min(Math.max(((o + 0.5) * n) / outN - 0.5, 0), n - 1);
      i0[o] = Math.floor(s);
      i1[o] = Math.min(i0[o] + 1, n - 1);
      f[o] = s - i0[o];
    }
    return { i0, i1, f };
  };
  const ys = axis(h, outH);
  const xs = axis(w, outW);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] * w;
    const r1 = ys.i1[y] * w;
    const fy = ys.f[y];
    for (let x = 0; x < outW; x++) {
      const a = xs.i0[x];
      const b = xs.i1[x];
      const fx = xs.f[x];
      const top = map[r0 + a] + fx * (map[r0 + b] - map[r0 + a]);
      const bottom = map[r1 + a] + fx * (map[r1 + b] - map[r1 + a]);
      out[y * outW + x] = top + fy * (bottom - top);
    }
  }
  return out;
}

/**
 * Heat-map overlay: out = (1 - alpha)·rgb + alpha·colormap(map), rounded. rgb [H, W, 3], map [H, W] with values in
 * [0, 1] (clamped; normalize first), alpha in [0, 1] -> [H, W, 3].
 */
export function overlay(rgb: RgbImage, map: Float32Array, colormap: Colormap, alpha: number): RgbImage {
  assertRgbImage(rgb, "overlay");
  const n = rgb.width * rgb.height;
  if (map.length !== n) {
    throw new PerceiverError("SHAPE_MISMATCH", `overlay: the map has ${map.length} values, the ${rgb.width}x${rgb.height} image needs ${n}`);
  }
  if (!(alpha >= 0 && alpha <= 1)) throw new PerceiverError("INPUT_INVALID", `overlay: alpha must be in [0, 1], got ${alpha}`);
  if (!colormap || !(colormap.lut instanceof Uint8Array) || colormap.lut.length !== 768) {
    throw new PerceiverError("INPUT_INVALID", "overlay: colormap must have a 256x3 lookup table");
  }
  const out = new Uint8Array(n * 3);
  const lut = colormap.lut;
  for (let p = 0; p < n; p++) {
    const v = map[p];
    if (Number.isNaN(v)) throw new PerceiverError("INPUT_INVALID", `overlay: the map is NaN at index ${p}`);
    const c = 3 * colormapIndex(v);
    for (let ch = 0; ch < 3; ch++) out[3 * p + ch] = Math.round((1 - alpha) * rgb.data[3 * p + ch] + alpha * lut[c + ch]);
  }
  return { width: rgb.width, height: rgb.height, data: out };
}

export interface TileGridOptions {
  /** pixels between tiles (default 2) */
  gap?: number;
  /** color of the gaps and of empty cells (default white) */
  background?: readonly [number, number, number];
}

/**
 * Images of one size [h, w, 3] in a grid, row by row: min(cols, n) columns, ceil(n / cols) rows, `gap` pixels of
 * `background` between tiles -> [rows·h + (rows-1)·gap, c·w + (c-1)·gap, 3].
 */
export function tileGrid(images: readonly RgbImage[], cols: number, options: TileGridOptions = {}): RgbImage {
  if (!Array.isArray(images) || images.length === 0) throw new PerceiverError("INPUT_INVALID", "tileGrid: expected a non-empty array of images");
  if (!Number.isSafeInteger(cols) || cols < 1) throw new PerceiverError("INPUT_INVALID", `tileGrid: cols must be a positive integer, got ${cols}`);
  const gap = options.gap ?? 2;
  if (!Number.isSafeInteger(gap) || gap < 0) throw new PerceiverError("INPUT_INVALID", `tileGrid: gap must be a non-negative integer, got ${gap}`);
  const bg = options.background ?? [255, 255, 255];
  images.forEach((im, i) => assertRgbImage(im, `tileGrid: image ${i}`));
  const { width: w, height: h } = images[0];
  images.forEach((im, i) => {
    if (im.width !== w || im.height !== h) {
      throw new PerceiverError("SHAPE_MISMATCH", `tileGrid: image ${i} is ${im.width}x${im.height}, image 0 is ${w}x${h}`);
    }
  });
  const c = Math.min(cols, images.length);
  const rows = Math.ceil(images.length / c);
  const W = c * w + (c - 1) * gap;
  const H = rows * h + (rows - 1) * gap;
  const out = new Uint8Array(W * H * 3);
  for (let p = 0; p < W * H; p++) {
    out[3 * p] = bg[0];
    out[3 * p + 1] = bg[1];
    out[3 * p + 2] = bg[2];
  }
  images.forEach((im, i) => {
    const x0 = (i % c) * (w + gap);
    const y0 = Math.floor(i / c) * (h + gap);
    for (let y = 0; y < h; y++) out.set(im.data.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * W + x0) * 3);
  });
  return { width: W, height: H, data: out };
}
