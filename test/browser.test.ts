/**
 * The browser demo (demo/), end to end in headless Chromium: Vite builds it into a temp dir, a static server serves
 * it, the fake hub serves test/fixtures/tiny-conv behind a CORS proxy (another origin, like huggingface.co), and
 * playwright-core drives Debian's /usr/bin/chromium. The page decodes samples/cat.png with the browser's own PNG
 * decoder and runs the model in a Web Worker; its top-5 must equal what the library computes in Node (pngjs decoding)
 * for the same file. Also: the pytorch_model.bin fallback, the local file picker, and clear errors.
 *
 * Also the page as a person sees it: element boxes at 1280x900 and at 390 px wide (results scrolled into view, no
 * horizontal overflow), the revision menu, labels, errors that clear stale results, a failed load that keeps the
 * model, the thread count in words; screenshots in test/artifacts/.
 *
 * Needs Debian's chromium (`apt-get install -y chromium`; .ci/run installs it). Without it the tests are skipped
 * with one line, except under CI=true, where they run and fail. PERCEIVER_SKIP_BROWSER=1 skips.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PerceiverForImageClassification, parsePerceiverConfig, preprocessBatch, readSafetensors, topK, type Prediction,
} from "../src/index.js";
import { loadImageFile } from "../src/node.js";
import { getColormap } from "../src/io/image/colormap.js";
import { classWeightedFigure } from "../src/perceiver/attention-figure.js";
import { cropAndResize } from "../src/io/image/image-processor.js";
import { ROOT } from "./helpers/cli.js";
import { fakeCommit, startFakeHub, type FakeHub } from "./helpers/fake-hub.js";
import { overflow, resultsInView } from "./helpers/page-layout.js";
import { CHROMIUM, startBrowserRig, type BrowserRig } from "./helpers/browser-rig.js";

const NO_CHROMIUM = !existsSync(CHROMIUM) && process.env.CI !== "true";
const SKIP = process.env.PERCEIVER_SKIP_BROWSER === "1" || NO_CHROMIUM;
const TINY = join(ROOT, "test/fixtures/tiny-conv");
const CAT = join(ROOT, "samples/cat.png");
const REPO = "deepmind/tiny-conv";
const SHA_SAFETENSORS = fakeCommit("browser tiny-conv safetensors");
const SHA_BIN = fakeCommit("browser tiny-conv pytorch_model.bin");
const SHA_NO_WEIGHTS = fakeCommit("browser tiny-conv config only");
const ARTIFACTS = join(ROOT, "test/artifacts");
const SCREENSHOT = join(ARTIFACTS, "browser-demo.png");

/** Probabilities: |browser - node| <= 1e-6 (absolute; they are ~0.1). Logits: <= 1e-6 + 1e-6·|node|. */
const PROB_TOL = 1e-6;
const LOGIT_ABS = 1e-6;
const LOGIT_REL = 1e-6;

interface PageResult {
  top: Prediction[];
  logits: number[];
  crop: { width: number; height: number; rgb: number[] };
  attention: { gridHeight: number; gridWidth: number; map: number[] } | null;
  model: { source: string; weightsFile: string } | null;
  threads: { count: number; note: string | null; splitProducts: number };
}

if (NO_CHROMIUM) console.warn("chromium not found: install Debian's chromium (apt-get install chromium) to run the browser tests");
else if (SKIP) console.warn("test/browser.test.ts: SKIPPED (PERCEIVER_SKIP_BROWSER=1): the browser demo was not tested");

