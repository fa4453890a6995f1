/**
 * Node file helpers for safetensors: read a file (the header first, checked, then only the bytes it describes), and
 * write atomically (an exclusively created temp file, streamed tensor by tensor, then renamed).
 */
import { constants as fsConstants } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { PerceiverError } from "../../errors.js";
import { parseSafetensorsHeader } from "./safetensors-header.js";
import type { SafetensorsHeader } from "./safetensors-header.js";
import { readHeaderLength, SafetensorsFile } from "./safetensors.js";
import type { ReadSafetensorsOptions } from "./safetensors.js";
import { dataBytes, headerLengthPrefix, safetensorsLayout } from "./safetensors-write.js";
import type { SafetensorsTensor } from "./safetensors-write.js";

function errCode(e: unknown): string {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "";
}

/**
 * Reads and validates a safetensors file without reading more than its header justifies:
 *   1. the 8-byte length N, checked against the cap and the file size;
 *   2. the N-byte header, parsed and validated, which gives the data size D (the last tensor's end);
 *   3. 8 + N + D against the file size (SAFETENSORS_TRUNCATED / SAFETENSORS_TRAILING_BYTES) before any tensor byte
 *      is read: a 3.9 GiB file whose header describes 4 bytes costs a few reads, not 3.9 GiB;
 *   4. the whole file into one fresh (unpooled, 8-byte aligned) buffer, so F32 tensors come back as zero-copy views.
 * Errors: CHECKPOINT_NOT_FOUND when the file cannot be opened or read; MEMORY_LIMIT; SAFETENSORS_* for bad contents.
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
    let bytes: Uint8Array;
    let parsed: SafetensorsHeader;
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read checkpoint ${path}: not a regular file`);
      const size = st.size;
      const prefix = new Uint8Array(8);
      if (size >= 8) await readFully(fh, prefix, 0, path);
      // throws SAFETENSORS_TOO_SMALL / HEADER_TOO_LARGE / HEADER_OUT_OF_BOUNDS
      const n = readHeaderLength(prefix, size, o);
      const header = new Uint8Array(n);
      await readFully(fh, header, 8, path);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(header);
      } catch (e) {
        throw new PerceiverError("SAFETENSORS_HEADER_NOT_UTF8", `${o.source}: header (${n} bytes) is not valid UTF-8`, { cause: e });
      }
      parsed = parseSafetensorsHeader(text, o.source);
      const { entries } = parsed;
      const dataEnd = entries.reduce((m, e) => Math.max(m, e.end), 0);
      const dataLen = size - 8 - n;
      if (dataEnd > dataLen) {
        throw new PerceiverError("SAFETENSORS_TRUNCATED",
          `${o.source}: tensor data needs ${dataEnd} bytes after the header but the file has only ${dataLen} (file truncated?)`);
      }
      if (dataEnd < dataLen) {
        throw new PerceiverError("SAFETENSORS_TRAILING_BYTES",
          `${o.source}: ${dataLen - dataEnd} unexpected bytes after the last tensor (data ends at ${dataEnd}, ` +
          `file data section is ${dataLen} bytes)`);
      }
      try {
        bytes = new Uint8Array(size);
      } catch (e) {
        throw new PerceiverError("MEMORY_LIMIT", `${path}: cannot hold the ${size}-byte file in memory (${(e as Error).message})`, { cause: e });
      }
      bytes.set(prefix, 0);
      bytes.set(header, 8);
      await readFully(fh, bytes.subarray(8 + n), 8 + n, path);
    } catch (e) {
      if (e instanceof PerceiverError) throw e;
      throw new PerceiverError("CHECKPOINT_NOT_FOUND", `cannot read checkpoint ${path}: ${(e as Error).message}`, { cause: e });
    }
    return new SafetensorsFile(bytes, o, parsed);
  } finally {
    await fh.close();
  }
}

/** Fills `buf` from file offset `at`; a file that shrank meanwhile is reported as truncated. */
async function readFully(fh: FileHandle, buf: Uint8Array, at: number, path: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(buf.length - done, 1 << 30), at + done);
    if (bytesRead === 0) {
      throw new PerceiverError("SAFETENSORS_TRUNCATED", `${path}: file ended after ${at + done} bytes while reading (changed on disk?)`);
    }
    done += bytesRead;
  }
}

async function writeAll(fh: FileHandle, b: Uint8Array): Promise<void> {
  for (let off = 0; off < b.length; ) {
    const { bytesWritten } = await fh.write(b, off, Math.min(b.length - off, 1 << 30));
    off += bytesWritten;
  }
}

/** Exclusive create that does not follow a symlink at the final path component (planted temp names are refused). */
const CREATE_EXCLUSIVE = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (fsConstants.O_NOFOLLOW ?? 0);

/**
 * Writes tensors as safetensors to `path` atomically: the header and then each tensor's bytes are streamed to
 * `path.tmp-<pid>`, created exclusively (an existing file or a planted symlink there is an error, never followed
 * or overwritten), synced, then renamed over `path`; a crash never leaves a half-written file, and memory holds
 * no second copy of the tensors. Errors: SAFETENSORS_WRITE.
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafetensorsTensor> | Map<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const layout = safetensorsLayout(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  let created = false;
  try {
    const fh = await open(tmp, CREATE_EXCLUSIVE, 0o644);
    created = true;
    try {
      await writeAll(fh, headerLengthPrefix(layout));
      await writeAll(fh, layout.header);
      for (const [, t] of layout.tensors) await writeAll(fh, dataBytes(t));
      await fh.sync(); // data on disk before the rename makes it visible
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    const code = errCode(e);
    const why = code === "EEXIST" || code === "ELOOP"
      ? `the temporary file ${tmp} already exists (or is a symlink): remove it if no other conversion is running`
      : (e as Error).message;
    throw new PerceiverError("SAFETENSORS_WRITE", `cannot write ${path}: ${why}`, { cause: e });
  }
}
