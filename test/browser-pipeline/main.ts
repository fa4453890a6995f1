/**
 * The test page of test/browser-pipeline.test.ts: the library's main entry, as an application bundles it, exposed to
 * the test as `window.perceiver`. Everything else happens in page.evaluate.
 */
import * as perceiver from "../../src/index.js";

(globalThis as unknown as { perceiver: typeof perceiver }).perceiver = perceiver;
document.body.dataset.ready = "1";
