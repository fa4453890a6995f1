/**
 * The Web Worker of test/browser-pipeline.test.ts: a pipeline on worker threads (the page is cross-origin isolated),
 * then dispose(); it reports the thread count before and after, and the labels.
 */
import { getThreads, pipeline } from "../../src/index.js";

const scope = globalThis as unknown as { postMessage(m: unknown): void; onmessage: ((ev: MessageEvent) => void) | null };

scope.onmessage = async (ev: MessageEvent<{ endpoint: string; repo: string; revision: string; image: Blob }>) => {
  try {
    const { endpoint, repo, revision, image } = ev.data;
    const classify = await pipeline("image-classification", repo, { endpoint, revision, threads: 2 });
    const lists = await classify([image], { topK: 3 });
    const during = getThreads();
    await classify.dispose();
    scope.postMessage({ lists, during, after: getThreads() });
  } catch (e) {
    scope.postMessage({ error: `${(e as { code?: string }).code}: ${(e as Error).message}` });
  }
};
