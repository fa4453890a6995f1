/**
 * Minimal HTTP client for the hub on node:http / node:https: one request per hop, redirects followed by the caller's
 * rule, an idle timer (no bytes for `timeoutMs`, including connecting and waiting for headers) so a stalled server
 * becomes an error instead of a hang, and an optional absolute deadline that a trickle of bytes cannot push back.
 * Bodies are streamed chunk by chunk, never buffered whole; a body nobody wants (a redirect's, an error page) is
 * closed at once, not drained, so no socket or timer outlives the request and the process can exit.
 */
import * as http from "node:http";
import * as https from "node:https";

const HIGH_WATER = 1 << 20;

export const USER_AGENT = `perceiver-ts; node/${process.versions.node}`;

/** Raised (as the request's or body's error) when the server sends nothing for `ms` milliseconds. */
export class IdleTimeoutError extends Error {
  readonly code = "HUB_IDLE_TIMEOUT";
  constructor(readonly ms: number, readonly url: string) {
    super(`no data from ${url} for ${ms} ms`);
  }
}

/** Raised (as the request's or body's error) when the request's absolute deadline passes. */
export class DeadlineError extends Error {
  readonly code = "HUB_DEADLINE";
  constructor(readonly url: string) {
    super(`the deadline passed while reading ${url}`);
  }
}

/** Timing of one request: `timeoutMs` without a byte is an error; so is still running at `deadline` (epoch ms). */
export interface RequestTiming {
  timeoutMs: number;
  deadline?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The URL that produced this response (after any redirects). */
  readonly url: URL;
  /** The request headers that were sent for this hop (Authorization may have been dropped on a redirect). */
  readonly sentHeaders: Record<string, string>;
  /** Body chunks; each one re-arms the idle timer. Errors (reset, idle timeout) are thrown from the iteration. */
  chunks(): AsyncGenerator<Buffer>;
  /** Throw the body away: the response is destroyed (its connection closed), never drained. */
  discard(): void;
}

/** One header as a string ("" joins repeated headers), or undefined. */
export function header(res: { headers: http.IncomingHttpHeaders }, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(", ") : v;
}

/** A single request, no redirects followed. Resolves once the status line and headers have arrived. */
export function httpRequest(
  method: "GET" | "HEAD",
  url: URL,
  headers: Record<string, string>,
  timing: RequestTiming,
  retryStaleSocket = true,
): Promise<HttpResponse> {
  const { timeoutMs, deadline } = timing;
  return new Promise((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : url.protocol === "http:" ? http : null;
    if (mod === null) {
      reject(new Error(`unsupported URL protocol ${url.protocol} in ${url.href}`));
      return;
    }
    if (deadline !== undefined && Date.now() >= deadline) {
      reject(new DeadlineError(url.href));
      return;
    }
    let res: http.IncomingMessage | null = null;
    let timer: NodeJS.Timeout | null = null;
    let deadlineTimer: NodeJS.Timeout | null = null;
    const abort = (err: Error) => {
      if (res !== null) res.destroy(err);
      else req.destroy(err);
    };
    const stop = () => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    };
    /** Both timers off: the request is over (ended, failed or closed). */
    const done = () => {
      stop();
      if (deadlineTimer !== null) clearTimeout(deadlineTimer);
      deadlineTimer = null;
    };
    const kick = () => {
      stop();
      timer = setTimeout(() => abort(new IdleTimeoutError(timeoutMs, url.href)), timeoutMs);
    };
    const req = mod.request(url, { method, headers });
    kick();
    if (deadline !== undefined) deadlineTimer = setTimeout(() => abort(new DeadlineError(url.href)), Math.max(0, deadline - Date.now()));
    req.on("error", (e) => {
      done();
      // A kept-alive connection the server closed just as we reused it: retry once on a fresh one (Node's advice).
      const code = (e as NodeJS.ErrnoException).code;
      if (res === null && retryStaleSocket && req.reusedSocket && (code === "ECONNRESET" || code === "EPIPE")) {
        httpRequest(method, url, headers, timing, false).then(resolve, reject);
        return;
      }
      reject(e);
    });
    req.on("response", (r) => {
      res = r;
      kick();
      // Read eagerly into a small queue (paused above HIGH_WATER bytes): a connection that drops right after
      // sending data must not take the already received bytes with it, as a destroyed stream's buffer would.
      const queue: Buffer[] = [];
      let queued = 0;
      let ended = false;
      let discarded = false;
      let failure: unknown = null;
      let wake: (() => void) | null = null;
      const notify = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      r.on("data", (chunk: Buffer) => {
        if (discarded) return;
        kick();
        queue.push(chunk);
        queued += chunk.length;
        if (queued > HIGH_WATER) r.pause();
        notify();
      });
      r.on("end", () => {
        done();
        if (!r.complete) failure ??= Object.assign(new Error("connection closed before the body was complete"), { code: "ECONNRESET" });
        ended = true;
        notify();
      });
      r.on("error", (e) => {
        done();
        failure ??= e;
        notify();
      });
      r.on("close", () => {
        done();
        if (!ended) failure ??= Object.assign(new Error("connection closed before the body was complete"), { code: "ECONNRESET" });
        notify();
      });
      resolve({
        status: r.statusCode ?? 0,
        headers: r.headers,
        url,
        sentHeaders: headers,
        chunks: async function* () {
          try {
            for (;;) {
              const chunk = queue.shift();
              if (chunk !== undefined) {
                queued -= chunk.length;
                if (queued <= HIGH_WATER / 2 && r.isPaused()) r.resume();
                if (!ended && failure === null) kick();
                yield chunk;
                continue;
              }
              if (failure !== null) throw failure;
              if (ended) return;
              await new Promise<void>((w) => (wake = w));
            }
          } finally {
            if (!ended) r.destroy(); // the consumer stopped early
            done();
          }
        },
        discard: () => {
          // Closed, not drained: a body that never ends (or trickles) must not keep a socket, a timer or the process
          // alive. Reusing the connection is not worth that risk.
          // A response that has no body by protocol (HEAD, Content-Length 0) ends by itself: let it, so its
          // connection is kept for the next request.
          discarded = true;
          queue.length = 0;
          queued = 0;
          if (!ended) {
            if (method === "HEAD" || r.headers["content-length"] === "0") r.resume();
            else r.destroy();
          }
          done();
        },
      });
    });
    req.end();
  });
}

export const isRedirect = (status: number) => status === 301 || status === 302 || status === 303 || status === 307 || status === 308;

/**
 * Request `url`, following redirects while `follow(res)` says so (at most 10 hops). The Authorization header is not
 * sent to an origin other than the first one (a CDN with a signed URL must not see the user's token).
 */
export async function requestWithRedirects(
  method: "GET" | "HEAD",
  url: URL,
  headers: Record<string, string>,
  timing: RequestTiming,
  follow: (res: HttpResponse) => boolean,
): Promise<HttpResponse> {
  const origin = url.origin;
  let cur = url;
  let hdrs = { ...headers };
  for (let hop = 0; ; hop++) {
    const res = await httpRequest(method, cur, hdrs, timing);
    if (!isRedirect(res.status) || !follow(res)) return res;
    const location = header(res, "location");
    if (location === undefined) return res;
    res.discard();
    if (hop >= 10) throw Object.assign(new Error(`more than 10 redirects starting at ${url.href}`), { code: "ETOOMANYREDIRECTS" });
    cur = new URL(location, cur);
    if (cur.origin !== origin) hdrs = withoutAuthorization(hdrs);
  }
}

export function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== "authorization") out[k] = v;
  return out;
}
