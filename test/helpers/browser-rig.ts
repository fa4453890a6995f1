/**
 * What the headless Chromium tests set up around a built page: a CORS proxy in front of the fake hub (another
 * origin, like huggingface.co), the page's folder served twice (plainly and cross-origin isolated, for worker
 * threads), and Chromium itself.
 */
import { chromium, type Browser } from "playwright-core";
import { startCorsProxy, startStaticServer, type LocalServer } from "./static-server.js";

/** Debian's chromium, or PERCEIVER_CHROMIUM. */
export const CHROMIUM = process.env.PERCEIVER_CHROMIUM ?? "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
];

export interface BrowserRig {
  proxy: LocalServer;
  site: LocalServer;
  isolatedSite: LocalServer;
  browser: Browser;
  /** closes the browser and the servers */
  close(): Promise<void>;
}

/** Starts the proxy to `hubEndpoint`, the two sites over `siteDir` and Chromium; on a failure, stops what started. */
export async function startBrowserRig(hubEndpoint: string, siteDir: string): Promise<BrowserRig> {
  const started: Partial<Omit<BrowserRig, "close">> = {};
  const close = async () => {
    await started.browser?.close();
    await started.site?.close();
    await started.isolatedSite?.close();
    await started.proxy?.close();
  };
  try {
    started.proxy = await startCorsProxy(hubEndpoint);
    started.site = await startStaticServer(siteDir);
    started.isolatedSite = await startStaticServer(siteDir, { crossOriginIsolated: true });
    started.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  } catch (e) {
    await close();
    throw e;
  }
  const { proxy, site, isolatedSite, browser } = started as Omit<BrowserRig, "close">;
  return { proxy, site, isolatedSite, browser, close };
}
