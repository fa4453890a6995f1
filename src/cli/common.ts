/** What the CLI commands share: option parsing, model loading with progress, terminal-safe text. */
import { PerceiverError } from "../errors.js";
import { DEFAULT_MODEL } from "../io/hub/hub-model.js";
import type { ImageProcessorConfig } from "../io/image/image-processor.js";
import { loadFromFiles, readImageProcessorConfigFile, resolveModelFiles } from "../perceiver/load.js";
import type { PerceiverForImageClassification } from "../perceiver/model.js";
import { setBackend, setThreads } from "../tensor/gemm.js";
import { downloadProgress } from "./progress.js";

/** `--name <n>`: an integer from 1 to max, or `dflt` when absent; anything else is a USAGE error. */
export function positiveInt(name: string, v: string | undefined, dflt: number, max: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) {
    throw new PerceiverError("USAGE", `--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/**
 * Text read from files (labels, names quoted in error messages) with control characters (terminal escape
 * sequences) shown escaped instead of sent; `keepNewlines` leaves line breaks and tabs of multi-line messages alone.
 */
export function printable(s: string, { keepNewlines = false } = {}): string {
  const re = keepNewlines ? /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g : /[\u0000-\u001f\u007f-\u009f]/g;
  return s.replace(re, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Help lines for the compute options every model command takes (see applyComputeOptions). */
export const COMPUTE_HELP = `  --threads <n>               threads for the matrix products  [default: PERCEIVER_THREADS or all cores]
  --backend <name>            kernels: wasm, ts or reference   [default: PERCEIVER_BACKEND or wasm]`;

/** Help line for --ignore-exif (every command that reads images). */
export const IMAGE_HELP = `  --ignore-exif               keep the stored orientation (default: turn photos upright by
                              their EXIF orientation, like transformers' load_image)`;

/** parseArgs entries every model command takes: the model, the compute options, and the output switches. */
export const MODEL_COMMAND_OPTIONS = {
  model: { type: "string" },
  revision: { type: "string" },
  threads: { type: "string" },
  backend: { type: "string" },
  "ignore-exif": { type: "boolean", default: false },
  quiet: { type: "boolean", default: false },
  debug: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Applies `--backend` and `--threads` (before the model is loaded); bad values are USAGE errors. */
export async function applyComputeOptions(values: { threads?: string; backend?: string }): Promise<void> {
  if (values.backend !== undefined) {
    if (values.backend !== "ts" && values.backend !== "wasm" && values.backend !== "reference") {
      throw new PerceiverError("USAGE", `--backend must be wasm, ts or reference, got ${JSON.stringify(values.backend)}`);
    }
    setBackend(values.backend);
  }
  if (values.threads !== undefined) await setThreads(positiveInt("threads", values.threads, 1, 64));
}

/** `--model` / `--revision` -> the model and its image processor settings, with a download bar when enabled. */
export async function loadCliModel(
  opts: { model?: string; revision?: string; showProgress: boolean },
): Promise<{ model: PerceiverForImageClassification; processorConfig: Partial<ImageProcessorConfig>; seconds: number }> {
  const download = downloadProgress(opts.showProgress);
  const t0 = performance.now();
  try {
    const files = await resolveModelFiles(opts.model ?? DEFAULT_MODEL, { revision: opts.revision, onProgress: download.onProgress });
    const processorConfig = await readImageProcessorConfigFile(files.preprocessorConfigPath);
    const model = await loadFromFiles(files);
    return { model, processorConfig, seconds: (performance.now() - t0) / 1000 };
  } finally {
    download.stop();
  }
}
