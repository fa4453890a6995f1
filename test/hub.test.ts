/**
 * hfHubDownload / hubFileExists against the fake hub on 127.0.0.1, each test with its own cache in a temp dir.
 */
import { spawn } from "node:child_process";
import { promises as fsp } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { hfHubDownload, hubFileExists, hubFileUrl, repoFolderName, resolveCacheDir } from "../src/io/hub/hub.js";
import { FAKE_HUB_TOKEN, fakeCommit, sha256Hex, startFakeHub, type FakeHub, type FakeRepo } from "./helpers/fake-hub.js";
import { perceiverErrorOf } from "./helpers/errors.js";
import { useFakeHub } from "./helpers/hub-suite.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const C1 = fakeCommit("tiny-1");
const C2 = fakeCommit("tiny-2");
const CP = fakeCommit("private-1");

function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const WEIGHTS = pseudoRandomBytes(20_000, 7); // LFS (served through the CDN)
const CONFIG_1 = JSON.stringify({ model_type: "perceiver", d_latents: 8 });
const CONFIG_2 = JSON.stringify({ model_type: "perceiver", d_latents: 16 });
const NOTES = "a small file in a subfolder\n";

const REPOS: Record<string, FakeRepo> = {
  "org/tiny": {
    commits: {
      [C1]: { files: { "config.json": CONFIG_1, "model.safetensors": WEIGHTS, "sub/dir/notes.txt": NOTES, "empty.txt": "" } },
      [C2]: { files: { "config.json": CONFIG_2, "model.safetensors": WEIGHTS } },
    },
    refs: { main: C1, "v1.0": C1, "refs/pr/1": C2 },
  },
  "org/private": {
    access: "private",
    commits: { [CP]: { files: { "config.json": CONFIG_1, "weights.bin": pseudoRandomBytes(5000, 3) } } },
    refs: { main: CP },
  },
  "org/gated": { access: "gated", commits: { [CP]: { files: { "config.json": CONFIG_1 } } }, refs: { main: CP } },
};

const suite = useFakeHub("hub-test", REPOS, { renames: { "org/old-name": "org/tiny" }, retryDelayMs: 5 });
const { freshCache, opts } = suite;

const sha256File = async (p: string) => sha256Hex(await fsp.readFile(p));

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** All files under dir, relative, sorted. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  if (await exists(dir)) await walk(dir);
  return out.sort();
}

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const cdnGets = (h: FakeHub) => h.requests.filter((r) => r.method === "GET" && r.url.startsWith("/cdn/"));

