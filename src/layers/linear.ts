import { linear, linearGelu, linearResidual, packWeight, type PackedWeight } from "../tensor/gemm.js";

/** nn.Linear: y = x·Wᵀ + b with W stored [out, in] (HF layout), kept as given (see PackedWeight). */
export class Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: PackedWeight;
  readonly bias: Float32Array | null;

  // weight [out, in], bias [out] | null
  constructor(weight: Float32Array, bias: Float32Array | null, inFeatures: number, outFeatures: number) {
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = packWeight(weight, outFeatures, inFeatures);
    this.bias = bias;
  }

  // x [rows, in] -> out [rows, out]
  forward(x: Float32Array, rows: number, out: Float32Array): void {
    linear(x, this.weight, this.bias, out, rows);
  }

  // x [rows, in], residual [rows, out] -> out [rows, out] = (x·Wᵀ + b) + residual (out must not overlap residual)
  forwardResidual(x: Float32Array, rows: number, residual: Float32Array, out: Float32Array): void {
    linearResidual(x, this.weight, this.bias, residual, out, rows);
  }

  // x [rows, in] -> out [rows, out] = gelu(x·Wᵀ + b)
  forwardGelu(x: Float32Array, rows: number, out: Float32Array): void {
    linearGelu(x, this.weight, this.bias, out, rows);
  }
}
