/**
 * Download files from the Hugging Face hub into a cache shared with huggingface_hub (Python), mirroring its
 * `hf_hub_download`:
 *
 *   1. a commit revision whose snapshot file exists is returned with no network request;
 *   2. otherwise one HEAD `{endpoint}/{repo}/resolve/{revision}/{file}` (redirects to the CDN not followed) gives the
 *      commit (X-Repo-Commit), the blob id (X-Linked-Etag or ETag) and size (X-Linked-Size or Content-Length);
 *   3. refs/{revision} records the commit; an existing snapshot file or blob is reused;
 *   4. else, under `blobs/{etag}.lock`, the blob is streamed (resumable), verified and linked into snapshots/.
 * Offline (HF_HUB_OFFLINE=1) or when the hub cannot be reached, the cache alone answers, through refs/.
 * Node only (file system and node:http); the model itself never needs this module.
 */
import { promises as fsp, readFileSync } from "node:fs";
import * as path from "node:path";
import { PerceiverError } from "../../errors.js";
import { downloadBlob } from "./download.js";
import {
  COMMIT_HASH_RE,
  isFile,
  linkSnapshot,
  RepoCache,
  resolveCacheDir,
  resolveHfHome,
  validateFilename,
  validateRepoId,
  validateRevision,
  type Env,
} from "./cache.js";
import { DeadlineError, header, IdleTimeoutError, isRedirect, requestWithRedirects, USER_AGENT, type HttpResponse } from "./http.js";
import { acquireLock } from "./lock.js";

export { repoFolderName, resolveCacheDir } from "./cache.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";
export const DEFAULT_REVISION = "main";

export interface HubProgress {
  file: string;
  downloaded: number;
  total: number | null;
}

export interface HubOptions {
  /** Branch, tag, 40-hex commit or `refs/pr/N` (default "main"). */
  revision?: string;
  /** Hub URL (default `$HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** Bearer token (default `$HF_TOKEN`, then the token file `$HF_HOME/token`); `false` sends none. */
  token?: string | false;
  /** Cache root (default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Use only the cache (default: `$HF_HUB_OFFLINE` is 1/true/yes/on). */
  offline?: boolean;
  /** Download again even if cached. */
  forceDownload?: boolean;
  /** Called at the start, at most ~10 times a second during, and at the end of a download. */
  onProgress?: (p: HubProgress) => void;
  /** Metadata request: no-answer timeout (default `$HF_HUB_ETAG_TIMEOUT` s, else 10 s). */
  fetchTimeoutMs?: number;
  /** Content transfer: no-progress timeout (default `$HF_HUB_DOWNLOAD_TIMEOUT` s, else 60 s). */
  downloadTimeoutMs?: number;
  /**
   * Overall deadline for one file's transfer, all retries included: a server that trickles bytes cannot keep it
   * going past this (default `$PERCEIVER_HUB_DEADLINE` s, else 3600 s). The partial file is kept for a later resume.
   */
  deadlineMs?: number;
  /**
   * Largest file accepted, whether or not the hub announces a size (default `$PERCEIVER_HUB_MAX_FILE_BYTES`, else
   * 64 MiB for .json/.txt/.md files and 64 GiB for others): a config.json cannot grow to a gigabyte.
   */
  maxFileBytes?: number;
  /** Retries of a transfer cut short, resuming where it stopped (default 5; an attempt that brought 1 MiB refills it). */
  maxRetries?: number;
  /** Pause before such a retry (default 1000 ms). */
  retryDelayMs?: number;
  /** A lock file not refreshed for this long is taken over (default 10 minutes). */
  lockStaleMs?: number;
  /** Environment to read HF_* variables from (default process.env). */
  env?: Env;
}

interface Ctx {
  repoId: string;
  filename: string;
  revision: string;
  endpoint: string;
  cache: RepoCache;
  token: string | null;
  offline: boolean;
  force: boolean;
  fetchTimeoutMs: number;
  downloadTimeoutMs: number;
  deadlineMs: number;
  maxFileBytes: number;
  opts: HubOptions;
}

/** Default cap of a file's size: text files (configs, label lists) are small; weights can be large. */
export function defaultMaxFileBytes(filename: string): number {
  return /\.(json|txt|md)$/i.test(filename) ? 64 * 2 ** 20 : 64 * 2 ** 30;
}

