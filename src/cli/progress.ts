/** Progress on stderr (downloads: bytes, speed, ETA; inference: layers), drawn only on a TTY and when not quiet. */
import cliProgress from "cli-progress";
import type { HubProgress } from "../io/hub/hub.js";

export function progressEnabled(quiet: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  const disabled = /^(1|true|yes|on)$/i.test(env.HF_HUB_DISABLE_PROGRESS_BARS ?? "");
  return !quiet && !disabled && Boolean(process.stderr.isTTY);
}

/** Bytes in the unit that suits `scale` bytes (kB, MB or GB, decimal like the hub's sizes): one unit per bar. */
export function byteUnit(scale: number): { name: string; size: number } {
  return scale >= 1e9 ? { name: "GB", size: 1e9 } : scale >= 1e6 ? { name: "MB", size: 1e6 } : { name: "kB", size: 1e3 };
}

/** Seconds as `7s`, `3m05s`, `1h02m` (whole seconds, rounded up: an ETA of 0.2 s is `1s`). */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** How far back the speed looks: long enough to smooth bursts, short enough to follow a change of speed. */
const SPEED_WINDOW_S = 5;

/**
 * The text of a download bar after `downloaded` of `total` bytes (null: the server sent no length), from samples
 * (time in seconds, bytes) of the last SPEED_WINDOW_S: `{done} / {size}` in one unit, `{speed}` in that unit per
 * second, `{remaining}` = (total - downloaded) / speed. A speed needs 0.5 s of samples; before that, and when nothing
 * moved, the speed and time remaining read `…`.
 */
export function downloadFields(downloaded: number, total: number | null, samples: ReadonlyArray<readonly [number, number]>):
  { done: string; size: string; speed: string; remaining: string } {
  const unit = byteUnit(total ?? downloaded);
  const amount = (bytes: number) => (bytes / unit.size).toFixed(1);
  let speed = "…", remaining = "…";
  const first = samples[0], last = samples[samples.length - 1];
  if (first && last && last[0] - first[0] >= 0.5 && last[1] > first[1]) {
    const rate = (last[1] - first[1]) / (last[0] - first[0]); // bytes/s
    speed = `${amount(rate)} ${unit.name}/s`;
    remaining = total === null ? "?" : formatDuration((total - downloaded) / rate);
  }
  return { done: amount(downloaded), size: total === null ? `? ${unit.name}` : `${amount(total)} ${unit.name}`, speed, remaining };
}

export interface ProgressSink {
  /** where bars are drawn (default process.stderr) */
  stream?: NodeJS.WritableStream;
  /** seconds, monotonic (default performance.now() / 1000) */
  now?: () => number;
}

/**
 * A download bar per file, fed by hfHubDownload's onProgress. Only our own tokens go in the format: cli-progress
 * fills `{total}`, `{value}`, `{eta}` and `{eta_formatted}` itself, over any payload of the same name (`{total}`
 * with the raw byte count, `{eta_formatted}` with `LL` when its own estimate is not ready).
 */
export function downloadProgress(enabled: boolean, sink: ProgressSink = {}): { onProgress?: (p: HubProgress) => void; stop(): void } {
  if (!enabled) return { stop() {} };
  const stream = sink.stream ?? process.stderr;
  const now = sink.now ?? (() => performance.now() / 1000);
  let bar: cliProgress.SingleBar | null = null;
  let file = "";
  let samples: Array<[number, number]> = [];
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const onProgress = (p: HubProgress) => {
    const t = now();
    if (p.file !== file || !bar) {
      stop();
      file = p.file;
      samples = [];
      bar = new cliProgress.SingleBar(
        { format: "downloading {file} [{bar}] {done} / {size}  {speed}  ETA {remaining}", stream, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.total ?? 0, 0, { file, ...downloadFields(p.downloaded, p.total, [[t, p.downloaded]]) });
    }
    samples.push([t, p.downloaded]);
    while (samples.length > 2 && t - samples[1][0] >= SPEED_WINDOW_S) samples.shift();
    bar.update(p.downloaded, downloadFields(p.downloaded, p.total, samples));
    if (p.total !== null && p.downloaded >= p.total) stop();
  };
  return { onProgress, stop };
}

/** A bar over the model's layers, fed by forward's onProgress; the ETA assumes the remaining layers take as long as the done ones. */
export function inferenceProgress(enabled: boolean, label: string, sink: ProgressSink = {}):
  { onProgress?: (done: number, total: number) => void; stop(): void } {
  if (!enabled) return { stop() {} };
  const now = sink.now ?? (() => performance.now() / 1000);
  const bar = new cliProgress.SingleBar(
    // the label (a file name) goes in as a payload value: in the format string a name like "{value}.png" would be filled in
    { format: "{label} [{bar}] layer {value}/{total}  ETA {remaining}", stream: sink.stream ?? process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let start = -1;
  return {
    onProgress(done, total) {
      if (start < 0) {
        start = now();
        bar.start(total, 0, { label, remaining: "…" });
      }
      const elapsed = now() - start;
      bar.update(done, { remaining: done > 0 ? formatDuration((elapsed / done) * (total - done)) : "…" });
    },
    stop() {
      if (start >= 0) bar.stop();
    },
  };
}
