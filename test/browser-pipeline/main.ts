/**
 * The test page of test/browser-pipeline.test.ts: the library's main entry, as an application bundles it, exposed to
 * the test as `window.perceiver`, and `window.runInWorker` for the same in a Web Worker (worker.ts).
 */
import * as perceiver from "../../src/index.js";

const g = globalThis as unknown as { perceiver: typeof perceiver; runInWorker: (request: unknown) => Promise<unknown> };
g.perceiver = perceiver;
g.runInWorker = (request) =>
  new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (ev) => {
      worker.terminate();
      resolve(ev.data);
    };
    worker.onerror = (ev) => reject(new Error(ev.message || "the worker failed to start"));
    worker.postMessage(request);
  });
document.body.dataset.ready = "1";
