/**
 * Downloads are bounded (docs/limits.md): an overall deadline a trickle cannot push back, a retry budget that a byte
 * per attempt does not refill, a size cap when no size is announced, bodies nobody wants closed instead of drained
 * (so the CLI exits), hex ETags checked in any case, and no cache write through a planted symlink.
 * Servers listen on 127.0.0.1 port 0.
 */
import { createHash } from "node:crypto";
import { existsSync, promises as fsp } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { defaultMaxFileBytes, hfHubDownload } from "../src/io/hub/hub.js";
import { Prng } from "../tools/fuzz/prng.js";
import { runCli } from "./helpers/cli.js";
import { fakeCommit, gitBlobSha1, sha256Hex } from "./helpers/fake-hub.js";
import { perceiverErrorOf } from "./helpers/errors.js";
import { useFakeHub } from "./helpers/hub-suite.js";

const C1 = fakeCommit("limits-1");
const WEIGHTS = new Prng(5).bytes(50_000);
const REPO = "org/limits";
const REPO_DIR = "models--org--limits";

const suite = useFakeHub("hub-limits", { [REPO]: { commits: { [C1]: { files: { "config.json": "{}", "model.safetensors": WEIGHTS } } }, refs: { main: C1 } } }, { retryDelayMs: 1 });
const { freshCache, opts } = suite;
const cdnGets = () => suite.hub.requests.filter((r) => r.server === "hub" && r.method === "GET" && r.url.startsWith("/cdn/"));

/** A one-repo hub written by hand: `head` and `get` answer /org/raw/resolve/main/<file>. */
async function rawHub(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Sends a byte every `ms` until the client goes away. */
function trickle(res: http.ServerResponse, ms: number): void {
  const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write("x")), ms);
  res.on("close", () => clearInterval(t));
}

describe("deadline and retry budget", () => {
  it("a body that trickles a byte every 50 ms ends at the overall deadline (HUB_TIMEOUT), the partial file kept", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ throttle: { chunkBytes: 1, delayMs: 50 } }); // never idle for downloadTimeoutMs, never done
    const t0 = Date.now();
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache, { deadlineMs: 1500, downloadTimeoutMs: 1000 })));
    expect(e.code).toBe("HUB_TIMEOUT");
    expect(e.message).toMatch(/did not finish within 1\.5 s \(the overall deadline; set PERCEIVER_HUB_DEADLINE/);
    expect(Date.now() - t0).toBeLessThan(4000);
    const partial = path.join(cache, REPO_DIR, "blobs", `${sha256Hex(WEIGHTS)}.incomplete`);
    expect((await fsp.stat(partial)).size).toBeGreaterThan(0);
    suite.hub.setFaults({});
    const p = await hfHubDownload(REPO, "model.safetensors", opts(cache)); // resumes
    expect(sha256Hex(await fsp.readFile(p))).toBe(sha256Hex(WEIGHTS));
    expect(suite.hub.requests.at(-1)?.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
  }, 20_000);

  it("the deadline comes from PERCEIVER_HUB_DEADLINE (seconds) when no option is given", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ throttle: { chunkBytes: 1, delayMs: 50 } });
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", { ...opts(cache), env: { HOME: suite.root, PERCEIVER_HUB_DEADLINE: "1" } }));
    expect(e.message).toMatch(/within 1 s/);
  }, 20_000);

  it("a server that sends one byte per attempt and drops the connection exhausts the retry budget", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ dropAfterBytes: 1 });
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache, { maxRetries: 3 })));
    expect(e.code).toBe("HUB_NETWORK");
    expect(cdnGets()).toHaveLength(4); // the first attempt and 3 retries: 1 byte each is not progress
  }, 20_000);
});

