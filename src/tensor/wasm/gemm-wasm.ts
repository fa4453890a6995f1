/**
 * JS side of the WebAssembly GEMM: owns one WebAssembly.Memory, stages operands into it, calls the generated
 * kernel (gemm-kernel.ts) and copies results out. gemm.ts checks the arguments and picks the backend.
 *
 * Memory layout of one call (byte offsets from 0; every region 16-byte aligned), per block of nc ≤ ~8 MB / (4K)
 * columns (usually all of N):
 *
 *   bias [ncPad] f64 | B panels [ncPad/4][K][4] f32 | A chunk [mcPad, A_STRIDE] f32 | C [mcPad, ncPad+4] f64 |
 *   result [mcPad, ncPad+4] f32
 *
 *  - B: a PackedWeight's 4-column panels are copied as they are (one memcpy; weights are packed once, by
 *    packWeight, and no second copy is kept). matmul's b [K,N] and matmulTransB's b [N,K] are copied row by row
 *    into the space of A and C (free at that point) and cut into the same panels by the kernel module's
 *    `panelize` / `transpose`. Columns are zero-padded to a multiple of NR = 8.
 *  - A: MC rows at a time, one K chunk (≤ KC) at a time, row stride A_STRIDE; rows past M up to a multiple of
 *    MR = 4 are zeros (each output row depends only on its own A row: they only cost time). Each A element is
 *    copied once per call (per column block).
 *  - C: float64, starts from the bias and takes the float32 run sums of every chunk; after the last chunk the
 *    kernel writes alpha·C rounded once to float32 into the result block, whose [mc, nc] part is copied out.
 * Each output element is the same sum in the same order whatever M, the row block or the column block: results
 * do not depend on how callers split rows (attention chunks, batch items).
 *
 * The memory grows on demand and never shrinks; `releaseWasmGemm` drops it (it is rebuilt on the next call).
 * If it cannot grow, `gemmWasm` returns false and gemm.ts runs the TypeScript kernels instead.
 */
import {
  A_STRIDE, KC, MR, NR, gemmKernelModule, type BlockFn, type KernelOptions, type PanelizeFn, type TransposeFn,
} from "./gemm-kernel.js";

/** B layouts (same meaning as in gemm.ts). */
export const B_PACKED = 0; // b is a PackedWeight's data: panels of 4 columns [ceil(N/4)][K][4]
export const B_TRANS = 1; // b [N,K] with row stride ldb
export const B_PLAIN = 2; // b [K,N] with row stride ldb

/** Rows of A per staged block. */
const MC = 128;
/** Largest staged B block (bytes) before columns are split into blocks. */
const B_BLOCK_BYTES = 8 << 20;
/** Largest C + result block (bytes, 12 per element) before columns are split: 4096 columns of 128 rows. */
const C_BLOCK_BYTES = 6 << 20;
const PAGE = 65536;

interface Instance {
  memory: WebAssembly.Memory;
  block: BlockFn;
  transpose: TransposeFn;
  panelize: PanelizeFn;
  f32: Float32Array;
  f64: Float64Array;
}

let instance: Instance | null = null;
/** Compiled once; a released instance is re-instantiated from it. */
let compiled: WebAssembly.Module | null = null;
let supported: boolean | undefined;

/** Whether the runtime accepts the kernel module with relaxed_madd (Relaxed SIMD); cached. */
let fma: boolean | undefined;

function validates(opts: KernelOptions): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(gemmKernelModule(opts));
  } catch {
    return false;
  }
}

/** Whether this runtime accepts the kernel module (WebAssembly with 128-bit SIMD). Cached. */
export function wasmGemmSupported(): boolean {
  supported ??= validates({});
  return supported;
}

/**
 * The kernel variant this runtime gets: "fma" (f32x4.relaxed_madd, where Relaxed SIMD exists: ~1.45x faster
 * here, and fused multiply-adds round less), "mul-add" (plain SIMD), or null without WebAssembly SIMD.
 */
export function wasmGemmKernel(): "fma" | "mul-add" | null {
  if (!wasmGemmSupported()) return null;
  fma ??= validates({ fma: true });
  return fma ? "fma" : "mul-add";
}

/** The instance, created on first use; null if the engine refuses to compile or instantiate it. */
function load(): Instance | null {
  if (instance) return instance;
  try {
    // synchronous compile: the module is ~2 KB, under the 4 KB browsers allow on the main thread
    compiled ??= new WebAssembly.Module(gemmKernelModule({ fma: wasmGemmKernel() === "fma" }));
    const memory = new WebAssembly.Memory({ initial: 16 });
    const exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports;
    instance = {
      memory, block: exports.block as BlockFn, transpose: exports.transpose as TransposeFn,
      panelize: exports.panelize as PanelizeFn, f32: new Float32Array(memory.buffer), f64: new Float64Array(memory.buffer),
    };
  } catch {
    return null;
  }
  return instance;
}

/** Grows the memory to at least `bytes`; false when the engine refuses (the caller falls back to TypeScript). */
function reserve(w: Instance, bytes: number): boolean {
  const have = w.memory.buffer.byteLength;
  if (bytes > have) {
    try {
      w.memory.grow(Math.ceil((bytes - have) / PAGE));
    } catch {
      return false;
    }
  }
  if (w.f32.buffer !== w.memory.buffer) {
    w.f32 = new Float32Array(w.memory.buffer);
    w.f64 = new Float64Array(w.memory.buffer);
  }
  return true;
}

