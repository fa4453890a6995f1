/**
 * The TypeScript backend's micro-kernel as an asm.js module: plain JavaScript (no WebAssembly), written in the
 * subset V8 validates as asm.js and compiles ahead of time with int32/double types and no type checks, so the
 * inner loop is the register-tiled loop and nothing else. Plain JavaScript reads a typed array element with about
 * 6-8 instructions (map check, bounds check, pointer arithmetic); asm.js with about 3.
 *
 * The 4x4 tile on a Float32Array heap is the fastest shape found (docs/kernels/3-asmjs.md; the measurements are in
 * docs/performance/history.md). asm.js loads are still bounds-checked (V8 emits a compare and branch per load: the
 * asm.js heap may be any size), which is why this stays far below the WebAssembly SIMD kernel.
 *
 * The source is a string compiled with `new Function` so that no transpiler rewrites it: asm.js types come from
 * literal spelling (`0.0` is a double, `0` an int), which esbuild and minifiers normalize away. Where `new
 * Function` is not allowed (a Content-Security-Policy without 'unsafe-eval'), or an engine does not validate
 * asm.js, the same code runs: `blockTs` below in the first case, the source as ordinary JavaScript in the second.
 * Node reports a module that fails validation as a warning ("V8: ... Invalid asm.js"); a test watches for it.
 *
 * Threads: see startTsThreads below (workers cannot share an asm.js heap; each copies its part of the operands).
 *
 * Arithmetic: one double accumulator per output, starting from the bias, adding float32·float32 products (exact in
 * double) in the order p = 0..K-1, rounded once to float32 on store: bit-for-bit the result of the reference loops
 * (reference/gemm.ts).
 */

import { PerceiverError } from "../errors.js";
import { ThreadPool } from "./threads.js";

/**
 * block(a, b, z, k, tiles, panels, c, ldc), byte addresses in the heap, alpha the float64 at heap byte 0:
 *   a: packed A [tiles][K][4] f32, b: packed B panels [panels][K][4] f32, z: bias [panels·4] f32
 *   -> c [tiles·4 rows, panels·4 columns] f32 (row stride ldc bytes) = alpha·(bias + a·b)
 * Panels outer, tiles inner: one B panel (16·K bytes) stays in L1 while the A block streams past it. alpha and the
 * bias are read from the heap, not kept in registers across the loop: 16 accumulators, 4 B values and an A value
 * already exceed x86-64's 16 SIMD registers.
 */
export type AsmBlockFn = (a: number, b: number, z: number, k: number, tiles: number, panels: number, c: number, ldc: number) => void;

const ROWS = [0, 1, 2, 3];
const acc = (r: number, c: number) => `c${r}${c}`;
/** `stmt(r, c)` for the 16 outputs of a tile, joined */
const each = (stmt: (r: number, c: number) => string, sep = " ") => ROWS.flatMap((r) => ROWS.map((c) => stmt(r, c))).join(sep);

/** The asm.js module source (the body of `function (stdlib, foreign, heap)`). */
export const ASM_GEMM_SOURCE = `"use asm";
var F32 = new stdlib.Float32Array(heap);
var F64 = new stdlib.Float64Array(heap);
function block(a, b, z, k, tiles, panels, c, ldc) {
  a = a | 0; b = b | 0; z = z | 0; k = k | 0; tiles = tiles | 0; panels = panels | 0; c = c | 0; ldc = ldc | 0;
  var jp = 0, t = 0, ai = 0, bi = 0, aEnd = 0, o = 0, panelBytes = 0, bPanel = 0, cCol = 0;
  var alpha = 0.0, x = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
  var ${each((r, c) => `${acc(r, c)} = 0.0`, ", ")};
  panelBytes = k << 4;
  bPanel = b;
  cCol = c;
  for (jp = 0; (jp | 0) < (panels | 0); jp = (jp + 1) | 0) {
    ai = a;
    o = cCol;
    for (t = 0; (t | 0) < (tiles | 0); t = (t + 1) | 0) {
      ${ROWS.map((c) => `c0${c} = +F32[(z + ${4 * c}) >> 2];`).join(" ")}
      ${ROWS.slice(1).flatMap((r) => ROWS.map((c) => `${acc(r, c)} = c0${c};`)).join(" ")}
      bi = bPanel;
      aEnd = (ai + panelBytes) | 0;
      while ((ai | 0) < (aEnd | 0)) {
        b0 = +F32[bi >> 2]; b1 = +F32[(bi + 4) >> 2]; b2 = +F32[(bi + 8) >> 2]; b3 = +F32[(bi + 12) >> 2];
${ROWS.map((r) => `        x = +F32[(ai + ${4 * r}) >> 2]; ${ROWS.map((c) => `${acc(r, c)} = ${acc(r, c)} + x * b${c};`).join(" ")}`).join("\n")}
        ai = (ai + 16) | 0; bi = (bi + 16) | 0;
      }
      alpha = +F64[0];
${ROWS.map((r) => `      ${ROWS.map((c) => `F32[(o + ${4 * c}) >> 2] = alpha * ${acc(r, c)};`).join(" ")} o = (o + ldc) | 0;`).join("\n")}
    }
    z = (z + 16) | 0; bPanel = (bPanel + panelBytes) | 0; cCol = (cCol + 16) | 0;
  }
}
return { block: block };
`;

