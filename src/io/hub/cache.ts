/**
 * The on-disk cache of Hugging Face hub files, laid out exactly like huggingface_hub's so that both tools share it:
 *
 *   {cache}/models--{org}--{name}/
 *     blobs/{etag}                      file contents, named by ETag (git sha1, or sha256 for LFS files)
 *     blobs/{etag}.incomplete           a download in progress (resumable)
 *     blobs/{etag}.lock                 held while one process downloads that blob
 *     snapshots/{commit}/{filename}     relative symlink ../../blobs/{etag} (a copy where symlinks fail)
 *     refs/{revision}                   commit hash a branch/tag/refs/pr/N pointed to when last seen
 *     .no_exist/{commit}/{filename}     empty marker: the file is known to be absent at that commit
 *
 * Also validation of repo ids, filenames and revisions, since they become path components here.
 *
 * A cache may be shared with other users who can write to it, so no write follows a symlink: every folder below the
 * cache root is created or checked with lstat (a symlinked folder is refused with HUB_DISK), and every file is opened
 * with O_NOFOLLOW (O_EXCL for temporary files). The snapshot entries this module makes are symlinks on purpose; they
 * are only ever created and renamed, never written through.
 */
import { constants as fsConstants, promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PerceiverError } from "../../errors.js";

export const COMMIT_HASH_RE = /^[0-9a-f]{40}$/;
/** A sha256 hex digest, in either case (ETags are compared in lower case). */
export const SHA256_RE = /^[0-9a-f]{64}$/i;

export type Env = Record<string, string | undefined>;

function expandUser(p: string, env: Env): string {
  if (p === "~") return env.HOME || os.homedir();
  if (p.startsWith("~/")) return path.join(env.HOME || os.homedir(), p.slice(2));
  return p;
}

/** HF_HOME: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (huggingface_hub constants). */
export function resolveHfHome(env: Env = process.env): string {
  if (env.HF_HOME) return expandUser(env.HF_HOME, env);
  const xdg = env.XDG_CACHE_HOME ? expandUser(env.XDG_CACHE_HOME, env) : path.join(env.HOME || os.homedir(), ".cache");
  return path.join(xdg, "huggingface");
}

/** Hub cache root: `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE` (legacy), else `$HF_HOME/hub`. */
export function resolveCacheDir(env: Env = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  return path.resolve(explicit ? expandUser(explicit, env) : path.join(resolveHfHome(env), "hub"));
}

const NAME_PART = "[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?";
const REPO_ID_RE = new RegExp(`^(?:${NAME_PART}/)?${NAME_PART}$`);

/** Same rules as huggingface_hub's validate_repo_id: `name` or `namespace/name`, [A-Za-z0-9_.-], no `--`/`..`. */
export function validateRepoId(repoId: string): void {
  const bad = (why: string): never => {
    throw new PerceiverError("USAGE", `invalid Hugging Face repo id ${JSON.stringify(repoId)}: ${why}`);
  };
  if (typeof repoId !== "string" || repoId.length === 0) bad("expected 'org/name', e.g. 'deepmind/vision-perceiver-conv'");
  if (repoId.split("/").length > 2) bad("expected 'org/name' with a single '/'");
  if (!REPO_ID_RE.test(repoId)) {
    bad("use letters, digits, '-', '_' and '.', not starting or ending with '-' or '.', at most 96 characters per part");
  }
  if (repoId.includes("--") || repoId.includes("..")) bad("'--' and '..' are not allowed");
  if (repoId.endsWith(".git")) bad("it must not end with '.git'");
}

/** A file path inside a repo: relative, '/'-separated, no '.'/'..'/empty segments, no backslash or NUL. */
export function validateFilename(filename: string): void {
  const bad = (why: string): never => {
    throw new PerceiverError("USAGE", `invalid file name ${JSON.stringify(filename)} in a hub repo: ${why}`);
  };
  if (typeof filename !== "string" || filename.length === 0) bad("it is empty");
  if (filename.includes("\0")) bad("it contains a NUL character");
  if (filename.includes("\\")) bad("use '/' as the folder separator");
  if (filename.startsWith("/") || /^[A-Za-z]:/.test(filename)) bad("it must be relative to the repo root");
  for (const seg of filename.split("/")) {
    if (seg === "" || seg === "." || seg === "..") bad("it must not contain empty, '.' or '..' path segments");
  }
}

