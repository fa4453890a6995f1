/**
 * Streams one blob to `blobs/{etag}.incomplete`, resuming with `Range: bytes={size}-`, retrying transfers cut short
 * (like huggingface_hub's http_get), then checks size and, for LFS files, sha256 before renaming it to `blobs/{etag}`.
 * The caller holds the blob's lock.
 *
 * Bounds: an absolute deadline for the whole file (all attempts and pauses), a retry budget that only real progress
 * (progressStep bytes in an attempt) refills, and a size cap (maxBytes) on what is written, announced or not.
 */
import { createHash } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";
import * as path from "node:path";
import { PerceiverError } from "../../errors.js";
import { diskOp, openInCache, SHA256_RE, toDiskError } from "./cache.js";
import { header, requestWithRedirects, type HttpResponse } from "./http.js";

export interface BlobDownload {
  /** Where the bytes are (the CDN location from the metadata request, or the resolve URL). */
  url: URL;
  /** Request headers; Authorization only when `url` is on the hub's own origin. */
  headers: Record<string, string>;
  etag: string;
  /** From the metadata (X-Linked-Size / Content-Length); null when the server did not say. */
  expectedSize: number | null;
  incompletePath: string;
  blobPath: string;
  /** The cache root: every file written stays inside it (no symlink followed). */
  cacheRoot: string;
  /** No-progress timeout of the transfer. */
  timeoutMs: number;
  /** Absolute deadline (epoch ms) for the whole download, all attempts included. */
  deadline: number;
  /** Most bytes the file may have; the download fails past it (announced or not). */
  maxBytes: number;
  /** Attempts after a transfer fails without progress (one that wrote progressStep bytes refills the budget). */
  maxRetries: number;
  retryDelayMs: number;
  /** Human description for messages, e.g. `model.safetensors of org/name (revision main)`. */
  what: string;
  onProgress?: (downloaded: number, total: number | null) => void;
  /** Error for a non-2xx answer to the content request. */
  httpError: (res: HttpResponse) => PerceiverError;
  /** Error for a connection failure or idle timeout (HUB_NETWORK / HUB_TIMEOUT: these are retried). */
  netError: (e: unknown) => PerceiverError;
  /** Error once the deadline has passed (not retried). */
  deadlineError: () => PerceiverError;
  /** Error when the file is (or would be) larger than maxBytes. */
  tooLargeError: (bytes: number) => PerceiverError;
}

/**
 * An attempt must write this much to count as progress and refill the retry budget: 1 MiB, or 1/64 of a smaller
 * announced file. So a file can refill it at most 64 times (or once per MiB), however its server trickles.
 */
export function progressStep(expectedSize: number | null): number {
  const MiB = 1 << 20;
  return expectedSize === null ? MiB : Math.max(1, Math.min(MiB, Math.ceil(expectedSize / 64)));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function sizeOf(p: string): Promise<number> {
  try {
    return (await fsp.stat(p)).size;
  } catch {
    return 0;
  }
}

/** Reports at most every 100 ms, plus forced reports at the start and end. */
function throttled(cb: BlobDownload["onProgress"]): (done: number, total: number | null, force?: boolean) => void {
  let last = -Infinity;
  return (done, total, force = false) => {
    if (cb === undefined) return;
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    cb(done, total);
  };
}

const GIT_SHA1_RE = /^[0-9a-f]{40}$/i;

const isTransient = (e: unknown) => e instanceof PerceiverError && (e.code === "HUB_NETWORK" || e.code === "HUB_TIMEOUT");

/** Download, verify and move into place. Throws HUB_INTEGRITY (partial file removed), HUB_DISK, or a network error. */
export async function downloadBlob(d: BlobDownload): Promise<void> {
  const report = throttled(d.onProgress);
  let budget = d.maxRetries;
  if (d.expectedSize !== null && d.expectedSize > d.maxBytes) throw d.tooLargeError(d.expectedSize);
  await diskOp(d.incompletePath, "create the blobs folder", () => fsp.mkdir(path.dirname(d.incompletePath), { recursive: true }));
  if (d.expectedSize === 0) await truncate(d);
  for (;;) {
    const before = await sizeOf(d.incompletePath);
    try {
      await transferOnce(d, before, report, true);
      break;
    } catch (e) {
      if (Date.now() >= d.deadline) throw d.deadlineError();
      if (!isTransient(e)) throw e;
      // Only real progress refills the budget: a server that sends a byte per attempt must not retry forever.
      if ((await sizeOf(d.incompletePath)) - before >= progressStep(d.expectedSize)) budget = d.maxRetries;
      if (budget-- <= 0) throw e;
      if (Date.now() + d.retryDelayMs >= d.deadline) throw d.deadlineError();
      await sleep(d.retryDelayMs);
    }
  }
  await verifyAndCommit(d);
}

/** Empties (or creates) the partial file, without following a symlink planted in its place. */
async function truncate(d: BlobDownload): Promise<void> {
  const fh = await openInCache(d.cacheRoot, d.incompletePath, "w", "truncate the partial download");
  await fh.close();
}

/** Parse `Content-Range: bytes start-end/total` -> start, or null. */
function rangeStart(res: HttpResponse): number | null {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header(res, "content-range")?.trim() ?? "");
  return m ? Number(m[1]) : null;
}

