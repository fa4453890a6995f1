/**
 * The `--out FILE.jsonl` of classify, embed and eval: one JSON object per line, one line per image, written as
 * each image completes.
 *
 * Durability, stated:
 *  - Each record is one `write()` of one whole line, ending in "\n", on a file opened for appending. A process
 *    killed at any moment (SIGKILL included) leaves every record written before, complete, in the kernel's page
 *    cache; at worst the line being written is torn (cut before its "\n").
 *  - The file is fsync'ed after each batch and at the end, so a power loss or kernel crash loses at most the
 *    records of the last batch (and may leave a torn or garbled last line).
 *  - `--resume` reads the file first: a torn last line (no "\n", or not JSON) is cut off (its image is done
 *    again); records of failed images and repeated records are dropped by rewriting the file (to a temporary
 *    file, fsync'ed, renamed over it), so every image keeps exactly one record; a bad line before the last is an
 *    error, since guessing could lose results.
 * One process writes one file: two runs appending to the same file are not supported.
 */
import { closeSync, constants, fsyncSync, openSync, writeSync } from "node:fs";
import { access, open, rename, rm, stat, truncate } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { PerceiverError } from "../../errors.js";

/** One record: the fields of --json for an image, or `{file, error: {code, message}}` for a failed one. */
export type JsonRecord = Record<string, unknown> & { file: string };

export function isErrorRecord(r: JsonRecord): boolean {
  return r.error !== undefined;
}

const CHUNK = 1 << 20;

export interface ScanResult {
  /** bytes of the file up to the end of its last complete, valid line */
  validBytes: number;
  /** the file's size */
  size: number;
  /** byte ranges [start, end) of the lines to keep (those the callback kept) */
  keep: [number, number][];
  /** lines the callback dropped */
  dropped: number;
}

function badLine(path: string, line: number, why: string): PerceiverError {
  return new PerceiverError("INPUT_INVALID", `${path}, line ${line}: ${why}; it was not written by this tool or is damaged (fix or remove the line)`);
}

/**
 * Reads a JSONL file record by record (streaming: files with logits can exceed a string's size). `onRecord`
 * returns whether to keep the line. A bad last line is left out of validBytes; a bad line before it throws.
 */
export async function scanJsonl(path: string, onRecord: (r: JsonRecord, line: number) => boolean): Promise<ScanResult> {
  const fh = await open(path, "r");
  const keep: [number, number][] = [];
  let dropped = 0, validBytes = 0, line = 0, size = 0;
  let pending: Buffer[] = [];
  let pendingStart = 0;
  let badLast: string | null = null; // a complete line that did not parse: fatal unless it is the last one
  try {
    size = (await fh.stat()).size;
    const buf = Buffer.alloc(CHUNK);
    let pos = 0;
    const handle = (bytes: Buffer, start: number, end: number) => {
      line++;
      if (badLast !== null) throw badLine(path, line - 1, badLast);
      const text = bytes.toString("utf8");
      if (text.trim() === "") {
        dropped++;
        validBytes = end;
        return;
      }
      let r: unknown;
      try {
        r = JSON.parse(text);
      } catch {
        badLast = "not JSON";
        return;
      }
      if (r === null || typeof r !== "object" || Array.isArray(r) || typeof (r as JsonRecord).file !== "string") {
        badLast = "not a record with a \"file\" field";
        return;
      }
      if (onRecord(r as JsonRecord, line)) {
        const last = keep[keep.length - 1];
        if (last && last[1] === start) last[1] = end;
        else keep.push([start, end]);
      } else dropped++;
      validBytes = end;
    };
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      let from = 0;
      for (let nl = buf.indexOf(10, 0); nl !== -1 && nl < bytesRead; nl = buf.indexOf(10, from)) {
        const part = buf.subarray(from, nl);
        const whole = pending.length ? Buffer.concat([...pending, part]) : part;
        handle(whole, pendingStart, pos + nl + 1);
        pending = [];
        from = nl + 1;
        pendingStart = pos + from;
      }
      if (from < bytesRead) pending.push(Buffer.from(buf.subarray(from, bytesRead)));
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { validBytes, size, keep, dropped };
}

/**
 * Makes `path` hold only the lines `onRecord` keeps, up to its last valid line (see the file comment): truncates
 * a torn tail in place, or rewrites the file when lines are dropped. Returns what it removed.
 */
export async function repairForResume(path: string, onRecord: (r: JsonRecord, line: number) => boolean): Promise<{ tornBytes: number; dropped: number }> {
  const scan = await scanJsonl(path, onRecord);
  const tornBytes = scan.size - scan.validBytes;
  if (scan.dropped === 0) {
    if (tornBytes > 0) await truncate(path, scan.validBytes);
    return { tornBytes, dropped: 0 };
  }
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const src = await open(path, "r");
    const dst = await open(tmp, "w");
    try {
      const buf = Buffer.alloc(CHUNK);
      for (const [start, end] of scan.keep) {
        for (let p = start; p < end;) {
          const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, end - p), p);
          if (bytesRead === 0) throw new Error(`${path} shrank while being read`);
          await dst.write(buf, 0, bytesRead);
          p += bytesRead;
        }
      }
      await dst.sync();
    } finally {
      await src.close();
      await dst.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new PerceiverError("INPUT_INVALID", `cannot rewrite ${path} for --resume: ${(e as Error).message}`, { cause: e });
  }
  return { tornBytes, dropped: scan.dropped };
}

/** Refuses to replace a non-empty output file unless --force (or --resume, which continues it). */
export async function checkOutputFile(path: string, opts: { resume?: boolean; force?: boolean; flag: string }): Promise<boolean> {
  const s = await stat(path).catch(() => null);
  if (s === null) {
    // checked now, before the model loads, rather than when the first record is written
    try {
      await access(dirname(resolve(path)), constants.W_OK);
    } catch (e) {
      throw new PerceiverError("INPUT_INVALID", `${opts.flag} ${path}: cannot write in ${dirname(resolve(path))}: ${(e as { code?: string }).code === "ENOENT" ? "no such directory" : (e as Error).message}`);
    }
    return false;
  }
  if (!s.isFile()) throw new PerceiverError("USAGE", `${opts.flag} ${path}: not a regular file`);
  if (s.size > 0 && !opts.resume && !opts.force) {
    throw new PerceiverError("USAGE", `${opts.flag} ${path} exists (${s.size} bytes): --resume continues it, --force replaces it`);
  }
  return true;
}

/** Appends records to a JSONL file, one write per line (see the file comment). */
export class JsonlWriter {
  private constructor(private fd: number | null, readonly path: string) {}

  /** `append`: keep what is there (for --resume); otherwise the file is emptied first. */
  static open(path: string, append: boolean): JsonlWriter {
    try {
      return new JsonlWriter(openSync(path, append ? "a" : "w"), path);
    } catch (e) {
      throw new PerceiverError("INPUT_INVALID", `cannot open --out ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  write(record: JsonRecord): void {
    if (this.fd === null) throw new Error("JsonlWriter: closed");
    const bytes = Buffer.from(`${JSON.stringify(record)}\n`, "utf8");
    // one write() for the whole line; the loop only matters if the kernel takes part of it (a full disk reports
    // ENOSPC instead)
    for (let done = 0; done < bytes.length;) done += writeSync(this.fd, bytes, done, bytes.length - done);
  }

  sync(): void {
    if (this.fd !== null) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === null) return;
    try {
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}