/** A branch, tag, commit hash or refs/pr/N; it names a file under refs/, so it must stay inside that folder. */
export function validateRevision(revision: string): void {
  const bad = (why: string): never => {
    throw new PerceiverError("USAGE", `invalid revision ${JSON.stringify(revision)}: ${why}`);
  };
  if (typeof revision !== "string" || revision.length === 0) bad("it is empty");
  if (revision.includes("\0") || revision.includes("\\")) bad("it contains a NUL or backslash");
  for (const seg of revision.split("/")) {
    if (seg === "" || seg === "." || seg === "..") bad("it must not contain empty, '.' or '..' path segments");
  }
}

/** "org/name" -> "models--org--name" (huggingface_hub's repo_folder_name for model repos). */
export function repoFolderName(repoId: string): string {
  validateRepoId(repoId);
  return ["models", ...repoId.split("/")].join("--");
}

/** Paths of one repo's cache folder. */
export class RepoCache {
  readonly root: string;
  constructor(readonly cacheDir: string, readonly repoId: string) {
    this.root = path.join(cacheDir, repoFolderName(repoId));
  }
  blobPath(etag: string): string {
    return path.join(this.root, "blobs", etag);
  }
  pointerPath(commit: string, filename: string): string {
    return path.join(this.root, "snapshots", commit, ...filename.split("/"));
  }
  refPath(revision: string): string {
    return path.join(this.root, "refs", ...revision.split("/"));
  }
  noExistPath(commit: string, filename: string): string {
    return path.join(this.root, ".no_exist", commit, ...filename.split("/"));
  }

  /** Commit hash for `revision`: itself if it is one, else the content of refs/{revision}, else null. */
  async resolveRevision(revision: string): Promise<string | null> {
    if (COMMIT_HASH_RE.test(revision)) return revision;
    try {
      const text = (await fsp.readFile(this.refPath(revision), "utf8")).trim();
      return COMMIT_HASH_RE.test(text) ? text : null;
    } catch {
      return null;
    }
  }

  /** Record that `revision` points at `commit` (nothing to do when the revision is the commit itself). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const ref = this.refPath(revision);
    try {
      if ((await fsp.readFile(ref, "utf8")) === commit) return;
    } catch {
      // absent: write it
    }
    await mkdirInCache(this.cacheDir, path.dirname(ref), "write the revision ref");
    const tmp = `${ref}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const fh = await openInCache(this.cacheDir, tmp, "wx", "write the revision ref");
    await diskOp(ref, "write the revision ref", async () => {
      try {
        await fh.writeFile(commit);
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, ref); // replaces a planted symlink itself, never its target
    });
  }

  /** Snapshot path of `filename` at `commit` if it exists and its blob is readable, else null. */
  async cachedPointer(commit: string, filename: string): Promise<string | null> {
    const p = this.pointerPath(commit, filename);
    return (await isFile(p)) ? p : null;
  }

  /** Best effort, as in huggingface_hub; a planted symlink is refused (HUB_DISK), never written through. */
  async markNoExist(commit: string, filename: string): Promise<void> {
    const p = this.noExistPath(commit, filename);
    try {
      await mkdirInCache(this.cacheDir, path.dirname(p), "mark a missing file");
      await (await openInCache(this.cacheDir, p, "create", "mark a missing file")).close();
    } catch (e) {
      if (e instanceof PerceiverError && /symlink/.test(e.message)) throw e;
    }
  }
}