describe("cache layout", () => {
  it("stores blobs by ETag, relative symlinks in snapshots/{commit}, and refs/{revision}", async () => {
    const cache = await freshCache();
    const progress: { downloaded: number; total: number | null }[] = [];
    const cfg = await hfHubDownload("org/tiny", "config.json", opts(cache));
    const weights = await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { onProgress: (p) => progress.push(p) }));
    const notes = await hfHubDownload("org/tiny", "sub/dir/notes.txt", opts(cache));
    const empty = await hfHubDownload("org/tiny", "empty.txt", opts(cache));

    const repoDir = path.join(cache, "models--org--tiny");
    expect(cfg).toBe(path.join(repoDir, "snapshots", C1, "config.json"));
    expect(weights).toBe(path.join(repoDir, "snapshots", C1, "model.safetensors"));
    expect(notes).toBe(path.join(repoDir, "snapshots", C1, "sub", "dir", "notes.txt"));

    const cfgInfo = suite.hub.file("org/tiny", C1, "config.json");
    const wInfo = suite.hub.file("org/tiny", C1, "model.safetensors");
    expect(cfgInfo.lfs).toBe(false);
    expect(wInfo.lfs).toBe(true);
    // Small files are named by their git blob sha1, LFS files by their sha256 (X-Linked-Etag, not the pointer ETag).
    expect((await fsp.lstat(cfg)).isSymbolicLink()).toBe(true);
    expect(await fsp.readlink(cfg)).toBe(`../../blobs/${cfgInfo.gitSha1}`);
    expect(await fsp.readlink(weights)).toBe(`../../blobs/${wInfo.sha256}`);
    expect(await fsp.readlink(notes)).toBe(`../../../../blobs/${suite.hub.file("org/tiny", C1, "sub/dir/notes.txt").gitSha1}`);
    expect(await fsp.readFile(cfg, "utf8")).toBe(CONFIG_1);
    expect(await sha256File(weights)).toBe(wInfo.sha256);
    expect(await fsp.readFile(notes, "utf8")).toBe(NOTES);
    expect((await fsp.stat(empty)).size).toBe(0);
    expect(await fsp.readFile(path.join(repoDir, "refs", "main"), "utf8")).toBe(C1);

    const blobs = await listTree(path.join(repoDir, "blobs"));
    expect(blobs.some((b) => b.endsWith(".incomplete") || b.endsWith(".lock"))).toBe(false);
    expect(blobs).toContain(wInfo.sha256);
    expect(blobs).toContain(cfgInfo.gitSha1);

    // The wire: HEAD with identity encoding; the LFS HEAD's 302 is read, not followed; the bytes come from the CDN.
    const heads = suite.hub.requests.filter((r) => r.method === "HEAD");
    expect(heads).toHaveLength(4);
    for (const h of heads) expect(h.headers["accept-encoding"]).toBe("identity");
    expect(heads[1].url).toBe("/org/tiny/resolve/main/model.safetensors");
    expect(heads[1].status).toBe(302);
    const gets = suite.hub.requests.filter((r) => r.method === "GET");
    expect(gets.map((g) => g.url)).toEqual([
      "/org/tiny/resolve/main/config.json",
      `/cdn/${wInfo.sha256}`,
      "/org/tiny/resolve/main/sub/dir/notes.txt",
    ]); // (an empty file announced as 0 bytes needs no GET)

    // Progress: starts, ends at the total, never goes backwards.
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toEqual({ file: "model.safetensors", downloaded: WEIGHTS.length, total: WEIGHTS.length });
    for (let i = 1; i < progress.length; i++) expect(progress[i].downloaded).toBeGreaterThanOrEqual(progress[i - 1].downloaded);
  });

  it("resolves refs/pr/N (URL-encoded) into refs/refs/pr/N and reuses blobs across commits", async () => {
    const cache = await freshCache();
    await hfHubDownload("org/tiny", "model.safetensors", opts(cache));
    suite.hub.clearRequests();
    const cfg = await hfHubDownload("org/tiny", "config.json", opts(cache, { revision: "refs/pr/1" }));
    const w = await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { revision: "refs/pr/1" }));
    const repoDir = path.join(cache, "models--org--tiny");
    expect(cfg).toBe(path.join(repoDir, "snapshots", C2, "config.json"));
    expect(await fsp.readFile(cfg, "utf8")).toBe(CONFIG_2);
    expect(await fsp.readFile(path.join(repoDir, "refs", "refs", "pr", "1"), "utf8")).toBe(C2);
    expect(suite.hub.requests[0].url).toBe("/org/tiny/resolve/refs%2Fpr%2F1/config.json");
    // Same weights blob as main: only the HEAD, no second transfer.
    expect(w).toBe(path.join(repoDir, "snapshots", C2, "model.safetensors"));
    expect(await sha256File(w)).toBe(sha256Hex(WEIGHTS));
    expect(cdnGets(suite.hub)).toHaveLength(0);
  });

  it("uses the requested id for a renamed repo (relative 307 followed for metadata)", async () => {
    const cache = await freshCache();
    const p = await hfHubDownload("org/old-name", "config.json", opts(cache));
    expect(p).toBe(path.join(cache, "models--org--old-name", "snapshots", C1, "config.json"));
    expect(await fsp.readFile(p, "utf8")).toBe(CONFIG_1);
    expect(suite.hub.requests[0]).toMatchObject({ method: "HEAD", url: "/org/old-name/resolve/main/config.json", status: 307 });
    expect(suite.hub.requests[1]).toMatchObject({ method: "HEAD", url: "/org/tiny/resolve/main/config.json", status: 200 });
  });

  it("serves a second call from the cache: 0 requests for a commit, one HEAD for a branch", async () => {
    const cache = await freshCache();
    const first = await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { revision: C1 }));
    expect(await exists(path.join(cache, "models--org--tiny", "refs"))).toBe(false); // no ref for a commit revision
    suite.hub.clearRequests();
    expect(await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { revision: C1 }))).toBe(first);
    expect(suite.hub.requests).toHaveLength(0);
    expect(await hfHubDownload("org/tiny", "model.safetensors", opts(cache))).toBe(first);
    expect(suite.hub.requests.map((r) => r.method)).toEqual(["HEAD"]);
  });

  it("forceDownload fetches again", async () => {
    const cache = await freshCache();
    await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { revision: C1 }));
    suite.hub.clearRequests();
    const p = await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { revision: C1, forceDownload: true }));
    expect(cdnGets(suite.hub)).toHaveLength(1);
    expect(await sha256File(p)).toBe(sha256Hex(WEIGHTS));
  });
});

