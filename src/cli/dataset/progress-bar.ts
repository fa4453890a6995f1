/**
 * The progress bar of a dataset run on stderr: images done of the total, images/s, ETA, and the layer of the
 * forward pass in progress (a batch of the full-size model takes seconds). Drawn only on a terminal (see
 * progressEnabled); otherwise every method does nothing. Lines printed to stdout while it is drawn go through
 * `print`, which clears the bar's line first and draws it again after, so a shared terminal stays readable.
 */
import cliProgress from "cli-progress";

export class DatasetProgress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly t0 = performance.now();
  private done = 0;

  constructor(private readonly enabled: boolean, private readonly total: number, private readonly label: string) {
    if (!enabled || total === 0) return;
    // {value}/{total} are cli-progress's own tokens (the bar's count and size); the rest are payload
    this.bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} images | {rate} | ETA {eta_formatted}{layer}`, stream: process.stderr, etaBuffer: 20, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { rate: "- images/s", layer: "" });
  }

  /** The forward pass reached layer `done` of `total`. */
  layer(done: number, total: number): void {
    this.bar?.update({ layer: ` | layer ${done}/${total}` });
  }

  /** `n` more images finished (succeeded or failed). */
  advance(n: number): void {
    this.done += n;
    if (!this.bar) return;
    const s = (performance.now() - this.t0) / 1000;
    this.bar.update(this.done, { rate: `${(this.done / Math.max(s, 1e-9)).toFixed(2)} images/s`, layer: "" });
  }

  /** Writes `text` to stdout (or `stream`) without breaking the bar. */
  print(text: string, stream: NodeJS.WriteStream = process.stdout): void {
    if (this.bar && (stream === process.stderr || stream.isTTY)) {
      process.stderr.write("\r\x1b[2K");
      stream.write(text);
      (this.bar as cliProgress.GenericBar).render(true);
    } else {
      stream.write(text);
    }
  }

  stop(): void {
    if (!this.bar) return;
    this.bar.stop();
    this.bar = null;
  }
}
