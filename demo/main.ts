/**
 * The page: picks the model source (hub repo or local files) and the image, shows progress, the top-5 labels and the
 * class-weighted attention overlay. All model work happens in worker.ts.
 *
 * URL parameters: ?endpoint=https://huggingface.co  &repo=owner/name  &revision=commit-or-branch  &timeout=seconds
 */
import { COLORMAP_NAMES, getColormap } from "../src/io/image/colormap.js";
import { classWeightedFigure, formatRelative } from "../src/perceiver/attention-figure.js";
import type { ClassifyResult, ModelInfo, WorkerReply, WorkerRequest } from "./protocol.js";

const DEFAULT_ENDPOINT = "https://huggingface.co";
const DEFAULT_REPO = "deepmind/vision-perceiver-conv";
/** deepmind/vision-perceiver-conv's `main` has only pytorch_model.bin; this commit adds model.safetensors. */
const SAFETENSORS_REVISION = "9e887ddb738d7de3bb0dc357003fec3ab44af668";
/** The revision menu: words first, the hash only where it is the point. "" = type your own. */
const REVISION_CHOICES: ReadonlyArray<{ value: string; label: string }> = [
  { value: "main", label: "main: latest, pytorch_model.bin read safely" },
  { value: SAFETENSORS_REVISION, label: `safetensors conversion (commit ${SAFETENSORS_REVISION.slice(0, 7)})` },
  { value: "", label: "another branch, tag or commit…" },
];

const params = new URLSearchParams(location.search);
const endpoint = (params.get("endpoint") ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
const timeoutSeconds = positiveNumber(params.get("timeout"), 60);

const $ = <T extends HTMLElement>(id: string) => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page is missing #${id}`);
  return el as T;
};
const repoInput = $<HTMLInputElement>("repo");
const revisionChoice = $<HTMLSelectElement>("revision-choice");
const revisionField = $("revision-field");
const revisionInput = $<HTMLInputElement>("revision");
const downloadLabel = $("download-label");
const hubForm = $<HTMLFormElement>("hub-form");
const modelFilesInput = $<HTMLInputElement>("model-files");
const modelStatus = $("model-status");
const downloadBar = $<HTMLProgressElement>("download-progress");
const downloadText = $("download-text");
const dropZone = $("drop-zone");
const imageInput = $<HTMLInputElement>("image-input");
const sampleButton = $<HTMLButtonElement>("sample-button");
const computeBar = $<HTMLProgressElement>("compute-progress");
const computeText = $("compute-text");
const results = $("results");
const top5 = $<HTMLOListElement>("top5");
const overlayCanvas = $<HTMLCanvasElement>("overlay");
const opacityInput = $<HTMLInputElement>("opacity");
const colormapSelect = $<HTMLSelectElement>("colormap");
const imageCaption = $("image-caption");
const timings = $("timings");
const threadsText = $("threads");
const errorBox = $("error");

$("endpoint").textContent = endpoint;
repoInput.value = params.get("repo") ?? DEFAULT_REPO;
revisionChoice.replaceChildren(...REVISION_CHOICES.map((c) => new Option(c.label, c.value)));
{
  const wanted = params.get("revision") ?? "main";
  const known = REVISION_CHOICES.some((c) => c.value !== "" && c.value === wanted);
  revisionChoice.value = known ? wanted : "";
  revisionInput.value = known ? "" : wanted;
  revisionField.hidden = known;
}
revisionChoice.addEventListener("change", () => {
  revisionField.hidden = revisionChoice.value !== "";
  if (!revisionField.hidden) revisionInput.focus();
  source = hubSource();
});

/** The revision to load: the menu's, or what was typed under "another branch, tag or commit" ("main" if empty). */
function revision(): string {
  return revisionChoice.value || revisionInput.value.trim() || "main";
}

type Status = "idle" | "loading" | "ready" | "classifying" | "done" | "error";
function setStatus(s: Status): void {
  document.body.dataset.status = s;
}
setStatus("idle");

// ---------------------------------------------------------------------------------------------------------------
// The worker, behind a promise per request

class DemoError extends Error {
  constructor(message: string, readonly code: string | null) {
    super(message);
  }
}

type Pending = { resolve: (m: WorkerReply & { type: "done" }) => void; reject: (e: Error) => void; onProgress: (m: WorkerReply & { type: "progress" }) => void };
const pending = new Map<number, Pending>();
let nextId = 1;

