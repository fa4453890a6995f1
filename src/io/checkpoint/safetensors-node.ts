/**
 * Node file helpers for safetensors: read a file into one buffer (after checking its header length against the
 * file size), and write atomically (temp file + rename).
 */
import { open, rename, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { PerceiverError } from "../../errors.js";
import { readHeaderLength, readSafetensors, writeSafetensors } from "./safetensors.js";
import type { ReadSafetensorsOptions, SafetensorsFile, SafetensorsTensor } from "./safetensors.js";

function errCode(e: unknown): string {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "";
}

/**
 * Reads and validates a safetensors file. The first 8 bytes are checked against the file size before the file is
 * read, so a bogus header length is refused without loading the file. The whole file is then read once into a
 * fresh (unpooled, 8-byte aligned) buffer, so F32 tensors come back as zero-copy views.
 * Errors: CHECKPOINT_NOT_FOUND when the file cannot be opened or read; SAFETENSORS_* for bad contents.
 */
export async function readSafetensorsFile(path: string, opts: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const o = { ...opts, source: opts.source ?? path };
  let fh;
  try {
    fh = await open(path, "r");
  } catch (e) {
    const code = errCode(e);
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot open checkpoint ${path}: ${why}`, { cause: e });
  }
  try {
    let size: number;
    let bytes: Uint8Array;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read checkpoint ${path}: not a regular file`);
      size = st.size;
      const prefix = new Uint8Array(8);
      if (size >= 8) await readFully(fh, prefix, path);
      readHeaderLength(prefix, size, o); // throws SAFETENSORS_TOO_SMALL / HEADER_TOO_LARGE / HEADER_OUT_OF_BOUNDS
      try {
        bytes = new Uint8Array(size);
      } catch (e) {
        throw new PerceiverError("MEMORY_LIMIT", `${path}: cannot hold the ${size}-byte file in memory (${(e as Error).message})`, { cause: e });
      }
      await readFully(fh, bytes, path);
    } catch (e) {
      if (e instanceof PerceiverError) throw e;
      throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
    }
    return readSafetensors(bytes, o);
  } finally {
    await fh.close();
  }
}

/** Fills `buf` from the start of the file; a file that shrank meanwhile is reported as truncated. */
async function readFully(fh: FileHandle, buf: Uint8Array, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(buf.length - done, 1 << 30), done);
    if (bytesRead === 0) {
      throw new PerceiverError("SAFETENSORS_TRUNCATED", `${path}: file ended after ${done} bytes while reading (changed on disk?)`);
    }
    done += bytesRead;
  }
}

/**
 * Serializes with writeSafetensors and writes to `path` atomically: the bytes go to `path.tmp-<pid>` first, which
 * is then renamed over `path`, so a crash never leaves a half-written file. Errors: SAFETENSORS_WRITE.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = writeSafetensors(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(bytes);
      await fh.sync(); // data on disk before the rename makes it visible
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new PerceiverError("SAFETENSORS_WRITE", `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}