const isTrue = (v: string | undefined) => v !== undefined && ["1", "on", "yes", "true"].includes(v.trim().toLowerCase());

function secondsEnv(env: Env, name: string): number | undefined {
  const v = Number(env[name]);
  return env[name] !== undefined && Number.isFinite(v) && v > 0 ? v * 1000 : undefined;
}

function bytesEnv(env: Env, name: string): number | undefined {
  const v = env[name]?.trim();
  return v !== undefined && /^\d+$/.test(v) && Number(v) > 0 ? Number(v) : undefined;
}

function resolveToken(opts: HubOptions, env: Env): string | null {
  if (opts.token === false) return null;
  const explicit = opts.token ?? env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  if (explicit !== undefined) return explicit.trim() || null;
  try {
    return readFileSync(env.HF_TOKEN_PATH ?? path.join(resolveHfHome(env), "token"), "utf8").trim() || null;
  } catch {
    return null;
  }
}

function context(repoId: string, filename: string, opts: HubOptions): Ctx {
  const env = opts.env ?? process.env;
  validateRepoId(repoId);
  validateFilename(filename);
  const revision = opts.revision ?? DEFAULT_REVISION;
  validateRevision(revision);
  const endpoint = (opts.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, "");
  try {
    new URL(endpoint);
  } catch {
    throw new PerceiverError("USAGE", `invalid hub endpoint ${JSON.stringify(endpoint)} (HF_ENDPOINT): expected a URL like ${DEFAULT_ENDPOINT}`);
  }
  return {
    repoId,
    filename,
    revision,
    endpoint,
    cache: new RepoCache(path.resolve(opts.cacheDir ?? resolveCacheDir(env)), repoId),
    token: resolveToken(opts, env),
    offline: opts.offline ?? (isTrue(env.HF_HUB_OFFLINE) || isTrue(env.TRANSFORMERS_OFFLINE)),
    force: opts.forceDownload ?? false,
    fetchTimeoutMs: opts.fetchTimeoutMs ?? secondsEnv(env, "HF_HUB_ETAG_TIMEOUT") ?? 10_000,
    downloadTimeoutMs: opts.downloadTimeoutMs ?? secondsEnv(env, "HF_HUB_DOWNLOAD_TIMEOUT") ?? 60_000,
    deadlineMs: opts.deadlineMs ?? secondsEnv(env, "PERCEIVER_HUB_DEADLINE") ?? 3_600_000,
    maxFileBytes: opts.maxFileBytes ?? bytesEnv(env, "PERCEIVER_HUB_MAX_FILE_BYTES") ?? defaultMaxFileBytes(filename),
    opts,
  };
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`, revision fully URL-encoded (`refs/pr/1` -> `refs%2Fpr%2F1`). */
export function hubFileUrl(repoId: string, filename: string, revision = DEFAULT_REVISION, endpoint = DEFAULT_ENDPOINT): string {
  const file = filename.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${repoId}/resolve/${encodeURIComponent(revision)}/${file}`;
}

const what = (c: Ctx) => `${c.filename} of ${c.repoId} (revision ${c.revision})`;

function offlineHint(c: Ctx): string {
  return (
    `Without network, pass --model <folder> with a local checkpoint, or use files already in the cache ` +
    `(${c.cache.cacheDir}) with HF_HUB_OFFLINE=1.`
  );
}

/** Connection failures and idle timeouts -> HUB_NETWORK / HUB_TIMEOUT, with what to do next. */
function netError(c: Ctx, e: unknown, stage: string): PerceiverError {
  if (e instanceof PerceiverError) return e;
  if (e instanceof DeadlineError) return deadlineError(c);
  if (e instanceof IdleTimeoutError) {
    return new PerceiverError(
      "HUB_TIMEOUT",
      `the Hugging Face hub at ${c.endpoint} could not be reached in time while ${stage} ${what(c)}: ` +
        `no data for ${e.ms / 1000} s from ${e.url}. ${offlineHint(c)}`,
      { cause: e },
    );
  }
  const code = (e as NodeJS.ErrnoException)?.code ?? "";
  const msg = (e as Error)?.message ?? String(e);
  const tls = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)
    ? " (a TLS certificate problem: behind a proxy that re-signs traffic, set NODE_EXTRA_CA_CERTS to its CA file)"
    : "";
  return new PerceiverError(
    "HUB_NETWORK",
    `the Hugging Face hub at ${c.endpoint} could not be reached while ${stage} ${what(c)}: ${code ? `${code} ` : ""}${msg}${tls}. ` +
      offlineHint(c),
    { cause: e },
  );
}