describe.skipIf(SKIP)("browser demo in headless Chromium", () => {
  let outDir = "";
  let hub: FakeHub;
  let rig: BrowserRig;
  let expected: {
    top: Prediction[]; logits: Float32Array; crop: Uint8Array; map: Float64Array; overlay: Uint8Array; overlayHeight: number; layers: number;
  };
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium not found at ${CHROMIUM}: the browser test needs Debian's chromium. Install it with ` +
        `\`apt-get update && apt-get install -y chromium\` (CI's .ci/run does); CI=true requires it.`,
      );
    }
    const t0 = performance.now();
    outDir = mkdtempSync(join(tmpdir(), "perceiver-demo-"));
    await build({ configFile: join(ROOT, "demo/vite.config.ts"), logLevel: "warn", build: { outDir, emptyOutDir: true } });
    const tBuild = performance.now();

    const config = readFileSync(join(TINY, "config.json"));
    const safetensors = readFileSync(join(TINY, "model.safetensors"));
    const bin = readFileSync(join(ROOT, "test/fixtures/pickle/tiny-conv.pytorch_model.bin"));
    hub = await startFakeHub({
      repos: {
        [REPO]: {
          commits: {
            [SHA_SAFETENSORS]: { files: { "config.json": config, "model.safetensors": safetensors } },
            [SHA_BIN]: { files: { "config.json": config, "pytorch_model.bin": bin } },
            [SHA_NO_WEIGHTS]: { files: { "config.json": config } },
          },
          refs: { main: SHA_SAFETENSORS },
        },
      },
    });
    rig = await startBrowserRig(hub.endpoint, outDir);
    const tLaunch = performance.now();

    // The reference: the library in Node, the PNG decoded by pngjs.
    const cfg = parsePerceiverConfig(JSON.parse(config.toString("utf8")));
    const model = PerceiverForImageClassification.fromStateDict(cfg, readSafetensors(safetensors));
    const img = await loadImageFile(CAT);
    const out = await model.forward(preprocessBatch([img]), { outputAttentions: true });
    const [enc, dec] = out.crossAttentions!;
    const [, heads, N, T] = enc.shape;
    const map = new Float64Array(T); // naive: map[t] = sum_n dec[n] * mean_h enc[h,n,t]
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let h = 0; h < heads; h++) s += enc.data[(h * N + n) * T + t];
        map[t] += dec.data[n] * (s / heads);
      }
    }
    // What `perceiver attention-map` draws (and the page must show): inferno, alpha 0.5, with its colour bar.
    const crop = cropAndResize(img);
    const figure = classWeightedFigure(Float32Array.from(map), { crop, gridHeight: 55, gridWidth: 55, colormap: getColormap("inferno"), alpha: 0.5 });
    expected = {
      top: topK(out.logits.data, 5, cfg.id2label), logits: out.logits.data, crop: crop.data, map,
      overlay: figure.image.data, overlayHeight: figure.image.height, layers: model.numLayerApplications,
    };
    console.log(
      `browser test setup: vite build ${((tBuild - t0) / 1000).toFixed(2)} s, servers + chromium launch ` +
      `${((tLaunch - tBuild) / 1000).toFixed(2)} s, node reference ${((performance.now() - tLaunch) / 1000).toFixed(2)} s`,
    );
  }, 60_000);

  afterAll(async () => {
    await rig?.close();
    await hub?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  async function openPage(query: Record<string, string>, base = rig.site.url, viewport = { width: 1000, height: 1150 }): Promise<Page> {
    pageErrors.length = 0;
    const page = await rig.browser.newPage({ viewport });
    page.setDefaultTimeout(20_000);
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      // a 404 the page expects (preprocessor_config.json, model.safetensors before pytorch_model.bin) is logged too
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(`console: ${m.text()}`);
    });
    await page.goto(`${base}/?${new URLSearchParams(query)}`);
    return page;
  }

  /** Waits until body[data-status] is `want`; an `error` status throws with the page's error text. */
  async function waitForStatus(page: Page, want: "ready" | "done" | "error"): Promise<string> {
    await page.waitForFunction(
      (w) => document.body.dataset.status === w || document.body.dataset.status === "error",
      want,
    );
    const status = await page.evaluate(() => document.body.dataset.status);
    const error = (await page.textContent("#error")) ?? "";
    if (status !== want) throw new Error(`page status is ${status}, wanted ${want}; page error: ${error}; log: ${pageErrors.join(" | ")}`);
    return error;
  }

  async function classifyCat(page: Page): Promise<PageResult> {
    await page.setInputFiles("#image-input", CAT);
    await waitForStatus(page, "done");
    await page.waitForSelector("#top5 li");
    return page.evaluate(() => {
      const d = (globalThis as unknown as { perceiverDemo: { lastResult: any; model: any } }).perceiverDemo;
      const r = d.lastResult;
      const top = [...document.querySelectorAll<HTMLLIElement>("#top5 li")].map((li) => ({
        index: Number(li.dataset.index), label: li.dataset.label ?? "", score: Number(li.dataset.score),
      }));
      return {
        top,
        logits: Array.from(r.logits as Float32Array),
        crop: { width: r.crop.width, height: r.crop.height, rgb: Array.from(r.crop.data as Uint8Array) },
        attention: r.attention && { gridHeight: r.attention.gridHeight, gridWidth: r.attention.gridWidth, map: Array.from(r.attention.map as Float32Array) },
        model: d.model && { source: d.model.source, weightsFile: d.model.weightsFile },
        threads: r.threads,
      };
    });
  }

  function expectSameAsNode(r: PageResult): void {
    expect(r.top.map((p) => [p.index, p.label])).toEqual(expected.top.map((p) => [p.index, p.label]));
    r.top.forEach((p, i) => expect(Math.abs(p.score - expected.top[i].score)).toBeLessThanOrEqual(PROB_TOL));
    expect(r.logits.length).toBe(expected.logits.length);
    r.logits.forEach((v, i) => expect(Math.abs(v - expected.logits[i])).toBeLessThanOrEqual(LOGIT_ABS + LOGIT_REL * Math.abs(expected.logits[i])));
  }

  it("on a cross-origin isolated page (COOP/COEP) the worker runs the products on Web Worker threads, same results", async () => {
    const page = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS }, rig.isolatedSite.url);
    const env = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    expect(env.isolated).toBe(true);
    const r = await classifyCat(page);
    console.log(`isolated page: ${r.threads.count} threads (${env.cores} cores), ${r.threads.splitProducts} products split`);
    expect(r.threads.note).toBeNull();
    expect(r.threads.count).toBe(Math.min(64, env.cores));
    if (env.cores > 1) expect(r.threads.splitProducts).toBeGreaterThan(0);
    expectSameAsNode(r);
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it("classifies samples/cat.png like the library does in Node, with progress and the attention overlay", async () => {
    const t0 = performance.now();
    const page = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS });
    const r = await classifyCat(page);
    const seconds = (performance.now() - t0) / 1000;

    expectSameAsNode(r);
    expect(r.model).toEqual({ source: `${REPO}@${SHA_SAFETENSORS.slice(0, 7)}`, weightsFile: "model.safetensors" });
    // this page is not cross-origin isolated: no SharedArrayBuffer, so one thread, and the page can say why
    expect(r.threads.count).toBe(1);
    expect(r.threads.note).toContain("SharedArrayBuffer");
    expect(await page.textContent("#timings")).toContain("· 1 thread");
    // The browser decoded the PNG to the same pixels as pngjs: the crop the model saw (recovered from pixel_values)
    // equals the library's center crop + bicubic resize of the Node-decoded image, byte for byte.
    expect(r.crop.width).toBe(224);
    expect(r.crop.height).toBe(224);
    const cropDiffs = r.crop.rgb.filter((v, i) => v !== expected.crop[i]).length;
    expect(cropDiffs, "bytes of the browser's crop that differ from the crop of the Node-decoded PNG").toBe(0);

    // The class-weighted attention map over the 55x55 tokens, against a naive recomputation from Node's attentions.
    expect(r.attention).not.toBeNull();
    expect([r.attention!.gridHeight, r.attention!.gridWidth]).toEqual([55, 55]);
    let sum = 0;
    r.attention!.map.forEach((v, t) => {
      sum += v;
      expect(Math.abs(v - expected.map[t])).toBeLessThanOrEqual(1e-7 + 1e-5 * expected.map[t]);
    });
    expect(Math.abs(sum - 1)).toBeLessThanOrEqual(1e-4);

    // Both progress bars ended full; the download bar tracked the weights file.
    const bars = await page.evaluate(() =>
      ["download-progress", "compute-progress"].map((id) => {
        const p = document.getElementById(id) as HTMLProgressElement;
        return { value: p.value, max: p.max, indeterminate: !p.hasAttribute("value") };
      }),
    );
    const weightsBytes = hub.file(REPO, SHA_SAFETENSORS, "model.safetensors").bytes.length;
    expect(bars[0]).toEqual({ value: weightsBytes, max: weightsBytes, indeterminate: false });
    expect(bars[1]).toEqual({ value: expected.layers, max: expected.layers, indeterminate: false });
    expect(await page.textContent("#download-text")).toContain("model.safetensors");
    expect(await page.textContent("#compute-text")).toBe(`layer ${expected.layers} of ${expected.layers}`);
    // The weights came through the hub's LFS redirect, via the CORS proxy.
    expect(hub.requests.some((q) => q.url.startsWith("/cdn/") && q.status === 200)).toBe(true);

    // The overlay canvas holds the picture `perceiver attention-map` would draw: the crop blended with the heat map,
    // and the colour bar under it (within 3 levels per channel: the attention passes through float32, and a rounding
    // can pick the neighbouring colour-table entry, whose colours differ by up to 6 levels, 3 after the blend).
    const canvas = await page.evaluate(() => {
      const c = document.getElementById("overlay") as HTMLCanvasElement;
      const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      const rgb: number[] = [];
      const colors = new Set<number>();
      let opaque = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] === 255) opaque++;
        rgb.push(d[i], d[i + 1], d[i + 2]);
        colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      }
      return { width: c.width, height: c.height, opaque, colors: colors.size, rgb };
    });
    expect([canvas.width, canvas.height]).toEqual([224, expected.overlayHeight]);
    expect(canvas.opaque).toBe(224 * expected.overlayHeight);
    expect(canvas.colors).toBeGreaterThan(1000);
    let maxDiff = 0;
    let changed = 0;
    canvas.rgb.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - expected.overlay[i]));
      if (i < expected.crop.length && v !== expected.crop[i]) changed++;
    });
    expect(maxDiff).toBeLessThanOrEqual(3);
    const probDiff = Math.max(...r.top.map((p, i) => Math.abs(p.score - expected.top[i].score)));
    console.log(`browser vs node: max |prob diff| ${probDiff.toExponential(2)}, overlay max level diff ${maxDiff}`);
    expect(changed).toBeGreaterThan(0.5 * expected.crop.length); // the heat map is really drawn over the crop

    expect(await page.isVisible("#error")).toBe(false);
    mkdirSync(join(ROOT, "test/artifacts"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(pageErrors).toEqual([]);
    console.log(`browser demo: page load + model download + classify in ${seconds.toFixed(2)} s`);
    await page.close();
  });

  it("falls back to pytorch_model.bin, and loads local files from the file picker", async () => {
    const page = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_BIN });
    const fromBin = await classifyCat(page);
    expectSameAsNode(fromBin);
    expect(fromBin.model?.weightsFile).toBe("pytorch_model.bin");

    await page.setInputFiles("#model-files", [join(TINY, "config.json"), join(TINY, "model.safetensors")]);
    await waitForStatus(page, "ready");
    expect(await page.textContent("#model-status")).toContain("Loaded local files");
    const fromFiles = await classifyCat(page);
    expectSameAsNode(fromFiles);
    expect(fromFiles.model).toEqual({ source: "local files", weightsFile: "model.safetensors" });
    expect(pageErrors).toEqual([]);
    await page.close();
  });

  it("shows clear errors: unknown repo, no weights, not an image, missing config, unreachable hub, stalled download", async () => {
    const page = await openPage({ endpoint: rig.proxy.url, repo: "deepmind/no-such-model", revision: "main" });
    await page.click("#load-hub");
    expect(await waitForStatus(page, "error")).toMatch(/config\.json: HTTP 404 .*repository not found/);
    expect(await page.textContent("#model-status")).toBe("No model loaded.");

    await page.fill("#repo", REPO);
    await page.selectOption("#revision-choice", ""); // "another branch, tag or commit…"
    await page.fill("#revision", SHA_NO_WEIGHTS);
    await page.click("#load-hub");
    expect(await waitForStatus(page, "error")).toContain(`${REPO}@${SHA_NO_WEIGHTS} has neither model.safetensors nor pytorch_model.bin`);

    await page.fill("#revision", "v9.9");
    await page.click("#load-hub");
    expect(await waitForStatus(page, "error")).toMatch(/revision not found/);

    await page.fill("#revision", SHA_SAFETENSORS);
    await page.click("#load-hub");
    await waitForStatus(page, "ready");
    await page.setInputFiles("#image-input", { name: "notes.png", mimeType: "image/png", buffer: Buffer.from("not a picture at all") });
    expect(await waitForStatus(page, "error")).toMatch(/Could not classify notes\.png: notes\.png: the browser could not decode this file as an image.*\[IMAGE_DECODE\]/);

    await page.setInputFiles("#model-files", [join(TINY, "model.safetensors")]);
    expect(await waitForStatus(page, "error")).toMatch(/pick exactly one config\.json/);
    await page.close();

    // A hub that does not answer at all: a port that was just closed.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const offline = await openPage({ endpoint: `http://127.0.0.1:${port}`, repo: REPO, revision: SHA_SAFETENSORS });
    await offline.setInputFiles("#image-input", CAT);
    expect(await waitForStatus(offline, "error")).toMatch(/could not reach http:\/\/127\.0\.0\.1:\d+\/deepmind\/tiny-conv\/resolve\/.*\[HUB_NETWORK\]/);
    await offline.close();

    // A download that starts and then stalls ends in a timeout message, not a hang.
    hub.setFaults({ stall: "content", stallAfterBytes: 1000 });
    try {
      const stalled = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS, timeout: "1" });
      await stalled.click("#load-hub");
      expect(await waitForStatus(stalled, "error")).toMatch(/config\.json: no data from .* for 1 s.*\[HUB_TIMEOUT\]/);
      await stalled.close();
    } finally {
      hub.setFaults({});
    }
  });
  it("puts the results in view after a run, at 1280x900 and at 390 px wide, with nothing wider than the screen", async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const viewport of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
      const page = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS }, rig.site.url, viewport);
      const name = `${viewport.width}x${viewport.height}`;
      await page.screenshot({ path: join(ARTIFACTS, `demo-${name}-start.png`) });
      // short labels stay on one line (a narrow grid column once broke "Download" into "Downloa / d")
      const labels = await page.$$eval(".progress .what, #load-hub, label[for=model-files]", (els) => els.map((e) => {
        const cs = getComputedStyle(e);
        const px = (v: string) => parseFloat(v) || 0;
        const content = e.getBoundingClientRect().height - px(cs.paddingTop) - px(cs.paddingBottom) - px(cs.borderTopWidth) - px(cs.borderBottomWidth);
        return { text: e.textContent?.trim(), lines: content / (px(cs.lineHeight) || 1.2 * px(cs.fontSize)) };
      }));
      for (const l of labels) expect(l.lines, `${name}: "${l.text}" wrapped`).toBeLessThan(1.5);
      const before = await overflow(page);
      expect(before.wide, `${name}: elements past the right edge before a run`).toEqual([]);
      expect(before.scrollWidth).toBeLessThanOrEqual(viewport.width);
      // the results are below the fold before the run: without scrolling they would not be seen
      await classifyCat(page);
      const box = await resultsInView(page);
      await page.screenshot({ path: join(ARTIFACTS, `demo-${name}-result.png`) });
      expect(box.resultsTop, `${name}: top of the results`).toBeGreaterThanOrEqual(-1);
      expect(box.resultsTop).toBeLessThan(box.viewport);
      expect(box.listBottom, `${name}: bottom of the top-5 list`).toBeLessThanOrEqual(box.viewport + 1);
      const after = await overflow(page);
      expect(after.wide, `${name}: elements past the right edge after a run`).toEqual([]);
      expect(after.scrollWidth).toBeLessThanOrEqual(viewport.width);
      // the picture with its colour bar fits the column
      const canvas = await page.evaluate(() => document.getElementById("overlay")!.getBoundingClientRect().toJSON());
      expect(canvas.right).toBeLessThanOrEqual(viewport.width);
      expect(canvas.width / canvas.height).toBeCloseTo(224 / expected.overlayHeight, 2);
      await page.screenshot({ path: join(ARTIFACTS, `demo-${name}-full.png`), fullPage: true });
      expect(pageErrors).toEqual([]);
      await page.close();
    }
  });

  it("offers the revision in words, says Open files and Read for local files, and the thread count in words", async () => {
    const page = await openPage({ endpoint: rig.proxy.url, repo: REPO });
    const menu = await page.evaluate(() => {
      const s = document.getElementById("revision-choice") as HTMLSelectElement;
      return { value: s.value, shown: s.selectedOptions[0].textContent ?? "", options: [...s.options].map((o) => o.textContent ?? "") };
    });
    expect(menu.value).toBe("main");
    expect(menu.shown).toBe("main: latest, pytorch_model.bin read safely");
    expect(menu.options.join(" | ")).not.toMatch(/[0-9a-f]{40}/); // no raw hash on screen
    expect(menu.options[1]).toMatch(/^safetensors conversion \(commit [0-9a-f]{7}\)$/);
    // every choice reads in full in the menu's closed box (no text cut off) at this width
    const menuFits = async () => {
      const fits = await page.$eval("#revision-choice", (sel) => {
        const s = sel as HTMLSelectElement;
        const ctx = document.createElement("canvas").getContext("2d")!;
        ctx.font = getComputedStyle(s).font;
        return { widest: Math.max(...[...s.options].map((o) => ctx.measureText(o.text).width)), box: s.clientWidth };
      });
      expect(fits.widest + 24, "the widest revision choice plus the arrow").toBeLessThanOrEqual(fits.box);
    };
    await menuFits();
    expect(await page.isVisible("#revision")).toBe(false);
    await page.selectOption("#revision-choice", "");
    expect(await page.isVisible("#revision")).toBe(true);
    await menuFits(); // also with the text field beside it
    await page.selectOption("#revision-choice", "main");

    expect((await page.textContent("label[for=model-files]"))?.trim()).toBe("Open files…");
    expect(await page.textContent("body")).not.toMatch(/…or local files/);
    await page.setInputFiles("#model-files", [join(TINY, "config.json"), join(TINY, "model.safetensors")]);
    await waitForStatus(page, "ready");
    expect(await page.textContent("#download-label")).toBe("Read");
    await classifyCat(page);
    const threads = (await page.textContent("#threads")) ?? "";
    expect(threads).toMatch(/^Ran on 1 thread of \d+ cores: this page is not cross-origin isolated, so the browser gives it no shared memory/);
    expect(await page.isVisible("#threads")).toBe(true);
    await page.close();

    const isolated = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS }, rig.isolatedSite.url);
    await classifyCat(isolated);
    const cores = await isolated.evaluate(() => navigator.hardwareConcurrency);
    expect(await isolated.textContent("#threads")).toBe(
      cores > 1 ? `Ran on ${Math.min(64, cores)} threads (this computer has ${cores} cores).` : "Ran on 1 thread (this computer reports one core).");
    expect(await isolated.textContent("#download-label")).toBe("Download");
    await isolated.close();
  });

  it("an error clears the previous results, and a failed load keeps the model that was loaded", async () => {
    const page = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS });
    const first = await classifyCat(page);
    expect(await page.isVisible("#results")).toBe(true);

    // a file that is not an image: the cat's labels must not stay on screen next to the error
    await page.setInputFiles("#image-input", { name: "notes.png", mimeType: "image/png", buffer: Buffer.from("not a picture") });
    await waitForStatus(page, "error");
    expect(await page.isVisible("#results")).toBe(false);
    expect(await page.locator("#top5 li").count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, "demo-error-cleared.png"), fullPage: true });

    // a wrong repo: the error is shown, the tiny model stays loaded and classifies the next image without a download
    const downloads = () => hub.requests.filter((q) => q.url.endsWith("/model.safetensors")).length;
    const before = downloads();
    await page.fill("#repo", "deepmind/no-such-model");
    await page.click("#load-hub");
    expect(await waitForStatus(page, "error")).toMatch(/repository not found/);
    expect(await page.textContent("#model-status")).toMatch(new RegExp(`^Still using ${REPO}@${SHA_SAFETENSORS.slice(0, 7)}: `));
    const again = await classifyCat(page);
    expect(again.model).toEqual(first.model);
    expect(again.top).toEqual(first.top);
    expect(downloads()).toBe(before);
    expect(await page.isVisible("#error")).toBe(false);
    await page.close();
  });

  it("after a reload the weights come from the browser's cache, and the page says so", async () => {
    const page = await openPage({ endpoint: rig.proxy.url, repo: REPO, revision: SHA_SAFETENSORS });
    await page.click("#load-hub");
    await waitForStatus(page, "ready");
    expect(await page.textContent("#download-text")).toMatch(/^model\.safetensors: [\d.]+ MiB of [\d.]+ MiB$/);
    const before = hub.requests.length;
    await page.reload();
    await page.click("#load-hub");
    await waitForStatus(page, "ready");
    expect(await page.textContent("#download-text")).toMatch(/^model\.safetensors: [\d.]+ MiB, from the browser's cache \(no download\)$/);
    const weightRequests = hub.requests.slice(before).filter((q) => q.url.endsWith("/model.safetensors") || q.url.startsWith("/cdn/"));
    expect(weightRequests).toEqual([]);
    await page.close();
  });
});
