/**
 * One file over `fetch` (browsers, Web Workers, Node >= 20), for the web loader (perceiver/load-web.ts):
 *   - the body is streamed, with progress at most every 50 ms and at the end;
 *   - a transfer that receives nothing for `timeoutMs` fails with HUB_TIMEOUT (no hang);
 *   - a transfer cut short is resumed where it stopped with `Range: bytes={received}-` (up to `maxRetries` times in a
 *     row, `retryDelayMs` apart; progress resets the count); a server that answers the Range with 200 starts over;
 *   - `onSegment` receives the bytes in whole segments as they arrive, so a caller can keep them (file-cache.ts)
 *     and pass them back as `resume` after the page was closed: the transfer then continues after them;
 *   - the bytes received must add up to the announced size, and when the server's ETag is a SHA-256 (the hub's
 *     CDN names LFS files by it) the content must hash to it (HUB_INTEGRITY otherwise);
 *   - hub errors are read from `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound) as the hub sends them.
 * No Node built-ins.
 */
import { PerceiverError } from "../../errors.js";
import { concatBytes } from "../image/common.js";

export interface FetchFileOptions {
  /** Name of the file in messages and progress, e.g. "config.json". */
  file: string;
  /** A 404 that is not RepoNotFound / RevisionNotFound answers null instead of throwing. */
  optional?: boolean;
  timeoutMs: number;
  maxRetries: number;
  retryDelayMs: number;
  onProgress?: (loaded: number, total: number | null) => void;
  /** For tests: the fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** The first bytes of this file, kept from an interrupted load (whole segments), and what the server said then. */
  resume?: PartialFile;
  /** Receives segment `index` (bytes [index·segmentBytes, (index+1)·segmentBytes)) once it has fully arrived. */
  onSegment?: (index: number, bytes: Uint8Array, meta: PartialMeta) => Promise<void>;
  /** Called when kept segments turn out stale (the server sent the whole file again, or another one). */
  onRestart?: () => Promise<void>;
  /** Segment size for onSegment (default 8 MiB). */
  segmentBytes?: number;
  /** Largest file accepted (default MAX_FILE_BYTES); checked against the announced size, then while receiving. */
  maxBytes?: number;
}

/** What identifies the file a segment belongs to. */
export interface PartialMeta {
  total: number;
  etag: string | null;
  segmentBytes: number;
}

export interface PartialFile extends PartialMeta {
  /** the kept segments, in order from the start of the file */
  segments: Uint8Array[];
}

export const DEFAULT_SEGMENT_BYTES = 8 * 2 ** 20;

/** Largest file accepted (a Uint8Array in one piece; the ImageNet checkpoints are ~200 MB). */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

const SHA256_ETAG = /^"?([0-9a-f]{64})"?$/;

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function httpError(res: Response, url: string, file: string): Promise<PerceiverError> {
  const code = res.headers.get("x-error-code");
  const serverMessage = res.headers.get("x-error-message");
  await res.body?.cancel().catch(() => undefined);
  const detail = serverMessage ? ` (server: ${serverMessage})` : "";
  if (res.status === 404) {
    const what =
      code === "RepoNotFound" ? "repository not found (or private: no token is sent from here)" :
      code === "RevisionNotFound" ? "revision not found in this repository" :
      code === "EntryNotFound" ? `${file} is not in this revision` : "not found";
    return new PerceiverError("HUB_NOT_FOUND", `${file}: HTTP 404 for ${url}: ${what}${detail}`);
  }
  if (res.status === 401 || res.status === 403) {
    return new PerceiverError("HUB_UNAUTHORIZED",
      `${file}: HTTP ${res.status} for ${url}: the repository is private or gated and no token is sent from here; ` +
      `download the files yourself and load them from local files${detail}`);
  }
  return new PerceiverError("HUB_HTTP", `${file}: HTTP ${res.status} ${res.statusText} for ${url}${detail}`);
}

/** Whether a 404 means "this file is absent" (so an optional file may be skipped) rather than a wrong repo/revision. */
function isMissingEntry(res: Response): boolean {
  const code = res.headers.get("x-error-code");
  return res.status === 404 && code !== "RepoNotFound" && code !== "RevisionNotFound";
}

