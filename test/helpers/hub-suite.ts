/**
 * What a test file against the fake hub sets up: a temp folder for caches (and HOME), the fake hub, both started
 * before the file's tests and removed after, the hub's faults and request log cleared before each test.
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach } from "vitest";
import type { HubOptions } from "../../src/io/hub/hub.js";
import { startFakeHub, type FakeHub, type FakeHubOptions, type FakeRepo } from "./fake-hub.js";

export interface FakeHubSuite {
  /** the fake hub (from beforeAll on) */
  readonly hub: FakeHub;
  /** the temp folder (from beforeAll on) */
  readonly root: string;
  /** a new empty cache folder under root */
  freshCache(): Promise<string>;
  /** options for a hermetic call to `h`: no HF_* from the real environment, no token file from the real home */
  opts(cacheDir: string, extra?: HubOptions, h?: FakeHub): HubOptions;
}

/** Registers the hooks (call it at the top level of a test file); `name` prefixes the temp folder. */
export function useFakeHub(
  name: string,
  repos: Record<string, FakeRepo>,
  options: FakeHubOptions & { retryDelayMs: number },
): FakeHubSuite {
  let hub: FakeHub | undefined;
  let root = "";
  const { retryDelayMs, ...hubOptions } = options;
  beforeAll(async () => {
    root = await fsp.mkdtemp(path.join(os.tmpdir(), `perceiver-${name}-`));
    hub = await startFakeHub({ repos }, hubOptions);
  });
  afterAll(async () => {
    await hub?.close();
    if (root) await fsp.rm(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    hub!.setFaults({});
    hub!.clearRequests();
  });
  const suite: FakeHubSuite = {
    get hub() {
      return hub!;
    },
    get root() {
      return root;
    },
    freshCache: () => fsp.mkdtemp(path.join(root, "cache-")),
    opts: (cacheDir, extra = {}, h = hub!) => ({ endpoint: h.endpoint, cacheDir, env: { HOME: root }, retryDelayMs, ...extra }),
  };
  return suite;
}