describe("size cap", () => {
  it("config.json with no announced size, streaming forever, stops at the cap (HUB_HTTP) and leaves nothing", async () => {
    const commit = fakeCommit("endless");
    const etag = "0123456789abcdef0123456789abcdef01234567";
    const srv = await rawHub((req, res) => {
      if (req.method === "HEAD") {
        res.writeHead(200, { "X-Repo-Commit": commit, ETag: `"${etag}"` });
        res.end();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once("drain", pump);
      };
      pump();
    });
    try {
      const cache = await freshCache();
      const e = await perceiverErrorOf(hfHubDownload("org/raw", "config.json", { endpoint: srv.endpoint, cacheDir: cache, env: { HOME: suite.root }, maxFileBytes: 1 << 20 }));
      expect(e.code).toBe("HUB_HTTP");
      expect(e.message).toMatch(/config\.json of org\/raw \(revision main\) is at least \d+ bytes, over the 1048576-byte limit/);
      expect(existsSync(path.join(cache, "models--org--raw", "blobs", `${etag}.incomplete`))).toBe(false);
    } finally {
      await srv.close();
    }
    expect(defaultMaxFileBytes("config.json")).toBe(64 * 2 ** 20);
    expect(defaultMaxFileBytes("model.safetensors")).toBe(64 * 2 ** 30);
  }, 20_000);

  it("an announced size over the cap is refused before any byte is fetched", async () => {
    const cache = await freshCache();
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache, { maxFileBytes: 1000 })));
    expect(e.code).toBe("HUB_HTTP");
    expect(e.message).toMatch(/is at least 50000 bytes, over the 1000-byte limit/);
    expect(cdnGets()).toHaveLength(0);
  });
});