async function transferOnce(
  d: BlobDownload,
  resumeFrom: number,
  report: (done: number, total: number | null, force?: boolean) => void,
  mayRestart: boolean,
): Promise<void> {
  let resume = resumeFrom;
  if (d.expectedSize !== null && resume === d.expectedSize) return; // all there already: just verify
  if ((d.expectedSize !== null && resume > d.expectedSize) || resume > d.maxBytes) {
    await truncate(d);
    resume = 0;
  }
  const headers = { ...d.headers };
  if (resume > 0) headers.Range = `bytes=${resume}-`;
  let res: HttpResponse;
  try {
    res = await requestWithRedirects("GET", d.url, headers, { timeoutMs: d.timeoutMs, deadline: d.deadline }, () => true);
  } catch (e) {
    throw d.netError(e);
  }

  let append: boolean;
  if (res.status === 206 && resume > 0) {
    const start = rangeStart(res);
    if (start !== null && start !== resume) {
      // The server sent another range than asked: start over from zero.
      res.discard();
      if (!mayRestart) throw new PerceiverError("HUB_HTTP", `the server sent byte range ${start}- for ${d.what} instead of ${resume}-`);
      await truncate(d);
      return transferOnce(d, 0, report, false);
    }
    append = true;
  } else if (res.status === 200 || (res.status === 206 && rangeStart(res) === 0)) {
    append = false; // a full body: a Range that was ignored means restarting from zero
  } else if (res.status === 416 && resume > 0 && mayRestart) {
    res.discard();
    await truncate(d);
    return transferOnce(d, 0, report, false);
  } else {
    res.discard();
    throw d.httpError(res);
  }

  const contentLength = Number(header(res, "content-length") ?? NaN);
  let done = append ? resume : 0;
  const total = d.expectedSize ?? (Number.isFinite(contentLength) ? done + contentLength : null);
  if (total !== null && total > d.maxBytes) {
    res.discard();
    await fsp.rm(d.incompletePath, { force: true }).catch(() => undefined);
    throw d.tooLargeError(total);
  }
  let fh: fsp.FileHandle;
  try {
    fh = await openInCache(d.cacheRoot, d.incompletePath, append ? "a" : "w", "write the download");
  } catch (e) {
    res.discard();
    throw e;
  }
  try {
    report(done, total, true);
    try {
      for await (const chunk of res.chunks()) {
        try {
          await fh.write(chunk);
        } catch (e) {
          const de = toDiskError(e, d.incompletePath, "write the download");
          throw de instanceof PerceiverError
            ? de
            : new PerceiverError("HUB_DISK", `could not write ${d.incompletePath}: ${(e as Error).message}`, { cause: e });
        }
        done += chunk.length;
        if (d.expectedSize !== null && done > d.expectedSize) {
          throw await integrityError(d, `the server sent more than the announced ${d.expectedSize} bytes`);
        }
        if (done > d.maxBytes) {
          await fsp.rm(d.incompletePath, { force: true }).catch(() => undefined);
          throw d.tooLargeError(done);
        }
        report(done, total);
      }
    } catch (e) {
      throw e instanceof PerceiverError ? e : d.netError(e);
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
  report(done, total, true);
}

async function integrityError(d: BlobDownload, why: string): Promise<PerceiverError> {
  await fsp.rm(d.incompletePath, { force: true }).catch(() => undefined);
  return new PerceiverError(
    "HUB_INTEGRITY",
    `download of ${d.what} is corrupt: ${why}. The partial file was removed; run the command again to retry.`,
  );
}

async function sha256File(p: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** Git's blob id of a file: sha1("blob <size>\0" + bytes), the hub's ETag for files not stored in LFS. */
async function gitBlobSha1File(p: string, size: number): Promise<string> {
  const h = createHash("sha1").update(`blob ${size}\0`);
  for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function verifyAndCommit(d: BlobDownload): Promise<void> {
  const size = await sizeOf(d.incompletePath);
  if (d.expectedSize !== null && size !== d.expectedSize) {
    throw await integrityError(d, `got ${size} bytes, the hub announced ${d.expectedSize}`);
  }
  // Hex digests are compared in lower case: a proxy or mirror may send them upper-cased.
  const etag = d.etag.toLowerCase();
  if (SHA256_RE.test(etag)) {
    const got = await diskOp(d.incompletePath, "read back the download", () => sha256File(d.incompletePath));
    if (got !== etag) throw await integrityError(d, `its sha256 is ${got}, the hub's ETag says ${d.etag}`);
  } else if (GIT_SHA1_RE.test(etag)) {
    // A small file's ETag is its git blob id: a flipped byte would otherwise pass the size check alone.
    const got = await diskOp(d.incompletePath, "read back the download", () => gitBlobSha1File(d.incompletePath, size));
    if (got !== etag) throw await integrityError(d, `its git sha1 is ${got}, the hub's ETag says ${d.etag}`);
  }
  await diskOp(d.blobPath, "move the finished download into place", () => fsp.rename(d.incompletePath, d.blobPath));
}
