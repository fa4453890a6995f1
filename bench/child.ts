/**
 * One measurement in its own process (so each engine's peak RSS and thread pools are its own), started by
 * bench/run.ts as `node bench/.build/bench/child.js '<json task>'` (compiled by tsc at the start of the run). Progress goes to stderr; the answer is one
 * stdout line: RESULT_MARK + JSON (a GemmResult or ModelResult, or { error }).
 */
import { RESULT_MARK, type BatchProtocol } from "./common.js";
import type { OnnxModelFiles } from "./peers-model.js";
import type { PeerGemmEngine } from "./peers-gemm.js";

export type ChildTask =
  | { task: "gemm"; engine: "perceiver-ts" | PeerGemmEngine; backend: string; threads: number }
  | {
    task: "model";
    engine: "perceiver-ts" | "onnxruntime-node" | "onnxruntime-web";
    backend: string;
    threads: number;
    batches: number[];
    modelDir: string;
    onnx: OnnxModelFiles;
    protocol: BatchProtocol;
  };

async function main(): Promise<unknown> {
  const t = JSON.parse(process.argv[2] ?? "") as ChildTask;
  if (t.task === "gemm") {
    if (t.engine === "perceiver-ts") return (await import("./ours-gemm.js")).oursGemm(t.backend, t.threads);
    return (await import("./peers-gemm.js")).peerGemm(t.engine, t.threads);
  }
  if (t.engine === "perceiver-ts") {
    return (await import("./ours-model.js")).oursModel(t.backend, t.threads, t.batches, t.modelDir, t.protocol);
  }
  return (await import("./peers-model.js")).peerModel(t.engine, t.threads, t.batches, t.onnx, t.protocol);
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
