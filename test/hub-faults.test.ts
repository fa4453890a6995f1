/**
 * Download faults test/hub.test.ts does not cover, against the fake hub: connections dropped at seeded random points
 * (the partial file is always a true prefix, the finished blob always intact), a corrupt small (non-LFS) file, a
 * corrupt partial download left by an earlier run, and disk failures in the middle of a transfer (a full disk via
 * /dev/full, a directory where the partial file, the blob or the snapshot entry goes). After every fault the cache
 * must hold no corrupt blob under blobs/ and nothing reachable under snapshots/ that is not the real file.
 */
import { createHash } from "node:crypto";
import { existsSync, promises as fsp } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { Prng } from "../tools/fuzz/prng.js";
import { hfHubDownload } from "../src/io/hub/hub.js";
import { fakeCommit, gitBlobSha1, sha256Hex } from "./helpers/fake-hub.js";
import { perceiverErrorOf } from "./helpers/errors.js";
import { useFakeHub } from "./helpers/hub-suite.js";

const C1 = fakeCommit("faults-1");
const WEIGHTS = new Prng(11).bytes(50_000); // LFS: served by the CDN, ETag = sha256
const CONFIG = JSON.stringify({ model_type: "perceiver", d_latents: 8, note: "x".repeat(300) }); // small: ETag = git sha1
const REPO = "org/faulty";
const REPO_DIR = "models--org--faulty";

const suite = useFakeHub("hub-faults", { [REPO]: { commits: { [C1]: { files: { "config.json": CONFIG, "model.safetensors": WEIGHTS } } }, refs: { main: C1 } } }, { retryDelayMs: 1 });
const { freshCache, opts } = suite;

/**
 * The cache invariant: every file under blobs/ is complete and correct (named by its sha256 or git sha1), every
 * .incomplete file is a prefix of the real bytes, and every entry under snapshots/ resolves to the real file.
 */
async function expectCacheSound(cache: string): Promise<void> {
  const real = new Map<string, Uint8Array>([[sha256Hex(WEIGHTS), WEIGHTS], [gitBlobSha1(new TextEncoder().encode(CONFIG)), new TextEncoder().encode(CONFIG)]]);
  const blobs = path.join(cache, REPO_DIR, "blobs");
  for (const name of existsSync(blobs) ? await fsp.readdir(blobs) : []) {
    const p = path.join(blobs, name);
    const st = await fsp.lstat(p);
    if (name.endsWith(".lock")) continue;
    if (!st.isFile()) continue; // a directory planted by the test
    const bytes = new Uint8Array(await fsp.readFile(p));
    if (name.endsWith(".incomplete")) {
      const want = real.get(name.slice(0, -".incomplete".length))!;
      expect(bytes.length, name).toBeLessThanOrEqual(want.length);
      expect(Buffer.compare(bytes, want.subarray(0, bytes.length)), `${name} is not a prefix of the file`).toBe(0);
    } else {
      const want = real.get(name);
      expect(want, `unknown blob ${name}`).toBeDefined();
      expect(Buffer.compare(bytes, want!), `blob ${name} is corrupt`).toBe(0);
    }
  }
  const snap = path.join(cache, REPO_DIR, "snapshots", C1);
  for (const f of ["config.json", "model.safetensors"]) {
    const p = path.join(snap, f);
    if (!existsSync(p)) continue;
    const st = await fsp.stat(p).catch(() => null);
    if (st === null || !st.isFile()) continue; // dangling or a planted directory: not a readable file
    const want = f === "config.json" ? new TextEncoder().encode(CONFIG) : WEIGHTS;
    expect(Buffer.compare(new Uint8Array(await fsp.readFile(p)), want), `snapshots/${f} is not the real file`).toBe(0);
  }
}

describe("connections dropped at random points", () => {
  it("each cut leaves a true prefix; retries and resumes end with the intact file", async () => {
    const rng = new Prng(2024);
    for (let k = 0; k < 8; k++) {
      const cache = await freshCache();
      const cut = rng.int(WEIGHTS.length);
      // one cut, no retries: the call fails, the partial file is a prefix, nothing is reachable yet
      suite.hub.setFaults({ dropAfterBytes: cut, dropTimes: 1 });
      const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache, { maxRetries: 0 })));
      expect(e.code, `cut at ${cut}`).toBe("HUB_NETWORK");
      await expectCacheSound(cache);
      expect(existsSync(path.join(cache, REPO_DIR, "snapshots", C1, "model.safetensors"))).toBe(false);
      // three more cuts at random points of the resumed transfers, then it goes through within one call
      suite.hub.setFaults({ dropAfterBytes: rng.int(WEIGHTS.length >> 2) + 1, dropTimes: 3 });
      const p = await hfHubDownload(REPO, "model.safetensors", opts(cache, { maxRetries: 5 }));
      expect(sha256Hex(await fsp.readFile(p))).toBe(sha256Hex(WEIGHTS));
      await expectCacheSound(cache);
    }
  });

  it("a small file cut short is HUB_INTEGRITY or HUB_NETWORK and never reaches snapshots/", async () => {
    const rng = new Prng(7);
    for (let k = 0; k < 5; k++) {
      const cache = await freshCache();
      suite.hub.setFaults({ dropAfterBytes: rng.int(CONFIG.length), dropTimes: 1 });
      const e = await perceiverErrorOf(hfHubDownload(REPO, "config.json", opts(cache, { maxRetries: 0 })));
      expect(["HUB_NETWORK", "HUB_INTEGRITY"]).toContain(e.code);
      await expectCacheSound(cache);
      expect(existsSync(path.join(cache, REPO_DIR, "snapshots", C1, "config.json"))).toBe(false);
    }
  });
});