describe("offline and unreachable", () => {
  it("offline: answers from the cache through refs/, or fails naming what is missing", async () => {
    const cache = await freshCache();
    const online = await hfHubDownload("org/tiny", "config.json", opts(cache));
    suite.hub.clearRequests();
    expect(await hfHubDownload("org/tiny", "config.json", opts(cache, { offline: true }))).toBe(online);
    expect(await hfHubDownload("org/tiny", "config.json", { ...opts(cache), env: { HOME: suite.root, HF_HUB_OFFLINE: "1" } })).toBe(online);

    const missFile = await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache, { offline: true })));
    expect(missFile.code).toBe("HUB_OFFLINE_MISS");
    expect(missFile.message).toContain("model.safetensors");
    expect(missFile.message).toContain(C1);
    const missRev = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache, { offline: true, revision: "v1.0" })));
    expect(missRev.code).toBe("HUB_OFFLINE_MISS");
    expect(missRev.message).toContain(path.join("refs", "v1.0"));
    expect(await hubFileExists("org/tiny", "config.json", opts(cache, { offline: true }))).toBe(true);
    expect(suite.hub.requests).toHaveLength(0);
  });

  it("connection refused: HUB_NETWORK with what to do, or the cached file when there is one", async () => {
    const cache = await freshCache();
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const t0 = Date.now();
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache, { endpoint })));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(e.code).toBe("HUB_NETWORK");
    expect(e.message).toContain("ECONNREFUSED");
    expect(e.message).toContain("could not be reached");
    expect(e.message).toContain("--model <folder>");
    expect(e.message).toContain("HF_HUB_OFFLINE=1");

    const cached = await hfHubDownload("org/tiny", "config.json", opts(cache));
    expect(await hfHubDownload("org/tiny", "config.json", opts(cache, { endpoint }))).toBe(cached);
    expect(await hubFileExists("org/tiny", "config.json", opts(cache, { endpoint }))).toBe(true);
  });

  it("a server error falls back to the cache like huggingface_hub, else HUB_HTTP", async () => {
    const cache = await freshCache();
    const cached = await hfHubDownload("org/tiny", "config.json", opts(cache));
    suite.hub.setFaults({ status: 500 });
    expect(await hfHubDownload("org/tiny", "config.json", opts(cache))).toBe(cached);
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "sub/dir/notes.txt", opts(cache)));
    expect(e.code).toBe("HUB_HTTP");
    expect(e.message).toContain("HTTP 500");
  });
});

