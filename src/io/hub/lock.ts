/**
 * A cross-process lock file (`blobs/{etag}.lock`) so two processes never write the same blob at once.
 * Taken with an exclusive create (`open(path, "wx")`); the holder writes its pid, host and a random token and keeps
 * the file's mtime fresh while it works. A waiter polls with backoff and breaks the lock when it is stale: its mtime
 * is older than `staleMs`, or its pid (on this host) no longer runs.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { diskOp } from "./cache.js";

export interface LockOptions {
  /** A lock not refreshed for this long is stale (default 10 minutes). */
  staleMs?: number;
}

interface LockInfo {
  pid: number;
  host: string;
  token: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

async function readLock(lockPath: string): Promise<{ info: LockInfo | null; mtimeMs: number } | null> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(lockPath, "utf8"), fsp.stat(lockPath)]);
    let info: LockInfo | null = null;
    try {
      const j = JSON.parse(text) as Partial<LockInfo>;
      if (typeof j.pid === "number" && typeof j.host === "string" && typeof j.token === "string") info = j as LockInfo;
    } catch {
      // being written right now, or foreign content: judge by age only
    }
    return { info, mtimeMs: st.mtimeMs };
  } catch {
    return null; // vanished meanwhile
  }
}

/** True when the lock file's holder is gone or silent for longer than `staleMs`. */
export async function isLockStale(lockPath: string, staleMs: number): Promise<boolean> {
  const cur = await readLock(lockPath);
  if (cur === null) return false;
  if (Date.now() - cur.mtimeMs > staleMs) return true;
  const info = cur.info;
  return info !== null && info.host === os.hostname() && info.pid !== process.pid && !pidAlive(info.pid);
}

/** Wait for and take the lock; resolves to the function that releases it. */
export async function acquireLock(lockPath: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const staleMs = opts.staleMs ?? 10 * 60_000;
  const me: LockInfo = { pid: process.pid, host: os.hostname(), token: randomBytes(8).toString("hex") };
  await diskOp(lockPath, "create the lock folder", () => fsp.mkdir(path.dirname(lockPath), { recursive: true }));
  let wait = 20;
  for (;;) {
    let fh: fsp.FileHandle | null = null;
    try {
      fh = await fsp.open(lockPath, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        await diskOp(lockPath, "create the lock file", () => Promise.reject(e));
      }
    }
    if (fh !== null) {
      try {
        await fh.writeFile(JSON.stringify(me));
      } finally {
        await fh.close();
      }
      return holdLock(lockPath, me, staleMs);
    }
    if (await isLockStale(lockPath, staleMs)) {
      await fsp.rm(lockPath, { force: true });
      continue;
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 500);
  }
}

function holdLock(lockPath: string, me: LockInfo, staleMs: number): () => Promise<void> {
  const refresh = setInterval(() => {
    const now = new Date();
    fsp.utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(50, Math.min(30_000, Math.floor(staleMs / 3))));
  refresh.unref();
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    clearInterval(refresh);
    const cur = await readLock(lockPath);
    // Only remove the file if it is still ours (someone may have judged us stale and taken over).
    if (cur !== null && cur.info?.token === me.token) await fsp.rm(lockPath, { force: true });
  };
}
