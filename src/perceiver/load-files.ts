/**
 * Node: where a pretrained model's files are (a local folder, a checkpoint file, or a Hugging Face repo id through
 * the huggingface_hub-compatible cache) and reading them into the parts a model is built from (pretrained.ts).
 * It does not import the model class: load.ts and model.ts build the model.
 */
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { PerceiverError } from "../errors.js";
import type { HubOptions, HubProgress } from "../io/hub/hub.js";
import { readSafetensorsFile } from "../io/checkpoint/safetensors-node.js";
import type { StateDict } from "../io/checkpoint/state-dict.js";
import { parsePerceiverConfig, type PerceiverConfig } from "./config.js";
import { downloadModelFiles, looksLikeRepoId } from "../io/hub/hub-model.js";
import { defaultImageProcessorConfig, imageProcessorConfigFromJson, type ImageProcessorConfig } from "../io/image/image-processor.js";
import type { LoadOptions, PretrainedParts, ProgressCallback } from "./pretrained-types.js";
import { expectedWeights } from "./weights.js";

export interface ModelFiles {
  /** null when a local checkpoint has no config.json beside it (then LoadOptions.config must be given) */
  configPath: string | null;
  weightsPath: string;
  preprocessorConfigPath: string | null;
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

/** Largest config.json / preprocessor_config.json read (ImageNet's, with 1000 labels, is 30 KB). */
const MAX_JSON_BYTES = 64 * 2 ** 20;

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error("not a regular file");
    if (st.size > MAX_JSON_BYTES) {
      throw new PerceiverError("CONFIG_INVALID", `${path} is ${st.size} bytes, too large for a config file (limit ${MAX_JSON_BYTES})`);
    }
    text = await readFile(path, "utf8");
  } catch (e) {
    if (e instanceof PerceiverError) throw e;
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new PerceiverError("CONFIG_INVALID", `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

export async function readConfigFile(path: string): Promise<PerceiverConfig> {
  return parsePerceiverConfig(await readJson(path), path);
}

/** preprocessor_config.json -> image processor settings; null path -> the deepmind/vision-perceiver-conv defaults. */
export async function readImageProcessorConfigFile(path: string | null): Promise<Partial<ImageProcessorConfig>> {
  return path === null ? {} : imageProcessorConfigFromJson(await readJson(path), path);
}

/** Read a checkpoint file by its extension (.safetensors, or .bin / .pt / .pth for pytorch_model.bin). */
export async function readStateDictFile(path: string): Promise<StateDict> {
  if (path.endsWith(".safetensors")) return readSafetensorsFile(path);
  if (/\.(bin|pt|pth)$/.test(path)) {
    const { readTorchBinFile } = await import("../io/checkpoint/torch-bin-node.js");
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

/** Where config, weights and preprocessor config are, for a folder, a checkpoint file, or a hub repo id. */
export async function resolveModelFiles(spec: string, hub: HubOptions = {}): Promise<ModelFiles> {
  const local = async (folder: string, weightsPath: string): Promise<ModelFiles> => {
    const configPath = join(folder, "config.json");
    const pre = join(folder, "preprocessor_config.json");
    return { configPath: (await isFile(configPath)) ? configPath : null, weightsPath, preprocessorConfigPath: (await isFile(pre)) ? pre : null };
  };
  if (await isDirectory(spec)) return local(spec, await findWeightsInFolder(spec));
  if (await isFile(spec)) return local(dirname(spec), spec);
  if (looksLikeRepoId(spec)) return downloadModelFiles(spec, hub);
  throw new PerceiverError("CHECKPOINT_NOT_FOUND", `${spec}: no such folder or file, and not a hub repo id (org/name)`);
}

/**
 * Reads config (unless options.config), preprocessor config and weights. The config is checked against the weights
 * layout it implies before a possibly large checkpoint is read: shape rules that need the preprocessor (e.g.
 * cross-attention heads vs its channels) fail here, naming the config file.
 */
export async function readModelFiles(files: ModelFiles, options: Pick<LoadOptions, "config"> = {}): Promise<PretrainedParts> {
  let config = options.config;
  if (!config) {
    if (files.configPath === null) {
      throw new PerceiverError("CHECKPOINT_NOT_FOUND", `no config.json next to ${files.weightsPath}: put the model's config.json there, or pass a config`);
    }
    config = await readConfigFile(files.configPath);
    try {
      expectedWeights(config);
    } catch (e) {
      throw e instanceof PerceiverError ? new PerceiverError(e.code, `${files.configPath}: ${e.message}`, { cause: e }) : e;
    }
  }
  const imageProcessorConfig = { ...defaultImageProcessorConfig, ...(await readImageProcessorConfigFile(files.preprocessorConfigPath)) };
  const stateDict = await readStateDictFile(files.weightsPath);
  const weightsBytes = (await stat(files.weightsPath)).size;
  return { config, stateDict, imageProcessorConfig, source: basename(files.weightsPath), weightsFile: basename(files.weightsPath), weightsBytes };
}

/**
 * Hub downloads as ProgressInfo events: initiate + download when a file's transfer starts, progress during it,
 * done at its end (files answered by the cache send nothing here; readPretrainedParts reports them as cached).
 */
function hubProgress(name: string, cb: ProgressCallback | undefined, also: HubOptions["onProgress"], finished: Set<string>): (p: HubProgress) => void {
  const started = new Set<string>();
  return (p) => {
    also?.(p);
    if (!cb) return;
    if (!started.has(p.file)) {
      started.add(p.file);
      cb({ status: "initiate", name, file: p.file });
      cb({ status: "download", name, file: p.file });
    }
    const progress = p.total ? (100 * p.downloaded) / p.total : null;
    cb({ status: "progress", name, file: p.file, loaded: p.downloaded, total: p.total, progress });
    if (p.total !== null && p.downloaded === p.total && !finished.has(p.file)) {
      finished.add(p.file);
      cb({ status: "done", name, file: p.file, loaded: p.downloaded, total: p.total, cached: false });
    }
  };
}

/** Node's fromPretrained: a folder, a checkpoint file or a hub repo id -> the parts of the model. */
export async function readPretrainedParts(spec: string, options: LoadOptions = {}): Promise<PretrainedParts> {
  const cb = options.progress_callback;
  const finished = new Set<string>();
  const hub: HubOptions = {
    ...options.hub,
    revision: options.revision ?? options.hub?.revision,
    endpoint: options.hub?.endpoint ?? options.endpoint,
    onProgress: hubProgress(spec, cb, options.hub?.onProgress, finished),
  };
  const files = await resolveModelFiles(spec, hub);
  if (cb) {
    // files read from disk or from the hub cache: one done event each, marked cached
    for (const path of [files.configPath, files.preprocessorConfigPath, files.weightsPath]) {
      if (path === null || finished.has(basename(path))) continue;
      const size = (await stat(path)).size;
      cb({ status: "done", name: spec, file: basename(path), loaded: size, total: size, cached: true });
    }
  }
  return readModelFiles(files, options);
}
