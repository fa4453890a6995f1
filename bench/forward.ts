/**
 * Quick single-process full-size forward benchmark: load time, forward latency at batch 1, and the GEMM throughput
 * on the model's shapes, on the synthetic full-size checkpoint (generated from the manifest when missing), with
 * the GEMM backend chosen by PERCEIVER_BACKEND (default: the module's own choice) and PERCEIVER_THREADS threads
 * (default: every core).
 * Prints what it measured together with the machine. Run: npx tsx bench/forward.ts
 * (`npm run bench` is bench/run.ts: every backend against the peers, each in its own process.)
 */
import os from "node:os";
import { PerceiverForImageClassification, Tensor } from "../src/index.js";
import * as gemm from "../src/tensor/gemm.js";
import { linear, packWeight } from "../src/tensor/gemm.js";
import { ensureFullCheckpoint } from "../test/helpers/full-model.js";
import { MODEL_GFLOP } from "./report.js";

function gemmGflops(m: number, n: number, k: number, reps: number): number {
  const a = new Float32Array(m * k).map((_, i) => Math.sin(i));
  const w = packWeight(new Float32Array(n * k).map((_, i) => Math.cos(i)), n, k);
  const out = new Float32Array(m * n);
  linear(a, w, null, out, m); // warm-up
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) linear(a, w, null, out, m);
  const s = (performance.now() - t0) / 1000;
  return (2 * m * n * k * reps) / s / 1e9;
}

async function main(): Promise<void> {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  await gemm.ensureThreads(); // PERCEIVER_THREADS, else every core (what forward would start)
  const threads = gemm.getThreads();
  console.log(`# perceiver-ts forward benchmark\nmachine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${threads} thread(s), GEMM backend ${gemm.getBackend()}\n`);

  console.log("| GEMM shape (M x N x K) | GFLOP/s |\n|---|---|");
  for (const [m, n, k, reps] of [[512, 1024, 1024, 3], [3025, 322, 322, 3], [512, 322, 1024, 3], [512, 1024, 322, 3]] as const) {
    console.log(`| ${m} x ${n} x ${k} | ${gemmGflops(m, n, k, reps).toFixed(2)} |`);
  }

  const dir = await ensureFullCheckpoint((m) => console.error(m));
  const t0 = performance.now();
  const model = await PerceiverForImageClassification.fromPretrained(dir);
  const loadS = (performance.now() - t0) / 1000;
  const pixels = new Tensor(new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01)), [1, 3, 224, 224]);
  const t1 = performance.now();
  await model.forward(pixels, {
    onProgress: (d, t) => process.stderr.isTTY && process.stderr.write(`\rlayers ${d}/${t}`),
  });
  if (process.stderr.isTTY) process.stderr.write("\n");
  const fwdS = (performance.now() - t1) / 1000;
  console.log(`\n| full model (vision-perceiver-conv, ${MODEL_GFLOP} GFLOP/image) | value |\n|---|---|`);
  console.log(`| load (195 MB safetensors) | ${loadS.toFixed(2)} s |`);
  console.log(`| forward, batch 1 | ${fwdS.toFixed(1)} s (${(MODEL_GFLOP / fwdS).toFixed(1)} GFLOP/s) |`);
  console.log(`| peak RSS | ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB |`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
