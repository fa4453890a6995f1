/**
 * The inference worker (a module worker): a thin user of the library. Models load through
 * PerceiverForImageClassification.fromPretrained, from the hub (fetch with resume, the Cache API: a reload is
 * offline) or from picked local files; images decode through loadImageInput (the library's decoder, the browser's
 * for what it does not read), and the forward pass runs here, off the page's thread. Requests are handled one at a time, in order; each ends with one `done` or
 * `error` reply (see protocol.ts). A failed load keeps the model loaded before.
 */
import {
  PerceiverError, PerceiverForImageClassification, getThreads, loadImageInput, preprocessBatch, threadsFallbackReason, topK,
  type ImageProcessorConfig, type ProgressInfo,
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

const post = (m: WorkerReply, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

// ---------------------------------------------------------------------------------------------------------------
// From the hub: {endpoint}/{repo}/resolve/{revision}/{file}, through the Cache API

async function loadFromHub(req: Extract<WorkerRequest, { type: "load-hub" }>): Promise<ModelInfo> {
  const t0 = performance.now();
  const repo = req.repo.trim();
  const revision = req.revision.trim() || "main";
  if (!/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(repo)) {
    throw new PerceiverError("INPUT_INVALID", `"${repo}" is not a hub repo id (expected owner/name, e.g. deepmind/vision-perceiver-conv)`);
  }
  const progress = downloadProgress(req.id);
  const loaded = await PerceiverForImageClassification.fromPretrained(repo, {
    endpoint: req.endpoint, revision, timeoutMs: req.timeoutSeconds * 1000, progress_callback: progress.callback,
  });
  model = loaded; // only now: a failed load keeps the previous model
  const source = `${repo}@${revision.length === 40 ? revision.slice(0, 7) : revision}`;
  return { source, ...info(loaded, progress.weights), seconds: (performance.now() - t0) / 1000 };
}

/** Download (or file read) progress as worker replies; remembers the weights file's name and size. */
function downloadProgress(id: number) {
  const weights = { file: "", bytes: 0 };
  const callback = (e: ProgressInfo) => {
    if (e.status !== "progress" && e.status !== "done") return;
    const cached = e.status === "done" ? { cached: e.cached } : {}; // the page says when a file came from the cache
    post({ id, type: "progress", phase: "download", file: e.file, loaded: e.loaded, total: e.total, ...cached });
    if (e.status === "done" && !e.file.endsWith(".json")) [weights.file, weights.bytes] = [e.file, e.total];
  };
  return { callback, weights };
}

function info(m: PerceiverForImageClassification, weights: { file: string; bytes: number }): Omit<ModelInfo, "source" | "seconds"> {
  return { architecture: m.config.architecture, numLabels: m.config.numLabels, weightsFile: weights.file, weightsBytes: weights.bytes };
}

// ---------------------------------------------------------------------------------------------------------------
// Local files: config.json + model.safetensors / pytorch_model.bin (+ preprocessor_config.json)

async function loadFromFiles(req: Extract<WorkerRequest, { type: "load-files" }>): Promise<ModelInfo> {
  const t0 = performance.now();
  const progress = downloadProgress(req.id);
  const loaded = await PerceiverForImageClassification.fromPretrained(req.files, { progress_callback: progress.callback });
  model = loaded;
  return { source: "local files", ...info(loaded, progress.weights), seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// Classification

async function classify(req: Extract<WorkerRequest, { type: "classify" }>): Promise<{ result: ClassifyResult; transfer: Transferable[] }> {
  const m = model;
  if (m === null) throw new PerceiverError("INPUT_INVALID", "no model is loaded yet");
  const t0 = performance.now();
  const image = await loadImageInput(req.image, { name: req.name });
  const [width, height] = [image.width, image.height];
  const t1 = performance.now();

  const processorConfig = m.imageProcessorConfig;
  const pixels = preprocessBatch([image], processorConfig); // [1, 3, H, W]
  const t2 = performance.now();

  const splitsBefore = wasmSplitBlocks();
  const out = await m.forward(pixels, {
    outputAttentions: true,
    onProgress: (done, total) => post({ id: req.id, type: "progress", phase: "compute", done, total }),
  });
  const t3 = performance.now();

  const [top] = topK(out.logits, 5, m.config.id2label);
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