describe("resume and integrity", () => {
  it("resumes an interrupted download with a Range request", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ dropAfterBytes: 7000, dropTimes: 1 });
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache, { maxRetries: 0 })));
    expect(e.code).toBe("HUB_NETWORK");
    const sha = sha256Hex(WEIGHTS);
    const incomplete = path.join(cache, "models--org--tiny", "blobs", `${sha}.incomplete`);
    const partial = (await fsp.stat(incomplete)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(WEIGHTS.length);
    expect(await listTree(path.join(cache, "models--org--tiny", "snapshots"))).toEqual([]);

    suite.hub.clearRequests();
    const p = await hfHubDownload("org/tiny", "model.safetensors", opts(cache));
    const gets = cdnGets(suite.hub);
    expect(gets).toHaveLength(1);
    expect(gets[0].headers.range).toBe(`bytes=${partial}-`);
    expect(gets[0].status).toBe(206);
    expect(await sha256File(p)).toBe(sha);
    expect(await exists(incomplete)).toBe(false);
  });

  it("retries a transfer cut short within one call, resuming each time", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ dropAfterBytes: 6000 }); // every response is cut after 6000 bytes
    const p = await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { maxRetries: 1 }));
    expect(await sha256File(p)).toBe(sha256Hex(WEIGHTS));
    expect(cdnGets(suite.hub).map((r) => r.headers.range)).toEqual([undefined, "bytes=6000-", "bytes=12000-", "bytes=18000-"]);

    // No progress at all: gives up after maxRetries.
    const cache2 = await freshCache();
    suite.hub.setFaults({ dropAfterBytes: 0 });
    suite.hub.clearRequests();
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache2, { maxRetries: 2 })));
    expect(e.code).toBe("HUB_NETWORK");
    expect(cdnGets(suite.hub)).toHaveLength(3);
  });

  it("restarts from zero when the server answers 200 to a Range request", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ dropAfterBytes: 9000, dropTimes: 1 });
    await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache, { maxRetries: 0 })));
    suite.hub.setFaults({ ignoreRange: true });
    suite.hub.clearRequests();
    const p = await hfHubDownload("org/tiny", "model.safetensors", opts(cache));
    const gets = cdnGets(suite.hub);
    expect(gets).toHaveLength(1);
    expect(gets[0].headers.range).toMatch(/^bytes=\d+-$/);
    expect(gets[0].status).toBe(200);
    expect((await fsp.stat(p)).size).toBe(WEIGHTS.length);
    expect(await sha256File(p)).toBe(sha256Hex(WEIGHTS));
  });

  it("a corrupted transfer is HUB_INTEGRITY and leaves nothing in blobs/ or snapshots/", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ corruptAt: 12_345 });
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_INTEGRITY");
    expect(e.message).toContain("sha256");
    expect(e.message).toContain("model.safetensors");
    const repoDir = path.join(cache, "models--org--tiny");
    expect(await listTree(path.join(repoDir, "snapshots"))).toEqual([]);
    expect(await listTree(path.join(repoDir, "blobs"))).toEqual([]);
    // The next, clean attempt works.
    suite.hub.setFaults({});
    expect(await sha256File(await hfHubDownload("org/tiny", "model.safetensors", opts(cache)))).toBe(sha256Hex(WEIGHTS));
  });

  it("a wrong size is HUB_INTEGRITY (announced size, short Content-Length, more bytes than announced)", async () => {
    for (const faults of [{ linkedSizeDelta: 3 }, { linkedSizeDelta: -3 }]) {
      const cache = await freshCache();
      suite.hub.setFaults(faults);
      const e = await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache)));
      expect(e.code, JSON.stringify(faults)).toBe("HUB_INTEGRITY");
      expect(await listTree(path.join(cache, "models--org--tiny", "snapshots"))).toEqual([]);
    }
    // A small (non-LFS) file has no sha256 ETag: the size check alone catches a short body.
    const cache = await freshCache();
    suite.hub.setFaults({ contentLengthDelta: -5 });
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache)));
    expect(e.code).toBe("HUB_INTEGRITY");
    expect(e.message).toContain(`got ${CONFIG_1.length - 5} bytes`);
    expect(await listTree(path.join(cache, "models--org--tiny", "blobs"))).toEqual([]);
  });

  it("an HTML page with status 200 is caught (content: integrity; metadata: not a hub)", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ htmlPage: "content" });
    expect((await perceiverErrorOf(hfHubDownload("org/tiny", "model.safetensors", opts(cache)))).code).toBe("HUB_INTEGRITY");
    suite.hub.setFaults({ htmlPage: "metadata" });
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache)));
    expect(e.code).toBe("HUB_HTTP");
    expect(e.message).toContain("X-Repo-Commit");
    expect(e.message).toContain("HF_ENDPOINT");
    expect(await listTree(path.join(cache, "models--org--tiny", "snapshots"))).toEqual([]);
  });
});

