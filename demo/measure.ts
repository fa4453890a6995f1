/**
 * Times the demo at full size in headless Chromium, for demo/README.md: builds the demo, serves it with and without
 * cross-origin isolation, loads the full-size synthetic checkpoint (weights/full-synthetic, generated from
 * test/fixtures/full/weights_manifest.json) through the "Open files" picker, and classifies samples/cat.png twice per
 * page. Prints load and forward times and the thread count. Needs /usr/bin/chromium (or PERCEIVER_CHROMIUM).
 *
 *   npx tsx demo/measure.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { build } from "vite";
import { ROOT } from "../test/helpers/cli.js";
import { ensureFullCheckpoint } from "../test/helpers/full-model.js";
import { startStaticServer } from "../test/helpers/static-server.js";

const CHROMIUM = process.env.PERCEIVER_CHROMIUM ?? "/usr/bin/chromium";

async function main(): Promise<void> {
  const modelDir = await ensureFullCheckpoint((m) => console.log(m));
  const outDir = mkdtempSync(join(tmpdir(), "perceiver-demo-measure-"));
  await build({ configFile: join(ROOT, "demo/vite.config.ts"), logLevel: "warn", build: { outDir, emptyOutDir: true } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu"] });
  try {
    for (const isolated of [true, false]) {
      const site = await startStaticServer(outDir, { crossOriginIsolated: isolated });
      const page = await browser.newPage();
      page.setDefaultTimeout(900_000);
      await page.goto(site.url);
      await page.setInputFiles("#model-files", [join(modelDir, "config.json"), join(modelDir, "model.safetensors")]);
      await page.waitForFunction(() => document.body.dataset.status === "ready" || document.body.dataset.status === "error");
      const model = await page.evaluate(() => (globalThis as any).perceiverDemo.model);
      if (model === null) throw new Error(`the model did not load: ${await page.textContent("#error")}`);
      for (let run = 1; run <= 2; run++) {
        await page.setInputFiles("#image-input", join(ROOT, "samples/cat.png"));
        await page.waitForFunction(() => document.body.dataset.status === "done" || document.body.dataset.status === "error");
        const r = await page.evaluate(() => (globalThis as any).perceiverDemo.lastResult);
        if (r === null) throw new Error(`classification failed: ${await page.textContent("#error")}`);
        console.log(
          `${isolated ? "cross-origin isolated" : "not isolated"}, run ${run}: load ${model.seconds.toFixed(1)} s, ` +
          `forward ${(r.timings.forward / 1000).toFixed(1)} s on ${r.threads.count} thread(s), ` +
          `decode ${r.timings.decode.toFixed(0)} ms, preprocess ${r.timings.preprocess.toFixed(0)} ms`,
        );
      }
      await page.close();
      await site.close();
    }
    console.log(`chromium ${browser.version()}`);
  } finally {
    await browser.close();
    rmSync(outDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