/** The transfer ran past its overall deadline: HUB_TIMEOUT, not retried; the partial file stays for a resume. */
function deadlineError(c: Ctx): PerceiverError {
  return new PerceiverError(
    "HUB_TIMEOUT",
    `downloading ${what(c)} did not finish within ${c.deadlineMs / 1000} s (the overall deadline; set ` +
      `PERCEIVER_HUB_DEADLINE in seconds to allow more). What arrived is kept: run the command again to resume.`,
  );
}

/** Non-2xx answers -> HUB_UNAUTHORIZED / HUB_NOT_FOUND / HUB_HTTP naming repo, file and revision. */
function httpError(c: Ctx, res: HttpResponse): PerceiverError {
  const code = header(res, "x-error-code");
  const serverSays = header(res, "x-error-message");
  const extra = serverSays ? ` (the hub says: ${serverSays})` : "";
  const s = res.status;
  if (code === "GatedRepo") {
    return new PerceiverError(
      "HUB_UNAUTHORIZED",
      `${c.repoId} is a gated repo (HTTP ${s}): accept its conditions at ${c.endpoint}/${c.repoId} while logged in, ` +
        `then set HF_TOKEN to an access token of that account${extra}`,
    );
  }
  if (s === 401 || s === 403) {
    const tokenNote = c.token
      ? "the token in use (HF_TOKEN) was rejected or has no access to it: check HF_TOKEN"
      : "no token was sent: set HF_TOKEN to an access token (see huggingface.co/settings/tokens)";
    return new PerceiverError(
      "HUB_UNAUTHORIZED",
      `access to ${c.repoId} was refused (HTTP ${s}) while getting ${c.filename} at revision ${c.revision}: the repo is ` +
        `gated or private, or its name is wrong; ${tokenNote}${extra}`,
    );
  }
  if (s === 404) {
    const msg =
      code === "RepoNotFound"
        ? `repository ${c.repoId} not found on ${c.endpoint}: check its name (if it is private, set HF_TOKEN)`
        : code === "RevisionNotFound"
          ? `revision "${c.revision}" not found in ${c.repoId}: check the branch, tag or commit`
          : code === "EntryNotFound"
            ? `file ${c.filename} not found in ${c.repoId} at revision ${c.revision}`
            : `${c.filename} of ${c.repoId} at revision ${c.revision} was not found (HTTP 404 from ${res.url.href}): ` +
              `check the repo id, revision and file name`;
    return new PerceiverError("HUB_NOT_FOUND", msg + extra);
  }
  const kind = s === 429 ? "too many requests (rate limited): wait and retry" : s >= 500 ? "a server error: retry later" : "unexpected";
  return new PerceiverError("HUB_HTTP", `the hub answered HTTP ${s} for ${res.url.href} (${kind})${extra}`);
}

interface FileMetadata {
  commit: string;
  etag: string;
  size: number | null;
  /** Where the bytes are: the CDN URL for LFS files, else the resolve URL (after same-site redirects). */
  location: URL;
}

type MetadataResult =
  | { kind: "ok"; meta: FileMetadata }
  | { kind: "http"; error: PerceiverError; status: number; errorCode: string | undefined }
  | { kind: "network"; error: PerceiverError }
  | { kind: "invalid"; error: PerceiverError };

function baseHeaders(c: Ctx): Record<string, string> {
  const h: Record<string, string> = { "User-Agent": USER_AGENT, "Accept-Encoding": "identity" };
  if (c.token) h.Authorization = `Bearer ${c.token}`;
  return h;
}