describe("HTTP errors", () => {
  it("401 on a private repo names HF_TOKEN; the token opens it", async () => {
    const cache = await freshCache();
    const e = await perceiverErrorOf(hfHubDownload("org/private", "config.json", opts(cache)));
    expect(e.code).toBe("HUB_UNAUTHORIZED");
    expect(e.message).toContain("HF_TOKEN");
    expect(e.message).toMatch(/gated or private/);
    const wrong = await perceiverErrorOf(hfHubDownload("org/private", "config.json", opts(cache, { token: "hf_wrong" })));
    expect(wrong.code).toBe("HUB_UNAUTHORIZED");
    expect(wrong.message).toContain("rejected");

    suite.hub.clearRequests();
    const p = await hfHubDownload("org/private", "config.json", { ...opts(cache), env: { HOME: suite.root, HF_TOKEN: FAKE_HUB_TOKEN } });
    expect(await fsp.readFile(p, "utf8")).toBe(CONFIG_1);
    expect(suite.hub.requests[0].headers.authorization).toBe(`Bearer ${FAKE_HUB_TOKEN}`);

    const gated = await perceiverErrorOf(hfHubDownload("org/gated", "config.json", opts(cache)));
    expect(gated.code).toBe("HUB_UNAUTHORIZED");
    expect(gated.message).toContain("gated");
    expect(gated.message).toContain("HF_TOKEN");
  });

  it("reads the token file under HF_HOME when HF_TOKEN is unset", async () => {
    const cache = await freshCache();
    const home = await fsp.mkdtemp(path.join(suite.root, "hfhome-"));
    await fsp.writeFile(path.join(home, "token"), `${FAKE_HUB_TOKEN}\n`);
    const p = await hfHubDownload("org/private", "config.json", { ...opts(cache), env: { HOME: suite.root, HF_HOME: home } });
    expect(await fsp.readFile(p, "utf8")).toBe(CONFIG_1);
  });

  it("404s say whether the repo, the revision or the file is missing", async () => {
    const cache = await freshCache();
    const repo = await perceiverErrorOf(hfHubDownload("org/nope", "config.json", opts(cache)));
    expect(repo.code).toBe("HUB_NOT_FOUND");
    expect(repo.message).toContain("repository org/nope not found");
    const rev = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache, { revision: "no-such-branch" })));
    expect(rev.code).toBe("HUB_NOT_FOUND");
    expect(rev.message).toContain(`revision "no-such-branch" not found in org/tiny`);
    const entry = await perceiverErrorOf(hfHubDownload("org/tiny", "missing.json", opts(cache)));
    expect(entry.code).toBe("HUB_NOT_FOUND");
    expect(entry.message).toContain("file missing.json not found in org/tiny at revision main");
    // Like huggingface_hub: the absence is remembered under .no_exist/{commit}/.
    expect(await exists(path.join(cache, "models--org--tiny", ".no_exist", C1, "missing.json"))).toBe(true);
  });

  it("hubFileExists: true, false for a missing file, throws for a missing repo", async () => {
    const cache = await freshCache();
    expect(await hubFileExists("org/tiny", "model.safetensors", opts(cache))).toBe(true);
    expect(await hubFileExists("org/tiny", "pytorch_model.bin", opts(cache))).toBe(false);
    expect(await hubFileExists("org/tiny", "pytorch_model.bin", opts(cache, { offline: true }))).toBe(false); // .no_exist
    expect((await perceiverErrorOf(hubFileExists("org/nope", "config.json", opts(cache)))).code).toBe("HUB_NOT_FOUND");
    expect(suite.hub.requests.every((r) => r.method === "HEAD")).toBe(true);
  });

  it("a stalled server is HUB_TIMEOUT, not a hang", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ stall: "metadata" });
    let t0 = Date.now();
    const meta = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache, { fetchTimeoutMs: 300 })));
    expect(meta.code).toBe("HUB_TIMEOUT");
    expect(meta.message).toContain("--model <folder>");
    expect(Date.now() - t0).toBeLessThan(3000);

    suite.hub.setFaults({ stall: "content", stallAfterBytes: 4096 });
    t0 = Date.now();
    const content = await perceiverErrorOf(
      hfHubDownload("org/tiny", "model.safetensors", opts(cache, { downloadTimeoutMs: 300, maxRetries: 0 })),
    );
    expect(content.code).toBe("HUB_TIMEOUT");
    expect(Date.now() - t0).toBeLessThan(3000);
    // What arrived is kept for the next attempt.
    const incomplete = path.join(cache, "models--org--tiny", "blobs", `${sha256Hex(WEIGHTS)}.incomplete`);
    expect((await fsp.stat(incomplete)).size).toBe(4096);
  });
});

