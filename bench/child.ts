/**
 * One measurement in its own process (so each engine's peak RSS and thread pools are its own), started by
 * bench/run.ts as `node bench/.build/bench/child.js '<json task>'` (compiled by tsc at the start of the run). Progress goes to stderr; the answer is one
 * stdout line: RESULT_MARK + JSON (a GemmResult or ModelResult, or { error }). A model task with `serve` then
 * stays alive for paired rounds (ROUND_MARK, see common.ts).
 */
import { createInterface } from "node:readline";
import { RESULT_MARK, ROUND_MARK, type BatchProtocol, type ModelRun } from "./common.js";
import type { OnnxModelFiles } from "./peers-model.js";
import type { PeerGemmEngine } from "./peers-gemm.js";

export type ChildTask =
  | { task: "gemm"; engine: "perceiver-ts" | PeerGemmEngine; backend: string; threads: number }
  | { task: "ceiling"; threads: number }
  | {
    task: "model";
    engine: "perceiver-ts" | "onnxruntime-node" | "onnxruntime-web";
    backend: string;
    threads: number;
    batches: number[];
    modelDir: string;
    onnx: OnnxModelFiles;
    protocol: BatchProtocol;
    /** stay alive for paired rounds after the answer */
    serve?: boolean;
  };

const write = (line: string): Promise<void> => new Promise((done) => process.stdout.write(`${line}\n`, () => done()));

/** Paired rounds: "run" -> one timed batch-1 forward, answered on stdout; "exit" or the end of stdin -> done. */
async function serve(run: (batch: number) => Promise<void>): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    const command = line.trim();
    if (command === "exit") return;
    if (command !== "run") {
      await write(`${ROUND_MARK}${JSON.stringify({ error: `unknown command "${command}"` })}`);
      continue;
    }
    try {
      const t0 = performance.now();
      await run(1);
      await write(`${ROUND_MARK}${JSON.stringify({ seconds: (performance.now() - t0) / 1000 })}`);
    } catch (e) {
      await write(`${ROUND_MARK}${JSON.stringify({ error: (e as Error)?.message ?? String(e) })}`);
    }
  }
}

async function main(): Promise<unknown> {
  const t = JSON.parse(process.argv[2] ?? "") as ChildTask;
  if (t.task === "ceiling") return (await import("./ceiling.js")).measureCeiling(t.threads);
  if (t.task === "gemm") {
    if (t.engine === "perceiver-ts") return (await import("./ours-gemm.js")).oursGemm(t.backend, t.threads);
    return (await import("./peers-gemm.js")).peerGemm(t.engine, t.threads);
  }
  const m: ModelRun = t.engine === "perceiver-ts"
    ? await (await import("./ours-model.js")).oursModel(t.backend, t.threads, t.batches, t.modelDir, t.protocol)
    : await (await import("./peers-model.js")).peerModel(t.engine, t.threads, t.batches, t.onnx, t.protocol);
  if (!t.serve || !m.run) return m.result;
  await write(`${RESULT_MARK}${JSON.stringify(m.result)}`);
  await serve(m.run);
  process.exit(0); // peers keep worker threads alive
}

main().then(
  (r) => {
    process.stdout.write(`${RESULT_MARK}${JSON.stringify(r)}\n`, () => process.exit(0)); // peers keep worker threads alive
  },
  (e: unknown) => {
    process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    process.stdout.write(`${RESULT_MARK}${JSON.stringify({ error: (e as Error)?.message ?? String(e) })}\n`, () => process.exit(1));
  },
);
