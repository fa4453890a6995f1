/**
 * Fourier position encoding of HF `PerceiverFourierPositionEncoding` (generate_fourier_features), computed with
 * torch's float32 arithmetic so it matches PyTorch to 1 ulp: the 28π amplification of the highest band makes a
 * float64 formula differ by up to 1e-5 (docs/numerics.md, "Fourier features in float32").
 */
const f32 = Math.fround;

/**
 * Channels of the encoding for `numDims` index dims and `numBands` bands (PerceiverFourierPositionEncoding
 * .output_size with concat_pos and sine and cosine): the positions, then sin and cos of each band per dim.
 */
export function fourierChannels(numDims: number, numBands: number): number {
  return numDims * (2 * numBands + 1);
}

/** torch.linspace(start, end, steps) in float32: the first half counts up from start, the second half down from end. */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const step = f32((end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? start + step * i : end - step * (steps - 1 - i);
  return out;
}

/**
 * Positions on an index grid (build_linear_positions): for index dims (d0, d1, …) each token t (row-major) gets one
 * coordinate per dim from linspace(-1, 1, d). -> [numTokens, dims]
 */
function linearPositions(indexDims: readonly number[]): Float32Array {
  const axes = indexDims.map((d) => linspaceF32(-1, 1, d));
  const n = indexDims.reduce((a, b) => a * b, 1);
  const nd = indexDims.length;
  const out = new Float32Array(n * nd);
  for (let t = 0; t < n; t++) {
    let rem = t;
    for (let d = nd - 1; d >= 0; d--) {
      const i = rem % indexDims[d];
      rem = (rem - i) / indexDims[d];
      out[t * nd + d] = axes[d][i];
    }
  }
  return out;
}

/**
 * generate_fourier_features(pos, num_bands, max_resolution, concat_pos=True, sine_only=False)
 * -> [numTokens, dims·(2·numBands + 1)] laid out as [pos (dims), sin(π·f) (dims·numBands, dim-major), cos(π·f) (same)],
 * with frequency bands linspace(1, max_resolution[d]/2, numBands).
 */
export function fourierPositionEncoding(indexDims: readonly number[], numBands: number, maxResolution: readonly number[]): Float32Array {
  const channels = fourierChannels(indexDims.length, numBands);
  const out = new Float32Array(indexDims.reduce((a, b) => a * b, 1) * channels);
  fourierPositionEncodingInto(indexDims, numBands, maxResolution, out, 0, channels);
  return out;
}

/**
 * The same encoding written into rows of `out`: token t's dims·(2·numBands + 1) channels at out[offset + t·stride ..]
 * (the preprocessors write it straight into their encoder inputs, so no [numTokens, channels] table is kept).
 */
export function fourierPositionEncodingInto(
  indexDims: readonly number[], numBands: number, maxResolution: readonly number[],
  out: Float32Array, offset: number, stride: number,
): void {
  const nd = indexDims.length;
  const pos = linearPositions(indexDims);
  const bands = maxResolution.map((r) => linspaceF32(1, r / 2, numBands));
  const n = pos.length / nd;
  const pi32 = f32(Math.PI);
  const nf = nd * numBands;
  for (let t = 0; t < n; t++) {
    const o = offset + t * stride;
    for (let d = 0; d < nd; d++) out[o + d] = pos[t * nd + d];
    for (let d = 0; d < nd; d++) {
      const p = pos[t * nd + d];
      for (let k = 0; k < numBands; k++) {
        const arg = f32(pi32 * f32(p * bands[d][k]));
        out[o + nd + d * numBands + k] = Math.sin(arg);
        out[o + nd + nf + d * numBands + k] = Math.cos(arg);
      }
    }
  }
}