describe("redirects and Authorization", () => {
  it("does not send Authorization to another origin (the CDN), on the HEAD's location or a GET redirect", async () => {
    for (const lfsHeadRedirect of [true, false]) {
      const h = await startFakeHub({ repos: REPOS }, { cdn: "cross-origin", lfsHeadRedirect });
      try {
        expect(h.cdnEndpoint).not.toBe(h.endpoint);
        const cache = await freshCache();
        const p = await hfHubDownload("org/private", "weights.bin", opts(cache, { token: FAKE_HUB_TOKEN }, h));
        expect(await sha256File(p)).toBe(h.file("org/private", CP, "weights.bin").sha256);
        const toHub = h.requests.filter((r) => r.server === "hub");
        const toCdn = h.requests.filter((r) => r.server === "cdn");
        expect(toHub.length).toBeGreaterThanOrEqual(1);
        for (const r of toHub) expect(r.headers.authorization).toBe(`Bearer ${FAKE_HUB_TOKEN}`);
        expect(toCdn).toHaveLength(1);
        expect(toCdn[0].headers.authorization).toBeUndefined();
        // With a HEAD that does not redirect, the GET itself meets the 302 and follows it.
        if (!lfsHeadRedirect) expect(toHub.map((r) => `${r.method} ${r.status}`)).toEqual(["HEAD 200", "GET 302"]);
      } finally {
        await h.close();
      }
    }
  });

  it("keeps Authorization on the same origin and accepts a relative CDN redirect", async () => {
    const h = await startFakeHub({ repos: REPOS }, { cdn: "relative" });
    try {
      const cache = await freshCache();
      const p = await hfHubDownload("org/private", "weights.bin", opts(cache, { token: FAKE_HUB_TOKEN }, h));
      expect(await sha256File(p)).toBe(h.file("org/private", CP, "weights.bin").sha256);
      const get = cdnGets(h);
      expect(get).toHaveLength(1);
      expect(get[0].headers.authorization).toBe(`Bearer ${FAKE_HUB_TOKEN}`);
    } finally {
      await h.close();
    }
  });
});

describe("concurrency and locks", () => {
  it("two concurrent downloads in one process end with one intact blob and one transfer", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ throttle: { chunkBytes: 4000, delayMs: 40 } });
    const [a, b] = await Promise.all([
      hfHubDownload("org/tiny", "model.safetensors", opts(cache)),
      hfHubDownload("org/tiny", "model.safetensors", opts(cache)),
    ]);
    expect(a).toBe(b);
    expect(await sha256File(a)).toBe(sha256Hex(WEIGHTS));
    expect(cdnGets(suite.hub)).toHaveLength(1);
    expect(await listTree(path.join(cache, "models--org--tiny", "blobs"))).toEqual([sha256Hex(WEIGHTS)]);
  });

  it("two processes at once end with one intact blob", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ throttle: { chunkBytes: 2000, delayMs: 80 } }); // ~0.8 s transfer, so the two overlap
    const script = path.join(suite.root, "child-download.mts");
    await fsp.writeFile(
      script,
      `import { hfHubDownload } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "src/io/hub/hub.ts")).href)};\n` +
        `const [endpoint, cacheDir, home] = process.argv.slice(2);\n` +
        `process.stdout.write(await hfHubDownload("org/tiny", "model.safetensors", { endpoint, cacheDir, env: { HOME: home } }));\n`,
    );
    const run = () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(path.join(ROOT, "node_modules/.bin/tsx"), [script, suite.hub.endpoint, cache, suite.root], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a).toBe(path.join(cache, "models--org--tiny", "snapshots", C1, "model.safetensors"));
    expect(b).toBe(a);
    expect(await sha256File(a)).toBe(sha256Hex(WEIGHTS));
    expect(cdnGets(suite.hub)).toHaveLength(1);
    expect(await listTree(path.join(cache, "models--org--tiny", "blobs"))).toEqual([sha256Hex(WEIGHTS)]);
  });

  it("breaks a stale lock (dead pid, or not refreshed for lockStaleMs)", async () => {
    const sha = sha256Hex(WEIGHTS);
    const deadPid = await new Promise<number>((resolve) => {
      const c = spawn(process.execPath, ["-e", ""]);
      c.on("close", () => resolve(c.pid!));
    });
    const cacheA = await freshCache();
    const lockA = path.join(cacheA, "models--org--tiny", "blobs", `${sha}.lock`);
    await fsp.mkdir(path.dirname(lockA), { recursive: true });
    await fsp.writeFile(lockA, JSON.stringify({ pid: deadPid, host: os.hostname(), token: "x" }));
    expect(await sha256File(await hfHubDownload("org/tiny", "model.safetensors", opts(cacheA)))).toBe(sha);
    expect(await exists(lockA)).toBe(false);

    const cacheB = await freshCache();
    const lockB = path.join(cacheB, "models--org--tiny", "blobs", `${sha}.lock`);
    await fsp.mkdir(path.dirname(lockB), { recursive: true });
    await fsp.writeFile(lockB, JSON.stringify({ pid: process.pid, host: "another-host", token: "y" }));
    const old = new Date(Date.now() - 60_000);
    await fsp.utimes(lockB, old, old);
    expect(await sha256File(await hfHubDownload("org/tiny", "model.safetensors", opts(cacheB, { lockStaleMs: 30_000 })))).toBe(sha);
  });

  it("waits for a live lock to be released", async () => {
    const cache = await freshCache();
    const lock = path.join(cache, "models--org--tiny", "blobs", `${sha256Hex(WEIGHTS)}.lock`);
    await fsp.mkdir(path.dirname(lock), { recursive: true });
    await fsp.writeFile(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), token: "held" }));
    const t0 = Date.now();
    setTimeout(() => void fsp.rm(lock, { force: true }), 400);
    await hfHubDownload("org/tiny", "model.safetensors", opts(cache));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
  });
});

