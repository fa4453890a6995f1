/**
 * Loading a pretrained model in Node into a model (the file handling is in load-files.ts; every runtime's
 * fromPretrained is in pretrained.ts). Kept for the CLI and for `perceiver-ts/node`'s loadPretrained.
 */
import { PerceiverForImageClassification } from "./model.js";
import { readModelFiles, type ModelFiles } from "./load-files.js";
import type { LoadOptions } from "./pretrained.js";

export {
  findWeightsInFolder, readConfigFile, readImageProcessorConfigFile, readStateDictFile, resolveModelFiles, type ModelFiles,
} from "./load-files.js";
export type { LoadOptions } from "./pretrained.js";

/** Builds the model from resolved files (config.json, weights, preprocessor_config.json). */
export async function loadFromFiles(files: ModelFiles, options: LoadOptions = {}): Promise<PerceiverForImageClassification> {
  const parts = await readModelFiles(files, options);
  return PerceiverForImageClassification.fromParts(parts);
}

/** PerceiverForImageClassification.fromPretrained under its old name. */
export async function loadPretrained(spec: string, options: LoadOptions = {}): Promise<PerceiverForImageClassification> {
  return PerceiverForImageClassification.fromPretrained(spec, options);
}
