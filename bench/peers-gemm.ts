/**
 * Peer GEMM GFLOP/s on the model's shapes: out [M,N] = a [M,K] · b [K,N], both operands as inputs (no prepacked
 * constant weight), the output read back to a Float32Array on every call (the API's own overhead counts).
 *  - tfjs: tf.matMul on @tensorflow/tfjs-backend-cpu (plain JS) or @tensorflow/tfjs-backend-wasm (XNNPACK, SIMD),
 *    `.dataSync()` for the result.
 *  - onnxruntime-node (native MLAS) and onnxruntime-web (WebAssembly SIMD): a one-node MatMul model written by
 *    onnx-proto.ts, one session per shape.
 * One engine/thread count per process: tfjs-wasm and onnxruntime-web fix their thread count at initialization.
 * Peers are devDependencies, imported dynamically so nothing here loads unless that peer is benchmarked.
 */
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { GEMM_SHAPES, randomArray, shapeResult, timeCalls, type GemmResult } from "./common.js";
import { matmulModel } from "./onnx-proto.js";

export const PEER_GEMM_ENGINES = ["tfjs-cpu", "tfjs-wasm", "onnxruntime-web", "onnxruntime-node"] as const;
export type PeerGemmEngine = (typeof PEER_GEMM_ENGINES)[number];

async function tfjsGemm(backend: "cpu" | "wasm", threads: number): Promise<GemmResult> {
  const result: GemmResult = { engine: "tfjs", backend, threads, notes: [], shapes: [] };
  const tf = await import("@tensorflow/tfjs-core");
  await import("@tensorflow/tfjs-backend-cpu");
  let effective = 1;
  if (backend === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const dir = dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm"));
    wasm.setWasmPaths(`${dir}/`); // the .wasm files sit next to the package's main file (dist/)
    wasm.setThreadsCount(threads);
    if (!(await tf.setBackend("wasm"))) return { ...result, skipped: "tf.setBackend('wasm') failed" };
    await tf.ready();
    effective = wasm.getThreadsCount();
    const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    result.backend = simd ? "wasm-simd" : "wasm";
  } else {
    if (!(await tf.setBackend("cpu"))) return { ...result, skipped: "tf.setBackend('cpu') failed" };
    await tf.ready();
  }
  if (effective !== threads) {
    return { ...result, skipped: `runs ${effective} thread(s) here (no multithreaded build in Node)` };
  }
  for (const s of GEMM_SHAPES) {
    const a = tf.tensor2d(randomArray(s.m * s.k, 1), [s.m, s.k]);
    const b = tf.tensor2d(randomArray(s.k * s.n, 2), [s.k, s.n]);
    const call = (): void => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    result.shapes.push(shapeResult(s, await timeCalls(call)));
    a.dispose();
    b.dispose();
  }
  return result;
}

/** The slice of the onnxruntime API both packages share. */
interface OrtLike {
  Tensor: new (type: "float32", data: Float32Array, dims: number[]) => unknown;
  InferenceSession: {
    create(model: Uint8Array, options: Record<string, unknown>): Promise<{
      run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown }>>;
      release(): Promise<void>;
    }>;
  };
}

async function ortGemm(engine: "onnxruntime-node" | "onnxruntime-web", threads: number): Promise<GemmResult> {
  let ort: OrtLike;
  let options: Record<string, unknown>;
  const result: GemmResult = { engine, backend: "", threads, notes: [], shapes: [] };
  if (engine === "onnxruntime-node") {
    ort = (await import("onnxruntime-node")) as unknown as OrtLike;
    options = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all" };
    result.backend = "cpu (MLAS)";
  } else {
    const web = await import("onnxruntime-web");
    web.env.wasm.numThreads = threads;
    ort = web as unknown as OrtLike;
    options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    result.backend = "wasm-simd";
  }
  for (const s of GEMM_SHAPES) {
    const session = await ort.InferenceSession.create(matmulModel(s.m, s.k, s.n), options);
    const feeds = {
      A: new ort.Tensor("float32", randomArray(s.m * s.k, 1), [s.m, s.k]),
      B: new ort.Tensor("float32", randomArray(s.k * s.n, 2), [s.k, s.n]),
    };
    const call = async (): Promise<void> => {
      const out = await session.run(feeds);
      if (!(out.Y.data instanceof Float32Array)) throw new Error(`${engine}: MatMul output is not a Float32Array`);
    };
    result.shapes.push(shapeResult(s, await timeCalls(call)));
    await session.release();
  }
  if (engine === "onnxruntime-web") {
    const web = await import("onnxruntime-web");
    if (web.env.wasm.numThreads !== threads) {
      return { ...result, skipped: `env.wasm.numThreads became ${web.env.wasm.numThreads}`, shapes: [] };
    }
  }
  return result;
}

export async function peerGemm(engine: PeerGemmEngine, threads: number): Promise<GemmResult> {
  switch (engine) {
    case "tfjs-cpu":
      if (threads !== 1) return { engine: "tfjs", backend: "cpu", threads, notes: [], shapes: [], skipped: "single-threaded" };
      return tfjsGemm("cpu", 1);
    case "tfjs-wasm":
      return tfjsGemm("wasm", threads);
    default:
      return ortGemm(engine, threads);
  }
}
