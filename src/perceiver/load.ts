/** Loading a pretrained model from disk (Node). The browser path is PerceiverForImageClassification.fromStateDict. */
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { PerceiverError } from "../errors.js";
import { readSafetensorsFile } from "../io/safetensors-node.js";
import type { StateDict } from "../io/state-dict.js";
import { parsePerceiverConfig, type PerceiverConfig } from "./config.js";
import { PerceiverForImageClassification } from "./model.js";

export interface LoadOptions {
  /** Use this config instead of the config.json next to the weights. */
  config?: PerceiverConfig;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function readConfigFile(path: string): Promise<PerceiverConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PerceiverError("CONFIG_INVALID", `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return parsePerceiverConfig(json, path);
}

/** Read a checkpoint file by its extension (.safetensors, or .bin / .pt / .pth for pytorch_model.bin). */
export async function readStateDictFile(path: string): Promise<StateDict> {
  if (path.endsWith(".safetensors")) return readSafetensorsFile(path);
  if (/\.(bin|pt|pth)$/.test(path)) {
    const { readTorchBinFile } = await import("../io/torch-bin-node.js");
    return readTorchBinFile(path);
  }
  throw new PerceiverError("CHECKPOINT_NOT_FOUND", `${path}: unknown checkpoint format (expected .safetensors or pytorch_model.bin)`);
}

/** Find the weights in a local folder: model.safetensors first, then pytorch_model.bin. */
export async function findWeightsInFolder(folder: string): Promise<string> {
  for (const name of ["model.safetensors", "pytorch_model.bin"]) {
    if (await isFile(join(folder, name))) return join(folder, name);
  }
  throw new PerceiverError("CHECKPOINT_NOT_FOUND", `${folder} has neither model.safetensors nor pytorch_model.bin`);
}

export async function loadPretrained(pathOrRepoId: string, options: LoadOptions = {}): Promise<PerceiverForImageClassification> {
  let weightsPath: string;
  let configPath: string;
  if (await isDirectory(pathOrRepoId)) {
    weightsPath = await findWeightsInFolder(pathOrRepoId);
    configPath = join(pathOrRepoId, "config.json");
  } else if (await isFile(pathOrRepoId)) {
    weightsPath = pathOrRepoId;
    configPath = join(dirname(pathOrRepoId), "config.json");
  } else {
    throw new PerceiverError(
      "CHECKPOINT_NOT_FOUND",
      `${pathOrRepoId}: no such folder or file` + (/^[\w.-]+\/[\w.-]+$/.test(pathOrRepoId) ? " (to download a hub model, use loadFromHub)" : ""),
    );
  }
  const config = options.config ?? (await readConfigFile(configPath));
  const sd = await readStateDictFile(weightsPath);
  return PerceiverForImageClassification.fromStateDict(config, sd, basename(weightsPath));
}