/** The same block in TypeScript, for engines that refuse `new Function` (see the header); same arithmetic. */
function blockTs(h: Float32Array, alpha: number, a: number, b: number, z: number, k: number, tiles: number, panels: number, c: number, ldc: number): void {
  const ld = ldc >> 2;
  for (let jp = 0; jp < panels; jp++) {
    const zi = (z >> 2) + 4 * jp, bPanel = (b >> 2) + jp * 4 * k;
    for (let t = 0; t < tiles; t++) {
      let ai = (a >> 2) + t * 4 * k, bi = bPanel;
      let c00 = h[zi], c01 = h[zi + 1], c02 = h[zi + 2], c03 = h[zi + 3];
      let c10 = c00, c11 = c01, c12 = c02, c13 = c03, c20 = c00, c21 = c01, c22 = c02, c23 = c03;
      let c30 = c00, c31 = c01, c32 = c02, c33 = c03;
      for (const end = ai + 4 * k; ai < end; ai += 4, bi += 4) {
        const b0 = h[bi], b1 = h[bi + 1], b2 = h[bi + 2], b3 = h[bi + 3];
        let x = h[ai];
        c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
        x = h[ai + 1];
        c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
        x = h[ai + 2];
        c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
        x = h[ai + 3];
        c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
      }
      let o = (c >> 2) + t * 4 * ld + 4 * jp;
      h[o] = alpha * c00; h[o + 1] = alpha * c01; h[o + 2] = alpha * c02; h[o + 3] = alpha * c03; o += ld;
      h[o] = alpha * c10; h[o + 1] = alpha * c11; h[o + 2] = alpha * c12; h[o + 3] = alpha * c13; o += ld;
      h[o] = alpha * c20; h[o + 1] = alpha * c21; h[o + 2] = alpha * c22; h[o + 3] = alpha * c23; o += ld;
      h[o] = alpha * c30; h[o + 1] = alpha * c31; h[o + 2] = alpha * c32; h[o + 3] = alpha * c33;
    }
  }
}

/** asm.js heaps must be a multiple of 16 MB (V8: 2^12..2^24 bytes, or a multiple of 2^24). */
const HEAP_UNIT = 1 << 24;

type AsmModule = (stdlib: typeof globalThis, foreign: object, heap: ArrayBuffer) => { block: AsmBlockFn };

/** The compiled module factory; null where `new Function` is refused (then blockTs runs). */
let factory: AsmModule | null | undefined;
let forceTs = false;

/** The heap (operands are staged into it) and the block function linked to it. */
export interface AsmHeap {
  f32: Float32Array;
  /** f64[0] is alpha */
  f64: Float64Array;
  block: AsmBlockFn;
  /** "asm.js" (the module, validated or not by the engine) or "typescript" (blockTs) */
  kind: "asm.js" | "typescript";
}

let heap: AsmHeap | null = null;

function compile(): AsmModule | null {
  if (factory !== undefined) return factory;
  try {
    factory = new Function("stdlib", "foreign", "heap", ASM_GEMM_SOURCE) as AsmModule;
  } catch {
    factory = null; // e.g. a Content-Security-Policy without 'unsafe-eval'
  }
  return factory;
}

/** A heap of at least `bytes` bytes with its block function (the heap grows, by relinking, and never shrinks). */
export function asmHeap(bytes: number): AsmHeap {
  if (heap && heap.f32.byteLength >= bytes) return heap;
  const buffer = new ArrayBuffer(Math.max(1, Math.ceil(bytes / HEAP_UNIT)) * HEAP_UNIT);
  const f32 = new Float32Array(buffer);
  const f64 = new Float64Array(buffer);
  const mod = forceTs ? null : compile();
  if (mod) {
    heap = { f32, f64, block: mod(globalThis, {}, buffer).block, kind: "asm.js" };
  } else {
    heap = {
      f32, f64, kind: "typescript",
      block: (a, b, z, k, tiles, panels, c, ldc) => blockTs(f32, f64[0], a, b, z, k, tiles, panels, c, ldc),
    };
  }
  return heap;
}

/** Drops the heap (16 MB or more of address space; rebuilt on the next product). */
export function releaseAsmHeap(): void {
  heap = null;
}

/** For tests: run blockTs instead of the asm.js module (as where `new Function` is refused: one thread). */
export function setAsmBlockForTests(ts: boolean): void {
  forceTs = ts;
  heap = null;
  if (ts) stopTsThreads();
}

