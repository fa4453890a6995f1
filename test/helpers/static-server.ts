/**
 * Two small HTTP servers on 127.0.0.1 for the browser test:
 *
 *   startStaticServer(root)   serves a built site (GET/HEAD, index.html for "/", 404 otherwise, no caching)
 *   startCorsProxy(target)    forwards every request to `target` (the fake hub) and adds the CORS headers the real
 *                             hub sends, so a page on another origin can fetch from it; redirects that point at the
 *                             target are rewritten to point at the proxy. Bodies are streamed through unchanged,
 *                             so the fake hub's faults (stalls, throttling, cut connections) reach the browser.
 */
import { createReadStream, promises as fsp } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";

export interface LocalServer {
  /** e.g. `http://127.0.0.1:41234` */
  readonly url: string;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
  ".map": "application/json",
};

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: http.Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/**
 * Serves the files under `root`. `crossOriginIsolated` adds COOP same-origin and COEP require-corp to every
 * response, which makes the page (and its workers) cross-origin isolated: SharedArrayBuffer, worker threads.
 */
export async function startStaticServer(root: string, opts: { crossOriginIsolated?: boolean } = {}): Promise<LocalServer> {
  const isolation: Record<string, string> = opts.crossOriginIsolated
    ? { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" }
    : {};
  const base = normalize(root + sep);
  const server = http.createServer(async (req, res) => {
    req.resume();
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const file = normalize(join(base, pathname.endsWith("/") ? `${pathname}index.html` : pathname));
    if (!file.startsWith(base)) {
      res.writeHead(403).end();
      return;
    }
    const st = await fsp.stat(file).catch(() => null);
    if (st === null || !st.isFile()) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
      return;
    }
    res.writeHead(200, {
      ...isolation,
      "Content-Type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
      "Content-Length": st.size,
      "Cache-Control": "no-store",
    });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  const url = await listen(server);
  return { url, close: closer(server) };
}

/** The headers huggingface.co lets pages read (Access-Control-Expose-Headers). */
const EXPOSED = [
  "X-Repo-Commit", "X-Request-Id", "X-Error-Code", "X-Error-Message", "X-Linked-Size", "X-Linked-ETag", "ETag",
  "Content-Length", "Content-Range", "Accept-Ranges", "Location",
].join(", ");

export async function startCorsProxy(target: string): Promise<LocalServer> {
  const upstream = new URL(target);
  let self = "";
  const server = http.createServer((req, res) => {
    const cors: Record<string, string> = {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Expose-Headers": EXPOSED,
    };
    if (req.method === "OPTIONS") {
      req.resume();
      res.writeHead(204, {
        ...cors,
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": req.headers["access-control-request-headers"] ?? "*",
        "Access-Control-Max-Age": "600",
      }).end();
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    delete headers.origin; // the fake hub does not look at it; real CDNs answer the same with or without
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (upRes) => {
        const out: http.OutgoingHttpHeaders = { ...upRes.headers, ...cors };
        const loc = upRes.headers.location;
        if (loc !== undefined && loc.startsWith(upstream.origin)) out.location = self + loc.slice(upstream.origin.length);
        res.writeHead(upRes.statusCode ?? 502, out);
        upRes.pipe(res);
        upRes.on("error", () => res.destroy());
        upRes.on("aborted", () => res.destroy());
        // a body cut short upstream (closed connection) must reach the browser as a cut, not as a clean end
        upRes.on("close", () => {
          if (!upRes.complete) res.destroy();
        });
      },
    );
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { ...cors, "Content-Type": "text/plain" }).end("Bad Gateway");
      else res.destroy();
    });
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  self = await listen(server);
  return { url: self, close: closer(server) };
}
