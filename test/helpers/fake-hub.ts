/**
 * A local stand-in for the Hugging Face hub on 127.0.0.1, for tests. It answers like huggingface.co:
 *
 *   HEAD/GET /{org}/{name}/resolve/{rev}/{file}   rev URL-decoded (`refs%2Fpr%2F1`), a branch/tag/PR ref or a commit
 *     small files:  200 with the bytes, `ETag: "<git blob sha1>"`, `X-Repo-Commit`
 *     LFS files:    302 to `{cdn}/cdn/{sha256}` with `X-Repo-Commit`, `X-Linked-Etag: "<sha256>"`, `X-Linked-Size`
 *     errors:       404 + `X-Error-Code` RepoNotFound / RevisionNotFound / EntryNotFound; 401 for a private repo
 *                   without `Authorization: Bearer <token>`; 401/403 GatedRepo for a gated one
 *   GET/HEAD /cdn/{sha256}                        the bytes, `Accept-Ranges: bytes`, 206 for `Range: bytes=a-[b]`
 *
 * Every request is logged (method, path, headers, status). `faults` (mutable at any time) inject failures.
 *
 *   const hub = await startFakeHub({ repos: { "org/name": { commits: { [sha]: { files: { "config.json": "{}" } } },
 *                                                          refs: { main: sha } } } });
 *   await hfHubDownload("org/name", "config.json", { endpoint: hub.endpoint, cacheDir });
 *   await hub.close();
 */
import { createHash } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export type FakeFile = Uint8Array | string;

export interface FakeRepo {
  /** 40-hex commit id -> files (path in repo -> content). */
  commits: Record<string, { files: Record<string, FakeFile> }>;
  /** Branches, tags and PR refs (e.g. `main`, `v1.0`, `refs/pr/1`) -> commit id. */
  refs?: Record<string, string>;
  /** "private": 401 RepoNotFound without the token; "gated": 401 (no token) / 403 (wrong token) GatedRepo. */
  access?: "public" | "private" | "gated";
}

export interface FakeHubFaults {
  /** Content responses close the connection after this many body bytes. */
  dropAfterBytes?: number;
  /** How many content responses to cut that way (default: all). Counts down. */
  dropTimes?: number;
  /** "metadata": resolve requests are never answered. "content": content responses send their headers and
   *  `stallAfterBytes` bytes (default 0), then nothing. */
  stall?: "metadata" | "content";
  stallAfterBytes?: number;
  /** Ignore `Range` and answer 200 with the whole file. */
  ignoreRange?: boolean;
  /** Flip the byte at this offset of the file in content responses. */
  corruptAt?: number;
  /** Declare `Content-Length` + delta on content responses: negative cuts the body to that length, positive sends the
   *  real body and then closes the connection. */
  contentLengthDelta?: number;
  /** Announce a size off by this much in the metadata (`X-Linked-Size`, or a small file's HEAD `Content-Length`). */
  linkedSizeDelta?: number;
  /** Answer 200 with an HTML page and no hub headers: "metadata" for resolve requests, "content" for content. */
  htmlPage?: "metadata" | "content";
  /** Send content bodies `chunkBytes` at a time, `delayMs` apart. */
  throttle?: { chunkBytes: number; delayMs: number };
  /** Answer every resolve request with this HTTP status (e.g. 500, 503). */
  status?: number;
}

export interface FakeHubOptions {
  faults?: FakeHubFaults;
  /** Token that opens private and gated repos (default FAKE_HUB_TOKEN). */
  token?: string;
  /** Which files are served through the CDN (default: over 1 KiB, or *.safetensors / *.bin / *.pt / *.pth / *.onnx). */
  isLfs?: (filename: string, bytes: Uint8Array) => boolean;
  /** Where LFS redirects point: an absolute URL on this server (default), a relative one, or a second listener on
   *  another port (another origin, like the real CDN). */
  cdn?: "same-origin" | "relative" | "cross-origin";
  /** false: HEAD of an LFS file answers 200 with its metadata (as some mirrors do) while GET still redirects. */
  lfsHeadRedirect?: boolean;
  /** Renamed repos, old id -> new id: answered with a relative 307 like the real hub. */
  renames?: Record<string, string>;
}

