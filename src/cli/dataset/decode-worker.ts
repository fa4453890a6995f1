/**
 * A decode worker (node:worker_threads) of decode-pool.ts: reads an image file, decodes it and preprocesses it
 * to pixel values [1, 3, H, W], and posts the floats back (their buffer transferred, not copied). Failures are
 * posted as {code, message}, never thrown: one bad image must not stop the worker.
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadImageFile } from "../../io/image/decode-node.js";
import { preprocessBatch, type ImageProcessorConfig } from "../../io/image/image-processor.js";
import type { DecodeReply, DecodeRequest } from "./decode-pool.js";

const { processorConfig, exifOrientation } = workerData as { processorConfig: Partial<ImageProcessorConfig>; exifOrientation: boolean };

parentPort!.on("message", (req: DecodeRequest) => {
  void (async () => {
    let reply: DecodeReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const img = await loadImageFile(req.path, { exifOrientation });
      const t = preprocessBatch([img], processorConfig);
      reply = { id: req.id, pixels: t.data, height: t.shape[2], width: t.shape[3] };
      transfer = [t.data.buffer as ArrayBuffer];
    } catch (e) {
      const code = (e as { code?: unknown })?.code;
      reply = { id: req.id, error: { code: typeof code === "string" ? code : "IMAGE_DECODE", message: (e as Error)?.message ?? String(e) } };
    }
    parentPort!.postMessage(reply, transfer);
  })();
});
