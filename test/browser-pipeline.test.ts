/**
 * pipeline() and fromPretrained in headless Chromium: a page bundles the main entry `perceiver-ts` (Vite), the fake
 * hub serves the tiny conv model (pytorch_model.bin, read by the unpickler in the browser, and a
 * preprocessor_config.json) behind a CORS proxy on another origin, like huggingface.co. The page classifies mixed
 * inputs (a relative URL, bytes, a Blob, an ImageBitmap, a canvas, ImageData, an <img>, a JPEG Blob, in one array)
 * and must get the labels
 * the library computes in Node, per image. Then the page is reloaded: the model comes from the Cache API, and the hub
 * sees no request at all. Last, in a Web Worker of a cross-origin isolated page, a pipeline runs on 2 worker threads
 * and its dispose() stops them. And trainDecoder trains a 2-class head in the page on latents the page computed
 * (extractFeatures), like Node does on the same latents with the same seed and backend.
 *
 * Needs Chromium (/usr/bin/chromium, or PERCEIVER_CHROMIUM). Without it the file is skipped with one line, except
 * under CI=true, where a missing browser fails.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { build, type Plugin } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PerceiverForImageClassification, getBackend, preprocessBatch, setBackend, topK, trainDecoder, type ProgressInfo,
} from "../src/index.js";
import { loadImageFile } from "../src/node.js";
import { ROOT } from "./helpers/cli.js";
import { fakeCommit, startFakeHub, type FakeHub } from "./helpers/fake-hub.js";
import { CHROMIUM, startBrowserRig, type BrowserRig } from "./helpers/browser-rig.js";

const CI = process.env.CI === "true";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const TINY = join(ROOT, "test/fixtures/tiny-conv");
const REPO = "deepmind/tiny-conv";
const SHA = fakeCommit("browser pipeline tiny-conv pytorch_model.bin");
const PROC = { do_center_crop: true, crop_size: { height: 64, width: 64 }, do_resize: true, size: { height: 56, width: 56 } };
const IMAGES = {
  "cat.png": join(ROOT, "samples/cat.png"), "astronaut.png": join(ROOT, "test/fixtures/images/astronaut.png"),
  "chelsea.jpg": join(ROOT, "test/fixtures/images/chelsea.jpg"),
};
/** Probabilities, browser vs Node: the same kernels in another JavaScript engine build, float32 throughout. */
const PROB_TOL = 1e-6;
/**
 * trainDecoder, browser vs Node, relative to the largest magnitude compared (latents, losses, parameters): the same
 * float32 code in another engine build (here the latents and parameters come out bit-identical, the losses within
 * a float64 rounding).
 */
const TRAIN_TOL = 1e-5;
/** the training set of the trainDecoder test: cat (0) and astronaut (1), 2 classes */
const TRAIN_SET = [["cat.png", 0], ["chelsea.jpg", 0], ["astronaut.png", 1]] as const;
const TRAIN_OPTIONS = { numLabels: 2, epochs: 12, lr: 1e-2, batchSize: 3, seed: 7, valSplit: 0 };

/** max |a - b| / max |b|: 0 for equal arrays */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) [d, m] = [Math.max(d, Math.abs(a[i] - b[i])), Math.max(m, Math.abs(b[i]))];
  return m === 0 ? d : d / m;
}

if (!HAVE_CHROMIUM && !CI) console.warn(`test/browser-pipeline.test.ts: SKIPPED: no Chromium at ${CHROMIUM} (apt-get install chromium, or set PERCEIVER_CHROMIUM)`);

/** `node:*` imports are reached only through dynamic imports the page never runs; pngjs needs Node (the page falls back to the browser's decoder). */
const browserBuild: Plugin = {
  name: "perceiver-test:node-builtins-external",
  enforce: "pre",
  resolveId: (id) => (id.startsWith("node:") ? { id, external: true } : null),
};

interface PageRun {
  lists: { label: string; score: number }[][];
  events: ProgressInfo[];
  proc: unknown;
}

