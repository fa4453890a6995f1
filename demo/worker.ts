/**
 * The inference worker (a module worker): downloads or reads the checkpoint, builds the model with the library's
 * browser-safe API, decodes images with the browser's own decoder, and runs the forward pass off the page's thread.
 * Requests are handled one at a time, in order; each ends with one `done` or `error` reply (see protocol.ts).
 */
import {
  PerceiverError, PerceiverForImageClassification, defaultImageProcessorConfig, fromPixels, imageProcessorConfigFromJson,
  getThreads, parsePerceiverConfig, preprocessBatch, readSafetensors, readTorchBin, threadsFallbackReason, topK,
  type ImageProcessorConfig, type PerceiverErrorCode, type StateDict,
} from "../src/index.js";
import { classWeightedMap } from "../src/perceiver/attention-map.js";
import { wasmSplitBlocks } from "../src/tensor/wasm/gemm-wasm.js";
import type { ClassifyResult, ModelInfo, WorkerReply, WorkerRequest } from "./protocol.js";

/** The worker's global scope (typed by hand: the DOM and WebWorker libs cannot be loaded together). */
const scope = globalThis as unknown as {
  postMessage(message: WorkerReply, transfer: Transferable[]): void;
  onmessage: ((ev: MessageEvent<WorkerRequest>) => void) | null;
};

let model: PerceiverForImageClassification | null = null;
let processorConfig: ImageProcessorConfig = defaultImageProcessorConfig;

const post = (m: WorkerReply, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

/** Largest image accepted, in pixels (like the library's decodeImage default). */
const MAX_PIXELS = 100_000_000;

// ---------------------------------------------------------------------------------------------------------------
// Download from the hub: {endpoint}/{repo}/resolve/{revision}/{file}

interface FetchOptions {
  id: number;
  timeoutMs: number;
  /** 404 EntryNotFound -> null instead of an error */
  optional?: boolean;
}

function hubError(code: PerceiverErrorCode, message: string): PerceiverError {
  return new PerceiverError(code, message);
}

/** GET one file with a streamed body: posts download progress, fails on a stall (no bytes for timeoutMs). */
async function fetchFile(url: string, file: string, opts: FetchOptions): Promise<Uint8Array | null> {
  const ctrl = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort();
    }, opts.timeoutMs);
  };
  const stalled = () =>
    hubError("HUB_TIMEOUT", `${file}: no data from ${url} for ${opts.timeoutMs / 1000} s; the server stalled (try again later)`);
  arm();
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: ctrl.signal, mode: "cors", credentials: "omit" });
    } catch (e) {
      if (timedOut) throw stalled();
      throw hubError("HUB_NETWORK",
        `${file}: could not reach ${url} (${errorText(e)}). Check the endpoint and your connection; the server must also ` +
        `allow cross-origin requests (CORS). Or load the files with the local file picker.`);
    }
    if (!res.ok) {
      const code = res.headers.get("x-error-code");
      const serverMessage = res.headers.get("x-error-message");
      await res.body?.cancel().catch(() => undefined);
      if (res.status === 404 && opts.optional && code !== "RepoNotFound" && code !== "RevisionNotFound") return null;
      const detail = serverMessage ? ` (server: ${serverMessage})` : "";
      if (res.status === 404) {
        const what =
          code === "RepoNotFound" ? "repository not found (or private: this page sends no token)" :
          code === "RevisionNotFound" ? "revision not found in this repository" :
          code === "EntryNotFound" ? `${file} is not in this revision` : "not found";
        throw hubError("HUB_NOT_FOUND", `${file}: HTTP 404 for ${url}: ${what}${detail}`);
      }
      if (res.status === 401 || res.status === 403) {
        throw hubError("HUB_UNAUTHORIZED",
          `${file}: HTTP ${res.status} for ${url}: the repository is private or gated and this page sends no token; ` +
          `download the files yourself and use the local file picker${detail}`);
      }
      throw hubError("HUB_HTTP", `${file}: HTTP ${res.status} ${res.statusText} for ${url}${detail}`);
    }
    const lengthHeader = res.headers.get("content-length");
    const total = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
    post({ id: opts.id, type: "progress", phase: "download", file, loaded: 0, total });
    if (res.body === null) throw hubError("HUB_HTTP", `${file}: empty response from ${url}`);
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    let lastPost = 0;
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        if (timedOut) throw stalled();
        throw hubError("HUB_NETWORK", `${file}: the download from ${url} broke off after ${loaded} bytes (${errorText(e)})`);
      }
      if (r.done) break;
      arm();
      chunks.push(r.value);
      loaded += r.value.length;
      const now = performance.now();
      if (now - lastPost > 50) {
        lastPost = now;
        post({ id: opts.id, type: "progress", phase: "download", file, loaded, total });
      }
    }
    if (total !== null && loaded !== total) {
      throw hubError("HUB_INTEGRITY", `${file}: received ${loaded} bytes from ${url}, the server announced ${total}`);
    }
    post({ id: opts.id, type: "progress", phase: "download", file, loaded, total: total ?? loaded });
    return concat(chunks, loaded);
  } finally {
    clearTimeout(timer);
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    const head = text.slice(0, 60).replace(/\s+/g, " ");
    throw new PerceiverError("CONFIG_INVALID", `${source} is not JSON (starts with ${JSON.stringify(head)}; a login or proxy page?)`);
  }
}