describe("integrity", () => {
  it("an upper-case sha256 ETag is still checked: a corrupt body is HUB_INTEGRITY", async () => {
    const good = new Prng(9).bytes(5000);
    const bad = Uint8Array.from(good);
    bad[100] ^= 1;
    const srv = await rawHub((req, res) => {
      const h = { "X-Repo-Commit": fakeCommit("upper"), ETag: `"${createHash("sha256").update(good).digest("hex").toUpperCase()}"`, "Content-Length": good.length };
      res.writeHead(200, h);
      res.end(req.method === "HEAD" ? undefined : bad);
    });
    try {
      const cache = await freshCache();
      const e = await perceiverErrorOf(hfHubDownload("org/raw", "model.safetensors", { endpoint: srv.endpoint, cacheDir: cache, env: { HOME: suite.root } }));
      expect(e.code).toBe("HUB_INTEGRITY");
      expect(e.message).toMatch(/its sha256 is [0-9a-f]{64}, the hub's ETag says [0-9A-F]{64}/);
    } finally {
      await srv.close();
    }
  });
});

describe("the CLI exits promptly when a body never ends", () => {
  // config.json's metadata is fine; its GET answers 500 (or 302 to a good copy) with a body that trickles forever.
  async function cliAgainst(getAnswer: "error" | "redirect"): Promise<{ code: number | null; stderr: string; ms: number }> {
    const commit = fakeCommit(`cli-${getAnswer}`);
    const config = "{}";
    const srv = await rawHub((req, res) => {
      const meta = { "X-Repo-Commit": commit, ETag: `"${gitBlobSha1(new TextEncoder().encode(config))}"` };
      if (req.url === "/good") {
        res.writeHead(200, { "Content-Length": config.length });
        res.end(config);
      } else if (req.method === "HEAD") {
        res.writeHead(200, { ...meta, "Content-Length": config.length });
        res.end();
      } else if (getAnswer === "error") {
        res.writeHead(500, { "Content-Type": "text/plain" });
        trickle(res, 100);
      } else {
        res.writeHead(302, { Location: "/good", "Content-Type": "text/plain" });
        trickle(res, 100);
      }
    });
    try {
      const cache = await freshCache();
      const img = path.join(import.meta.dirname, "fixtures", "images", "chelsea.png"); // read before the model loads
      const t0 = Date.now();
      const r = await runCli(["classify", "--model", "org/raw", img], {
        env: { HF_ENDPOINT: srv.endpoint, HF_HUB_CACHE: cache, HF_TOKEN: "", HF_HUB_DOWNLOAD_TIMEOUT: "5" },
        timeoutMs: 30_000,
      });
      return { code: r.code, stderr: r.stderr, ms: Date.now() - t0 };
    } finally {
      await srv.close();
    }
  }

  it("after an error response whose body trickles: a one-line error, then exit", async () => {
    const r = await cliAgainst("error");
    expect(r.stderr).toMatch(/HTTP 500/);
    expect(r.code).not.toBe(null); // not killed by the timeout
    expect(r.ms).toBeLessThan(15_000);
  }, 40_000);

  it("after a redirect whose body trickles: the redirect is followed, and the process still exits", async () => {
    const r = await cliAgainst("redirect");
    expect(r.code).not.toBe(null);
    expect(r.stderr).not.toMatch(/HTTP 302/);
    expect(r.ms).toBeLessThan(15_000);
  }, 40_000);
});

describe("no cache write follows a planted symlink", () => {
  async function victim(): Promise<{ dir: string; file: string }> {
    const dir = await fsp.mkdtemp(path.join(suite.root, "outside-"));
    const file = path.join(dir, "precious.txt");
    await fsp.writeFile(file, "precious");
    return { dir, file };
  }

  it("blobs/<etag>.incomplete -> an outside file: refused, the file untouched", async () => {
    const cache = await freshCache();
    const v = await victim();
    const blobs = path.join(cache, REPO_DIR, "blobs");
    await fsp.mkdir(blobs, { recursive: true });
    await fsp.symlink(v.file, path.join(blobs, `${sha256Hex(WEIGHTS)}.incomplete`));
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toMatch(/is a symlink/);
    expect(await fsp.readFile(v.file, "utf8")).toBe("precious");
  });

  it("snapshots/<commit> -> an outside folder: refused, nothing created there", async () => {
    const cache = await freshCache();
    const v = await victim();
    await fsp.mkdir(path.join(cache, REPO_DIR, "snapshots"), { recursive: true });
    await fsp.symlink(v.dir, path.join(cache, REPO_DIR, "snapshots", C1));
    const e = await perceiverErrorOf(hfHubDownload(REPO, "config.json", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toContain(path.join("snapshots", C1));
    expect(await fsp.readdir(v.dir)).toEqual(["precious.txt"]);
  });

  it(".no_exist/<commit> -> an outside folder: refused, the outside file not truncated", async () => {
    const cache = await freshCache();
    const v = await victim();
    await fsp.mkdir(path.join(cache, REPO_DIR, ".no_exist"), { recursive: true });
    await fsp.symlink(v.dir, path.join(cache, REPO_DIR, ".no_exist", C1));
    // asking for "precious.txt", which the repo lacks, would mark .no_exist/<commit>/precious.txt
    const e = await perceiverErrorOf(hfHubDownload(REPO, "precious.txt", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(await fsp.readFile(v.file, "utf8")).toBe("precious");
  });

  it("a symlinked repo folder or blobs/ folder is refused too; the cache root itself may be a symlink", async () => {
    const cache = await freshCache();
    const v = await victim();
    await fsp.symlink(v.dir, path.join(cache, REPO_DIR));
    expect((await perceiverErrorOf(hfHubDownload(REPO, "config.json", opts(cache)))).code).toBe("HUB_DISK");
    expect(await fsp.readdir(v.dir)).toEqual(["precious.txt"]);

    const real = await freshCache();
    const linked = path.join(suite.root, `linked-${path.basename(real)}`);
    await fsp.symlink(real, linked);
    const p = await hfHubDownload(REPO, "config.json", opts(linked));
    expect(await fsp.readFile(p, "utf8")).toBe("{}");
  });
});
