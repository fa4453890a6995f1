/**
 * Decoding and preprocessing of images on worker threads (node:worker_threads, decode-worker.ts), so that the
 * next images are ready when a forward pass ends: the forward pass blocks the main thread (its matrix products
 * run on the model's own thread pool, src/tensor/threads.ts, which this pool is separate from), while these
 * workers read, decode and resize. With 0 workers, images are decoded on the main thread, one at a time.
 */
import { Worker } from "node:worker_threads";
import { loadImageFile } from "../../io/image/decode-node.js";
import { preprocessBatch, type ImageProcessorConfig } from "../../io/image/image-processor.js";
import { availableCores } from "../../tensor/threads.js";

export interface DecodeRequest {
  id: number;
  path: string;
}

/** pixels [1, 3, height, width] of one image, or why it could not be read */
export type Decoded = { pixels: Float32Array; height: number; width: number } | { error: { code: string; message: string } };
export type DecodeReply = Decoded & { id: number };

export interface DecodePoolOptions {
  workers: number;
  processorConfig: Partial<ImageProcessorConfig>;
  exifOrientation: boolean;
}

/** Default decode workers: one core is left to the forward pass's own threads, up to 4. */
export function defaultDecodeWorkers(): number {
  return Math.max(1, Math.min(4, availableCores() - 1));
}

async function decodeHere(path: string, opts: DecodePoolOptions): Promise<Decoded> {
  try {
    const t = preprocessBatch([await loadImageFile(path, { exifOrientation: opts.exifOrientation })], opts.processorConfig);
    return { pixels: t.data, height: t.shape[2], width: t.shape[3] };
  } catch (e) {
    const code = (e as { code?: unknown })?.code;
    return { error: { code: typeof code === "string" ? code : "IMAGE_DECODE", message: (e as Error)?.message ?? String(e) } };
  }
}

/**
 * The worker: decode-worker.js beside this file; when running from source (.ts, under tsx or vitest), a small
 * bootstrap that registers tsx's loader in the worker first (loaders of the main thread do not reach workers).
 */
function workerScript(): { script: string | URL; eval: boolean } {
  if (!import.meta.url.endsWith(".ts")) return { script: new URL("./decode-worker.js", import.meta.url), eval: false };
  const worker = new URL("./decode-worker.ts", import.meta.url).href;
  const tsx = import.meta.resolve("tsx/esm/api");
  return { script: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(worker)}); })`, eval: true };
}

/** Worker deaths after which the pool stops replacing them and decodes on the main thread. */
const MAX_DEATHS = 3;

interface Slot {
  worker: Worker;
  pending: Map<number, (d: Decoded) => void>;
}

export class DecodePool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;
  private deaths = 0;

  private constructor(private readonly opts: DecodePoolOptions) {
    for (let i = 0; i < opts.workers; i++) this.slots.push(this.spawn());
  }

  static create(opts: DecodePoolOptions): DecodePool {
    return new DecodePool(opts);
  }

  get workers(): number {
    return this.slots.length;
  }

  private spawn(): Slot {
    const { script, eval: isEval } = workerScript();
    const worker = new Worker(script, {
      eval: isEval,
      workerData: { processorConfig: this.opts.processorConfig, exifOrientation: this.opts.exifOrientation },
    });
    const slot: Slot = { worker, pending: new Map() };
    worker.on("message", (r: DecodeReply) => {
      const done = slot.pending.get(r.id);
      slot.pending.delete(r.id);
      const { id: _id, ...decoded } = r;
      done?.(decoded as Decoded);
    });
    // a worker that dies (out of memory, a crash) fails the images it held and is replaced, MAX_DEATHS times at
    // most (then the main thread decodes); the run goes on
    const fail = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i < 0 || this.closed) return;
      for (const done of slot.pending.values()) done({ error: { code: "THREADS", message: `decode worker stopped: ${why}` } });
      slot.pending.clear();
      void worker.terminate();
      if (++this.deaths < MAX_DEATHS) this.slots[i] = this.spawn();
      else this.slots.splice(i, 1);
    };
    worker.on("error", (e) => fail(e.message));
    worker.on("exit", (code) => {
      if (!this.closed) fail(`exit code ${code}`);
    });
    return slot;
  }

  /** Reads, decodes and preprocesses `path`; never rejects (failures come back as {error}). */
  decode(path: string): Promise<Decoded> {
    if (this.slots.length === 0) return decodeHere(path, this.opts);
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise<Decoded>((resolve) => {
      slot.pending.set(id, resolve);
      slot.worker.postMessage({ id, path } satisfies DecodeRequest);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
