/**
 * pipeline() in Node on the tiny conv checkpoint (test/fixtures/tiny-conv): mixed inputs (path, bytes, ArrayBuffer,
 * Blob, URL from a local server, pixels, an array of them) give the same per-image labels as the class API;
 * feature extraction; dispose (and the process-wide worker threads); progress_callback events for downloads from
 * the fake hub and for compute; preprocessor_config.json used; the fetch loader's resume and checks.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PerceiverForImageClassification, pipeline, preprocessBatch, topK, type ProgressInfo, type RgbImage,
} from "../src/index.js";
import { loadImageFile } from "../src/node.js";
import { livePipelines } from "../src/pipeline/compute.js";
import { getThreads, setThreads } from "../src/tensor/gemm.js";
import { ROOT } from "./helpers/cli.js";
import { fakeCommit, startFakeHub, type FakeHub } from "./helpers/fake-hub.js";

const TINY = join(ROOT, "test/fixtures/tiny-conv");
const CAT = join(ROOT, "samples/cat.png");
const COFFEE = join(ROOT, "test/fixtures/images/coffee.png");
const CHELSEA_JPG = join(ROOT, "test/fixtures/images/chelsea.jpg");
const REPO = "org/tiny-conv";
const SHA = fakeCommit("pipeline tiny-conv");
/** A small preprocessor_config.json (28x28 crops of 32/28 of the shorter side), so that using it shows. */
const PROC = { do_center_crop: true, crop_size: { height: 32, width: 32 }, do_resize: true, size: { height: 28, width: 28 } };

let tmp = "";
let server: http.Server;
let base = "";
let hub: FakeHub;
let reference: PerceiverForImageClassification;

