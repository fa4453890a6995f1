/** Fetch a model's files from the Hugging Face hub (or its cache) the way transformers chooses them. */
import { PerceiverError } from "../../errors.js";
import { DEFAULT_MODEL, SAFETENSORS_COMMIT } from "./default-model.js";
import { hfHubDownload, type HubOptions } from "./hub.js";

export { DEFAULT_MODEL, SAFETENSORS_COMMIT, looksLikeRepoId } from "./default-model.js";

export interface HubModelFiles {
  configPath: string;
  weightsPath: string;
  /** null when the repo has no preprocessor_config.json (the defaults are used) */
  preprocessorConfigPath: string | null;
}

async function optional(repoId: string, file: string, opts: HubOptions): Promise<string | null> {
  try {
    return await hfHubDownload(repoId, file, opts);
  } catch (e) {
    if (e instanceof PerceiverError && (e.code === "HUB_NOT_FOUND" || e.code === "HUB_OFFLINE_MISS") && /entry|file|not in the cache|EntryNotFound/i.test(e.message)) {
      return null;
    }
    throw e;
  }
}

/**
 * config.json, preprocessor_config.json (optional) and the weights: model.safetensors when the revision has it,
 * else pytorch_model.bin (read by the restricted unpickler).
 */
export async function downloadModelFiles(repoId: string, opts: HubOptions = {}): Promise<HubModelFiles> {
  const configPath = await hfHubDownload(repoId, "config.json", opts);
  const preprocessorConfigPath = await optional(repoId, "preprocessor_config.json", opts);
  const weightsPath = (await optional(repoId, "model.safetensors", opts)) ?? (await optional(repoId, "pytorch_model.bin", opts));
  if (!weightsPath) {
    throw new PerceiverError(
      "HUB_NOT_FOUND",
      `${repoId}@${opts.revision ?? "main"} has neither model.safetensors nor pytorch_model.bin` +
        (repoId === DEFAULT_MODEL ? ` (its safetensors conversion is at --revision ${SAFETENSORS_COMMIT})` : ""),
    );
  }
  return { configPath, weightsPath, preprocessorConfigPath };
}
