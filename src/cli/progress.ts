/** Progress on stderr (downloads: bytes, speed, ETA; inference: layers), drawn only on a TTY and when not quiet. */
import cliProgress from "cli-progress";
import type { HubProgress } from "../io/hub/hub.js";

export function progressEnabled(quiet: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const disabled = /^(1|true|yes|on)$/i.test(env.HF_HUB_DISABLE_PROGRESS_BARS ?? "");
  return !quiet && !disabled && Boolean(process.stderr.isTTY);
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A download bar per file, fed by hfHubDownload's onProgress. */
export function downloadProgress(enabled: boolean): { onProgress?: (p: HubProgress) => void; stop(): void } {
  if (!enabled) return { stop() {} };
  let bar: cliProgress.SingleBar | null = null;
  let file = "";
  let start = 0;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const onProgress = (p: HubProgress) => {
    if (p.file !== file || !bar) {
      stop();
      file = p.file;
      start = performance.now();
      bar = new cliProgress.SingleBar(
        { format: "downloading {file} [{bar}] {done} / {total} {speed} ETA {eta_formatted}", stream: process.stderr, hideCursor: true, etaBuffer: 50 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.total ?? 0, 0, { file, done: mb(0), total: p.total ? mb(p.total) : "?", speed: "" });
    }
    const s = (performance.now() - start) / 1000;
    bar.update(p.downloaded, { done: mb(p.downloaded), speed: s > 0 ? `${mb(p.downloaded / s)}/s` : "" });
    if (p.total !== null && p.downloaded >= p.total) stop();
  };
  return { onProgress, stop };
}

/** A bar over the model's layers, fed by forward's onProgress. */
export function inferenceProgress(enabled: boolean, label: string): { onProgress?: (done: number, total: number) => void; stop(): void } {
  if (!enabled) return { stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] layer {value}/{total} ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
