import { layerNormRows } from "../tensor/layernorm.js";

/** torch's nn.LayerNorm default eps: what every HF Perceiver LayerNorm uses (config.layer_norm_eps is ignored). */
export const TORCH_LAYERNORM_EPS = 1e-5;

/** nn.LayerNorm over the last dimension. */
export class LayerNorm {
  constructor(
    readonly weight: Float32Array,
    readonly bias: Float32Array,
    readonly dim: number,
    readonly eps: number = TORCH_LAYERNORM_EPS,
  ) {}

  // x [rows, dim] -> out [rows, dim]; out may alias x
  forward(x: Float32Array, rows: number, out: Float32Array): void {
    layerNormRows(x, this.weight, this.bias, out, rows, this.dim, this.eps);
  }
}
