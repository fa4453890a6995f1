/**
 * The loop of classify, embed and eval over an image list: decode ahead on worker threads (decode-pool.ts),
 * gather batches of up to `batchSize` decoded images in list order, run the command's forward pass on each
 * batch, and hand one record per image, in list order, to `emit`. An image that cannot be read or preprocessed
 * becomes an error record and the run goes on; so do the images of a batch whose forward pass fails with a
 * PerceiverError (anything else is a bug and stops the run).
 *
 * Overlap: up to `2·batchSize + workers` images are in flight, so while batch k runs (blocking this thread),
 * the workers decode batch k+1. A batch closes early when the next image preprocesses to another size (only
 * without do_resize) so every batch is one [B, 3, H, W] tensor.
 */
import { PerceiverError } from "../../errors.js";
import { Tensor } from "../../tensor/tensor.js";
import type { Decoded, DecodePool } from "./decode-pool.js";
import type { JsonRecord } from "./jsonl.js";
import type { DatasetProgress } from "./progress-bar.js";

export interface RecordError {
  code: string;
  message: string;
}

export interface DatasetRunOptions {
  files: readonly string[];
  pool: DecodePool;
  batchSize: number;
  /** images that fail before decoding (e.g. eval: no true label), with why */
  prefail?: ReadonlyMap<string, RecordError>;
  /** pixels [B, 3, H, W] of `files` -> one record per file, in order (the command's forward pass) */
  compute(pixels: Tensor, files: string[], onLayer: (done: number, total: number) => void): Promise<JsonRecord[]>;
  /** called for every record, in list order */
  emit(record: JsonRecord): void;
  /** called after the records of each batch (the --out file is fsync'ed here) */
  afterBatch?(): void;
  progress?: DatasetProgress;
}

export interface DatasetRunResult {
  ok: number;
  failed: number;
  seconds: number;
}

export function errorRecord(file: string, e: RecordError): JsonRecord {
  return { file, error: { code: e.code, message: e.message } };
}

interface Entry {
  file: string;
  d: Decoded;
}

export async function runDataset(opts: DatasetRunOptions): Promise<DatasetRunResult> {
  const { files, pool, batchSize } = opts;
  const t0 = performance.now();
  const depth = 2 * batchSize + pool.workers;
  const queue: { file: string; p: Promise<Decoded> }[] = [];
  let next = 0;
  const fill = () => {
    while (queue.length < depth && next < files.length) {
      const file = files[next++];
      const pre = opts.prefail?.get(file);
      queue.push({ file, p: pre ? Promise.resolve({ error: pre }) : pool.decode(file) });
    }
  };
  let ok = 0, failed = 0;
  let carry: Entry | null = null; // an image of another size than the batch before it: it starts the next batch
  fill();
  while (carry || queue.length > 0) {
    const entries: Entry[] = [];
    let good = 0;
    let h = 0, w = 0;
    while (good < batchSize) {
      let e: Entry;
      if (carry) {
        e = carry;
        carry = null;
      } else {
        const q = queue.shift();
        if (!q) break;
        fill();
        e = { file: q.file, d: await q.p };
      }
      if ("error" in e.d) {
        entries.push(e);
        continue;
      }
      if (good > 0 && (e.d.height !== h || e.d.width !== w)) {
        carry = e;
        break;
      }
      h = e.d.height;
      w = e.d.width;
      entries.push(e);
      good++;
    }
    const records = new Map<Entry, JsonRecord>();
    const batch = entries.filter((e) => !("error" in e.d));
    if (batch.length > 0) {
      const plane = 3 * h * w;
      const pixels = new Float32Array(batch.length * plane);
      batch.forEach((e, i) => pixels.set((e.d as { pixels: Float32Array }).pixels, i * plane));
      try {
        const out = await opts.compute(new Tensor(pixels, [batch.length, 3, h, w]), batch.map((e) => e.file), (d, t) => opts.progress?.layer(d, t));
        batch.forEach((e, i) => records.set(e, out[i]));
      } catch (err) {
        if (!(err instanceof PerceiverError)) throw err;
        for (const e of batch) records.set(e, errorRecord(e.file, err));
      }
    }
    for (const e of entries) {
      const r = "error" in e.d ? errorRecord(e.file, e.d.error) : records.get(e)!;
      if (r.error !== undefined) failed++;
      else ok++;
      opts.emit(r);
    }
    opts.afterBatch?.();
    opts.progress?.advance(entries.length);
  }
  return { ok, failed, seconds: (performance.now() - t0) / 1000 };
}
