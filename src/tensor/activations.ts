/**
 * GELU for the ts and wasm backends: the exact erf form of HF `ACT2FN["gelu"]` (nn.functional.gelu), with erf
 * evaluated from a table of Taylor expansions (erfFast, within 4e-15 of the reference erf). The wasm GELU kernel
 * reads the same table (ERF_TABLE) and gives the same bits.
 */
import { erf } from "./reference/activations.js";

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/sqrt(pi)
const SQRT1_2 = Math.SQRT1_2;

/**
 * erf(x) fast, for GELU: a degree-8 Taylor expansion around the nearest point of a grid of step 1/16 on [0, 6].
 * The coefficients come from erf itself at load: erf^(k)(x) = 2/√π·(-1)^(k-1)·H_(k-1)(x)·exp(-x²) (H the
 * physicists' Hermite polynomials), so the term after the last is below 1e-16 for |x - x0| <= 1/32 (Cramér's
 * bound |H_n(x)|·exp(-x²/2) <= 1.09·sqrt(2ⁿ·n!)). Within 4e-15 of `erf` everywhere (tested; float32 needs 6e-8), and much faster: no series or continued fraction.
 */
const ERF_GRID = 16; // points per unit
const ERF_STEP = 1 / ERF_GRID;
const ERF_DEG = 8;
const ERF_MAX = 6; // erf(6) = 1 - 2e-17: 1 in double
const ERF_COEF = erfCoefficients();

function erfCoefficients(): Float64Array {
  const points = ERF_MAX * ERF_GRID + 1;
  const c = new Float64Array(points * (ERF_DEG + 1));
  for (let i = 0; i < points; i++) {
    const x0 = i / ERF_GRID;
    const o = i * (ERF_DEG + 1);
    c[o] = erf(x0);
    const e = TWO_OVER_SQRT_PI * Math.exp(-x0 * x0);
    let hPrev = 0; // H_(k-2)
    let h = 1; // H_(k-1), starting with H_0
    let factorial = 1;
    for (let k = 1; k <= ERF_DEG; k++) {
      factorial *= k;
      c[o + k] = (((k - 1) % 2 === 0 ? 1 : -1) * e * h) / factorial;
      const next = 2 * x0 * h - 2 * (k - 1) * hPrev; // H_k = 2x·H_(k-1) - 2(k-1)·H_(k-2)
      hPrev = h;
      h = next;
    }
  }
  return c;
}

/** erfFast's table, for kernels that evaluate it elsewhere (the wasm GELU): `points` expansions of `degree` + 1
 *  coefficients (x0 = i/grid, lowest power first), then the cut-off `max` (erf = ±1 from there). */
export const ERF_TABLE = { coefficients: ERF_COEF, grid: ERF_GRID, degree: ERF_DEG, max: ERF_MAX } as const;

export function erfFast(x: number): number {
  const ax = Math.abs(x);
  if (!(ax < ERF_MAX)) return ax >= ERF_MAX ? (x < 0 ? -1 : 1) : NaN;
  const i = (ax * ERF_GRID + 0.5) | 0;
  const d = ax - i * ERF_STEP; // exact: the step is a power of 2
  const o = i * (ERF_DEG + 1);
  const c = ERF_COEF;
  // Estrin's scheme: a shorter dependency chain than Horner
  const d2 = d * d;
  const d4 = d2 * d2;
  const p = c[o] + d * c[o + 1] + d2 * (c[o + 2] + d * c[o + 3])
    + d4 * (c[o + 4] + d * c[o + 5] + d2 * (c[o + 6] + d * c[o + 7]) + d4 * c[o + 8]);
  return x < 0 ? -p : p;
}

// x [n] -> out [n] = 0.5·x·(1 + erf(x/√2)); out may alias x
export function gelu(x: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = 0.5 * v * (1 + erfFast(v * SQRT1_2));
  }
}

// relu and add have no faster form: every backend runs the reference loops
export { add, erf, relu } from "./reference/activations.js";
