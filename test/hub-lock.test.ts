/**
 * Breaking a stale lock is atomic: of the waiters that find a dead holder's lock, exactly one removes it, and never a
 * newer lock taken meanwhile. Raced in one process and across processes; the critical sections must never overlap.
 */
import { spawn } from "node:child_process";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireLock } from "../src/io/hub/lock.js";
import { hfHubDownload } from "../src/io/hub/hub.js";
import { Prng } from "../tools/fuzz/prng.js";
import { ROOT } from "./helpers/cli.js";
import { fakeCommit, sha256Hex, startFakeHub, type FakeHub } from "./helpers/fake-hub.js";

let tmpRoot: string;
let deadPid: number;

beforeAll(async () => {
  tmpRoot = await fsp.mkdtemp(path.join(os.tmpdir(), "perceiver-lock-"));
  deadPid = await new Promise<number>((resolve) => {
    const c = spawn(process.execPath, ["-e", ""]);
    c.on("close", () => resolve(c.pid!));
  });
});
afterAll(async () => {
  if (tmpRoot) await fsp.rm(tmpRoot, { recursive: true, force: true });
});

/** A lock file left by a process that no longer runs. */
const plantStale = (lock: string, token = "dead") => fsp.writeFile(lock, JSON.stringify({ pid: deadPid, host: os.hostname(), token }));

describe("stale locks are broken atomically", () => {
  it("6 callers in one process race a dead holder's lock, 10 rounds: never two inside at once", async () => {
    const dir = await fsp.mkdtemp(path.join(tmpRoot, "inproc-"));
    let maxInside = 0;
    for (let round = 0; round < 10; round++) {
      const lock = path.join(dir, `r${round}.lock`);
      await plantStale(lock, `dead-${round}`);
      let inside = 0;
      await Promise.all(Array.from({ length: 6 }, async () => {
        const release = await acquireLock(lock, { staleMs: 60_000 });
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
        await release();
      }));
    }
    expect(maxInside).toBe(1);
    expect((await fsp.readdir(dir)).filter((f) => f.includes(".break-"))).toEqual([]); // no break marker left
  }, 60_000);

  it("4 processes race dead holders' locks, 8 rounds started in step: their critical sections never overlap", async () => {
    const dir = await fsp.mkdtemp(path.join(tmpRoot, "procs-"));
    const rounds = 8;
    for (let k = 0; k < rounds; k++) await plantStale(path.join(dir, `r${k}.lock`), `dead-${k}`);
    const script = path.join(dir, "child.mts");
    // Every child waits for the same instants (t0 + k * 300 ms), so all of them find round k's stale lock together.
    await fsp.writeFile(script,
      `import { appendFileSync } from "node:fs";\n` +
      `import { acquireLock } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "src/io/hub/lock.ts")).href)};\n` +
      `const [dir, t0, rounds] = process.argv.slice(2);\n` +
      `for (let k = 0; k < Number(rounds); k++) {\n` +
      `  await new Promise((r) => setTimeout(r, Math.max(0, Number(t0) + k * 300 - Date.now())));\n` +
      `  const release = await acquireLock(dir + "/r" + k + ".lock", { staleMs: 60_000 });\n` +
      `  appendFileSync(dir + "/log" + k, "enter " + process.pid + "\\n");\n` +
      `  await new Promise((r) => setTimeout(r, 10));\n` +
      `  appendFileSync(dir + "/log" + k, "leave " + process.pid + "\\n");\n` +
      `  await release();\n` +
      `}\n`);
    const t0 = Date.now() + 6000; // after every child has started
    const run = () => new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", script, dir, String(t0), String(rounds)], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`child exited ${code}: ${err}`))));
    });
    await Promise.all([run(), run(), run(), run()]);
    for (let k = 0; k < rounds; k++) {
      const lines = (await fsp.readFile(path.join(dir, `log${k}`), "utf8")).trim().split("\n");
      expect(lines).toHaveLength(8);
      for (let i = 0; i < lines.length; i += 2) {
        const [a, pa] = lines[i].split(" ");
        const [b, pb] = lines[i + 1].split(" ");
        expect([a, b, pa === pb], `round ${k}, lines ${i}-${i + 1}: ${lines[i]} / ${lines[i + 1]}`).toEqual(["enter", "leave", true]);
      }
    }
  }, 120_000);
});

describe("downloads racing a stale lock", () => {
  const C1 = fakeCommit("lock-1");
  const WEIGHTS = new Prng(3).bytes(40_000);
  let hub: FakeHub;
  beforeAll(async () => {
    hub = await startFakeHub({ repos: { "org/lock": { commits: { [C1]: { files: { "model.safetensors": WEIGHTS } } }, refs: { main: C1 } } } });
  });
  afterAll(async () => hub?.close());

  it("5 concurrent downloads over a dead holder's lock all succeed with the intact file (no HUB_DISK/HUB_INTEGRITY)", async () => {
    for (let round = 0; round < 5; round++) {
      const cache = await fsp.mkdtemp(path.join(tmpRoot, "dl-"));
      const blobs = path.join(cache, "models--org--lock", "blobs");
      await fsp.mkdir(blobs, { recursive: true });
      await plantStale(path.join(blobs, `${sha256Hex(WEIGHTS)}.lock`));
      hub.setFaults({ throttle: { chunkBytes: 8000, delayMs: 10 } });
      const paths = await Promise.all(Array.from({ length: 5 }, () =>
        hfHubDownload("org/lock", "model.safetensors", { endpoint: hub.endpoint, cacheDir: cache, env: { HOME: tmpRoot }, retryDelayMs: 1 })));
      for (const p of paths) expect(sha256Hex(await fsp.readFile(p))).toBe(sha256Hex(WEIGHTS));
    }
  }, 60_000);
});
