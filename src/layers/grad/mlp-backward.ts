/**
 * PerceiverMLP, forward (keeping the pre-activation) and backward:
 *   a = x·W1ᵀ + b1,  h = gelu(a),  y = h·W2ᵀ + b2
 *   dh = dy·W2, dW2 = dyᵀ·h, db2 = Σ dy;  da = dh ⊙ gelu'(a);  dx = da·W1, dW1 = daᵀ·x, db1 = Σ da
 * `reference` selects the readable loops of every step (linear-backward.ts, gelu-backward.ts).
 */
import { geluBackward, geluBackwardRef } from "./gelu-backward.js";
import { linearBackward, linearBackwardRef, linearForward, linearForwardRef } from "./linear-backward.js";
import { erf, erfFast } from "../../tensor/activations.js";

export interface MlpWeights {
  w1: Float32Array; // [F, D]
  b1: Float32Array; // [F]
  w2: Float32Array; // [D, F]
  b2: Float32Array; // [D]
  dim: number; // D
  hidden: number; // F = widening·D
}

export interface MlpGrads {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

// x [rows, D] -> y [rows, D]; pre [rows, F] and act [rows, F] receive a and gelu(a)
export function mlpForward(m: MlpWeights, x: Float32Array, rows: number, y: Float32Array, pre: Float32Array, act: Float32Array, reference = false): void {
  (reference ? linearForwardRef : linearForward)(x, m.w1, m.b1, rows, m.dim, m.hidden, pre);
  const erfFn = reference ? erf : erfFast;
  for (let i = 0; i < rows * m.hidden; i++) act[i] = 0.5 * pre[i] * (1 + erfFn(pre[i] * Math.SQRT1_2));
  (reference ? linearForwardRef : linearForward)(act, m.w2, m.b2, rows, m.hidden, m.dim, y);
}

// dy [rows, D] -> dx [rows, D] and the weight gradients (written)
export function mlpBackward(
  m: MlpWeights, x: Float32Array, pre: Float32Array, act: Float32Array, dy: Float32Array, rows: number,
  dx: Float32Array, g: MlpGrads, reference = false,
): void {
  const dh = new Float32Array(rows * m.hidden);
  const back = reference ? linearBackwardRef : linearBackward;
  back(act, m.w2, dy, rows, m.hidden, m.dim, dh, g.w2, g.b2);
  (reference ? geluBackwardRef : geluBackward)(pre, dh, dh, rows * m.hidden);
  back(x, m.w1, dh, rows, m.dim, m.hidden, dx, g.w1, g.b1);
}
