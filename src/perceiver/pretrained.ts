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
import type { LoadOptions, NamedBlob, PretrainedParts } from "./pretrained-types.js";

export type { LoadOptions, NamedBlob, PretrainedParts, ProgressCallback, ProgressInfo } from "./pretrained-types.js";

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