const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
worker.onmessage = (ev: MessageEvent<WorkerReply>) => {
  const m = ev.data;
  const p = pending.get(m.id);
  if (p === undefined) return;
  if (m.type === "progress") return p.onProgress(m);
  pending.delete(m.id);
  if (m.type === "error") p.reject(new DemoError(m.message, m.code));
  else p.resolve(m);
};
worker.onerror = (ev: ErrorEvent) => {
  ev.preventDefault();
  failAll(`the inference worker failed${ev.message ? `: ${ev.message}` : " to start (this page needs a browser with module workers)"}`);
};
worker.onmessageerror = () => failAll("a message from the inference worker could not be read");

/** Set when the worker died: every later request fails at once with this message instead of waiting forever. */
let workerDead: string | null = null;

function failAll(message: string): void {
  workerDead = message;
  const all = [...pending.values()];
  pending.clear();
  for (const p of all) p.reject(new DemoError(message, null));
  if (all.length === 0) showError(message);
}

type Request = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, "id"> : never) : never;
function request(req: Request, onProgress: Pending["onProgress"]): Promise<WorkerReply & { type: "done" }> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    if (workerDead !== null) return reject(new DemoError(workerDead, null));
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ ...req, id } as WorkerRequest);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Model source and loading

type Source = { kind: "hub"; repo: string; revision: string } | { kind: "files"; files: File[]; pick: number };
let source: Source = hubSource();
let filePicks = 0;
let loaded: { key: string; info: ModelInfo; source: Source } | null = null;
let loading: { key: string; promise: Promise<ModelInfo> } | null = null;

function hubSource(): Source {
  return { kind: "hub", repo: repoInput.value.trim(), revision: revision() };
}
const sourceKey = (s: Source) => (s.kind === "hub" ? `hub ${endpoint} ${s.repo} ${s.revision}` : `files #${s.pick}`);

function ensureModel(): Promise<ModelInfo> {
  const key = sourceKey(source);
  if (loaded?.key === key) return Promise.resolve(loaded.info);
  if (loading?.key === key) return loading.promise;
  const s = source;
  // the model loaded so far stays in use until the new one has loaded (a wrong repo name must not lose it)
  const previous = loaded;
  setStatus("loading");
  clearError();
  downloadLabel.textContent = s.kind === "hub" ? "Download" : "Read";
  setBar(downloadBar, 0, 1);
  downloadText.textContent = "starting…";
  modelStatus.textContent = s.kind === "hub" ? `Loading ${s.repo}@${s.revision} from ${endpoint}…` : "Reading the model files…";
  const req: Request = s.kind === "hub"
    ? { type: "load-hub", endpoint, repo: s.repo, revision: s.revision, timeoutSeconds }
    : { type: "load-files", files: s.files };
  const promise = request(req, (m) => {
    if (m.phase !== "download") return;
    if (m.total === null) {
      downloadBar.removeAttribute("value"); // indeterminate: the server sent no Content-Length
      downloadText.textContent = `${m.file}: ${formatBytes(m.loaded)}`;
    } else {
      setBar(downloadBar, m.loaded, m.total);
      downloadText.textContent = m.cached && s.kind === "hub" // (local files count as "cached" too: not the network)
        ? `${m.file}: ${formatBytes(m.total)}, from the browser's cache (no download)`
        : `${m.file}: ${formatBytes(m.loaded)} of ${formatBytes(m.total)}`;
    }
  }).then(
    (m) => {
      if (!("model" in m)) throw new Error("internal: unexpected reply to a load request");
      const info = m.model;
      loaded = { key, info, source: s };
      modelStatus.textContent = `Loaded ${describe(info)}`;
      setStatus("ready");
      return info;
    },
    (e: unknown) => {
      if (previous !== null) {
        source = previous.source; // the next image uses the model that is still loaded
        modelStatus.textContent = `Still using ${describe(previous.info)}`;
      } else {
        modelStatus.textContent = "No model loaded.";
      }
      throw e;
    },
  ).finally(() => {
    if (loading?.promise === promise) loading = null;
  });
  loading = { key, promise };
  return promise;
}

function describe(info: ModelInfo): string {
  return `${info.source}: ${info.architecture}, ${info.numLabels} labels, ${info.weightsFile} ` +
    `(${formatBytes(info.weightsBytes)}), loaded in ${info.seconds.toFixed(2)} s.`;
}

hubForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  source = hubSource();
  clearError();
  ensureModel().then(
    () => document.body.dataset.status === "error" && setStatus("ready"), // already loaded: clear a stale error state
    (e: unknown) => showError(`Could not load the model: ${errorText(e)}`),
  );
});
for (const input of [repoInput, revisionInput]) input.addEventListener("change", () => (source = hubSource()));
modelFilesInput.addEventListener("click", () => (modelFilesInput.value = "")); // the same files again reload

function useModelFiles(files: File[]): void {
  source = { kind: "files", files, pick: ++filePicks };
  ensureModel().catch((e: unknown) => showError(`Could not load the model files: ${errorText(e)}`));
}
modelFilesInput.addEventListener("change", () => {
  if (modelFilesInput.files && modelFilesInput.files.length > 0) useModelFiles([...modelFilesInput.files]);
});

// ---------------------------------------------------------------------------------------------------------------
// Images

let lastResult: ClassifyResult | null = null;

async function classify(image: Blob, name: string): Promise<void> {
  clearError();
  clearResults(); // results on screen always belong to the image being shown
  try {
    await ensureModel();
  } catch (e) {
    showError(`Could not load the model: ${errorText(e)}`);
    return;
  }
  setStatus("classifying");
  setBar(computeBar, 0, 1);
  computeText.textContent = `decoding ${name}…`;
  try {
    const m = await request({ type: "classify", image, name }, (p) => {
      if (p.phase !== "compute") return;
      setBar(computeBar, p.done, p.total);
      computeText.textContent = `layer ${p.done} of ${p.total}`;
    });
    if (!("result" in m)) throw new Error("internal: unexpected reply to a classify request");
    lastResult = m.result;
    render(m.result, name);
    setStatus("done");
    // bring the answer into view (it is below the fold on a laptop screen and on a phone)
    const smooth = !matchMedia("(prefers-reduced-motion: reduce)").matches;
    results.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
  } catch (e) {
    computeText.textContent = "failed";
    showError(`Could not classify ${name}: ${errorText(e)}`);
  }
}

imageInput.addEventListener("change", () => {
  const f = imageInput.files?.[0];
  if (f) void classify(f, f.name);
  imageInput.value = ""; // picking the same file again fires change again
});

const MODEL_FILE = /^(config\.json|preprocessor_config\.json)$|\.(safetensors|bin|pt|pth)$/i;
dropZone.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  dropZone.classList.add("over");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (ev) => {
  ev.preventDefault();
  dropZone.classList.remove("over");
  const files = [...(ev.dataTransfer?.files ?? [])];
  if (files.length === 0) return showError("Nothing was dropped: drop an image file (or config.json + weights to load a model).");
  if (files.some((f) => MODEL_FILE.test(f.name))) return useModelFiles(files);
  void classify(files[0], files[0].name);
});
dropZone.addEventListener("click", (ev) => {
  if (ev.target === dropZone) imageInput.click();
});
dropZone.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    imageInput.click();
  }
});

sampleButton.addEventListener("click", async () => {
  let blob: Blob;
  try {
    const res = await fetch("./cat.png");
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    blob = await res.blob();
  } catch (e) {
    showError(`Could not fetch the sample image: ${errorText(e)}`);
    return;
  }
  await classify(blob, "cat.png");
});

// ---------------------------------------------------------------------------------------------------------------
// Rendering