// ---------------------------------------------------------------------------------------------------------------
// threads (the TypeScript backend's share of the worker pool)
//
// asm.js links to an ArrayBuffer only (V8: "Invalid heap type: SharedArrayBuffer"), so threads cannot share the
// heap. The calling thread stages the bias, the B panels and the packed A rows into an exchange SharedArrayBuffer;
// each job (a range of panels, for every staged row) copies its part into its thread's private asm.js heap, runs
// `block` there and copies its C columns back; the caller then copies C out. Every output is still one thread's
// same sum in the same order: bit-identical to one thread.

/** Floats in the exchange buffer (16 MB): bias, B block, packed A rows and C, see gemm.ts's gemmThreaded. */
export const EXCHANGE_FLOATS = 1 << 22;

/**
 * The job, as the body of `function (shared, asmSource)` returning
 * job(gen, aF, bF, zF, cF, k, rows, ncPad, p0, p1, mcMax, alpha), float offsets into the exchange `shared`:
 *   bias [ncPad] at zF, B panels [ncPad/4][K][4] at bF (staging number `gen`), packed A [rows/4][K][4] at aF
 *   -> C [rows, ncPad] at cF, columns [4·p0, 4·p1) = alpha·(bias + a·b), computed mcMax rows at a time.
 * Plain JavaScript (it runs in workers as a string); the panels of one staging are copied once per thread.
 */
export const TS_JOB_SOURCE = `
"use strict";
const Module = new Function("stdlib", "foreign", "heap", asmSource);
const sf = new Float32Array(shared);
const UNIT = ${HEAP_UNIT};
let hf = null, hd = null, block = null, cached = "";
const ensure = (floats) => {
  if (hf !== null && hf.length >= floats) return;
  const heap = new ArrayBuffer(Math.max(1, Math.ceil((floats * 4) / UNIT)) * UNIT);
  hf = new Float32Array(heap);
  hd = new Float64Array(heap);
  block = Module(globalThis, {}, heap).block;
  cached = "";
};
return (gen, aF, bF, zF, cF, k, rows, ncPad, p0, p1, mcMax, alpha) => {
  const w = (p1 - p0) * 4;
  const zP = 4, bP = zP + w, aP = bP + w * k, cP = aP + mcMax * k;
  ensure(cP + mcMax * w);
  hd[0] = alpha;
  const key = gen + ":" + p0 + ":" + p1;
  if (key !== cached) {
    hf.set(sf.subarray(zF + p0 * 4, zF + p1 * 4), zP);
    hf.set(sf.subarray(bF + p0 * 4 * k, bF + p1 * 4 * k), bP);
    cached = key;
  }
  for (let r0 = 0; r0 < rows; r0 += mcMax) {
    const mr = Math.min(mcMax, rows - r0);
    hf.set(sf.subarray(aF + r0 * k, aF + (r0 + mr) * k), aP);
    block(aP * 4, bP * 4, zP * 4, k, mr >> 2, p1 - p0, cP * 4, w * 4);
    for (let i = 0; i < mr; i++) {
      const src = cP + i * w, dst = cF + (r0 + i) * ncPad + p0 * 4;
      for (let j = 0; j < w; j++) sf[dst + j] = hf[src + j];
    }
  }
};
`;

/** The job signature (see TS_JOB_SOURCE). */
export type TsJobFn = (
  gen: number, aF: number, bF: number, zF: number, cF: number, k: number, rows: number, ncPad: number,
  p0: number, p1: number, mcMax: number, alpha: number,
) => void;

/** The TypeScript backend's threads: the pool, the exchange buffer and the calling thread's own job function. */
export interface TsThreads {
  pool: ThreadPool;
  exchange: Float32Array;
  job: TsJobFn;
}

let tsThreads: TsThreads | null = null;

/** The running TypeScript-backend threads, or null (one thread). */
export function tsThreadPool(): TsThreads | null {
  return tsThreads;
}

/** Threads the TypeScript backend's products run on. */
export function tsThreadCount(): number {
  return tsThreads?.pool.threads ?? 1;
}

/**
 * Runs the TypeScript backend's products on `threads` threads (the caller plus workers running TS_JOB_SOURCE).
 * Rejects with a PerceiverError where workers cannot run or `new Function` is refused, keeping the previous pool.
 */
export async function startTsThreads(threads: number): Promise<void> {
  if (threads === tsThreadCount()) return;
  if (threads === 1) {
    stopTsThreads();
    return;
  }
  if (forceTs || compile() === null) {
    throw new PerceiverError("CONFIG_UNSUPPORTED", "threads for the ts backend need new Function (refused here)");
  }
  const shared = new SharedArrayBuffer(EXCHANGE_FLOATS * 4);
  const pool = await ThreadPool.create(threads, { kind: "js", params: ["shared", "asmSource"], body: TS_JOB_SOURCE, args: [shared, ASM_GEMM_SOURCE] });
  stopTsThreads();
  const job = new Function("shared", "asmSource", TS_JOB_SOURCE)(shared, ASM_GEMM_SOURCE) as TsJobFn;
  tsThreads = { pool, exchange: new Float32Array(shared), job };
}

/** Stops the TypeScript backend's workers (if any). */
export function stopTsThreads(): void {
  tsThreads?.pool.close();
  tsThreads = null;
}
