/**
 * Elementwise activations, textbook form. GELU is the exact erf form of HF `ACT2FN["gelu"]`
 * (nn.functional.gelu), not the tanh approximation.
 */

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const INV_SQRT_PI = 0.5641895835477563; // 1/√π

/**
 * erf(x) in double precision, relative error well below 1e-12 (tested against high-precision values).
 * |x| < 2.5: the everywhere-positive series erf(x) = 2/sqrt(pi)·exp(-x²)·Σ 2ⁿx^(2n+1)/(1·3·…·(2n+1)),
 *           which has no cancellation; it stops when a term no longer changes the sum.
 * |x| >= 2.5: erfc from its continued fraction, evaluated bottom-up with a fixed depth.
 */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    const x2 = ax * ax;
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (2 * x2) / (2 * n + 1);
      const next = sum + term;
      if (next === sum) break;
      sum = next;
    }
    const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    return x < 0 ? -r : r;
  }
  if (ax >= 6) return x < 0 ? -1 : 1; // erfc(6) = 2e-17: 1 in double
  return x < 0 ? -(1 - erfcLarge(ax)) : 1 - erfcLarge(ax);
}

/** erfc(x) for x >= 2.5: exp(-x²)/sqrt(pi) · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))). */
function erfcLarge(x: number): number {
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return (Math.exp(-x * x) * INV_SQRT_PI) / f;
}

// x [n] -> out [n] = 0.5·x·(1 + erf(x/√2)); out may alias x
export function gelu(x: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = 0.5 * x[i] * (1 + erf(x[i] * Math.SQRT1_2));
}

// x [n] -> out [n] = max(x, 0); out may alias x
export function relu(x: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0;
}

// a [n], b [n] -> out [n] = a + b (float32 add: each sum rounded once); out may alias a or b
export function add(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}
