/**
 * The image list of classify, embed and eval: files, directories (walked recursively), glob patterns and
 * `--files-from LIST` (one path per line, `-` for stdin), expanded and checked before any model is loaded, so a
 * typo costs nothing.
 *
 * - A file named on the command line or in the list is always taken (if it is not an image, its record says so).
 * - A directory contributes the image files below it: a known image extension, or (any other name) the magic
 *   bytes of a format the decoders read (sniffImageFormat). A taken file the decoders cannot read (TIFF) fails
 *   later, as an error record. Names starting with "." are skipped, as `ls` and glob do; symbolic links are followed (a link
 *   cycle is walked once).
 * - A glob pattern (`*`, `?`, `[...]`, `{a,b}`, `**`) matches files only; dot files only when the pattern says so;
 *   `**` does not descend into linked directories (as in bash).
 * - Each directory's and each pattern's files come in sorted order (by UTF-16 code units, the same on every
 *   machine and locale); the whole list keeps the order of the arguments, and a path given twice is kept once.
 */
import { constants } from "node:fs";
import { access, open, readdir, readFile, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { PerceiverError } from "../../errors.js";
import { sniffImageFormat } from "../../io/image/decode.js";

/** Extensions taken as images in a directory walk without reading the file (lower case). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".pjpeg", ".pjp", ".webp", ".gif", ".bmp", ".tif", ".tiff",
]);

/** Bytes read from a file without a known extension to recognise an image (sniffImageFormat needs 8). */
const SNIFF_BYTES = 16;

/** Code-unit order: the same on every machine, unlike localeCompare. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot).toLowerCase() : "";
}

async function looksLikeImage(path: string): Promise<boolean> {
  try {
    const fh = await open(path, "r");
    try {
      const buf = new Uint8Array(SNIFF_BYTES);
      const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
      return sniffImageFormat(buf.subarray(0, bytesRead)) !== null;
    } finally {
      await fh.close();
    }
  } catch {
    return false; // unreadable: not recognisable as an image, so not taken from a directory
  }
}

/** A directory walk: the real paths of directories already walked (link cycles), and the images found so far. */
interface WalkState {
  seen: Set<string>;
  found: number;
  max: number;
}

/** The image files below `dir`, sorted; more than `st.max` in all is an INPUT_INVALID error. */
async function walk(dir: string, st: WalkState): Promise<string[]> {
  const real = await realpath(dir);
  if (st.seen.has(real)) return [];
  st.seen.add(real);
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw fsError(dir, e, "cannot read directory");
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const s = await stat(path).catch(() => null); // a dangling link is skipped
      isDir = s?.isDirectory() ?? false;
      isFile = s?.isFile() ?? false;
    }
    if (isDir) out.push(...(await walk(path, st)));
    else if (isFile && (IMAGE_EXTENSIONS.has(extensionOf(entry.name)) || (await looksLikeImage(path)))) {
      out.push(path);
      if (++st.found > st.max) throw new PerceiverError("INPUT_INVALID", `${dir}: more than ${st.max} images`);
    }
  }
  return out.sort(compareCodeUnits);
}

/**
 * The image files below the directory `dir` as a directory input contributes them (see the file comment), sorted;
 * more than `max` is an INPUT_INVALID error (a guard against pointing at a whole disk).
 */
export function imageFilesUnder(dir: string, { max = Infinity }: { max?: number } = {}): Promise<string[]> {
  return walk(dir, { seen: new Set(), found: 0, max });
}

function fsError(path: string, e: unknown, what: string): PerceiverError {
  const code = (e as { code?: string } | null)?.code;
  const why = code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : (e as Error)?.message ?? String(e);
  return new PerceiverError("INPUT_INVALID", `${what} ${path}: ${why}`, { cause: e });
}

/** `~/x` -> the home directory's x (for paths in a --files-from list, which no shell expanded). */
function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

/** Lines of a --files-from list: one path per line; blank lines skipped; CR of CRLF files dropped. */
export function parseFileList(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "").map(expandHome);
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

export interface ExpandInputsOptions {
  /** `--files-from`: a list file, or "-" for stdin */
  filesFrom?: string;
  /** stdin for `--files-from -` (default process.stdin) */
  stdin?: NodeJS.ReadableStream;
  /** the command, for messages */
  command: string;
}

/**
 * Arguments -> the image list (see the file comment). Throws INPUT_INVALID naming the argument when a path does
 * not exist or cannot be read, a pattern matches no file, a directory holds no image, or nothing is left.
 */
export async function expandInputs(args: readonly string[], opts: ExpandInputsOptions): Promise<string[]> {
  const items: { arg: string; fromList: boolean }[] = args.map((arg) => ({ arg, fromList: false }));
  if (opts.filesFrom !== undefined) {
    let text: string;
    try {
      text = opts.filesFrom === "-" ? await readStdin(opts.stdin ?? process.stdin) : await readFile(opts.filesFrom, "utf8");
    } catch (e) {
      throw fsError(opts.filesFrom, e, "cannot read --files-from list");
    }
    items.push(...parseFileList(text).map((arg) => ({ arg, fromList: true })));
  }
  if (items.length === 0) {
    throw new PerceiverError("USAGE", `${opts.command}: give at least one image file, directory or glob pattern, or --files-from LIST (see perceiver ${opts.command} --help)`);
  }
  const out: string[] = [];
  const taken = new Set<string>();
  const add = (p: string) => {
    if (!taken.has(p)) {
      taken.add(p);
      out.push(p);
    }
  };
  const walked: WalkState = { seen: new Set(), found: 0, max: Infinity };
  for (const { arg, fromList } of items) {
    const s = await stat(arg).catch((e: unknown) => e as Error);
    if (!(s instanceof Error)) {
      if (s.isDirectory()) {
        const files = await walk(arg, walked);
        if (files.length === 0) throw new PerceiverError("INPUT_INVALID", `${arg}: the directory holds no image (PNG, JPEG, WebP, GIF or BMP)`);
        files.forEach(add);
      } else {
        try {
          await access(arg, constants.R_OK);
        } catch (e) {
          throw fsError(arg, e, "cannot read image file");
        }
        if (!s.isFile()) throw new PerceiverError("INPUT_INVALID", `cannot read image file ${arg}: not a regular file`);
        add(arg);
      }
    } else if (!fromList && isDynamicPattern(arg)) {
      const absolute = arg.startsWith("/");
      const files = await glob(arg, { onlyFiles: true, expandDirectories: false, absolute, followSymbolicLinks: false });
      if (files.length === 0) throw new PerceiverError("INPUT_INVALID", `${arg}: the pattern matches no file`);
      files.sort(compareCodeUnits).forEach(add);
    } else {
      throw fsError(arg, s, fromList ? `in ${opts.filesFrom === "-" ? "stdin" : opts.filesFrom}: cannot read` : "cannot read");
    }
  }
  return out;
}
