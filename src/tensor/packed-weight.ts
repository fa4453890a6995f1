/** A weight matrix checked once for `linear`. */
import { PerceiverError } from "../errors.js";

/**
 * A weight matrix w [N,K] (HF Linear layout), checked for `linear`. It keeps a view of w, not a copy (do not
 * modify w afterwards): every backend reads w's rows at each call (the wasm backend cuts them into panels in wasm
 * memory, the TypeScript kernels in their heap), so a model holds its weights once: the checkpoint's own arrays.
 */
export class PackedWeight {
  /** Use packWeight (it checks the shape). */
  constructor(readonly n: number, readonly k: number, readonly raw: Float32Array) {}
}

// w [N,K] -> PackedWeight for `linear` (a view of w, no copy)
export function packWeight(w: Float32Array, n: number, k: number): PackedWeight {
  for (const [name, v] of [["n", n], ["k", k]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new PerceiverError("SHAPE_MISMATCH", `packWeight: ${name} must be a non-negative integer, got ${v}`);
    }
  }
  if (w.length !== n * k) {
    throw new PerceiverError("SHAPE_MISMATCH", `packWeight: weight has ${w.length} elements, expected n*k = ${n}*${k} = ${n * k}`);
  }
  return new PackedWeight(n, k, w);
}
