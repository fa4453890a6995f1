/**
 * GFLOP/s of the matrix products on the model's shapes: naive twin vs the optimized kernels of both backends
 * ("ts": packed pure TypeScript; "wasm": WebAssembly SIMD), plus the GEMM time of one 224x224 image through
 * deepmind/vision-perceiver-conv estimated from those rates.
 * Naive rates are measured on a slice of rows (the naive loop's rate does not depend on M); optimized rates on
 * the full shape. Each timing is the best of several runs after a warm-up. The machine is shared: run it twice.
 * Run: npx tsx bench/gemm.ts [options]
 *   --shapes latent          only the latents' 512x1024x1024 product (a short run)
 *   --threads N              run the optimized kernels on N threads (default 1)
 *   --ts-block typescript    the ts backend with its micro-kernel in plain TypeScript instead of asm.js
 *   --epilogues              also time the wasm epilogues fused against the same work done separately
 * (the library turns on Node 20's Relaxed SIMD flag itself; PERCEIVER_WASM_FMA=0 keeps the mul + add kernel)
 * docs/kernels/ gives the command for each step of the kernel ladder.
 */
import os from "node:os";
import { parseArgs } from "node:util";
import { add, gelu } from "../src/tensor/activations.js";
import {
  type GemmBackend, attentionHeads, getBackend, getThreads, linear, linearGelu, linearResidual, matmul,
  matmulTransB, matmulTransBSoftmax, packWeight, setBackend, setThreads,
} from "../src/tensor/gemm.js";
import { setAsmBlockForTests } from "../src/tensor/gemm-asm.js";
import { linear as linearNaive, matmul as matmulNaive, matmulTransB as matmulTransBNaive } from "../src/tensor/reference/gemm.js";
import { softmaxRows } from "../src/tensor/softmax.js";
import { wasmGemmKernel, wasmGemmSupported } from "../src/tensor/wasm/gemm-wasm.js";
import { randomArray } from "./common.js";


/** Best wall time in ms of `fn` over `rounds` runs after one warm-up, stopping early past `budgetMs`. */
function best(fn: () => void, rounds: number, budgetMs = 3000): number {
  fn();
  let b = Infinity;
  const start = performance.now();
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
    if (performance.now() - start > budgetMs) break;
  }
  return b;
}

type Kind = "linear" | "matmulTransB" | "matmul";

interface Shape {
  kind: Kind;
  m: number;
  n: number;
  k: number;
  /** per-head strided views as in attention: lda/ldb/ldo of the [T, 1024] buffers */
  ld?: number;
  /** calls per image */
  perImage: number;
  note: string;
}

const SHAPES: Shape[] = [
  { kind: "linear", m: 512, n: 1024, k: 1024, perImage: 48 * 6 + 4, note: "latent q/k/v/o/mlp" },
  { kind: "matmulTransB", m: 512, n: 512, k: 128, ld: 1024, perImage: 48 * 8, note: "per-head Q·Kᵀ" },
  { kind: "matmul", m: 512, n: 128, k: 512, ld: 1024, perImage: 48 * 8, note: "per-head P·V" },
  { kind: "linear", m: 3025, n: 322, k: 322, perImage: 2, note: "cross-attn K, V" },
  { kind: "linear", m: 512, n: 322, k: 1024, perImage: 1, note: "cross-attn Q" },
  { kind: "linear", m: 512, n: 1024, k: 322, perImage: 1, note: "cross-attn out" },
  { kind: "matmulTransB", m: 512, n: 3025, k: 322, perImage: 1, note: "cross-attn Q·Kᵀ" },
  { kind: "matmul", m: 512, n: 322, k: 3025, perImage: 1, note: "cross-attn P·V" },
  { kind: "linear", m: 1, n: 1024, k: 1024, perImage: 4, note: "decoder q/o/mlp (M=1)" },
  { kind: "matmulTransB", m: 1, n: 512, k: 1024, perImage: 1, note: "decoder Q·Kᵀ" },
  { kind: "matmul", m: 1, n: 1024, k: 512, perImage: 1, note: "decoder P·V" },
  { kind: "linear", m: 1, n: 1000, k: 1024, perImage: 1, note: "classifier" },
];

