/** Layout checks for the browser tests: what a person would see as broken (content past the screen's edge, results out of view). */
import type { Page } from "playwright-core";

/** Elements that stick out of the viewport to the right (visible ones only), and the page's scroll width. */
export async function overflow(page: Page): Promise<{ scrollWidth: number; innerWidth: number; wide: string[] }> {
  return page.evaluate(() => {
    const wide: string[] = [];
    for (const el of document.querySelectorAll<HTMLElement>("body *")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === "hidden") continue;
      if (r.right > innerWidth + 0.5 || r.left < -0.5) wide.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
    }
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth, wide };
  });
}

/** Waits until the top of #results and the whole top-5 list are inside the viewport (after the smooth scroll). */
export async function resultsInView(page: Page): Promise<{ resultsTop: number; listBottom: number; viewport: number }> {
  await page.waitForFunction(() => {
    const r = document.getElementById("results")!.getBoundingClientRect();
    const l = document.getElementById("top5")!.getBoundingClientRect();
    return r.top >= -1 && r.top < innerHeight && l.bottom <= innerHeight + 1 && l.height > 0;
  }, undefined, { timeout: 5_000 }).catch(() => undefined);
  return page.evaluate(() => ({
    resultsTop: document.getElementById("results")!.getBoundingClientRect().top,
    listBottom: document.getElementById("top5")!.getBoundingClientRect().bottom,
    viewport: innerHeight,
  }));
}

