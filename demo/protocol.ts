/** Messages between the page (main.ts) and the inference worker (worker.ts). Every request carries an id; the
 *  worker answers it with exactly one `done` or `error`, after any number of `progress` messages. */
import type { Prediction } from "../src/index.js";

export type WorkerRequest =
  | { id: number; type: "load-hub"; endpoint: string; repo: string; revision: string; timeoutSeconds: number }
  | { id: number; type: "load-files"; files: File[] }
  | { id: number; type: "classify"; image: Blob; name: string };

export interface ModelInfo {
  /** Where the model came from, e.g. `deepmind/vision-perceiver-conv@9e887dd` or `local files`. */
  source: string;
  architecture: string;
  numLabels: number;
  /** model.safetensors or pytorch_model.bin (the name of the file that was read) */
  weightsFile: string;
  weightsBytes: number;
  /** wall time of download (or file read) + parse + build, seconds */
  seconds: number;
}

export interface ClassifyResult {
  top: Prediction[];
  /** All logits [numLabels] of the image. */
  logits: Float32Array;
  /** The preprocessed crop the model saw, RGB [height, width, 3] (an RgbImage). */
  crop: { width: number; height: number; data: Uint8Array };
  /** The library's classWeightedMap over the token grid [gridHeight, gridWidth] (sums to 1), or null if unavailable. */
  attention: { gridHeight: number; gridWidth: number; map: Float32Array } | null;
  imageWidth: number;
  imageHeight: number;
  /** milliseconds */
  timings: { decode: number; preprocess: number; forward: number };
  /**
   * Threads of the matrix products (more than 1 only on a cross-origin isolated page), why not more (the
   * library's threadsFallbackReason), and how many products the forward pass split across them.
   */
  threads: { count: number; note: string | null; splitProducts: number };
}

export type WorkerReply =
  /** `cached`: on the last message of a file, true if it came from the browser's cache instead of the network */
  | { id: number; type: "progress"; phase: "download"; file: string; loaded: number; total: number | null; cached?: boolean }
  | { id: number; type: "progress"; phase: "compute"; done: number; total: number }
  | { id: number; type: "done"; model: ModelInfo }
  | { id: number; type: "done"; result: ClassifyResult }
  | { id: number; type: "error"; message: string; code: string | null };