const { values: opts } = parseArgs({
  options: {
    shapes: { type: "string", default: "all" },
    threads: { type: "string", default: "1" },
    "ts-block": { type: "string", default: "asm" },
    epilogues: { type: "boolean", default: false },
  },
});
if (opts.shapes !== "all" && opts.shapes !== "latent") throw new Error(`--shapes all|latent, got ${opts.shapes}`);
if (opts["ts-block"] !== "asm" && opts["ts-block"] !== "typescript") throw new Error(`--ts-block asm|typescript, got ${opts["ts-block"]}`);
const threads = Number(opts.threads);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer, got ${opts.threads}`);
if (opts["ts-block"] === "typescript") setAsmBlockForTests(true);
if (opts.shapes === "latent") SHAPES.splice(1);

const BACKENDS: GemmBackend[] = wasmGemmSupported() ? ["ts", "wasm"] : ["ts"];

/** Best ms of `fn` under each backend, in BACKENDS order. */
function perBackend(fn: () => void): number[] {
  const ms = BACKENDS.map((b) => {
    setBackend(b);
    return best(fn, 5);
  });
  setBackend(initial);
  return ms;
}

const initial = getBackend();

/** Returns [naive ms per row-slice, rows in slice, optimized ms per backend]. */
function measure(s: Shape): [number, number, number[]] {
  const { m, n, k } = s;
  const rows = Math.max(1, Math.min(m, Math.floor(32e6 / (n * k))));
  if (s.kind === "linear") {
    const a = randomArray(m * k, 1), w = randomArray(n * k, 2), bias = randomArray(n, 3), out = new Float32Array(m * n);
    const pw = packWeight(w, n, k);
    const naive = best(() => linearNaive(a, w, bias, out, rows, n, k), 2);
    return [naive, rows, perBackend(() => linear(a, pw, bias, out, m))];
  }
  const ld = s.ld;
  if (s.kind === "matmulTransB") {
    const lda = ld ?? k, ldb = ld ?? k;
    const a = randomArray(m * lda, 1), b = randomArray(n * ldb, 2), out = new Float32Array(m * n);
    const naive = best(() => matmulTransBNaive(rows, n, k, a, 0, lda, b, 0, ldb, out, 0, n, 0.125), 2);
    return [naive, rows, perBackend(() => matmulTransB(m, n, k, a, 0, lda, b, 0, ldb, out, 0, n, 0.125))];
  }
  const ldb = ld ?? n, ldo = ld ?? n;
  const a = randomArray(m * k, 1), b = randomArray(k * ldb, 2), out = new Float32Array(m * ldo);
  const naive = best(() => matmulNaive(rows, n, k, a, 0, k, b, 0, ldb, out, 0, ldo), 2);
  return [naive, rows, perBackend(() => matmul(m, n, k, a, 0, k, b, 0, ldb, out, 0, ldo))];
}

/** Starts `threads` threads on every backend (the ts backend's workers exist only with the asm.js block). */
async function startThreads(): Promise<void> {
  for (const b of BACKENDS) {
    if (b === "ts" && opts["ts-block"] === "typescript" && threads > 1) continue;
    setBackend(b);
    await setThreads(threads);
  }
  setBackend(initial);
}
await startThreads();

console.log(`CPU: ${os.cpus()[0]?.model ?? "unknown"} x${os.cpus().length}, Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
console.log(`wasm kernel: ${wasmGemmKernel() ?? "unavailable (no WebAssembly SIMD)"}; ts micro-kernel: ${opts["ts-block"] === "typescript" ? "TypeScript" : "asm.js"}; threads: ${threads}`);
console.log(
  "shape".padEnd(34) + "naive".padStart(8) + BACKENDS.map((b) => b.padStart(8)).join("") + "  GFLOP/s" +
    (BACKENDS.length > 1 ? "wasm/ts".padStart(9) : "") + "  ms/call (" + BACKENDS.join(", ") + ")",
);
const totalMs = BACKENDS.map(() => 0);
let totalFlop = 0;
for (const s of SHAPES) {
  const [naiveMs, rows, optMs] = measure(s);
  const flop = 2 * s.m * s.n * s.k;
  const naiveRate = (2 * rows * s.n * s.k) / naiveMs / 1e6;
  const rates = optMs.map((ms) => flop / ms / 1e6);
  optMs.forEach((ms, i) => (totalMs[i] += ms * s.perImage));
  totalFlop += flop * s.perImage;
  const label = `${s.kind} ${s.m}x${s.n}x${s.k}${s.ld ? ` ld=${s.ld}` : ""}`;
  console.log(
    label.padEnd(34) + naiveRate.toFixed(2).padStart(8) + rates.map((r) => r.toFixed(2).padStart(8)).join("") + "  " +
      " ".repeat(7) + (rates.length > 1 ? `${(rates[1] / rates[0]).toFixed(1)}x`.padStart(9) : "") + "  " +
      optMs.map((ms) => ms.toFixed(2)).join(", ") + `  ${s.note}`,
  );
}
BACKENDS.forEach((b, i) => {
  console.log(
    `one image (B=1), ${b}: ${(totalFlop / 1e9).toFixed(0)} GFLOP of GEMM, estimated ${(totalMs[i] / 1000).toFixed(1)} s ` +
      `(${(totalFlop / totalMs[i] / 1e6).toFixed(2)} GFLOP/s average, ${threads} thread${threads === 1 ? "" : "s"})`,
  );
});

