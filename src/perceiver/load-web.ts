/**
 * fromPretrained over fetch (browsers and Web Workers; in Node for http(s) URLs):
 *
 *   spec "org/name"                  {endpoint}/org/name/resolve/{revision}/{file}   (the hub, default huggingface.co)
 *   spec a URL of a folder           {url}/{file}
 *   spec a URL of a checkpoint file  that file; config.json and preprocessor_config.json beside it
 *
 * It reads config.json, preprocessor_config.json (optional: the defaults without it) and the weights
 * (model.safetensors, else pytorch_model.bin, read by the restricted unpickler). Every file goes through the Cache
 * API (file-cache.ts), so a second load, also after a reload, is offline and makes no network request; a download
 * interrupted by closing the page continues from the segments it kept.
 *
 * blobPretrainedParts reads the same files from Files a user picked (no network, no cache).
 */
import { PerceiverError } from "../errors.js";
import { readSafetensors } from "../io/checkpoint/safetensors.js";
import type { StateDict } from "../io/checkpoint/state-dict.js";
import { readTorchBin } from "../io/checkpoint/torch-bin.js";
import { looksLikeZip } from "../io/checkpoint/torch-zip.js";
import { DEFAULT_MODEL, SAFETENSORS_COMMIT, looksLikeRepoId } from "../io/hub/default-model.js";
import { defaultImageProcessorConfig, imageProcessorConfigFromJson } from "../io/image/image-processor.js";
import { fetchFile } from "../io/web/fetch-file.js";
import { openFileCache } from "../io/web/file-cache.js";
import { parsePerceiverConfig } from "./config.js";
import type { LoadOptions, NamedBlob, PretrainedParts } from "./pretrained-types.js";
import { expectedWeights } from "./weights.js";

export const DEFAULT_WEB_ENDPOINT = "https://huggingface.co";

/** Largest config.json / preprocessor_config.json parsed (ImageNet's, with 1000 labels, is 30 KB). */
const MAX_JSON_BYTES = 64 * 2 ** 20;

const WEIGHTS_RE = /\.(safetensors|bin|pt|pth)$/i;

interface WebSource {
  /** URL of a file of the model */
  url(file: string): string;
  /** names the model in messages and progress: `org/name@rev` or the URL */
  where: string;
  /** the weights file the spec named, or null to look for model.safetensors, then pytorch_model.bin */
  weightsFile: string | null;
  repoId: string | null;
}

function baseHref(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href;
}

