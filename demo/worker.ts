/**
 * The inference worker (a module worker): a thin user of the library. Hub models load through
 * PerceiverForImageClassification.fromPretrained (fetch with resume, the Cache API: a reload is offline), images
 * decode through loadImageInput (the library's decoder, the browser's for what it does not read), and the forward
 * pass runs here, off the page's thread. Requests are handled one at a time, in order; each ends with one `done` or
 * `error` reply (see protocol.ts). A failed load keeps the model loaded before.
 */
import {
  PerceiverError, PerceiverForImageClassification, defaultImageProcessorConfig, imageProcessorConfigFromJson,
  getThreads, loadImageInput, parsePerceiverConfig, preprocessBatch, readSafetensors, readTorchBin, threadsFallbackReason, topK,
  type ImageProcessorConfig, type ProgressInfo, type StateDict,
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
  let weightsFile = "";
  let weightsBytes = 0;
  const onProgress = (e: ProgressInfo) => {
    if (e.status === "progress") post({ id: req.id, type: "progress", phase: "download", file: e.file, loaded: e.loaded, total: e.total });
    if (e.status === "done") {
      post({ id: req.id, type: "progress", phase: "download", file: e.file, loaded: e.loaded, total: e.total });
      if (!e.file.endsWith(".json")) [weightsFile, weightsBytes] = [e.file, e.total];
    }
  };
  const loaded = await PerceiverForImageClassification.fromPretrained(repo, {
    endpoint: req.endpoint, revision, timeoutMs: req.timeoutSeconds * 1000, progress_callback: onProgress,
  });
  model = loaded;
  const { config } = loaded;
  return {
    source: `${repo}@${revision.length === 40 ? revision.slice(0, 7) : revision}`, architecture: config.architecture,
    numLabels: config.numLabels, weightsFile, weightsBytes, seconds: (performance.now() - t0) / 1000,
  };
}

function parseJson(bytes: Uint8Array, source: string): unknown {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    throw new PerceiverError("CONFIG_INVALID", `${source} is not JSON (starts with ${JSON.stringify(text.slice(0, 60).replace(/\s+/g, " "))})`);
  }
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

/** Parse the weights by content (safetensors or a torch zip) and build the model; replaces the current model on success. */
function build(
  config: ReturnType<typeof parsePerceiverConfig>, bytes: Uint8Array, weightsFile: string, source: string, proc: ImageProcessorConfig,
): Omit<ModelInfo, "source" | "seconds"> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  const stateDict: StateDict = isZip || /\.(bin|pt|pth)$/i.test(weightsFile) ? readTorchBin(bytes, { source }) : readSafetensors(bytes, { source });
  model = PerceiverForImageClassification.fromParts({
    config, stateDict, imageProcessorConfig: proc, source, weightsFile, weightsBytes: bytes.length,
  });
  return { architecture: config.architecture, numLabels: config.numLabels, weightsFile, weightsBytes: bytes.length };
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