/** Strip `W/` and quotes: `W/"abc"` -> `abc`. */
function normalizeEtag(v: string | undefined): string | undefined {
  return v?.trim().replace(/^W\//, "").replace(/^"|"$/g, "") || undefined;
}

/**
 * HEAD the resolve URL. Same-origin redirects without hub metadata (a renamed repo) are followed; a redirect that
 * carries X-Repo-Commit is the LFS redirect to the CDN and is read, not followed.
 */
async function fetchMetadata(c: Ctx): Promise<MetadataResult> {
  const url = new URL(hubFileUrl(c.repoId, c.filename, c.revision, c.endpoint));
  let res: HttpResponse;
  try {
    res = await requestWithRedirects("HEAD", url, baseHeaders(c), { timeoutMs: c.fetchTimeoutMs }, (r) => {
      if (header(r, "x-repo-commit") !== undefined) return false;
      const loc = header(r, "location");
      return loc !== undefined && new URL(loc, r.url).origin === r.url.origin;
    });
  } catch (e) {
    return { kind: "network", error: netError(c, e, "asking for") };
  }
  res.discard();
  const commit = header(res, "x-repo-commit")?.trim();
  if (res.status >= 400) {
    const errorCode = header(res, "x-error-code");
    if (res.status === 404 && errorCode === "EntryNotFound" && commit !== undefined && COMMIT_HASH_RE.test(commit)) {
      await c.cache.markNoExist(commit, c.filename);
      await c.cache.writeRef(c.revision, commit).catch(() => undefined);
    }
    return { kind: "http", error: httpError(c, res), status: res.status, errorCode };
  }
  if (res.status >= 300 && !isRedirect(res.status)) {
    return { kind: "http", error: httpError(c, res), status: res.status, errorCode: undefined };
  }
  const invalid = (why: string): MetadataResult => ({
    kind: "invalid",
    error: new PerceiverError(
      "HUB_HTTP",
      `${res.url.href} (HTTP ${res.status}) ${why}: ${c.endpoint} does not answer like the Hugging Face hub ` +
        `(check HF_ENDPOINT, and any proxy or firewall in between). ${offlineHint(c)}`,
    ),
  });
  if (commit === undefined) return invalid("has no X-Repo-Commit header");
  if (!COMMIT_HASH_RE.test(commit)) return invalid(`has an invalid X-Repo-Commit ${JSON.stringify(commit)}`);
  const etag = normalizeEtag(header(res, "x-linked-etag") ?? header(res, "etag"));
  if (etag === undefined) return invalid("has no ETag");
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(etag)) return invalid(`has an unusable ETag ${JSON.stringify(etag)}`);
  const redirect = isRedirect(res.status);
  const sizeText = header(res, "x-linked-size") ?? (redirect ? undefined : header(res, "content-length"));
  const size = sizeText !== undefined && /^\d+$/.test(sizeText.trim()) ? Number(sizeText) : null;
  const loc = redirect ? header(res, "location") : undefined;
  if (redirect && loc === undefined) return invalid("is a redirect without a Location");
  let location = res.url;
  if (loc !== undefined) {
    try {
      location = new URL(loc, res.url);
    } catch {
      return invalid(`redirects to an invalid Location ${JSON.stringify(loc.slice(0, 200))}`);
    }
  }
  return { kind: "ok", meta: { commit, etag, size, location } };
}

/** Snapshot path of the file for the revision, resolved through refs/, or null. */
async function fromCache(c: Ctx): Promise<string | null> {
  const commit = await c.cache.resolveRevision(c.revision);
  return commit === null ? null : c.cache.cachedPointer(commit, c.filename);
}

async function offlineMiss(c: Ctx): Promise<PerceiverError> {
  const commit = await c.cache.resolveRevision(c.revision);
  const missing =
    commit === null
      ? `revision "${c.revision}" of ${c.repoId} is not in the cache (no ${c.cache.refPath(c.revision)})`
      : `${c.filename} of ${c.repoId} at commit ${commit} is not in the cache (no ${c.cache.pointerPath(commit, c.filename)})`;
  return new PerceiverError(
    "HUB_OFFLINE_MISS",
    `offline mode (HF_HUB_OFFLINE=1): ${missing}. Run once with network access to fill the cache, ` +
      `or pass --model <folder> with a local checkpoint.`,
  );
}

/**
 * Download `filename` of `repoId` (if not cached) and return its path under `snapshots/{commit}/`.
 * Errors are PerceiverErrors: USAGE (bad repo id, file name or revision), HUB_UNAUTHORIZED, HUB_NOT_FOUND,
 * HUB_NETWORK, HUB_TIMEOUT, HUB_HTTP, HUB_INTEGRITY, HUB_OFFLINE_MISS, HUB_DISK.
 */