function webSource(spec: string, options: LoadOptions): WebSource {
  const s = spec.trim();
  const revision = (options.revision ?? options.hub?.revision ?? "main").trim() || "main";
  if (looksLikeRepoId(s) && !/^\.{0,2}\//.test(s)) {
    const endpoint = (options.endpoint ?? DEFAULT_WEB_ENDPOINT).replace(/\/+$/, "");
    return {
      url: (file) => `${endpoint}/${s}/resolve/${encodeURIComponent(revision)}/${file}`,
      where: `${s}@${revision}`, weightsFile: null, repoId: s,
    };
  }
  let url: URL;
  try {
    url = new URL(s, baseHref());
  } catch {
    throw new PerceiverError("INPUT_INVALID", `fromPretrained: "${s}" is neither a hub repo id (org/name) nor a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new PerceiverError("INPUT_INVALID", `fromPretrained: ${url.href}: only http(s) URLs can be fetched`);
  }
  const href = url.href.split(/[?#]/)[0];
  const named = WEIGHTS_RE.test(href) ? href.slice(href.lastIndexOf("/") + 1) : null;
  const folder = named !== null ? href.slice(0, href.lastIndexOf("/")) : href.replace(/\/+$/, "");
  return { url: (file) => `${folder}/${file}`, where: folder, weightsFile: named, repoId: null };
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  if (bytes.length > MAX_JSON_BYTES) {
    throw new PerceiverError("CONFIG_INVALID", `${source} is ${bytes.length} bytes, too large for a config file (limit ${MAX_JSON_BYTES})`);
  }
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    const head = text.slice(0, 60).replace(/\s+/g, " ");
    throw new PerceiverError("CONFIG_INVALID", `${source} is not JSON (starts with ${JSON.stringify(head)}; a login or proxy page?)`);
  }
}

export async function fetchPretrainedParts(spec: string, options: LoadOptions = {}): Promise<PretrainedParts> {
  const src = webSource(spec, options);
  const cache = await openFileCache(options.cache);
  const cb = options.progress_callback;
  const name = spec;
  const fetchOpts = {
    segmentBytes: options.segmentBytes,
    timeoutMs: options.timeoutMs ?? 60_000,
    maxRetries: options.maxRetries ?? 5,
    retryDelayMs: options.retryDelayMs ?? 1000,
  };

  /** A file from the cache, else the network (then cached); null for an optional file that is absent. */
  const get = async (file: string, optional: boolean): Promise<Uint8Array | null> => {
    const url = src.url(file);
    const hit = await cache.get(url);
    if (hit === "missing" && optional) return null;
    if (hit instanceof Uint8Array) {
      cb?.({ status: "done", name, file, loaded: hit.length, total: hit.length, cached: true });
      return hit;
    }
    cb?.({ status: "initiate", name, file });
    let started = false;
    const bytes = await fetchFile(url, {
      ...fetchOpts, file, optional, maxBytes: file.endsWith(".json") ? MAX_JSON_BYTES : undefined,
      // whole segments of a large file are kept as they arrive: a load interrupted by closing the page resumes
      resume: (await cache.getPartial(url)) ?? undefined,
      onSegment: (index, segment, meta) => cache.putSegment(url, index, segment, meta),
      onRestart: () => cache.clearPartial(url),
      onProgress: (loaded, total) => {
        if (!started) {
          started = true;
          cb?.({ status: "download", name, file });
        }
        cb?.({ status: "progress", name, file, loaded, total, progress: total ? (100 * loaded) / total : null });
      },
    });
    if (bytes === null) {
      await cache.putMissing(url);
      return null;
    }
    cb?.({ status: "done", name, file, loaded: bytes.length, total: bytes.length, cached: false });
    await cache.put(url, bytes);
    await cache.clearPartial(url);
    return bytes;
  };

  return assemble(src.where, get, src.weightsFile, src.repoId, options);
}

/**
 * Config (unless options.config), preprocessor config and weights from `get`, which answers a file's bytes or null
 * for an optional file that is absent. `weightsFile` names the weights, or null to look for model.safetensors, then
 * pytorch_model.bin.
 */
async function assemble(
  where: string, get: (file: string, optional: boolean) => Promise<Uint8Array | null>, weightsFile: string | null,
  repoId: string | null, options: LoadOptions,
): Promise<PretrainedParts> {
  const at = (file: string) => (where ? `${where}/${file}` : file);
  let config = options.config;
  if (!config) {
    const source = at("config.json");
    config = parsePerceiverConfig(parseJson((await get("config.json", false))!, source), source);
    try {
      expectedWeights(config); // shape rules that need the preprocessor fail before the weights are read
    } catch (e) {
      throw e instanceof PerceiverError ? new PerceiverError(e.code, `${source}: ${e.message}`, { cause: e }) : e;
    }
  }
  const procBytes = await get("preprocessor_config.json", true);
  const procSource = at("preprocessor_config.json");
  const imageProcessorConfig = procBytes ? imageProcessorConfigFromJson(parseJson(procBytes, procSource), procSource) : { ...defaultImageProcessorConfig };

  const weights = await findWeights(where, weightsFile, repoId, get);
  const source = at(weights.file);
  return {
    config, stateDict: readStateDictBytes(weights.bytes, weights.file, source), imageProcessorConfig, source,
    weightsFile: weights.file, weightsBytes: weights.bytes.length,
  };
}

/**
 * fromPretrained from local files (a file picker's or a dropped folder's): exactly one config.json (unless
 * options.config), at most one preprocessor_config.json, exactly one weights file (.safetensors, .bin, .pt, .pth).
 */
export async function blobPretrainedParts(files: readonly NamedBlob[], options: LoadOptions = {}): Promise<PretrainedParts> {
  const named = (test: (n: string) => boolean) => files.filter((f) => test(f.name.toLowerCase()));
  const configs = named((n) => n === "config.json");
  const procs = named((n) => n === "preprocessor_config.json");
  const weights = named((n) => WEIGHTS_RE.test(n));
  const picked = files.map((f) => f.name).join(", ") || "nothing";
  if (options.config ? configs.length > 1 : configs.length !== 1) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `pick exactly one config.json together with the weights (picked: ${picked})`);
  }
  if (procs.length > 1) throw new PerceiverError("CHECKPOINT_NOT_FOUND", `pick at most one preprocessor_config.json (picked: ${picked})`);
  if (weights.length !== 1) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND",
      `pick exactly one weights file, model.safetensors or pytorch_model.bin, together with config.json (picked: ${picked})`);
  }
  const byName = new Map<string, NamedBlob>([["config.json", configs[0]], ["preprocessor_config.json", procs[0]], [weights[0].name, weights[0]]]);
  const cb = options.progress_callback;
  const get = async (file: string, optional: boolean): Promise<Uint8Array | null> => {
    const blob = byName.get(file);
    if (blob === undefined) {
      if (optional) return null;
      throw new PerceiverError("CHECKPOINT_NOT_FOUND", `no ${file} among the files (picked: ${picked})`);
    }
    const limit = file.endsWith(".json") ? MAX_JSON_BYTES : MAX_LOCAL_BYTES;
    if (blob.size > limit) throw new PerceiverError("CONFIG_INVALID", `${blob.name} is ${blob.size} bytes, more than the ${limit} accepted for it`);
    cb?.({ status: "progress", name: "local files", file: blob.name, loaded: 0, total: blob.size, progress: 0 });
    const bytes = new Uint8Array(await blob.arrayBuffer());
    cb?.({ status: "done", name: "local files", file: blob.name, loaded: bytes.length, total: bytes.length, cached: true });
    return bytes;
  };
  return assemble("", get, weights[0].name, null, options);
}

/** Largest local file read (one Uint8Array). */
const MAX_LOCAL_BYTES = 2 ** 31 - 1;

async function findWeights(
  where: string, weightsFile: string | null, repoId: string | null, get: (file: string, optional: boolean) => Promise<Uint8Array | null>,
): Promise<{ file: string; bytes: Uint8Array }> {
  if (weightsFile !== null) return { file: weightsFile, bytes: (await get(weightsFile, false))! };
  for (const file of ["model.safetensors", "pytorch_model.bin"]) {
    const bytes = await get(file, true);
    if (bytes !== null) return { file, bytes };
  }
  throw new PerceiverError("HUB_NOT_FOUND",
    `${where} has neither model.safetensors nor pytorch_model.bin` +
    (repoId === DEFAULT_MODEL ? ` (its safetensors conversion is at revision ${SAFETENSORS_COMMIT})` : ""));
}

/**
 * Weights bytes -> state dict: a zip or a .bin / .pt / .pth name is torch.save output (read by the restricted
 * unpickler), anything else safetensors.
 */
export function readStateDictBytes(bytes: Uint8Array, fileName: string, source: string): StateDict {
  return looksLikeZip(bytes) || /\.(bin|pt|pth)$/i.test(fileName) ? readTorchBin(bytes, { source }) : readSafetensors(bytes, { source });
}