/** True when `p` exists and is (or links to) a regular file. */
export async function isFile(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * Make `pointer` refer to `blob`: a relative symlink (`../../blobs/{etag}`, plus one `../` per subfolder), created
 * under a temporary name and renamed into place so readers never see a half-made entry; a copy where symlinks fail.
 */
export async function linkSnapshot(cacheRoot: string, blob: string, pointer: string): Promise<void> {
  await mkdirInCache(cacheRoot, path.dirname(pointer), "create the snapshot entry");
  await diskOp(pointer, "create the snapshot entry", async () => {
    const tmp = `${pointer}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await fsp.symlink(path.relative(path.dirname(pointer), blob), tmp);
    } catch (e) {
      if (!isSymlinkUnsupported(e)) throw e;
      await fsp.copyFile(blob, tmp, fsConstants.COPYFILE_FICLONE | fsConstants.COPYFILE_EXCL);
    }
    try {
      await fsp.rename(tmp, pointer);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  });
}

function isSymlinkUnsupported(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "ENOSYS" || code === "EINVAL";
}

const DISK_CODES = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR", "EMFILE", "ENFILE", "EIO", "ENAMETOOLONG", "ENOENT"]);

/** Turn a file-system failure into HUB_DISK naming the path; other errors pass through. */
export function toDiskError(e: unknown, p: string, action: string): unknown {
  if (e instanceof PerceiverError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code !== "string" || !DISK_CODES.has(code)) return e;
  const hint =
    code === "ENOSPC" || code === "EDQUOT"
      ? "the disk is full: free some space or point HF_HUB_CACHE at another disk"
      : code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? "no permission to write there: fix its permissions or point HF_HUB_CACHE (or HubOptions.cacheDir) at a writable folder"
        : (e as Error).message;
  return new PerceiverError("HUB_DISK", `could not ${action} at ${p} (${code}): ${hint}`, { cause: e });
}

export async function diskOp<T>(p: string, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toDiskError(e, p, action);
  }
}

/** Throws HUB_DISK unless `p` lies inside `root` (after resolving `.` and `..` lexically). */
function assertInside(root: string, p: string, action: string): string {
  const rel = path.relative(path.resolve(root), path.resolve(p));
  if (rel === "" || rel === ".." || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new PerceiverError("HUB_DISK", `could not ${action} at ${p}: it is outside the cache folder ${root}`);
  }
  return rel;
}

function symlinkRefused(p: string, action: string): PerceiverError {
  return new PerceiverError("HUB_DISK",
    `could not ${action}: ${p} is a symlink (or not a folder) inside the cache; refusing to write through it. ` +
    `Someone else may be able to write to this cache: remove it, or point HF_HUB_CACHE at a folder only you can write to.`);
}

/**
 * `mkdir -p` of `dir` below `root` that follows no symlink: each component under the root is created, or checked
 * with lstat to be a real folder (a symlink there is refused with HUB_DISK). The root itself may be a symlink.
 */
export async function mkdirInCache(root: string, dir: string, action: string): Promise<void> {
  const rel = path.relative(path.resolve(root), path.resolve(dir));
  if (rel !== "") assertInside(root, dir, action);
  await diskOp(root, action, () => fsp.mkdir(root, { recursive: true }));
  let cur = path.resolve(root);
  for (const part of rel === "" ? [] : rel.split(path.sep)) {
    cur = path.join(cur, part);
    let st = await fsp.lstat(cur).catch(() => null);
    if (st === null) {
      try {
        await fsp.mkdir(cur);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw toDiskError(e, cur, action);
      }
      st = await diskOp(cur, action, () => fsp.lstat(cur));
    }
    if (!st.isDirectory()) throw symlinkRefused(cur, action);
  }
}

/**
 * Opens a file inside the cache for writing without following a symlink at its name (O_NOFOLLOW): "w" truncates,
 * "a" appends, "create" creates if absent (never truncates), "wx" creates a new file only (O_EXCL). Its folders must
 * already be real folders (see mkdirInCache); they are checked again with lstat. Errors: HUB_DISK.
 */
export async function openInCache(root: string, p: string, mode: "w" | "a" | "wx" | "create", action: string): Promise<fsp.FileHandle> {
  const rel = assertInside(root, p, action);
  let cur = path.resolve(root);
  for (const part of rel.split(path.sep).slice(0, -1)) {
    cur = path.join(cur, part);
    const st = await fsp.lstat(cur).catch(() => null);
    if (st !== null && !st.isDirectory()) throw symlinkRefused(cur, action);
  }
  const c = fsConstants;
  const base = c.O_WRONLY | c.O_CREAT | (c.O_NOFOLLOW ?? 0);
  const flags = base | (mode === "w" ? c.O_TRUNC : mode === "a" ? c.O_APPEND : mode === "wx" ? c.O_EXCL : 0);
  try {
    return await fsp.open(p, flags, 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    if (code === "ELOOP" || (code === "EEXIST" && mode === "wx" && (await fsp.lstat(p).catch(() => null))?.isSymbolicLink())) {
      throw symlinkRefused(p, action);
    }
    throw toDiskError(e, p, action);
  }
}