export interface RequestLog {
  server: "hub" | "cdn";
  method: string;
  /** Raw path and query, e.g. `/org/name/resolve/refs%2Fpr%2F1/config.json`. */
  url: string;
  /** Lower-cased request headers. */
  headers: Record<string, string>;
  /** Status sent, or null if the request was never answered (stall). */
  status: number | null;
}

export interface FakeHub {
  /** Use as `endpoint` / HF_ENDPOINT, e.g. `http://127.0.0.1:41234`. */
  readonly endpoint: string;
  /** Origin of the CDN listener (equals `endpoint` unless `cdn: "cross-origin"`). */
  readonly cdnEndpoint: string;
  readonly requests: RequestLog[];
  /** Current faults; assign fields, or call setFaults. */
  faults: FakeHubFaults;
  setFaults(f: FakeHubFaults): void;
  clearRequests(): void;
  /** Facts about a served file, for assertions. */
  file(repoId: string, commit: string, filename: string): { bytes: Uint8Array; sha256: string; gitSha1: string; lfs: boolean };
  close(): Promise<void>;
}

export const FAKE_HUB_TOKEN = "hf_fake_token_for_tests";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Git's blob id: sha1("blob <size>\0" + bytes), the hub's ETag for non-LFS files. */
export function gitBlobSha1(bytes: Uint8Array): string {
  return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

/** A deterministic 40-hex commit id from any label. */
export function fakeCommit(label: string): string {
  return createHash("sha1").update(`commit ${label}`).digest("hex");
}

const defaultIsLfs = (name: string, bytes: Uint8Array) => bytes.length > 1024 || /\.(safetensors|bin|pt|pth|onnx|msgpack|h5)$/.test(name);

const toBytes = (f: FakeFile) => (typeof f === "string" ? new TextEncoder().encode(f) : f);

const HTML_PAGE = "<!doctype html><html><body><h1>Proxy error</h1><p>Access denied by policy.</p></body></html>";

export async function startFakeHub(spec: { repos: Record<string, FakeRepo> }, options: FakeHubOptions = {}): Promise<FakeHub> {
  const token = options.token ?? FAKE_HUB_TOKEN;
  const isLfs = options.isLfs ?? defaultIsLfs;
  const cdnMode = options.cdn ?? "same-origin";
  const requests: RequestLog[] = [];
  let faults: FakeHubFaults = { ...options.faults };
  const bySha = new Map<string, Uint8Array>();
  for (const repo of Object.values(spec.repos)) {
    for (const c of Object.values(repo.commits)) {
      for (const f of Object.values(c.files)) {
        const b = toBytes(f);
        bySha.set(sha256Hex(b), b);
      }
    }
  }

  let hubOrigin = "";
  let cdnOrigin = "";

  function logOf(server: "hub" | "cdn", req: http.IncomingMessage): RequestLog {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    const entry: RequestLog = { server, method: req.method ?? "", url: req.url ?? "", headers, status: null };
    requests.push(entry);
    return entry;
  }

  function answer(entry: RequestLog, res: http.ServerResponse, status: number, headers: Record<string, string | number>, body?: Uint8Array | string) {
    entry.status = status;
    const b = typeof body === "string" ? new TextEncoder().encode(body) : body;
    res.writeHead(status, { "Content-Length": b?.length ?? 0, ...headers });
    res.end(b);
  }

  function errorAnswer(entry: RequestLog, res: http.ServerResponse, status: number, code: string | null, message: string, extra: Record<string, string> = {}) {
    const headers: Record<string, string> = { "Content-Type": "application/json", "X-Error-Message": message, ...extra };
    if (code !== null) headers["X-Error-Code"] = code;
    answer(entry, res, status, headers, JSON.stringify({ error: message }));
  }

  /** Bytes of a file (whole, or a Range), with all content faults applied. */
  function serveContent(entry: RequestLog, req: http.IncomingMessage, res: http.ServerResponse, bytes: Uint8Array, headers: Record<string, string>) {
    if (faults.htmlPage === "content") {
      answer(entry, res, 200, { "Content-Type": "text/html; charset=utf-8" }, HTML_PAGE);
      return;
    }
    const size = bytes.length;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const out: Record<string, string | number> = { "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", ...headers };
    if (range && !faults.ignoreRange) {
      start = Number(range[1]);
      if (range[2] !== "") end = Math.min(end, Number(range[2]));
      if (start >= size || start > end) {
        answer(entry, res, 416, { "Content-Range": `bytes */${size}` });
        return;
      }
      status = 206;
      out["Content-Range"] = `bytes ${start}-${end}/${size}`;
    }
    let body = Uint8Array.from(bytes.subarray(start, end + 1));
    if (faults.corruptAt !== undefined && faults.corruptAt >= start && faults.corruptAt <= end) body[faults.corruptAt - start] ^= 0xff;
    const declared = Math.max(0, body.length + (faults.contentLengthDelta ?? 0));
    const overDeclared = declared > body.length;
    if (declared < body.length) body = body.subarray(0, declared);
    out["Content-Length"] = declared;
    entry.status = status;
    if (req.method === "HEAD") {
      res.writeHead(status, out);
      res.end();
      return;
    }
    if (faults.stall === "content") {
      res.writeHead(status, out);
      res.write(body.subarray(0, faults.stallAfterBytes ?? 0)); // ...and never more
      return;
    }
    const drop = faults.dropAfterBytes;
    if (drop !== undefined && drop < body.length && (faults.dropTimes === undefined || faults.dropTimes > 0)) {
      if (faults.dropTimes !== undefined) faults.dropTimes--;
      res.writeHead(status, out);
      res.write(body.subarray(0, drop), () => res.socket?.destroy());
      return;
    }
    res.writeHead(status, out);
    const finish = () => (overDeclared ? res.socket?.destroy() : res.end());
    const t = faults.throttle;
    if (t === undefined) {
      res.write(body, finish);
      return;
    }
    let off = 0;
    const step = () => {
      if (res.destroyed) return;
      if (off >= body.length) return finish();
      const n = Math.max(1, t.chunkBytes);
      res.write(body.subarray(off, off + n));
      off += n;
      setTimeout(step, t.delayMs);
    };
    step();
  }

  function serveCdn(entry: RequestLog, req: http.IncomingMessage, res: http.ServerResponse, sha: string) {
    const bytes = bySha.get(sha);
    if (bytes === undefined) {
      answer(entry, res, 404, { "Content-Type": "text/plain" }, "NoSuchKey");
      return;
    }
    serveContent(entry, req, res, bytes, { ETag: `"${sha}"` });
  }

  function serveResolve(entry: RequestLog, req: http.IncomingMessage, res: http.ServerResponse, segs: string[], at: number) {
    if (faults.stall === "metadata") return; // never answered
    if (faults.htmlPage === "metadata") {
      answer(entry, res, 200, { "Content-Type": "text/html; charset=utf-8" }, HTML_PAGE); // no body on HEAD
      return;
    }
    if (faults.status !== undefined) {
      errorAnswer(entry, res, faults.status, null, `Internal Error - We're working hard to fix this as soon as possible!`);
      return;
    }
    const repoId = segs.slice(0, at).map(decodeURIComponent).join("/");
    const rename = options.renames?.[repoId];
    if (rename !== undefined) {
      const rest = segs.slice(at).join("/");
      answer(entry, res, 307, { Location: `/${rename}/${rest}`, "Content-Type": "text/plain" }, `Temporary Redirect. Redirecting to /${rename}/${rest}`);
      return;
    }
    const repo = spec.repos[repoId];
    if (repo === undefined) {
      errorAnswer(entry, res, 404, "RepoNotFound", "Repository not found");
      return;
    }
    const auth = req.headers.authorization;
    if (repo.access === "private" && auth !== `Bearer ${token}`) {
      errorAnswer(entry, res, 401, "RepoNotFound", auth ? "Invalid credentials in Authorization header" : "Repository not found");
      return;
    }
    if (repo.access === "gated" && auth !== `Bearer ${token}`) {
      errorAnswer(entry, res, auth ? 403 : 401, "GatedRepo", `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      return;
    }
    if (segs.length < at + 3) {
      errorAnswer(entry, res, 404, "EntryNotFound", "Entry not found");
      return;
    }
    const rev = decodeURIComponent(segs[at + 1]);
    const commit = repo.commits[rev] !== undefined ? rev : repo.refs?.[rev];
    if (commit === undefined || repo.commits[commit] === undefined) {
      errorAnswer(entry, res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
      return;
    }
    const filename = segs.slice(at + 2).map(decodeURIComponent).join("/");
    const content = repo.commits[commit].files[filename];
    if (content === undefined) {
      errorAnswer(entry, res, 404, "EntryNotFound", `${filename} does not exist on "${rev}"`, { "X-Repo-Commit": commit });
      return;
    }
    const bytes = toBytes(content);
    const announced = String(bytes.length + (faults.linkedSizeDelta ?? 0));
    if (isLfs(filename, bytes)) {
      const sha = sha256Hex(bytes);
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${bytes.length}\n`;
      const meta = { "X-Repo-Commit": commit, "X-Linked-Etag": `"${sha}"`, "X-Linked-Size": announced, ETag: `W/"${gitBlobSha1(toBytes(pointer))}"` };
      if (req.method === "HEAD" && options.lfsHeadRedirect === false) {
        entry.status = 200;
        res.writeHead(200, { ...meta, ETag: `"${sha}"`, "Content-Length": announced, "Accept-Ranges": "bytes" });
        res.end();
        return;
      }
      const base = cdnMode === "relative" ? "" : cdnMode === "cross-origin" ? cdnOrigin : hubOrigin;
      const location = `${base}/cdn/${sha}`;
      answer(entry, res, 302, { ...meta, Location: location, "Content-Type": "text/plain" }, `Found. Redirecting to ${location}`);
      return;
    }
    const meta = { "X-Repo-Commit": commit, ETag: `"${gitBlobSha1(bytes)}"` };
    if (req.method === "HEAD") {
      entry.status = 200;
      res.writeHead(200, { ...meta, "Content-Length": announced, "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes" });
      res.end();
      return;
    }
    serveContent(entry, req, res, bytes, meta);
  }

  function handler(server: "hub" | "cdn") {
    return (req: http.IncomingMessage, res: http.ServerResponse) => {
      const entry = logOf(server, req);
      req.resume();
      if (req.method !== "GET" && req.method !== "HEAD") {
        answer(entry, res, 405, {});
        return;
      }
      const pathname = (req.url ?? "/").split("?")[0];
      const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(pathname);
      if (cdn) {
        serveCdn(entry, req, res, cdn[1]);
        return;
      }
      const segs = pathname.split("/").slice(1);
      const at = segs.indexOf("resolve");
      if (server === "cdn" || at < 1 || at > 2) {
        answer(entry, res, 404, { "Content-Type": "text/plain" }, "Not Found");
        return;
      }
      serveResolve(entry, req, res, segs, at);
    };
  }

  const listen = async (server: http.Server) => {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };
  const hubServer = http.createServer(handler("hub"));
  hubOrigin = await listen(hubServer);
  let cdnServer: http.Server | null = null;
  cdnOrigin = hubOrigin;
  if (cdnMode === "cross-origin") {
    cdnServer = http.createServer(handler("cdn"));
    cdnOrigin = await listen(cdnServer);
  }

  const shut = (s: http.Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });

  return {
    endpoint: hubOrigin,
    cdnEndpoint: cdnOrigin,
    requests,
    get faults() {
      return faults;
    },
    set faults(f: FakeHubFaults) {
      faults = { ...f };
    },
    setFaults(f: FakeHubFaults) {
      faults = { ...f };
    },
    clearRequests() {
      requests.length = 0;
    },
    file(repoId, commit, filename) {
      const f = spec.repos[repoId]?.commits[commit]?.files[filename];
      if (f === undefined) throw new Error(`fake hub has no ${filename} in ${repoId}@${commit}`);
      const bytes = toBytes(f);
      return { bytes, sha256: sha256Hex(bytes), gitSha1: gitBlobSha1(bytes), lfs: isLfs(filename, bytes) };
    },
    async close() {
      await Promise.all([shut(hubServer), cdnServer ? shut(cdnServer) : Promise.resolve()]);
    },
  };
}
