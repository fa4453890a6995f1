import { PerceiverError } from "../errors.js";

/** A dense float32 tensor: row-major data plus a shape. Kernels take raw Float32Arrays; this is the public type. */
export class Tensor {
  readonly data: Float32Array;
  readonly shape: readonly number[];

  constructor(data: Float32Array, shape: readonly number[]) {
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new PerceiverError("SHAPE_MISMATCH", `Tensor: invalid dimension ${d} in shape [${shape.join(",")}]`);
      }
    }
    const n = numel(shape);
    if (data.length !== n) {
      throw new PerceiverError(
        "SHAPE_MISMATCH",
        `Tensor: data has ${data.length} elements but shape [${shape.join(",")}] needs ${n}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }

  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(new Float32Array(numel(shape)), shape);
  }

  get size(): number {
    return this.data.length;
  }

  /** A view with another shape over the same data (no copy). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }

  /** Item `i` along the first axis, as a view (no copy). */
  item(i: number): Tensor {
    const [b, ...rest] = this.shape;
    if (b === undefined || i < 0 || i >= b) {
      throw new PerceiverError("SHAPE_MISMATCH", `Tensor.item: index ${i} out of range for shape [${this.shape.join(",")}]`);
    }
    const n = numel(rest);
    return new Tensor(this.data.subarray(i * n, (i + 1) * n), rest);
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Index of the first element of x that is NaN or infinite, or -1 (a small function: see layout.ts). */
export function indexOfNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}
