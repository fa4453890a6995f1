/** Node-only: read an image file and decode it (see image.ts). */
import { readFileSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { PerceiverError } from "../../errors.js";
import { decodeImage, decodeImageAsync, type DecodeImageOptions, type RgbImage } from "./decode.js";

/** Largest file we read into memory (Node cannot hold a single Buffer above ~2 GiB anyway). */
const MAX_FILE_BYTES = 2 ** 31 - 1;

function fsError(path: string, e: unknown): PerceiverError {
  const code = (e as { code?: string } | null)?.code;
  const why =
    code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : String(e);
  return new PerceiverError("INPUT_INVALID", `cannot read image file ${path}: ${why}`, { cause: e });
}

function checkStat(path: string, s: { isFile(): boolean; size: number }): void {
  if (!s.isFile()) throw new PerceiverError("INPUT_INVALID", `cannot read image file ${path}: not a regular file`);
  if (s.size > MAX_FILE_BYTES) {
    throw new PerceiverError("IMAGE_TOO_LARGE", `image file ${path} is ${s.size} bytes, more than ${MAX_FILE_BYTES}`);
  }
}

/** Reads `path` and decodes it to RGB. Errors name the file (`opts.source` overrides the name). */
export async function loadImageFile(path: string, opts: DecodeImageOptions = {}): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    checkStat(path, await stat(path));
    bytes = await readFile(path);
  } catch (e) {
    throw e instanceof PerceiverError ? e : fsError(path, e);
  }
  return decodeImageAsync(bytes, { ...opts, source: opts.source ?? path });
}

/** Synchronous twin of loadImageFile. */
export function loadImageFileSync(path: string, opts: DecodeImageOptions = {}): RgbImage {
  let bytes: Uint8Array;
  try {
    checkStat(path, statSync(path));
    bytes = readFileSync(path);
  } catch (e) {
    throw e instanceof PerceiverError ? e : fsError(path, e);
  }
  return decodeImage(bytes, { ...opts, source: opts.source ?? path });
}