describe("corruption", () => {
  it("a small (non-LFS) file with a flipped byte is caught by its git sha1 ETag", async () => {
    const cache = await freshCache();
    suite.hub.setFaults({ corruptAt: 17 });
    const e = await perceiverErrorOf(hfHubDownload(REPO, "config.json", opts(cache)));
    expect(e.code).toBe("HUB_INTEGRITY");
    expect(e.message).toContain("config.json");
    expect(e.message).toMatch(/sha1/);
    await expectCacheSound(cache);
    expect(existsSync(path.join(cache, REPO_DIR, "snapshots", C1, "config.json"))).toBe(false);
    suite.hub.setFaults({});
    expect(await fsp.readFile(await hfHubDownload(REPO, "config.json", opts(cache)), "utf8")).toBe(CONFIG);
  });

  it("a corrupt partial file from an earlier run is caught after the resume, removed, and the retry works", async () => {
    const cache = await freshCache();
    const blobs = path.join(cache, REPO_DIR, "blobs");
    await fsp.mkdir(blobs, { recursive: true });
    const junk = WEIGHTS.slice(0, 20_000);
    junk[1234] ^= 0x40; // a bad sector, or another program's bytes
    await fsp.writeFile(path.join(blobs, `${sha256Hex(WEIGHTS)}.incomplete`), junk);
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_INTEGRITY");
    expect(suite.hub.requests.some((r) => r.headers.range === "bytes=20000-")).toBe(true); // it did resume
    await expectCacheSound(cache);
    expect(await fsp.readdir(blobs)).toEqual([]);
    const p = await hfHubDownload(REPO, "model.safetensors", opts(cache));
    expect(sha256Hex(await fsp.readFile(p))).toBe(sha256Hex(WEIGHTS));
  });
});

describe("disk failures during the transfer", () => {
  const blobPath = (cache: string) => path.join(cache, REPO_DIR, "blobs", sha256Hex(WEIGHTS));

  it("a symlink planted as the partial file (to /dev/full) is refused, never written through; it works once removed", async () => {
    if (!existsSync("/dev/full")) return; // Linux only
    const cache = await freshCache();
    await fsp.mkdir(path.dirname(blobPath(cache)), { recursive: true });
    await fsp.symlink("/dev/full", `${blobPath(cache)}.incomplete`);
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toMatch(/is a symlink .* refusing to write through it/);
    expect(e.message).toContain(`${sha256Hex(WEIGHTS)}.incomplete`);
    expect(existsSync(blobPath(cache))).toBe(false);
    expect(existsSync(path.join(cache, REPO_DIR, "snapshots", C1, "model.safetensors"))).toBe(false);
    expect(existsSync(`${blobPath(cache)}.lock`)).toBe(false); // the lock was released
    await fsp.rm(`${blobPath(cache)}.incomplete`);
    expect(sha256Hex(await fsp.readFile(await hfHubDownload(REPO, "model.safetensors", opts(cache))))).toBe(sha256Hex(WEIGHTS));
    await expectCacheSound(cache);
  });

  it("a directory where the partial file goes is HUB_DISK naming it", async () => {
    const cache = await freshCache();
    await fsp.mkdir(`${blobPath(cache)}.incomplete`, { recursive: true });
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toContain(".incomplete");
    expect(existsSync(blobPath(cache))).toBe(false);
    await expectCacheSound(cache);
  });

  it("a directory where the blob goes: the finished download cannot be moved into place, HUB_DISK", async () => {
    const cache = await freshCache();
    await fsp.mkdir(path.join(blobPath(cache), "in-the-way"), { recursive: true });
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toContain("move the finished download into place");
    expect(existsSync(path.join(cache, REPO_DIR, "snapshots", C1, "model.safetensors"))).toBe(false);
    await expectCacheSound(cache);
  });

  it("a directory where the snapshot entry goes: HUB_DISK, and the blob itself is intact", async () => {
    const cache = await freshCache();
    await fsp.mkdir(path.join(cache, REPO_DIR, "snapshots", C1, "model.safetensors", "in-the-way"), { recursive: true });
    const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", opts(cache)));
    expect(e.code).toBe("HUB_DISK");
    expect(e.message).toContain(path.join("snapshots", C1, "model.safetensors"));
    expect(createHash("sha256").update(await fsp.readFile(blobPath(cache))).digest("hex")).toBe(sha256Hex(WEIGHTS));
    await expectCacheSound(cache);
  });
});

describe("a hub that answers nonsense", () => {
  it("an LFS redirect to an unparseable Location is HUB_HTTP (not a TypeError), and nothing is cached", async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(302, {
        "X-Repo-Commit": C1, "X-Linked-Etag": `"${sha256Hex(WEIGHTS)}"`, "X-Linked-Size": String(WEIGHTS.length),
        Location: "http://[::1", "Content-Length": 0,
      });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const cache = await freshCache();
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const e = await perceiverErrorOf(hfHubDownload(REPO, "model.safetensors", { ...opts(cache), endpoint }));
      expect(e.code).toBe("HUB_HTTP");
      expect(e.message).toContain("invalid Location");
      expect(existsSync(path.join(cache, REPO_DIR, "blobs"))).toBe(false);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
