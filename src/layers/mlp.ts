import type { Linear } from "./linear.js";
import type { LayerBuffers } from "./buffers.js";

export interface MlpForward {
  /** [rows, dim]; must not be in buffers.queriesThenMlpHidden */
  x: Float32Array;
  rows: number;
  /** [rows, dim]; must not overlap residual */
  out: Float32Array;
  buffers: LayerBuffers;
  /** [rows, dim], added to the output when given */
  residual?: Float32Array;
}

/** PerceiverMLP: dense1 (dim -> widening·dim), exact-erf GELU, dense2 (widening·dim -> dim). */
export class Mlp {
  constructor(readonly dense1: Linear, readonly dense2: Linear) {}

  // x [rows, dim] -> out [rows, dim] = dense2(gelu(dense1(x))) (+ residual)
  forward({ x, rows, out, buffers, residual }: MlpForward): void {
    const hidden = buffers.queriesThenMlpHidden.take(rows * this.dense1.outFeatures); // [rows, widening·dim]
    this.dense1.forwardGelu(x, rows, hidden); // GELU applied by the product's epilogue
    if (residual) this.dense2.forwardResidual(hidden, rows, residual, out); // added by the product's epilogue
    else this.dense2.forward(hidden, rows, out);
  }
}
