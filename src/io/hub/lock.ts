/**
 * A cross-process lock file (`blobs/{etag}.lock`) so two processes never write the same blob at once.
 * Taken with an exclusive create (`open(path, "wx")`); the holder writes its pid, host and a random token and keeps
 * the file's mtime fresh while it works. A waiter polls with backoff and breaks the lock when it is stale: its mtime
 * is older than `staleMs`, or its pid (on this host) no longer runs. Breaking is atomic (see breakStale): one
 * stale generation is removed by exactly one waiter, never a newer lock taken meanwhile.
 */
import { randomBytes } from "node:crypto";
import { constants as fsConstants, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { diskOp, mkdirInCache } from "./cache.js";

export interface LockOptions {
  /** A lock not refreshed for this long is stale (default 10 minutes). */
  staleMs?: number;
  /** The cache root: the lock's folders are created below it without following symlinks. */
  cacheRoot?: string;
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

interface LockState {
  info: LockInfo | null;
  mtimeMs: number;
  /** Which generation of the lock this is: its holder's token, else (content not written yet, or foreign) its inode. */
  generation: string;
}

/** The lock file's holder, age and generation, read through one descriptor (never through a symlink); null if absent. */
async function readLock(lockPath: string): Promise<LockState | null> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(lockPath, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
  } catch {
    return null; // vanished meanwhile (or a planted symlink: not a lock we can judge)
  }
  try {
    const [st, text] = [await fh.stat(), await fh.readFile("utf8")];
    let info: LockInfo | null = null;
    try {
      const j = JSON.parse(text) as Partial<LockInfo>;
      if (typeof j.pid === "number" && typeof j.host === "string" && typeof j.token === "string") info = j as LockInfo;
    } catch {
      // being written right now, or foreign content: judge by age only
    }
    return { info, mtimeMs: st.mtimeMs, generation: info?.token ?? `inode-${st.ino}-${st.mtimeMs}` };
  } catch {
    return null;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function isStale(cur: LockState, staleMs: number): boolean {
  if (Date.now() - cur.mtimeMs > staleMs) return true;
  const info = cur.info;
  return info !== null && info.host === os.hostname() && info.pid !== process.pid && !pidAlive(info.pid);
}

/** True when the lock file's holder is gone or silent for longer than `staleMs`. */
export async function isLockStale(lockPath: string, staleMs: number): Promise<boolean> {
  const cur = await readLock(lockPath);
  return cur !== null && isStale(cur, staleMs);
}

/**
 * Removes the stale lock generation `stale`, and only it. Deleting "the lock file" after judging it stale is a race:
 * meanwhile another waiter may have broken it and taken a new lock, which would then be deleted too, and two holders
 * would write the same blob. So breaking a generation first takes `<lock>.break-<generation>` with an exclusive
 * create: of all the waiters that judged that generation stale, exactly one gets it. That one checks the lock file
 * still holds the same generation before deleting it; the others go back to waiting. A break marker left by a
 * process that died while breaking is itself stale after `staleMs` and is removed.
 */
async function breakStale(lockPath: string, stale: LockState, staleMs: number): Promise<void> {
  const marker = `${lockPath}.break-${stale.generation.replace(/[^A-Za-z0-9_.-]/g, "_")}`;
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(marker, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") return diskOp(marker, "break a stale lock", () => Promise.reject(e));
    const st = await fsp.lstat(marker).catch(() => null);
    if (st !== null && Date.now() - st.mtimeMs > staleMs) await fsp.rm(marker, { force: true });
    return; // another waiter is breaking this generation
  }
  await fh.close();
  try {
    const cur = await readLock(lockPath);
    if (cur !== null && cur.generation === stale.generation) await fsp.rm(lockPath, { force: true });
  } finally {
    await fsp.rm(marker, { force: true });
  }
}

/** Wait for and take the lock; resolves to the function that releases it. */
export async function acquireLock(lockPath: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const staleMs = opts.staleMs ?? 10 * 60_000;
  const me: LockInfo = { pid: process.pid, host: os.hostname(), token: randomBytes(8).toString("hex") };
  if (opts.cacheRoot !== undefined) await mkdirInCache(opts.cacheRoot, path.dirname(lockPath), "create the lock folder");
  else await diskOp(lockPath, "create the lock folder", () => fsp.mkdir(path.dirname(lockPath), { recursive: true }));
  let wait = 20;
  for (;;) {
    let fh: fsp.FileHandle | null = null;
    try {
      fh = await fsp.open(lockPath, "wx"); // O_CREAT|O_EXCL: fails on any existing name, a symlink included
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
    const cur = await readLock(lockPath);
    if (cur !== null && isStale(cur, staleMs)) {
      await breakStale(lockPath, cur, staleMs);
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