/** GET `url` -> its bytes (null: an optional file that is not there). Every failure is a PerceiverError (HUB_*). */
export async function fetchFile(url: string, opts: FetchFileOptions): Promise<Uint8Array | null> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const { file } = opts;
  const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  const maxBytes = Math.min(opts.maxBytes ?? MAX_FILE_BYTES, MAX_FILE_BYTES);
  let chunks: Uint8Array[] = [];
  let loaded = 0;
  let total: number | null = null;
  let etag: string | null = null;
  let failures = 0;
  // bytes received but not yet handed to onSegment (they start at segment `flushed`)
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let flushed = 0;
  const resume = opts.resume;
  if (resume && resume.segmentBytes === segmentBytes && resume.segments.length > 0) {
    chunks = [...resume.segments];
    loaded = resume.segments.reduce((n, b) => n + b.length, 0);
    total = resume.total;
    etag = resume.etag;
    flushed = resume.segments.length;
    if (loaded > total) {
      chunks = [];
      [loaded, total, etag, flushed] = [0, null, null, 0];
      await opts.onRestart?.();
    }
  }
  /** Hands every whole segment received to onSegment. */
  const flush = async () => {
    if (!opts.onSegment || total === null) return;
    while (pendingBytes >= segmentBytes) {
      const all = concatBytes(pending);
      const seg = all.slice(0, segmentBytes);
      const rest = all.subarray(segmentBytes);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
      await opts.onSegment(flushed, seg, { total, etag, segmentBytes });
      flushed++;
    }
  };
  const restart = async () => {
    if (flushed > 0) await opts.onRestart?.();
    chunks = [];
    loaded = 0;
    pending = [];
    pendingBytes = 0;
    flushed = 0;
  };
  let lastPost = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (force || now - lastPost >= 50) {
      lastPost = now;
      opts.onProgress?.(loaded, total);
    }
  };

  while (total === null || loaded < total) {
    const ctrl = new AbortController();
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        ctrl.abort();
      }, opts.timeoutMs);
    };
    const stalled = () =>
      new PerceiverError("HUB_TIMEOUT", `${file}: no data from ${url} for ${opts.timeoutMs / 1000} s; the server stalled (try again later)`);
    const resuming = loaded > 0;
    arm();
    try {
      let res: Response;
      try {
        const headers: Record<string, string> = resuming ? { Range: `bytes=${loaded}-` } : {};
        res = await doFetch(url, { signal: ctrl.signal, headers, credentials: "omit" });
      } catch (e) {
        if (timedOut) throw stalled();
        throw new PerceiverError("HUB_NETWORK",
          `${file}: could not reach ${url} (${errorText(e)}). Check the address and your connection; a server on another ` +
          `origin must also allow cross-origin requests (CORS).`);
      }
      if (!res.ok) {
        if (opts.optional && !resuming && isMissingEntry(res)) {
          await res.body?.cancel().catch(() => undefined);
          return null;
        }
        throw await httpError(res, url, file);
      }
      const resTag = res.headers.get("etag");
      if (resuming && res.status === 206) {
        // the part must start where we stopped, of the same file
        const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
        if (!range || Number(range[1]) !== loaded || (total !== null && Number(range[3]) !== total) || (etag !== null && resTag !== null && resTag !== etag)) {
          // another range, or another version of the file: what we have is stale
          await res.body?.cancel().catch(() => undefined);
          await restart();
          throw new PerceiverError("HUB_INTEGRITY", `${file}: ${url} answered the resume request with another range or file (${res.headers.get("content-range")}); try again`);
        }
      } else {
        // 200: the whole file (also when a Range was ignored: start over)
        await restart();
        const length = res.headers.get("content-length");
        total = length !== null && /^\d+$/.test(length) ? Number(length) : null;
        etag = resTag;
      }
      if (total !== null && total > maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw new PerceiverError("HUB_HTTP", `${file}: ${url} is ${total} bytes, more than the ${maxBytes} accepted for this file`);
      }
      report(true);
      if (res.body === null) throw new PerceiverError("HUB_HTTP", `${file}: empty response from ${url}`);
      const reader = res.body.getReader();
      for (;;) {
        let r: ReadableStreamReadResult<Uint8Array>;
        try {
          r = await reader.read();
        } catch (e) {
          if (timedOut) throw stalled();
          throw new PerceiverError("HUB_NETWORK", `${file}: the download from ${url} broke off after ${loaded} bytes (${errorText(e)})`);
        }
        if (r.done) break;
        arm();
        if (r.value.length > 0) failures = 0;
        chunks.push(r.value);
        loaded += r.value.length;
        pending.push(r.value);
        pendingBytes += r.value.length;
        if (loaded > (total ?? maxBytes)) {
          await reader.cancel().catch(() => undefined);
          throw total === null
            ? new PerceiverError("HUB_HTTP", `${file}: ${url} sent more than the ${maxBytes} bytes accepted for this file`)
            : new PerceiverError("HUB_INTEGRITY", `${file}: ${url} sent more than the ${total} bytes announced`);
        }
        await flush();
        report(false);
      }
      if (total !== null && loaded < total) {
        throw new PerceiverError("HUB_NETWORK", `${file}: the download from ${url} broke off after ${loaded} of ${total} bytes`);
      }
    } catch (e) {
      // a cut transfer of a file whose size is known is resumed; anything else is final
      const resumable = e instanceof PerceiverError && e.code === "HUB_NETWORK" && loaded > 0 && total !== null;
      if (!resumable || failures >= opts.maxRetries) throw e;
      failures++;
      clearTimeout(timer);
      await new Promise((r) => setTimeout(r, opts.retryDelayMs));
      continue;
    } finally {
      clearTimeout(timer);
    }
    if (total === null) total = loaded; // the size was not announced: what arrived is the file
  }
  report(true);
  const bytes = concatBytes(chunks);
  const sha = SHA256_ETAG.exec(etag ?? "");
  if (sha && globalThis.crypto?.subtle) {
    const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    if (hex !== sha[1]) {
      throw new PerceiverError("HUB_INTEGRITY", `${file}: the ${loaded} bytes from ${url} hash to sha256 ${hex}, the server named ${sha[1]}`);
    }
  }
  return bytes;
}
