/** Fetch a model's files from the Hugging Face hub (or its cache) the way transformers chooses them. */
import { PerceiverError } from "../../errors.js";
import { hfHubDownload, type HubOptions } from "./hub.js";

/** The hub repo of the default model, and the commit where its safetensors conversion lives (unmerged PR). */
export const DEFAULT_MODEL = "deepmind/vision-perceiver-conv";
export const SAFETENSORS_COMMIT = "9e887ddb738d7de3bb0dc357003fec3ab44af668";

export interface HubModelFiles {
  configPath: string;
  weightsPath: string;
  /** null when the repo has no preprocessor_config.json (the defaults are used) */
  preprocessorConfigPath: string | null;
}

export function looksLikeRepoId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.endsWith(".safetensors") && !s.endsWith(".bin");
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