function render(r: ClassifyResult, name: string): void {
  results.hidden = false;
  top5.replaceChildren(
    ...r.top.map((p) => {
      const li = document.createElement("li");
      li.dataset.index = String(p.index);
      li.dataset.label = p.label;
      li.dataset.score = String(p.score);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = p.label;
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${(100 * p.score).toFixed(2)}%`;
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `${(100 * p.score).toFixed(2)}%`;
      li.append(label, score, bar);
      return li;
    }),
  );
  let attentionText = "; no attention map for this model";
  if (r.attention) {
    const { gridHeight: gh, gridWidth: gw, map } = r.attention;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of map) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const T = gh * gw;
    attentionText = `; attention over ${gh}x${gw} tokens from ${formatRelative(lo * T)} to ${formatRelative(hi * T)} times ` +
      `uniform (1 = 1/${T} each); colour bar 0 to ${formatRelative(hi * T)}`;
  }
  imageCaption.textContent = `${name}, ${r.imageWidth}x${r.imageHeight}, center crop resized to ${r.crop.width}x${r.crop.height}${attentionText}`;
  const t = r.timings;
  const th = r.threads;
  timings.textContent = `decode ${t.decode.toFixed(0)} ms · preprocess ${t.preprocess.toFixed(0)} ms · forward ${t.forward.toFixed(0)} ms` +
    ` · ${th.count} thread${th.count === 1 ? "" : "s"}`;
  threadsText.textContent = threadsInWords(th.count, th.note);
  drawOverlay();
}

/**
 * The crop with the attention heat map blended over it and its colour bar, drawn by the library's
 * classWeightedFigure: the same picture as the PNG of `perceiver attention-map` (colour 0 to the map's maximum in
 * units of uniform attention, the token map upsampled bilinearly, (1 - alpha)·crop + alpha·colour).
 */
function drawOverlay(): void {
  const r = lastResult;
  if (r === null) return;
  const alpha = Number(opacityInput.value);
  const a = r.attention;
  const rgb = a !== null
    ? classWeightedFigure(a.map, { crop: r.crop, gridHeight: a.gridHeight, gridWidth: a.gridWidth, colormap: getColormap(colormapSelect.value), alpha }).image
    : r.crop;
  const { width: W, height: H } = rgb;
  const rgba = new Uint8ClampedArray(W * H * 4);
  for (let p = 0; p < W * H; p++) {
    rgba[p * 4] = rgb.data[p * 3];
    rgba[p * 4 + 1] = rgb.data[p * 3 + 1];
    rgba[p * 4 + 2] = rgb.data[p * 3 + 2];
    rgba[p * 4 + 3] = 255;
  }
  overlayCanvas.width = W;
  overlayCanvas.height = H;
  overlayCanvas.getContext("2d")?.putImageData(new ImageData(rgba, W, H), 0, 0);
}
opacityInput.addEventListener("input", drawOverlay);
colormapSelect.replaceChildren(...COLORMAP_NAMES.map((name) => new Option(name, name)));
colormapSelect.addEventListener("change", drawOverlay);

// ---------------------------------------------------------------------------------------------------------------

function setBar(bar: HTMLProgressElement, value: number, max: number): void {
  bar.max = Math.max(max, 1e-9);
  bar.value = value;
}

function showError(message: string): void {
  errorBox.textContent = message;
  errorBox.hidden = false;
  clearResults();
  setStatus("error");
  errorBox.scrollIntoView({ block: "nearest" });
}

/** Hides the results of the last image (after an error, or while a new image is on its way). */
function clearResults(): void {
  results.hidden = true;
  lastResult = null;
  top5.replaceChildren();
  imageCaption.textContent = "";
  timings.textContent = "";
  threadsText.textContent = "";
}

/** The thread count and, on one thread, why, in words (the library's reason is technical). */
function threadsInWords(count: number, note: string | null): string {
  const cores = navigator.hardwareConcurrency || 1;
  if (count > 1) return `Ran on ${count} threads (this computer has ${cores} cores).`;
  if (note === null) return cores > 1 ? "Ran on 1 thread." : "Ran on 1 thread (this computer reports one core).";
  if (!crossOriginIsolated) {
    return `Ran on 1 thread of ${cores} cores: this page is not cross-origin isolated, so the browser gives it no shared ` +
      "memory (SharedArrayBuffer) for worker threads. A server that sends the COOP and COEP headers " +
      "(npm run demo:dev and demo:preview do) makes it use every core.";
  }
  return `Ran on 1 thread of ${cores} cores: worker threads could not start (${note}).`;
}

function clearError(): void {
  errorBox.hidden = true;
  errorBox.textContent = "";
}

function errorText(e: unknown): string {
  if (e instanceof DemoError && e.code) return `${e.message} [${e.code}]`;
  return e instanceof Error ? e.message : String(e);
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function positiveNumber(s: string | null, fallback: number): number {
  const v = s === null ? NaN : Number(s);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** For the browser test and for poking around in devtools. */
(globalThis as { perceiverDemo?: unknown }).perceiverDemo = {
  get lastResult() {
    return lastResult;
  },
  get model() {
    return loaded?.info ?? null;
  },
};
