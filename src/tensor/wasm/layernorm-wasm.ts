/** Layer norm of rows in wasm memory (layernorm-kernel.ts), for the wasm backend's layerNormRows. */
import { LAYERNORM, CONST_BYTES, loadWasm, minSplitFlop, reserve, rowsFrom, runSplit } from "./runtime.js";

/**
 * x [rows, dim], weight [dim], bias [dim] -> out [rows, dim] = layer norm of each row (the TypeScript layerNorm's
 * arithmetic, bit-identical: layernorm-kernel.ts), in wasm memory, split by rows across threads. out may alias x.
 * Returns false (having written nothing) if the memory could not grow or the module is refused.
 */
export function layerNormWasm(
  x: Float32Array, weight: Float32Array, bias: Float32Array, out: Float32Array, rows: number, dim: number, eps: number,
): boolean {
  if (rows === 0 || dim === 0) return true;
  const w = loadWasm();
  if (w === null) return false;
  const wB = CONST_BYTES;
  const bB = wB + Math.ceil(dim / 4) * 16;
  // rows per pass: all of them, up to about 16 MB of staging
  const per = Math.max(1, Math.min(rows, Math.floor((16 << 20) / (dim * 4))));
  const xB = bB + Math.ceil(dim / 4) * 16;
  if (!reserve(w, xB + per * dim * 4)) return false;
  const f = w.f32;
  f.set(weight.subarray(0, dim), wB >> 2);
  f.set(bias.subarray(0, dim), bB >> 2);
  for (let r0 = 0; r0 < rows; r0 += per) {
    const n = Math.min(per, rows - r0);
    f.set(x.subarray(r0 * dim, (r0 + n) * dim), xB >> 2);
    runSplit(w, LAYERNORM, n, n * dim >= minSplitFlop() / 32, rowsFrom(xB, dim * 4, [dim, wB, bB, eps]));
    out.set(f.subarray(xB >> 2, (xB >> 2) + n * dim), r0 * dim);
  }
  return true;
}
