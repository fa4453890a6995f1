/**
 * Writing the CLI's output files without losing anything: an existing file is kept unless `--force`, and a file is
 * never seen half-written. The bytes go to a temp file created exclusively (O_EXCL: never someone else's file, never
 * a symlink followed) in the output's folder, are synced, and then
 *   - without force: hard-linked to the output name, which fails if that name exists (also if it appeared while we
 *     worked), then the temp name is removed;
 *   - with force: renamed over the output (atomic on POSIX).
 */
import { randomBytes } from "node:crypto";
import { access, constants, link, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { PerceiverError } from "../errors.js";

/** Help line for --force (every command that writes files). */
export const FORCE_HELP = "  --force                     overwrite output files that exist (default: refuse)";

function writeError(path: string, e: unknown): PerceiverError {
  const code = (e as { code?: string }).code;
  const why = code === "ENOENT" ? "no such folder" : code === "EACCES" || code === "EPERM" ? "permission denied"
    : code === "EISDIR" ? "is a directory" : code === "ENOTDIR" ? "not a directory" : (e as Error).message;
  return new PerceiverError("INPUT_INVALID", `cannot write ${path}: ${why}`, { cause: e });
}

function existsError(path: string): PerceiverError {
  // a USAGE error (exit code 2), like the dataset commands' --out: the command line must say --force
  return new PerceiverError("USAGE", `${path} already exists; use --force to overwrite it`);
}

/**
 * Fails early (before minutes of work) when `path` cannot be written: its folder is missing or read-only, or the
 * file exists and `force` is off (a folder in its place is refused even with force).
 */
export async function checkOutputPath(path: string, force: boolean): Promise<void> {
  const dir = dirname(path);
  try {
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    await access(dir, constants.W_OK);
  } catch (e) {
    throw writeError(path, e);
  }
  const existing = await stat(path).catch(() => null);
  if (existing?.isDirectory()) throw writeError(path, Object.assign(new Error("is a directory"), { code: "EISDIR" }));
  if (existing && !force) throw existsError(path);
}

/** link(tmp, path) then remove tmp; where hard links are unsupported (FAT, some network file systems), a checked rename. */
async function linkOrRename(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw e;
    if (await stat(path).catch(() => null)) throw Object.assign(new Error("exists"), { code: "EEXIST" });
    await rename(tmp, path);
    return;
  }
  await rm(tmp, { force: true });
}

/** Writes `bytes` to `path` as described above; the temp file is removed on any failure. */
export async function writeOutputFile(path: string, bytes: Uint8Array, force: boolean): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  let created = false;
  try {
    const fh = await open(tmp, "wx", 0o644);
    created = true;
    try {
      await fh.writeFile(bytes);
      await fh.sync(); // data on disk before the name makes it visible
    } finally {
      await fh.close();
    }
    if (force) {
      await rename(tmp, path);
    } else {
      await linkOrRename(tmp, path);
    }
    created = false;
  } catch (e) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    if ((e as { code?: string }).code === "EEXIST" && !force) throw existsError(path);
    throw writeError(path, e);
  }
}
