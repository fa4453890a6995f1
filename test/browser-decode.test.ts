/**
 * The main entry (`perceiver-ts`, src/index.ts) in a browser: Vite bundles a page that imports it, with no alias
 * and no plugin, and headless Chromium decodes PNG, JPEG, WebP, GIF and BMP files with it. The pixels (their
 * SHA-256) must equal what Node decodes from the same bytes. The JPEG and WebP decoders are WebAssembly modules that the bundle emits as assets.
 *
 * Needs Debian's chromium (/usr/bin/chromium, or PERCEIVER_CHROMIUM). Without it the test is skipped with one line,
 * except under CI (CI=true), where a missing browser fails the test.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeImage } from "../src/index.js";
import { ROOT } from "./helpers/cli.js";
import { startStaticServer, type LocalServer } from "./helpers/static-server.js";

const CHROMIUM = process.env.PERCEIVER_CHROMIUM ?? "/usr/bin/chromium";
const CI = process.env.CI === "true";
const FOUND = existsSync(CHROMIUM);
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"];
const FILES = [
  ["images", "small.png"], ["images", "chelsea.jpg"], ["formats", "progressive_420.jpg"], ["formats", "baseline_411.jpg"],
  ["formats", "ycck_420.jpg"], ["formats", "lossy.webp"], ["formats", "lossless_alpha.webp"], ["formats", "palette.gif"],
  ["formats", "rgb24.bmp"],
];

if (!FOUND && !CI) {
  console.warn(`test/browser-decode.test.ts: SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set PERCEIVER_CHROMIUM)`);
}

describe.skipIf(!FOUND && !CI)("the main entry decodes images in headless Chromium as in Node", () => {
  let dir = "";
  let site: LocalServer;
  let browser: Browser;

  beforeAll(async () => {
    if (!FOUND) throw new Error(`CI=true but no Chromium at ${CHROMIUM}: .ci/run installs Debian's chromium`);
    dir = mkdtempSync(join(tmpdir(), "perceiver-decode-page-"));
    const src = join(dir, "src");
    mkdirSync(join(src, "public"), { recursive: true });
    for (const [d, f] of FILES) copyFileSync(join(ROOT, "test/fixtures", d, f), join(src, "public", f));
    writeFileSync(join(src, "index.html"), `<!doctype html><meta charset="utf-8"><script type="module" src="./main.ts"></script>\n`);
    // the page imports the library's main entry, as an application would
    writeFileSync(join(src, "main.ts"), `
import { decodeImage, initImageDecoders } from ${JSON.stringify(join(ROOT, "src/index.ts"))};
const files = ${JSON.stringify(FILES.map(([, f]) => f))};
(async () => {
  const out: Record<string, unknown> = {};
  await initImageDecoders();
  for (const f of files) {
    const bytes = new Uint8Array(await (await fetch("./" + f)).arrayBuffer());
    try {
      const img = decodeImage(bytes, { source: f });
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", img.data));
      out[f] = { width: img.width, height: img.height, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("") };
    } catch (e) {
      out[f] = { error: String(e) };
    }
  }
  (window as unknown as { decoded: unknown }).decoded = out;
})().catch((e) => { (window as unknown as { decoded: unknown }).decoded = { fatal: String(e) }; });
`);
    await build({
      root: src, base: "./", logLevel: "warn", configFile: false, publicDir: join(src, "public"),
      build: { outDir: join(dir, "dist"), emptyOutDir: true, target: "es2022" },
    });
    site = await startStaticServer(join(dir, "dist"));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("PNG, JPEG (baseline, progressive, 4:1:1, YCCK), WebP (lossy, lossless + alpha), GIF and BMP: the same pixels as Node", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${site.url}/index.html`);
    await page.waitForFunction(() => (window as unknown as { decoded?: unknown }).decoded !== undefined, undefined, { timeout: 60_000 });
    const decoded = (await page.evaluate(() => (window as unknown as { decoded: unknown }).decoded)) as Record<string, { width: number; height: number; sha256: string; error?: string }>;
    expect(errors).toEqual([]);
    expect((decoded as { fatal?: string }).fatal).toBeUndefined();
    for (const [d, f] of FILES) {
      const node = decodeImage(new Uint8Array(readFileSync(join(ROOT, "test/fixtures", d, f))));
      const got = decoded[f];
      expect(got.error, f).toBeUndefined();
      expect([got.width, got.height], f).toEqual([node.width, node.height]);
      expect(got.sha256, f).toBe(createHash("sha256").update(node.data).digest("hex"));
    }
    await page.close();
  }, 120_000);
});
