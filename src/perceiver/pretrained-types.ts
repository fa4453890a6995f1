/**
 * The types `fromPretrained` is described by: the load options, the one progress event type, and the parts a model
 * is built from. A file of their own, so that the loaders (load-files.ts, load-web.ts) and the choice between them
 * (pretrained.ts) all import them without importing each other.
 */
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
