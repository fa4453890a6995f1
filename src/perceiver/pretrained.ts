/**
 * `fromPretrained` in every runtime: what a pretrained model is made of (config, weights, image processor
 * settings), the one progress event type, and the choice of loader:
 *
 *   Node, a folder / checkpoint file / hub repo id   load-files.ts: the file system and the huggingface_hub cache
 *   a browser (or an http(s) URL in Node)            load-web.ts: fetch from the hub or a base URL, with the Cache API
 *
 * Browser-safe: the Node loader is reached only through a dynamic import behind a runtime check. This module does
 * not import the model class (model.ts imports it), so there is no import circle.
 */
import { PerceiverError } from "../errors.js";
import type { StateDict } from "../io/checkpoint/state-dict.js";
import type { HubOptions } from "../io/hub/hub.js";
import type { ImageProcessorConfig } from "../io/image/image-processor.js";
import type { PerceiverConfig } from "./config.js";

/**
 * One progress event type for downloads and compute, with the fields transformers.js users know:
 *   initiate -> download -> progress* -> done   per file (`cached: true` when it came from a cache, no download)
 *   ready                                        the model is built
 *   compute                                      a layer of a forward pass finished (pipelines)
 * `progress` is a percentage (0-100), or null while the size is unknown.
 */
export type ProgressInfo =
  | { status: "initiate" | "download"; name: string; file: string }
  | { status: "progress"; name: string; file: string; loaded: number; total: number | null; progress: number | null }
  | { status: "done"; name: string; file: string; loaded: number; total: number; cached: boolean }
  | { status: "ready"; name: string; task?: string }
  | { status: "compute"; name: string; task?: string; done: number; total: number; progress: number };

export type ProgressCallback = (info: ProgressInfo) => void;

export interface LoadOptions {
  /** Use this config instead of the model's config.json. */
  config?: PerceiverConfig;
  /** Hub branch, tag, commit or `refs/pr/N` (default "main"; Node: also `hub.revision`). */
  revision?: string;
  /** Download progress (and, in pipelines, compute progress); see ProgressInfo. */
  progress_callback?: ProgressCallback;
  /** Node: options of the hub client (token, cache folder, offline, timeouts; `hub.onProgress` still works). */
  hub?: HubOptions;
  /** Hub URL (default https://huggingface.co; Node: also `hub.endpoint` or HF_ENDPOINT). */
  endpoint?: string;
  /**
   * Browser: keep downloaded files in the Cache API (default true, cache "perceiver-ts-models"; a string names
   * another cache; false downloads every time). A later load of the same URLs makes no network request.
   */
  cache?: boolean | string;
  /** Browser: a download that receives nothing for this long fails with HUB_TIMEOUT (default 60 000 ms). */
  timeoutMs?: number;
  /** Browser: retries of a transfer cut short, resumed with a Range request where it stopped (default 5). */
  maxRetries?: number;
  /** Browser: pause before such a retry (default 1000 ms). */
  retryDelayMs?: number;
  /**
   * Browser: a download is kept in the cache in segments of this many bytes as it arrives (default 8 MiB), so that
   * a load interrupted by closing the page continues where it stopped.
   */
  segmentBytes?: number;
}

/** What fromPretrained builds a model from. */
export interface PretrainedParts {
  config: PerceiverConfig;
  stateDict: StateDict;
  /** preprocessor_config.json's settings (the defaults where the model has none) */
  imageProcessorConfig: ImageProcessorConfig;
  /** names the weights in error messages, e.g. `org/name@main/model.safetensors` or a file path */
  source: string;
  /** model.safetensors, pytorch_model.bin, or the checkpoint file's name */
  weightsFile: string;
  weightsBytes: number;
}

/** A picked local file: a File, or any Blob with a name. */
export type NamedBlob = Blob & { readonly name: string };

/** True in Node (and runtimes that pose as it); false in browsers and Web Workers. */
export function isNodeRuntime(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string" && typeof (globalThis as { window?: unknown }).window === "undefined";
}

export function isHttpUrl(spec: string): boolean {
  return /^https?:\/\//i.test(spec);
}

/**
 * The parts of a pretrained model, from wherever `spec` points (see the module comment), or from local files
 * (File objects from a file picker or a dropped folder: config.json, preprocessor_config.json, the weights).
 */
export async function loadPretrainedParts(spec: string | readonly NamedBlob[], options: LoadOptions = {}): Promise<PretrainedParts> {
  if (Array.isArray(spec)) {
    const { blobPretrainedParts } = await import("./load-web.js");
    return blobPretrainedParts(spec, options);
  }
  if (typeof spec !== "string" || spec.trim() === "") {
    throw new PerceiverError("INPUT_INVALID", `fromPretrained: expected a hub repo id, a folder, a checkpoint file, a URL or an array of Files, got ${JSON.stringify(spec)}`);
  }
  if (isNodeRuntime() && !isHttpUrl(spec)) {
    const { readPretrainedParts } = await import("./load-files.js");
    return readPretrainedParts(spec, options);
  }
  const { fetchPretrainedParts } = await import("./load-web.js");
  return fetchPretrainedParts(spec, options);
}