/** Drops the wasm instance and its memory (rebuilt on the next call). */
export function releaseWasmGemm(): void {
  instance = null;
}

/** Bytes of wasm memory currently held (0 when released). */
export function wasmGemmMemoryBytes(): number {
  return instance ? instance.memory.buffer.byteLength : 0;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/**
 * a [M,K] (stride lda, from aOff), B in one of three layouts, bias [N] | null
 *   -> out [M,N] (stride ldo, from oOff) = alpha·(bias + a·b): float32 runs of SUB products, summed in float64.
 * Arguments are already checked by gemm.ts. Returns false (having written nothing) if the wasm memory could not
 * grow to the size this product needs, or the engine refused the module.
 */
export function gemmWasm(
  kind: number, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  bias: Float32Array | null,
  out: Float32Array, oOff: number, ldo: number, alpha: number,
): boolean {
  if (m === 0 || n === 0) return true;
  const w = load();
  if (w === null) return false;
  const chunks = Math.max(1, Math.ceil(k / KC));
  const kcs = Math.ceil(k / chunks);
  const mcMax = Math.min(MC, roundUp(m, MR));
  // columns per block: a multiple of NR, at least NR, so that B and C stay within their budgets
  const colBytes = Math.max(Math.max(1, k) * 4 + 16, (mcMax * 12 * B_BLOCK_BYTES) / C_BLOCK_BYTES);
  const ncMax = Math.max(NR, Math.floor(B_BLOCK_BYTES / colBytes / NR) * NR);

  for (let jc = 0; jc < n; jc += ncMax) {
    const nc = Math.min(ncMax, n - jc);
    const ncPad = roundUp(nc, NR);
    const pairs = ncPad / NR;
    const ldc = ncPad + 4; // row stride of C (doubles) and of the float32 result (floats)
    // panel length in k steps: k, but transposed panels come in steps of 4 (k rounded up; the tail is never read)
    const kp = kind === B_TRANS ? roundUp(k, 4) : k;
    // byte offsets; the raw rows of matmul's and matmulTransB's B share the space of A and C (used before them)
    const biasB = 0;
    const bB = biasB + ncPad * 8;
    const aB = bB + ncPad * kp * 4;
    const cB = aB + mcMax * A_STRIDE * 4;
    const oB = cB + mcMax * ldc * 8;
    const rawBytes = kind === B_TRANS ? ncPad * kp * 4 : kind === B_PLAIN ? k * ncPad * 4 : 0;
    if (!reserve(w, Math.max(oB + mcMax * ldc * 4, aB + rawBytes))) return false;
    const f = w.f32;
    const f64 = w.f64;

    // bias (or zeros) as doubles, padded
    const biasD = biasB >> 3;
    for (let c = 0; c < ncPad; c++) f64[biasD + c] = bias !== null && c < nc ? bias[jc + c] : 0;

    // B block -> panels of 4 columns [ncPad/4][kp][4] at bB
    const bF = bB >> 2;
    const rawF = aB >> 2;
    if (kind === B_PACKED) {
      const have = roundUp(nc, 4); // packWeight zero-pads to a multiple of 4 columns
      f.set(b.subarray(jc * k, (jc + have) * k), bF);
      f.fill(0, bF + have * k, bF + ncPad * k);
    } else if (kind === B_TRANS) {
      // raw rows [ncPad, kp] (zero rows past nc; columns past k are never read), transposed in wasm
      for (let j = 0; j < nc; j++) {
        const src = bOff + (jc + j) * ldb;
        f.set(b.subarray(src, src + k), rawF + j * kp);
      }
      f.fill(0, rawF + nc * kp, rawF + ncPad * kp);
      w.transpose(aB, kp * 4, bB, ncPad / 4, kp);
    } else {
      // raw rows [k, ncPad] (zero columns past nc), cut into panels in wasm
      for (let p = 0; p < k; p++) {
        const src = bOff + p * ldb + jc;
        const d = rawF + p * ncPad;
        f.set(b.subarray(src, src + nc), d);
        f.fill(0, d + nc, d + ncPad);
      }
      w.panelize(aB, ncPad * 4, bB, ncPad / 4, k);
    }

    for (let ic = 0; ic < m; ic += mcMax) {
      const mc = Math.min(mcMax, m - ic);
      const tiles = Math.ceil(mc / MR);
      const aF = aB >> 2;
      for (let q = 0; q < chunks; q++) {
        const p0 = q * kcs;
        const kc = Math.min(kcs, k - p0);
        for (let i = 0; i < mc; i++) {
          const src = aOff + (ic + i) * lda + p0;
          f.set(a.subarray(src, src + kc), aF + i * A_STRIDE);
        }
        for (let i = mc; i < tiles * MR; i++) f.fill(0, aF + i * A_STRIDE, aF + i * A_STRIDE + kc);
        const last = q === chunks - 1 ? 1 : 0;
        w.block(aB, bB + p0 * 16, kp * 16, biasB, cB, ldc * 8, oB, ldc * 4, tiles, pairs, kc, q > 0 ? 1 : 0, last, alpha);
      }
      const oF = oB >> 2;
      for (let i = 0; i < mc; i++) {
        const src = oF + i * ldc;
        out.set(f.subarray(src, src + nc), oOff + (ic + i) * ldo + jc);
      }
    }
  }
  return true;
}