export async function hfHubDownload(repoId: string, filename: string, opts: HubOptions = {}): Promise<string> {
  const c = context(repoId, filename, opts);
  if (!c.force && COMMIT_HASH_RE.test(c.revision)) {
    const hit = await c.cache.cachedPointer(c.revision, c.filename);
    if (hit !== null) return hit;
  }
  if (c.offline) {
    const hit = await fromCache(c);
    if (hit !== null) return hit;
    throw await offlineMiss(c);
  }

  const r = await fetchMetadata(c);
  if (r.kind !== "ok") {
    // The revision or file does not exist upstream: say so. Anything else (no network, auth, server or proxy
    // trouble): use the cache when it has the file, as huggingface_hub does.
    const definite = r.kind === "http" && (r.errorCode === "RevisionNotFound" || r.errorCode === "EntryNotFound");
    if (!definite && !c.force) {
      const hit = await fromCache(c);
      if (hit !== null) return hit;
    }
    throw r.error;
  }
  const meta = r.meta;
  await c.cache.writeRef(c.revision, meta.commit);
  const pointer = c.cache.pointerPath(meta.commit, c.filename);
  const blob = c.cache.blobPath(meta.etag);
  if (!c.force) {
    if (await isFile(pointer)) return pointer;
    if (await isFile(blob)) {
      await linkSnapshot(c.cache.cacheDir, blob, pointer);
      return pointer;
    }
  }

  const release = await acquireLock(`${blob}.lock`, { staleMs: opts.lockStaleMs, cacheRoot: c.cache.cacheDir });
  try {
    // Another process may have finished this blob while we waited for the lock.
    if (c.force || !(await isFile(blob))) {
      const sameOrigin = meta.location.origin === new URL(c.endpoint).origin;
      const headers = baseHeaders(c);
      if (!sameOrigin) delete headers.Authorization; // a CDN URL is signed; never show it the user's token
      if (c.force) await fsp.rm(`${blob}.incomplete`, { force: true });
      await downloadBlob({
        url: meta.location,
        headers,
        etag: meta.etag,
        expectedSize: meta.size,
        incompletePath: `${blob}.incomplete`,
        blobPath: blob,
        cacheRoot: c.cache.cacheDir,
        timeoutMs: c.downloadTimeoutMs,
        deadline: Date.now() + c.deadlineMs,
        maxBytes: c.maxFileBytes,
        maxRetries: opts.maxRetries ?? 5,
        retryDelayMs: opts.retryDelayMs ?? 1000,
        what: what(c),
        onProgress: opts.onProgress && ((downloaded, total) => opts.onProgress!({ file: c.filename, downloaded, total })),
        httpError: (res) => httpError(c, res),
        netError: (e) => netError(c, e, "downloading"),
        deadlineError: () => deadlineError(c),
        tooLargeError: (bytes) =>
          new PerceiverError(
            "HUB_HTTP",
            `${what(c)} is at least ${bytes} bytes, over the ${c.maxFileBytes}-byte limit for this file (pass ` +
              `maxFileBytes or set PERCEIVER_HUB_MAX_FILE_BYTES to allow more); nothing was kept`,
          ),
      });
    }
    await linkSnapshot(c.cache.cacheDir, blob, pointer);
  } finally {
    await release();
  }
  return pointer;
}

/**
 * Whether `filename` exists in the repo at the revision (one HEAD request; the cache answers when offline, when the
 * hub cannot be reached, or for a cached commit). A missing file gives false; a missing repo or revision throws.
 */
export async function hubFileExists(repoId: string, filename: string, opts: HubOptions = {}): Promise<boolean> {
  const c = context(repoId, filename, opts);
  const cached = async (): Promise<boolean | null> => {
    const commit = await c.cache.resolveRevision(c.revision);
    if (commit === null) return null;
    if ((await c.cache.cachedPointer(commit, c.filename)) !== null) return true;
    if (await isFile(c.cache.noExistPath(commit, c.filename))) return false;
    return null;
  };
  if (COMMIT_HASH_RE.test(c.revision) && (await c.cache.cachedPointer(c.revision, c.filename)) !== null) return true;
  if (c.offline) {
    const hit = await cached();
    if (hit !== null) return hit;
    throw await offlineMiss(c);
  }
  const r = await fetchMetadata(c);
  if (r.kind === "ok") {
    await c.cache.writeRef(c.revision, r.meta.commit).catch(() => undefined);
    return true;
  }
  if (r.kind === "http" && r.status === 404 && (r.errorCode === "EntryNotFound" || r.errorCode === undefined)) return false;
  if (r.kind === "network") {
    const hit = await cached();
    if (hit !== null) return hit;
  }
  throw r.error;
}
