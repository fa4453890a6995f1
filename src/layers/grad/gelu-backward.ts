/**
 * GELU, exact erf form (HF ACT2FN["gelu"]):  gelu(x) = x·Φ(x),  Φ(x) = ½(1 + erf(x/√2))
 *   gelu'(x) = Φ(x) + x·φ(x),   φ(x) = exp(-x²/2)/√(2π)
 * geluBackwardRef uses the double-precision series erf; geluBackward the fast polynomial erfFast
 * (tensor/activations.ts, the one the forward uses).
 */
import { erf, erfFast } from "../../tensor/activations.js";

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 0.3989422804014327; // 1/√(2π)

// x [n] (the pre-activation), dy [n] -> dx [n] = dy·gelu'(x); dx may alias dy
export function geluBackward(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    dx[i] = dy[i] * (0.5 * (1 + erfFast(v * SQRT1_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
  }
}

// reference twin of geluBackward
export function geluBackwardRef(x: Float32Array, dy: Float32Array, dx: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const cdf = 0.5 * (1 + erf(v / Math.SQRT2));
    const pdf = Math.exp(-(v * v) / 2) / Math.sqrt(2 * Math.PI);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}