describe.skipIf(!HAVE_CHROMIUM && !CI)("pipeline and fromPretrained in headless Chromium", () => {
  let outDir = "";
  let hub: FakeHub;
  let rig: BrowserRig;
  let expected: { label: string; score: number }[][];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!HAVE_CHROMIUM) throw new Error(`CI=true but no Chromium at ${CHROMIUM}: install it (apt-get install -y chromium)`);
    outDir = mkdtempSync(join(tmpdir(), "perceiver-pipeline-page-"));
    await build({
      root: join(ROOT, "test/browser-pipeline"), base: "./", configFile: false, logLevel: "warn", publicDir: false,
      plugins: [browserBuild],
      worker: { format: "es", plugins: () => [browserBuild] },
      resolve: { alias: [{ find: /^pngjs$/, replacement: join(ROOT, "demo/stubs/pngjs.ts") }] },
      build: { outDir, emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 4096 },
    });
    for (const [name, path] of Object.entries(IMAGES)) copyFileSync(path, join(outDir, name));
    const files = {
      "config.json": readFileSync(join(TINY, "config.json")),
      "preprocessor_config.json": JSON.stringify(PROC),
      "pytorch_model.bin": readFileSync(join(ROOT, "test/fixtures/pickle/tiny-conv.pytorch_model.bin")),
    };
    hub = await startFakeHub({ repos: { [REPO]: { commits: { [SHA]: { files } }, refs: { main: SHA } } } });
    rig = await startBrowserRig(hub.endpoint, outDir);

    // The reference: the class API in Node with the same preprocessor settings, images decoded by the library.
    const model = await PerceiverForImageClassification.fromPretrained(TINY);
    const proc = { cropSize: PROC.crop_size, size: PROC.size };
    const one = async (name: keyof typeof IMAGES) => {
      const { logits } = await model.forward(preprocessBatch([await loadImageFile(IMAGES[name])], proc));
      return topK(logits.data, 3, model.config.id2label).map(({ label, score }) => ({ label, score }));
    };
    const cat = await one("cat.png");
    const astronaut = await one("astronaut.png");
    // the order of the inputs the page passes (see run below); the JPEG is decoded by the library in both
    expected = [cat, astronaut, cat, astronaut, cat, astronaut, astronaut, await one("chelsea.jpg")];
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
    await hub?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  /** In the page: load the pipeline from the (proxied) fake hub and classify six inputs of six kinds. */
  async function run(page: Page): Promise<PageRun> {
    await page.waitForFunction(() => document.body.dataset.ready === "1");
    return page.evaluate(async ({ endpoint, repo, revision }) => {
      const { pipeline } = (globalThis as unknown as { perceiver: typeof import("../src/index.js") }).perceiver;
      const events: ProgressInfo[] = [];
      const classify = await pipeline("image-classification", repo, { endpoint, revision, progress_callback: (e) => events.push(e) });
      const blob = async (url: string) => (await fetch(url)).blob();
      const catBlob = await blob("./cat.png");
      const astronautBytes = new Uint8Array(await (await blob("./astronaut.png")).arrayBuffer());
      const bitmap = await createImageBitmap(await blob("./astronaut.png"), { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      const canvas = document.createElement("canvas");
      const catBitmap = await createImageBitmap(catBlob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      [canvas.width, canvas.height] = [catBitmap.width, catBitmap.height];
      const ctx = canvas.getContext("2d", { willReadFrequently: true })!;
      ctx.drawImage(catBitmap, 0, 0);
      const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
      offscreen.getContext("2d")!.drawImage(bitmap, 0, 0);
      const imageData = offscreen.getContext("2d")!.getImageData(0, 0, bitmap.width, bitmap.height);
      const img = new Image(); // not yet loaded when passed: the pipeline waits for it
      img.src = "./astronaut.png";
      const jpeg = await blob("./chelsea.jpg");
      const lists = await classify(["./cat.png", astronautBytes, catBlob, bitmap, canvas, imageData, img, jpeg], { topK: 3 });
      const proc = classify.model.imageProcessorConfig;
      await classify.dispose();
      return { lists, events, proc };
    }, { endpoint: rig.proxy.url, repo: REPO, revision: SHA });
  }

  function expectSameAsNode(lists: PageRun["lists"]): void {
    expect(lists).toHaveLength(expected.length);
    lists.forEach((list, i) => {
      expect(list.map((p) => p.label), `input ${i}`).toEqual(expected[i].map((p) => p.label));
      list.forEach((p, r) => expect(Math.abs(p.score - expected[i][r].score), `input ${i} rank ${r}`).toBeLessThanOrEqual(PROB_TOL));
    });
  }

  it("classifies mixed inputs per image like Node, and a reload loads the model from the cache with no network request", async () => {
    const context = await rig.browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    await page.goto(`${rig.site.url}/`);

    hub.clearRequests();
    const first = await run(page);
    expectSameAsNode(first.lists);
    expect(first.lists[0]).not.toEqual(first.lists[1]); // cat and astronaut ranked apart
    expect(first.proc).toMatchObject({ size: { height: 56, width: 56 }, cropSize: { height: 64, width: 64 } });
    // downloads: config, preprocessor config, model.safetensors (absent: 404), then pytorch_model.bin through the CDN
    const binBytes = hub.file(REPO, SHA, "pytorch_model.bin").bytes.length;
    const done = first.events.filter((e) => e.status === "done");
    expect(done.map((e) => e.status === "done" && [e.file, e.cached])).toEqual([
      ["config.json", false], ["preprocessor_config.json", false], ["pytorch_model.bin", false],
    ]);
    expect(first.events.filter((e) => e.status === "progress" && e.file === "pytorch_model.bin").at(-1)).toMatchObject({ loaded: binBytes, total: binBytes, progress: 100 });
    expect(first.events.filter((e) => e.status === "ready")).toEqual([{ status: "ready", name: REPO, task: "image-classification" }]);
    expect(first.events.some((e) => e.status === "compute")).toBe(true);
    const firstRequests = hub.requests.length;
    expect(hub.requests.some((q) => q.url.startsWith("/cdn/") && q.status === 200)).toBe(true);
    expect(firstRequests).toBeGreaterThanOrEqual(4);

    // warm cache: reload the page, load again: the same answers, every file from the cache, no request at the hub
    hub.clearRequests();
    await page.reload();
    const second = await run(page);
    expectSameAsNode(second.lists);
    expect(hub.requests.map((q) => `${q.method} ${q.url}`)).toEqual([]);
    expect(second.events.filter((e) => e.status === "done").map((e) => e.status === "done" && [e.file, e.cached])).toEqual([
      ["config.json", true], ["preprocessor_config.json", true], ["pytorch_model.bin", true],
    ]);
    expect(second.events.filter((e) => e.status === "download")).toEqual([]);

    // worker threads cannot run on a page's main thread: asking for them fails pipeline() with the reason, at once
    const refused = await page.evaluate(async ({ endpoint, repo, revision }) => {
      const { pipeline } = (globalThis as unknown as { perceiver: typeof import("../src/index.js") }).perceiver;
      try {
        await pipeline("image-feature-extraction", repo, { endpoint, revision, threads: 2 });
        return null;
      } catch (e) {
        return { code: (e as { code?: string }).code, message: (e as Error).message };
      }
    }, { endpoint: rig.proxy.url, repo: REPO, revision: SHA });
    expect(refused).toMatchObject({ code: "CONFIG_UNSUPPORTED", message: expect.stringMatching(/SharedArrayBuffer|Web Worker/) });
    expect(hub.requests).toEqual([]); // that load came from the cache too
    expect(pageErrors).toEqual([]);
    console.log(`browser pipeline: ${firstRequests} hub requests on the first load, 0 after the reload`);
    await context.close();
  });

  it("in a Web Worker of a cross-origin isolated page, a pipeline runs on 2 threads and its dispose() stops them", async () => {
    const page = await rig.browser.newPage();
    page.setDefaultTimeout(60_000);
    await page.goto(`${rig.isolatedSite.url}/`);
    await page.waitForFunction(() => document.body.dataset.ready === "1");
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    const r = (await page.evaluate(async ({ endpoint, repo, revision }) => {
      const image = await (await fetch("./astronaut.png")).blob();
      return (globalThis as unknown as { runInWorker: (q: unknown) => Promise<unknown> }).runInWorker({ endpoint, repo, revision, image });
    }, { endpoint: rig.proxy.url, repo: REPO, revision: SHA })) as { lists?: PageRun["lists"]; during?: number; after?: number; error?: string };
    expect(r.error).toBeUndefined();
    expect(r.during).toBe(2);
    expect(r.after).toBe(1); // the last live pipeline stopped the worker threads
    expect(r.lists![0].map((p) => p.label)).toEqual(expected[1].map((p) => p.label));
    r.lists![0].forEach((p, i) => expect(Math.abs(p.score - expected[1][i].score)).toBeLessThanOrEqual(PROB_TOL));
    await page.close();
  });

  it("trains a decoder head with trainDecoder on latents computed in the page, like Node on the same latents", async () => {
    const page = await rig.browser.newPage();
    page.setDefaultTimeout(60_000);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${rig.site.url}/`);
    await page.waitForFunction(() => document.body.dataset.ready === "1");
    // in the page: the model from the hub, each image decoded by the library, its latents, then 12 epochs of training
    const web = await page.evaluate(async ({ endpoint, repo, revision, set, proc, options }) => {
      const { pipeline, preprocessBatch, decodeImageAsync, setBackend, getBackend, trainDecoder } =
        (globalThis as unknown as { perceiver: typeof import("../src/index.js") }).perceiver;
      setBackend("wasm");
      const classify = await pipeline("image-classification", repo, { endpoint, revision });
      const examples = [];
      for (const [name, label] of set) {
        const image = await decodeImageAsync(new Uint8Array(await (await fetch(`./${name}`)).arrayBuffer()));
        const { latents } = await classify.model.extractFeatures(preprocessBatch([image], proc));
        examples.push({ latents: latents.data, label });
      }
      const raw = examples.map((e) => Array.from(e.latents)); // trainDecoder copies before normalizing
      const r = await trainDecoder(classify.model, examples, options);
      await classify.dispose();
      return {
        backend: getBackend(), latents: raw, history: r.history.map(({ trainLoss, trainAccuracy }) => ({ trainLoss, trainAccuracy })),
        bestEpoch: r.bestEpoch, params: Object.fromEntries(Object.entries(r.params).map(([k, v]) => [k, Array.from(v)])),
      };
    }, { endpoint: rig.proxy.url, repo: REPO, revision: SHA, set: TRAIN_SET, proc: { cropSize: PROC.crop_size, size: PROC.size }, options: TRAIN_OPTIONS });
    expect(errors).toEqual([]);
    expect(web.backend).toBe("wasm");

    // in Node, same backend: the latents of the same images, then the same training run on the page's latents
    const before = getBackend();
    setBackend("wasm");
    try {
      const model = await PerceiverForImageClassification.fromPretrained(TINY);
      for (const [i, [name]] of TRAIN_SET.entries()) {
        const { latents } = await model.extractFeatures(preprocessBatch([await loadImageFile(IMAGES[name])], { cropSize: PROC.crop_size, size: PROC.size }));
        expect(relDiff(web.latents[i], latents.data), `latents of ${name}`).toBeLessThanOrEqual(TRAIN_TOL);
      }
      const node = await trainDecoder(model, web.latents.map((l, i) => ({ latents: Float32Array.from(l), label: TRAIN_SET[i][1] })), TRAIN_OPTIONS);
      expect(web.history).toHaveLength(TRAIN_OPTIONS.epochs);
      expect(web.bestEpoch).toBe(node.bestEpoch);
      expect(web.history.map((h) => h.trainAccuracy)).toEqual(node.history.map((h) => h.trainAccuracy));
      expect(relDiff(web.history.map((h) => h.trainLoss), node.history.map((h) => h.trainLoss)), "losses").toBeLessThanOrEqual(TRAIN_TOL);
      expect(Object.keys(web.params).sort()).toEqual(Object.keys(node.params).sort());
      for (const [name, p] of Object.entries(node.params)) expect(relDiff(web.params[name], p), name).toBeLessThanOrEqual(TRAIN_TOL);
      // the run learned: the loss fell and the last epoch classifies the 3 training images right
      expect(node.history.at(-1)!.trainLoss).toBeLessThan(node.history[0].trainLoss);
      expect(node.history.at(-1)!.trainAccuracy).toBe(1);
    } finally {
      setBackend(before);
    }
    await page.close();
  });
});