/** What the class API gives for an image: topK of forward, as {label, score}. */
async function expected(img: RgbImage, k = 5, proc = {}): Promise<{ label: string; score: number }[]> {
  const { logits } = await reference.forward(preprocessBatch([img], proc));
  return topK(logits.data, k, reference.config.id2label).map(({ label, score }) => ({ label, score }));
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "perceiver-pipeline-"));
  reference = await PerceiverForImageClassification.fromPretrained(TINY);
  server = http.createServer((req, res) => {
    const file = { "/cat.png": CAT, "/coffee.png": COFFEE }[req.url ?? ""];
    if (file === undefined) {
      res.writeHead(404).end("no such image");
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, { "Content-Type": "image/png", "Content-Length": body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const files = {
    "config.json": readFileSync(join(TINY, "config.json")),
    "preprocessor_config.json": JSON.stringify(PROC),
    "model.safetensors": readFileSync(join(TINY, "model.safetensors")),
  };
  hub = await startFakeHub({ repos: { [REPO]: { commits: { [SHA]: { files } }, refs: { main: SHA } } } });
});

afterAll(async () => {
  await new Promise<void>((r) => server?.close(() => r()));
  await hub?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("pipeline('image-classification')", () => {
  it("gives per-image labels for a path, bytes, an ArrayBuffer, a Blob, URLs and pixels, alone or in an array", async () => {
    const classify = await pipeline("image-classification", TINY);
    const cat = await loadImageFile(CAT);
    const coffee = await loadImageFile(COFFEE);
    const chelsea = await loadImageFile(CHELSEA_JPG);
    const catBytes = new Uint8Array(readFileSync(CAT));
    const coffeeBytes = readFileSync(COFFEE);
    const rgba = new Uint8ClampedArray(cat.width * cat.height * 4);
    for (let p = 0; p < cat.width * cat.height; p++) rgba.set([...cat.data.subarray(p * 3, p * 3 + 3), 255], p * 4);

    const one = await classify(CAT);
    expect(one).toEqual(await expected(cat)); // a single input: one flat list
    expect(Object.keys(one[0]).sort()).toEqual(["label", "score"]);

    const inputs = [
      CAT, // a path
      catBytes, // bytes
      coffeeBytes.buffer.slice(coffeeBytes.byteOffset, coffeeBytes.byteOffset + coffeeBytes.length), // an ArrayBuffer
      new Blob([readFileSync(CHELSEA_JPG)]), // a Blob (JPEG)
      `${base}/coffee.png`, // a URL string, fetched
      new URL(`${base}/cat.png`), // a URL object
      { width: cat.width, height: cat.height, data: rgba }, // ImageData-like RGBA pixels
    ];
    const lists = await classify(inputs, { topK: 3 });
    const want = [cat, cat, coffee, chelsea, coffee, cat, cat];
    expect(lists).toHaveLength(inputs.length);
    for (let i = 0; i < inputs.length; i++) expect(lists[i], `input ${i}`).toEqual(await expected(want[i], 3));
    expect(lists[0]).not.toEqual(lists[2]); // cat and coffee differ: the images are not ranked together

    // batched forward passes give the same lists (within float rounding of a larger product)
    const batched = await classify(inputs.slice(0, 4), { topK: 3, batchSize: 3 });
    batched.forEach((list, i) => {
      expect(list.map((p) => p.label)).toEqual(lists[i].map((p) => p.label));
      list.forEach((p, r) => expect(Math.abs(p.score - lists[i][r].score)).toBeLessThan(1e-5));
    });
    expect(await classify([CAT], { top_k: 1 })).toEqual([await expected(cat, 1)]);
    expect(await classify([])).toEqual([]);
    await classify.dispose();
  });

  it("names the input that fails, with a typed error", async () => {
    const classify = await pipeline("image-classification", TINY);
    await expect(classify([CAT, join(tmp, "missing.png")])).rejects.toMatchObject({ code: "INPUT_INVALID", message: expect.stringMatching(/^input 1 .*missing\.png.*no such file/) });
    await expect(classify(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ code: "IMAGE_UNSUPPORTED" });
    await expect(classify(`${base}/nothing.png`)).rejects.toMatchObject({ code: "INPUT_INVALID", message: expect.stringContaining("HTTP 404") });
    await expect(classify(42 as never)).rejects.toMatchObject({ code: "INPUT_INVALID", message: expect.stringContaining("unsupported image input") });
    await expect(classify(CAT, { topK: 1.5 })).rejects.toMatchObject({ code: "INPUT_INVALID" });
    await expect(pipeline("text-generation" as never, TINY)).rejects.toMatchObject({ code: "INPUT_INVALID", message: expect.stringContaining("image-classification") });
    await expect(pipeline("image-classification", join(tmp, "no-model"))).rejects.toMatchObject({ code: "CHECKPOINT_NOT_FOUND" });
    await classify.dispose();
  });
});

describe("pipeline('image-feature-extraction')", () => {
  it("returns the pooled latents [B, dLatents], or all latents [B, numLatents, dLatents]", async () => {
    const extract = await pipeline("image-feature-extraction", TINY);
    const cat = await loadImageFile(CAT);
    const coffee = await loadImageFile(COFFEE);
    const ref = await reference.extractFeatures(preprocessBatch([cat]));
    const refCoffee = await reference.extractFeatures(preprocessBatch([coffee]));
    const { dLatents: D, numLatents: N } = reference.config;

    const pooled = await extract(CAT);
    expect(pooled.shape).toEqual([1, D]);
    expect(Array.from(pooled.data)).toEqual(Array.from(ref.pooled.data));
    const all = await extract([CAT, COFFEE], { pool: false });
    expect(all.shape).toEqual([2, N, D]);
    expect(Array.from(all.data.subarray(0, N * D))).toEqual(Array.from(ref.latents.data));
    expect(Array.from(all.data.subarray(N * D))).toEqual(Array.from(refCoffee.latents.data));
    await extract.dispose();
  });
});

describe("dispose", () => {
  it("frees the model; the worker threads stop with the last live pipeline and start again for the next one", async () => {
    const before = livePipelines();
    const a = await pipeline("image-classification", TINY, { threads: 2 });
    const b = await pipeline("image-feature-extraction", TINY, { threads: 2 });
    await a(CAT);
    expect(getThreads()).toBe(2);
    expect(livePipelines()).toBe(before + 2);

    const running = a([CAT, COFFEE]);
    await a.dispose(); // waits for the call in flight
    await expect(running).resolves.toHaveLength(2);
    await expect(a(CAT)).rejects.toMatchObject({ code: "DISPOSED" });
    expect(() => a.model).toThrow(expect.objectContaining({ code: "DISPOSED" }));
    await a.dispose(); // twice is fine

    // another live pipeline is not broken: same threads, same answers
    expect(getThreads()).toBe(2);
    expect((await b(CAT)).shape).toEqual([1, reference.config.dLatents]);
    await b.dispose();
    expect(livePipelines()).toBe(before);
    if (before === 0) {
      expect(getThreads()).toBe(1); // the last one stopped the workers
      const c = await pipeline("image-classification", TINY);
      await c(CAT);
      expect(getThreads()).toBe(2); // started again with the count they had
      await c.dispose();
    }
    await setThreads(1);
  });
});

describe("progress_callback and the model's files", () => {
  it("reports each hub download (initiate, download, progress, done), ready once, and compute progress; uses preprocessor_config.json", async () => {
    const events: ProgressInfo[] = [];
    const cacheDir = join(tmp, "hub-cache");
    const opts = { revision: SHA, endpoint: hub.endpoint, hub: { cacheDir }, progress_callback: (e: ProgressInfo) => events.push(e) };
    const classify = await pipeline("image-classification", REPO, opts);
    const files = ["config.json", "preprocessor_config.json", "model.safetensors"];
    for (const file of files) {
      const mine = events.filter((e) => "file" in e && e.file === file).map((e) => e.status);
      expect(mine[0], file).toBe("initiate");
      expect(mine[1], file).toBe("download");
      expect(mine.at(-1), file).toBe("done");
      expect(mine.filter((s) => s === "done")).toHaveLength(1);
    }
    const weightsSize = hub.file(REPO, SHA, "model.safetensors").bytes.length;
    const lastProgress = events.filter((e) => e.status === "progress" && e.file === "model.safetensors").at(-1);
    expect(lastProgress).toMatchObject({ loaded: weightsSize, total: weightsSize, progress: 100 });
    expect(events.filter((e) => e.status === "ready")).toEqual([{ status: "ready", name: REPO, task: "image-classification" }]);

    // the model's preprocessor_config.json (28x28) is what the pipeline feeds the model
    expect(classify.model.imageProcessorConfig.size).toEqual({ height: 28, width: 28 });
    events.length = 0;
    const cat = await loadImageFile(CAT);
    expect(await classify([CAT, COFFEE])).toEqual([await expected(cat, 5, { ...PROC, cropSize: PROC.crop_size }), await expected(await loadImageFile(COFFEE), 5, { cropSize: PROC.crop_size, size: PROC.size })]);
    expect(await classify(CAT)).not.toEqual(await expected(cat)); // the default 224x224 would give another answer
    const compute = events.filter((e) => e.status === "compute");
    const layers = reference.numLayerApplications;
    expect(compute.map((e) => (e.status === "compute" ? e.done : -1))).toEqual([...Array.from({ length: 2 * layers }, (_, i) => i + 1), ...Array.from({ length: layers }, (_, i) => i + 1)]);
    expect(compute.at(-1)).toMatchObject({ task: "image-classification", done: layers, total: layers, progress: 100 });
    await classify.dispose();

    // again from the hub cache: every file reported done and cached, nothing downloaded
    events.length = 0;
    const again = await pipeline("image-classification", REPO, opts);
    expect(events.filter((e) => e.status === "download")).toEqual([]);
    expect(events.filter((e) => e.status === "done").map((e) => [e.status === "done" && e.file, e.status === "done" && e.cached])).toEqual(files.map((f) => [f, true]));
    await again.dispose();
  });

  it("fromPretrained in Node reads a folder's preprocessor_config.json (it ignored it before)", async () => {
    const dir = join(tmp, "with-proc");
    mkdirSync(dir);
    copyFileSync(join(TINY, "config.json"), join(dir, "config.json"));
    copyFileSync(join(TINY, "model.safetensors"), join(dir, "model.safetensors"));
    writeFileSync(join(dir, "preprocessor_config.json"), JSON.stringify(PROC));
    const model = await PerceiverForImageClassification.fromPretrained(dir);
    expect(model.imageProcessorConfig).toMatchObject({ size: { height: 28, width: 28 }, cropSize: { height: 32, width: 32 } });
    expect(reference.imageProcessorConfig.size).toEqual({ height: 224, width: 224 }); // no file: the defaults
  });

  it("loads from picked Files (a browser's file picker), with their preprocessor_config.json; clear errors for a wrong pick", async () => {
    const file = (name: string, data: Uint8Array | string) => new File([data as BlobPart], name);
    const config = file("config.json", readFileSync(join(TINY, "config.json")));
    const weights = file("model.safetensors", readFileSync(join(TINY, "model.safetensors")));
    const proc = file("preprocessor_config.json", JSON.stringify(PROC));
    const events: ProgressInfo[] = [];
    const classify = await pipeline("image-classification", [config, weights, proc], { progress_callback: (e) => events.push(e) });
    expect(classify.model.imageProcessorConfig.size).toEqual({ height: 28, width: 28 });
    expect(await classify(CAT)).toEqual(await expected(await loadImageFile(CAT), 5, { cropSize: PROC.crop_size, size: PROC.size }));
    expect(events.filter((e) => e.status === "done").map((e) => e.status === "done" && e.file)).toEqual(["config.json", "preprocessor_config.json", "model.safetensors"]);
    await classify.dispose();
    await expect(PerceiverForImageClassification.fromPretrained([weights])).rejects.toMatchObject({ code: "CHECKPOINT_NOT_FOUND", message: expect.stringMatching(/exactly one config\.json .*picked: model\.safetensors/) });
    await expect(PerceiverForImageClassification.fromPretrained([config, weights, file("pytorch_model.bin", "x")])).rejects.toMatchObject({ code: "CHECKPOINT_NOT_FOUND", message: expect.stringContaining("exactly one weights file") });
    await expect(PerceiverForImageClassification.fromPretrained([config, file("model.safetensors", "not safetensors")])).rejects.toMatchObject({ code: expect.stringMatching(/^SAFETENSORS_/) });
  });

  it("loads from a URL over fetch, resuming a cut transfer with a Range request, and refuses corrupt bytes", async () => {
    const url = `${hub.endpoint}/${REPO}/resolve/${SHA}`;
    hub.clearRequests();
    hub.setFaults({ dropAfterBytes: 5000, dropTimes: 1 });
    const events: ProgressInfo[] = [];
    try {
      const model = await PerceiverForImageClassification.fromPretrained(url, { retryDelayMs: 10, progress_callback: (e) => events.push(e) });
      expect(model.imageProcessorConfig.size).toEqual({ height: 28, width: 28 });
      const pixels = preprocessBatch([await loadImageFile(CAT)]);
      expect(Array.from((await model.forward(pixels)).logits.data)).toEqual(Array.from((await reference.forward(pixels)).logits.data));
    } finally {
      hub.setFaults({});
    }
    const ranged = hub.requests.filter((q) => q.headers.range !== undefined && q.url.startsWith("/cdn/"));
    expect(ranged.map((q) => [q.headers.range, q.status])).toEqual([["bytes=5000-", 206]]);
    expect(events.filter((e) => e.status === "done").map((e) => e.status === "done" && e.file)).toEqual(["config.json", "preprocessor_config.json", "model.safetensors"]);

    hub.setFaults({ corruptAt: 100 });
    try {
      await expect(PerceiverForImageClassification.fromPretrained(`${url}/model.safetensors`)).rejects.toMatchObject({ code: "HUB_INTEGRITY" });
    } finally {
      hub.setFaults({});
    }
    // a config.json too large to be one is refused by its announced size, before it is read
    const huge = http.createServer((req, res) => {
      res.writeHead(200, { "Content-Length": String(2 ** 30) });
      res.write("{");
    });
    await new Promise<void>((r) => huge.listen(0, "127.0.0.1", () => r()));
    try {
      const at = `http://127.0.0.1:${(huge.address() as AddressInfo).port}/m`;
      await expect(PerceiverForImageClassification.fromPretrained(at)).rejects.toMatchObject({ code: "HUB_HTTP", message: expect.stringContaining("config.json") });
    } finally {
      huge.closeAllConnections();
      await new Promise<void>((r) => huge.close(() => r()));
    }
    await expect(PerceiverForImageClassification.fromPretrained(`${hub.endpoint}/org/none/resolve/main`)).rejects.toMatchObject({
      code: "HUB_NOT_FOUND", message: expect.stringMatching(/config\.json: HTTP 404 .*repository not found/),
    });
  });

  it("keeps files in the Cache API: a load cut off resumes from its kept segments, a warm load makes no request", async () => {
    // an in-memory stand-in for the browser's CacheStorage (Node has none), enough for file-cache.ts
    const stores = new Map<string, Map<string, { body: ArrayBuffer; headers: [string, string][] }>>();
    const memoryCaches = {
      async open(cacheName: string) {
        const store = stores.get(cacheName) ?? new Map();
        stores.set(cacheName, store);
        return {
          async match(key: string) {
            const e = store.get(key);
            return e && new Response(e.body, { headers: e.headers });
          },
          async put(key: string, res: Response) {
            store.set(key, { body: await res.arrayBuffer(), headers: [...res.headers] });
          },
          async delete(key: string) {
            return store.delete(key);
          },
        };
      },
    };
    const g = globalThis as { caches?: unknown };
    const saved = g.caches;
    g.caches = memoryCaches;
    const url = `${hub.endpoint}/${REPO}/resolve/${SHA}`;
    const weightsUrl = `${url}/model.safetensors`;
    const size = hub.file(REPO, SHA, "model.safetensors").bytes.length;
    const opts = { segmentBytes: 4096, maxRetries: 0, retryDelayMs: 1 };
    try {
      // 1. the transfer is cut after 10 000 bytes and not retried (as if the page was closed): 2 segments are kept
      hub.setFaults({ dropAfterBytes: 10_000, dropTimes: 1 });
      await expect(PerceiverForImageClassification.fromPretrained(url, opts)).rejects.toMatchObject({ code: "HUB_NETWORK" });
      hub.setFaults({});
      const store = stores.get("perceiver-ts-models")!;
      expect([...store.keys()].filter((k) => k.includes("perceiver-ts-segment")).sort()).toEqual([0, 1].map((i) => `${weightsUrl}?perceiver-ts-segment=${i}`));

      // 2. the next load continues after them with a Range request, and drops them once the file is whole
      hub.clearRequests();
      const events: ProgressInfo[] = [];
      const model = await PerceiverForImageClassification.fromPretrained(url, { ...opts, progress_callback: (e) => events.push(e) });
      const cdn = hub.requests.filter((q) => q.url.startsWith("/cdn/"));
      expect(cdn.map((q) => [q.headers.range, q.status])).toEqual([["bytes=8192-", 206]]);
      expect(events.filter((e) => e.status === "progress" && e.file === "model.safetensors").map((e) => e.status === "progress" && e.loaded)[0]).toBe(8192);
      expect([...store.keys()].filter((k) => k.includes("perceiver-ts-segment"))).toEqual([]);
      const pixels = preprocessBatch([await loadImageFile(CAT)], model.imageProcessorConfig);
      expect(Array.from((await model.forward(pixels)).logits.data)).toEqual(Array.from((await reference.forward(pixels)).logits.data));

      // 3. warm: everything from the cache, nothing asked of the hub
      hub.clearRequests();
      events.length = 0;
      await PerceiverForImageClassification.fromPretrained(url, { ...opts, progress_callback: (e) => events.push(e) });
      expect(hub.requests).toEqual([]);
      expect(events.filter((e) => e.status === "done").map((e) => e.status === "done" && [e.file, e.cached, e.total])).toEqual([
        ["config.json", true, expect.any(Number)], ["preprocessor_config.json", true, expect.any(Number)], ["model.safetensors", true, size],
      ]);
    } finally {
      hub.setFaults({});
      g.caches = saved;
    }
  });
});
