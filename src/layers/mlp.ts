import type { Linear } from "./linear.js";
import { QUERIES_THEN_MLP_HIDDEN, type Scratch } from "./scratch.js";

/** PerceiverMLP: dense1 (dim -> widening·dim), exact-erf GELU, dense2 (widening·dim -> dim). */
export class Mlp {
  constructor(readonly dense1: Linear, readonly dense2: Linear) {}

  // x [rows, dim] (, residual [rows, dim]) -> out [rows, dim] = MLP(x) (+ residual; out must not overlap it)
  forward(x: Float32Array, rows: number, out: Float32Array, scratch: Scratch, residual?: Float32Array): void {
    const hidden = scratch.get(QUERIES_THEN_MLP_HIDDEN, rows * this.dense1.outFeatures); // x must not be in it
    this.dense1.forwardGelu(x, rows, hidden); // GELU applied by the product's epilogue
    if (residual) this.dense2.forwardResidual(hidden, rows, residual, out); // added by the product's epilogue
    else this.dense2.forward(hidden, rows, out);
  }
}