async function loadFromHub(req: Extract<WorkerRequest, { type: "load-hub" }>): Promise<ModelInfo> {
  const t0 = performance.now();
  const endpoint = req.endpoint.replace(/\/+$/, "");
  const repo = req.repo.trim();
  const revision = req.revision.trim() || "main";
  if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(repo)) {
    throw new PerceiverError("INPUT_INVALID", `"${repo}" is not a hub repo id (expected owner/name, e.g. deepmind/vision-perceiver-conv)`);
  }
  const url = (file: string) => `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
  const opts = { id: req.id, timeoutMs: req.timeoutSeconds * 1000 };
  const where = `${repo}@${revision}`;

  const configBytes = (await fetchFile(url("config.json"), "config.json", opts))!;
  const config = parsePerceiverConfig(parseJson(configBytes, `${where}/config.json`), `${where}/config.json`);
  const procBytes = await fetchFile(url("preprocessor_config.json"), "preprocessor_config.json", { ...opts, optional: true });
  const proc = procBytes ? imageProcessorConfigFromJson(parseJson(procBytes, `${where}/preprocessor_config.json`), `${where}/preprocessor_config.json`) : defaultImageProcessorConfig;

  let weightsFile = "model.safetensors";
  let bytes = await fetchFile(url(weightsFile), weightsFile, { ...opts, optional: true });
  if (bytes === null) {
    weightsFile = "pytorch_model.bin";
    bytes = await fetchFile(url(weightsFile), weightsFile, { ...opts, optional: true });
  }
  if (bytes === null) {
    throw new PerceiverError("HUB_NOT_FOUND",
      `${where} has neither model.safetensors nor pytorch_model.bin` +
      (repo === "deepmind/vision-perceiver-conv" ? " (its safetensors conversion is at revision 9e887ddb738d7de3bb0dc357003fec3ab44af668)" : ""));
  }
  const info = build(config, bytes, weightsFile, `${where}/${weightsFile}`, proc);
  return { ...info, source: `${repo}@${revision.length === 40 ? revision.slice(0, 7) : revision}`, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// Local files: config.json + model.safetensors / pytorch_model.bin (+ preprocessor_config.json)

async function loadFromFiles(req: Extract<WorkerRequest, { type: "load-files" }>): Promise<ModelInfo> {
  const t0 = performance.now();
  const byName = (test: (n: string) => boolean) => req.files.filter((f) => test(f.name.toLowerCase()));
  const configs = byName((n) => n === "config.json");
  const procs = byName((n) => n === "preprocessor_config.json");
  const weights = byName((n) => n.endsWith(".safetensors") || n.endsWith(".bin") || n.endsWith(".pt") || n.endsWith(".pth"));
  const picked = req.files.map((f) => f.name).join(", ") || "nothing";
  if (configs.length !== 1) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `pick exactly one config.json together with the weights (picked: ${picked})`);
  }
  if (weights.length !== 1) {
    throw new PerceiverError("CHECKPOINT_NOT_FOUND",
      `pick exactly one weights file, model.safetensors or pytorch_model.bin, together with config.json (picked: ${picked})`);
  }
  const config = parsePerceiverConfig(parseJson(new Uint8Array(await configs[0].arrayBuffer()), configs[0].name), configs[0].name);
  const proc = procs.length > 0
    ? imageProcessorConfigFromJson(parseJson(new Uint8Array(await procs[0].arrayBuffer()), procs[0].name), procs[0].name)
    : defaultImageProcessorConfig;
  const w = weights[0];
  post({ id: req.id, type: "progress", phase: "download", file: w.name, loaded: 0, total: w.size });
  const bytes = new Uint8Array(await w.arrayBuffer());
  post({ id: req.id, type: "progress", phase: "download", file: w.name, loaded: bytes.length, total: bytes.length });
  const info = build(config, bytes, w.name, w.name, proc);
  return { ...info, source: "local files", seconds: (performance.now() - t0) / 1000 };
}

/** Parse the weights by content (safetensors or a torch zip) and build the model; replaces the current model. */
function build(
  config: ReturnType<typeof parsePerceiverConfig>, bytes: Uint8Array, weightsFile: string, source: string, proc: ImageProcessorConfig,
): Omit<ModelInfo, "source" | "seconds"> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  const sd: StateDict = isZip || /\.(bin|pt|pth)$/i.test(weightsFile) ? readTorchBin(bytes, { source }) : readSafetensors(bytes, { source });
  model = null; // drop the old model before building the new one
  model = PerceiverForImageClassification.fromStateDict(config, sd, source);
  processorConfig = proc;
  return { architecture: config.architecture, numLabels: config.numLabels, weightsFile, weightsBytes: bytes.length };
}

// ---------------------------------------------------------------------------------------------------------------
// Classification

async function classify(req: Extract<WorkerRequest, { type: "classify" }>): Promise<{ result: ClassifyResult; transfer: Transferable[] }> {
  const m = model;
  if (m === null) throw new PerceiverError("INPUT_INVALID", "no model is loaded yet");
  const t0 = performance.now();
  let bitmap: ImageBitmap;
  try {
    // No colour management and no premultiplication: the pixels stay the file's own values (exact for PNG).
    bitmap = await createImageBitmap(req.image, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (e) {
    throw new PerceiverError("IMAGE_DECODE", `${req.name}: the browser could not decode this file as an image (${errorText(e)})`);
  }
  const { width, height } = bitmap;
  if (width === 0 || height === 0) throw new PerceiverError("IMAGE_EMPTY", `${req.name}: image is empty (${width}x${height})`);
  if (width * height > MAX_PIXELS) {
    bitmap.close();
    throw new PerceiverError("IMAGE_TOO_LARGE", `${req.name}: ${width}x${height} is more than ${MAX_PIXELS} pixels`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (ctx === null) throw new PerceiverError("IMAGE_DECODE", `${req.name}: no 2D canvas in this browser`);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const t1 = performance.now();

  const pixels = preprocessBatch([fromPixels(rgba, width, height, 4)], processorConfig); // [1, 3, H, W]
  const t2 = performance.now();

  const splitsBefore = wasmSplitBlocks();
  const out = await m.forward(pixels, {
    outputAttentions: true,
    onProgress: (done, total) => post({ id: req.id, type: "progress", phase: "compute", done, total }),
  });
  const t3 = performance.now();

  const top = topK(out.logits.data, 5, m.config.id2label);
  const [, , H, W] = pixels.shape;
  const crop = cropImage(pixels.data, H, W, processorConfig);
  let attention: ClassifyResult["attention"] = null;
  const [enc, dec] = out.crossAttentions ?? [];
  if (enc && dec) {
    const [gh, gw] = m.preprocessor.gridSize(H, W);
    if (gh * gw === enc.shape[3]) attention = { gridHeight: gh, gridWidth: gw, map: classWeightedMap(enc, dec, 0) };
  }
  const result: ClassifyResult = {
    top, logits: out.logits.data, crop, attention, imageWidth: width, imageHeight: height,
    timings: { decode: t1 - t0, preprocess: t2 - t1, forward: t3 - t2 },
    threads: { count: getThreads(), note: threadsFallbackReason(), splitProducts: wasmSplitBlocks() - splitsBefore },
  };
  const transfer: Transferable[] = [crop.data.buffer as ArrayBuffer, out.logits.data.buffer as ArrayBuffer];
  if (attention) transfer.push(attention.map.buffer as ArrayBuffer);
  return { result, transfer };
}

/**
 * pixel_values [3, H, W] (rescaled + normalised) -> the RGB crop the model saw [H, W, 3], by inverting the
 * normalisation (exact: the float error is far below half a level), instead of cropping and resizing again.
 */
function cropImage(px: Float32Array, H: number, W: number, cfg: ImageProcessorConfig): ClassifyResult["crop"] {
  const out = new Uint8Array(H * W * 3);
  const plane = H * W;
  for (let c = 0; c < 3; c++) {
    const std = cfg.doNormalize ? cfg.imageStd[c] : 1;
    const mean = cfg.doNormalize ? cfg.imageMean[c] : 0;
    const scale = cfg.doRescale ? 1 / cfg.rescaleFactor : 1;
    for (let p = 0; p < plane; p++) out[p * 3 + c] = Math.min(255, Math.max(0, Math.round((px[c * plane + p] * std + mean) * scale)));
  }
  return { width: W, height: H, data: out };
}

// ---------------------------------------------------------------------------------------------------------------

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function handle(req: WorkerRequest): Promise<void> {
  try {
    if (req.type === "load-hub") post({ id: req.id, type: "done", model: await loadFromHub(req) });
    else if (req.type === "load-files") post({ id: req.id, type: "done", model: await loadFromFiles(req) });
    else {
      const { result, transfer } = await classify(req);
      post({ id: req.id, type: "done", result }, transfer);
    }
  } catch (e) {
    const code = e instanceof PerceiverError ? e.code : null;
    post({ id: req.id, type: "error", message: e instanceof Error ? e.message : String(e), code });
  }
}

let queue: Promise<void> = Promise.resolve();
scope.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  queue = queue.then(() => handle(ev.data));
};