/**
 * The wasm backend's epilogues: each fused call against the same work as separate steps (the ts backend's way),
 * on the model's shapes. Same results (tested in test/gemm-wasm.test.ts); this only times them.
 */
function epilogues(): void {
  setBackend("wasm");
  const M = 512, D = 1024, H = 8, DH = 128;
  const a = randomArray(M * D, 1), w = packWeight(randomArray(D * D, 2), D, D), bias = randomArray(D, 3);
  const res = randomArray(M * D, 4), out = new Float32Array(M * D), tmp = new Float32Array(M * D);
  const q = randomArray(M * D, 5), k = randomArray(M * D, 6), v = randomArray(M * D, 7), p = new Float32Array(M * M);
  const scale = 1 / Math.sqrt(DH);
  const rows: [string, () => void, () => void][] = [
    ["GELU after linear 512x1024x1024", () => linearGelu(a, w, bias, out, M), () => { linear(a, w, bias, out, M); gelu(out, out, M * D); }],
    ["residual add after linear 512x1024x1024", () => linearResidual(a, w, bias, res, out, M), () => { linear(a, w, bias, tmp, M); add(tmp, res, out, M * D); }],
    ["softmax after Q·Kᵀ 512x512x128 (one head)", () => matmulTransBSoftmax(M, M, DH, q, 0, D, k, 0, D, p, 0, M, scale),
      () => { matmulTransB(M, M, DH, q, 0, D, k, 0, D, p, 0, M, scale); softmaxRows(p, 0, M, M, M); }],
    ["attention, 8 heads of 512x512x128", () => {
      if (!attentionHeads({ m: M, n: M, heads: H, dqk: DH, dv: DH, q, k, v, out, alpha: scale })) throw new Error("attentionHeads did not run");
    }, () => {
      for (let h = 0; h < H; h++) {
        matmulTransBSoftmax(M, M, DH, q, h * DH, D, k, h * DH, D, p, 0, M, scale);
        matmul(M, DH, M, p, 0, M, v, h * DH, D, out, h * DH, D);
      }
    }],
  ];
  console.log(`\nwasm epilogues, ${getThreads()} thread(s): best ms, fused vs separate steps`);
  for (const [label, fused, apart] of rows) {
    const f = best(fused, 10), s = best(apart, 10);
    console.log(`${label.padEnd(44)} ${f.toFixed(2).padStart(8)} ${s.toFixed(2).padStart(8)}  ${(s / f).toFixed(2)}x`);
  }
  setBackend(initial);
}
if (opts.epilogues && BACKENDS.includes("wasm")) epilogues();
process.exit(0);