describe("inputs and paths", () => {
  it("rejects bad repo ids, file names and revisions before any request", async () => {
    const cache = await freshCache();
    for (const id of ["", "a/b/c", "-org/name", "org/name-", "org/na--me", "org/na..me", "org/name.git", "org/ná"]) {
      const e = await perceiverErrorOf(hfHubDownload(id, "config.json", opts(cache)));
      expect(e.code, id).toBe("USAGE");
      expect(e.message).toContain("repo id");
    }
    for (const f of ["", "../config.json", "a/../../b", "/etc/passwd", "a//b", "a\\b", "C:x"]) {
      const e = await perceiverErrorOf(hfHubDownload("org/tiny", f, opts(cache)));
      expect(e.code, f).toBe("USAGE");
      expect(e.message).toContain("file name");
    }
    for (const r of ["", "../x", "refs/../../x"]) {
      expect((await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(cache, { revision: r })))).code, r).toBe("USAGE");
    }
    expect(suite.hub.requests).toHaveLength(0);
    expect(repoFolderName("deepmind/vision-perceiver-conv")).toBe("models--deepmind--vision-perceiver-conv");
    expect(repoFolderName("gpt2")).toBe("models--gpt2");
  });

  it("builds resolve URLs and cache roots like huggingface_hub", () => {
    expect(hubFileUrl("org/tiny", "sub/a b.json", "refs/pr/1", "https://hub.example/")).toBe(
      "https://hub.example/org/tiny/resolve/refs%2Fpr%2F1/sub/a%20b.json",
    );
    expect(resolveCacheDir({ HOME: "/home/u" })).toBe("/home/u/.cache/huggingface/hub");
    expect(resolveCacheDir({ HOME: "/home/u", XDG_CACHE_HOME: "/xdg" })).toBe("/xdg/huggingface/hub");
    expect(resolveCacheDir({ HOME: "/home/u", HF_HOME: "~/hf" })).toBe("/home/u/hf/hub");
    expect(resolveCacheDir({ HOME: "/home/u", HF_HOME: "/hf", HF_HUB_CACHE: "/c" })).toBe("/c");
  });

  it("a cache that cannot be written is HUB_DISK naming the path", async () => {
    const file = path.join(suite.root, "not-a-dir");
    await fsp.writeFile(file, "x");
    const e = await perceiverErrorOf(hfHubDownload("org/tiny", "config.json", opts(path.join(file, "cache"))));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toContain(path.join(file, "cache"));
  });

  it("throttles progress reports to about 10 per second", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ throttle: { chunkBytes: 500, delayMs: 10 } }); // 40 chunks over ~0.5 s
    const calls: number[] = [];
    const t0 = Date.now();
    await hfHubDownload("org/tiny", "model.safetensors", opts(cache, { onProgress: () => calls.push(Date.now()) }));
    const seconds = (Date.now() - t0) / 1000;
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.length).toBeLessThanOrEqual(Math.ceil(seconds * 10) + 2);
  });
});
