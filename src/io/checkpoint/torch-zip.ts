/**
 * A small, strict zip reader for PyTorch checkpoints (`torch.save` since 1.6 writes a zip archive).
 *
 * It parses the central directory itself instead of unpacking everything, so that it can:
 * - hand out STORED entries (torch writes every entry stored, data 64-byte aligned) as zero-copy subarrays;
 * - inflate DEFLATED entries (other zip writers) in bounded steps, keeping only the prefix the caller needs
 *   (`keepBytes`), failing as soon as the stream grows past its declared size (zip bombs), checking the CRC-32, and
 *   counting every inflated byte against one cap for the whole archive (not one per entry);
 * - check every offset and size against the file before touching it.
 * Zip64 (archives or entries over 4 GB) is read through the zip64 end record and the zip64 extra field.
 * Encrypted entries, multi-disk archives and compression methods other than stored/deflate are refused.
 */
import { Inflate } from "fflate";
import { PerceiverError } from "../../errors.js";
import { crc32 } from "../crc32.js";

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate. */
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** Offset of the local file header. */
  readonly localHeaderOffset: number;
}

export interface ZipReadOptions {
  /** Name used in error messages (usually the file path). */
  source?: string;
  /** Largest declared uncompressed size accepted for a DEFLATED entry. Default 1 GiB. */
  maxEntryBytes?: number;
  /**
   * Cap on the bytes inflated over the archive's lifetime, all deflated entries together, including bytes inflated
   * only to check a CRC and then dropped. Default `defaultInflateCap(archive size)`: 64 MiB + 16x the archive.
   */
  maxTotalInflatedBytes?: number;
}

/**
 * The default archive-wide inflate cap: 64 MiB plus 16 times the archive's size. Weights deflate to about 0.9x
 * of their size (float mantissas are nearly random), so real archives stay far below it; a bomb (deflate reaches
 * 1032:1) is stopped after a bounded amount of work and memory.
 */
export function defaultInflateCap(archiveBytes: number): number {
  return 64 * 2 ** 20 + 16 * archiveBytes;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
/** Deflate cannot expand by more than ~1032x (258-byte matches coded in ~2 bits). */
const DEFLATE_MAX_RATIO = 1032;
/** Compressed bytes pushed into the inflater per step: one step yields at most ~4 MiB, so a bomb is caught after a
 *  bounded amount of work and memory. */
const INFLATE_STEP = 1 << 12;

/** A parsed zip archive over a byte buffer. Entry data is read on demand. */
export class ZipArchive {
  readonly bytes: Uint8Array;
  readonly source: string;
  /** Entries in central-directory order. */
  readonly entries: readonly ZipEntry[];
  private readonly byName: Map<string, ZipEntry>;
  private readonly maxEntryBytes: number;
  private readonly maxTotalInflatedBytes: number;
  private inflatedSoFar = 0;

  constructor(bytes: Uint8Array, opts: ZipReadOptions = {}) {
    this.bytes = bytes;
    this.source = opts.source ?? "<zip>";
    this.maxEntryBytes = opts.maxEntryBytes ?? 2 ** 30;
    this.maxTotalInflatedBytes = opts.maxTotalInflatedBytes ?? defaultInflateCap(bytes.length);
    this.entries = readCentralDirectory(bytes, this.source);
    this.byName = new Map();
    for (const e of this.entries) {
      if (this.byName.has(e.name)) this.fail(`duplicate entry name "${e.name}"`);
      this.byName.set(e.name, e);
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Bytes inflated so far over the archive's lifetime (counted against maxTotalInflatedBytes). */
  get inflatedBytes(): number {
    return this.inflatedSoFar;
  }

  /** The archive-wide inflate cap in force. */
  get inflateCap(): number {
    return this.maxTotalInflatedBytes;
  }

  /**
   * The first `keepBytes` (default: all) uncompressed bytes of an entry. Stored entries are zero-copy views of the
   * archive buffer (read-only by convention) and their CRC is checked only when `verifyCrc` is set. Deflated entries
   * are inflated into a buffer of `keepBytes` only: with `verifyCrc` the rest of the stream is inflated in bounded
   * steps, CRC-checked and dropped; without it, inflating stops once the prefix is filled. Errors: ZIP_INVALID.
   */
  read(name: string, verifyCrc = false, keepBytes = Infinity): Uint8Array {
    const e = this.byName.get(name);
    if (e === undefined) this.fail(`no entry named "${name}"`);
    const start = this.dataStart(e);
    const comp = this.bytes.subarray(start, start + e.compressedSize);
    const keep = Math.min(e.uncompressedSize, keepBytes);
    if (e.method === 0) {
      if (e.compressedSize !== e.uncompressedSize) {
        this.fail(`stored entry "${e.name}" has compressed size ${e.compressedSize} != uncompressed size ${e.uncompressedSize}`);
      }
      if (verifyCrc) this.checkCrc(e, crc32(comp));
      return comp.subarray(0, keep);
    }
    return this.inflate(e, comp, keep, verifyCrc);
  }

  /** Check an entry's CRC-32 (inflating a deflated one in bounded steps, counted against the archive cap). */
  verify(name: string): void {
    this.read(name, true, 0);
  }

  /** The bytes `read(name, verifyCrc, keepBytes)` would inflate (0 for a stored entry), for checks before reading. */
  inflateCost(name: string, verifyCrc: boolean, keepBytes = Infinity): number {
    const e = this.byName.get(name);
    if (e === undefined || e.method === 0) return 0;
    return verifyCrc ? e.uncompressedSize : Math.min(e.uncompressedSize, keepBytes);
  }

  /** Throws ZIP_INVALID when inflating `bytes` more (e.g. the sum of inflateCost) would pass the archive's cap. */
  checkInflateBudget(bytes: number, what: string): void {
    if (this.inflatedSoFar + bytes > this.maxTotalInflatedBytes) {
      this.fail(`${what} would inflate ${bytes} bytes, over the archive's cap of ${this.maxTotalInflatedBytes} ` +
        `decompressed bytes (maxTotalInflatedBytes; ${this.inflatedSoFar} already inflated)`);
    }
  }

  private checkCrc(e: ZipEntry, crc: number): void {
    if (crc !== e.crc32) {
      this.fail(`entry "${e.name}" is corrupt: CRC-32 ${hex(crc)} != ${hex(e.crc32)} recorded in the directory`);
    }
  }

  private dataStart(e: ZipEntry): number {
    const b = this.bytes;
    const at = e.localHeaderOffset;
    if (at + 30 > b.length) this.fail(`local header of "${e.name}" at offset ${at} lies outside the file (${b.length} bytes)`);
    const dv = view(b);
    if (dv.getUint32(at, true) !== SIG_LOCAL) this.fail(`bad local header signature for "${e.name}" at offset ${at}`);
    const nameLen = dv.getUint16(at + 26, true);
    const extraLen = dv.getUint16(at + 28, true);
    const start = at + 30 + nameLen + extraLen;
    if (start + e.compressedSize > b.length) {
      this.fail(`data of "${e.name}" (${e.compressedSize} bytes at offset ${start}) runs past the end of the file (${b.length} bytes)`);
    }
    return start;
  }

  // comp [compressedSize] deflate stream -> out [keep]: the first `keep` bytes of the entry
  private inflate(e: ZipEntry, comp: Uint8Array, keep: number, verifyCrc: boolean): Uint8Array {
    const size = e.uncompressedSize;
    if (size > this.maxEntryBytes) {
      this.fail(`deflated entry "${e.name}" declares ${size} bytes, over the limit of ${this.maxEntryBytes}`);
    }
    if (size > comp.length * DEFLATE_MAX_RATIO + 1024) {
      this.fail(`deflated entry "${e.name}" declares ${size} bytes from ${comp.length} compressed bytes: impossible ratio`);
    }
    const whole = verifyCrc || keep >= size; // inflate to the end, or stop once `keep` bytes are there
    this.checkInflateBudget(whole ? size : keep, `reading "${e.name}"`);
    const out = new Uint8Array(keep);
    let filled = 0; // bytes of the entry inflated so far
    let crc = 0;
    let done = false;
    const inf = new Inflate((chunk: Uint8Array, final: boolean) => {
      if (filled + chunk.length > size) {
        this.fail(`deflated entry "${e.name}" inflates past its declared size of ${size} bytes (zip bomb?)`);
      }
      if (filled < keep) out.set(chunk.subarray(0, keep - filled), filled);
      if (verifyCrc) crc = crc32(chunk, crc);
      filled += chunk.length;
      this.inflatedSoFar += chunk.length;
      if (final) done = true;
    });
    try {
      // A prefix read pushes no more than its missing bytes can need (deflate expands at most ~1032x), so stopping
      // early really is cheap; a whole read goes in INFLATE_STEP steps.
      for (let p = 0; p < comp.length || p === 0; ) {
        const step = whole ? INFLATE_STEP : Math.min(INFLATE_STEP, 64 + Math.ceil((keep - filled) / DEFLATE_MAX_RATIO));
        const end = Math.min(p + step, comp.length);
        inf.push(comp.subarray(p, end), end >= comp.length);
        p = end;
        if (end >= comp.length || (!whole && filled >= keep)) break;
      }
    } catch (err) {
      if (err instanceof PerceiverError) throw err;
      this.fail(`deflated entry "${e.name}" is corrupt: ${(err as Error).message}`, err);
    }
    if (!whole) {
      if (filled < keep) this.fail(`deflated entry "${e.name}" inflates to ${filled} bytes, its header declares ${size}`);
      return out;
    }
    if (!done || filled !== size) {
      this.fail(`deflated entry "${e.name}" inflates to ${filled} bytes, its header declares ${size}`);
    }
    this.checkCrc(e, verifyCrc ? crc : crc32(out)); // not verifyCrc: keep === size here, so out is the whole entry
    return out;
  }

  private fail(msg: string, cause?: unknown): never {
    throw new PerceiverError("ZIP_INVALID", `${this.source}: ${msg}`, cause === undefined ? undefined : { cause });
  }
}

/** True when the bytes start like a zip archive (local file header signature "PK\x03\x04"). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function hex(n: number): string {
  return "0x" + n.toString(16).padStart(8, "0");
}

/** Little-endian u64 that must fit a JS safe integer. */
function u64(dv: DataView, at: number, what: string, fail: (m: string) => never): number {
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  if (hi >= 0x200000) fail(`${what} ${hi} * 2^32 + ${lo} is too large`);
  return hi * 2 ** 32 + lo;
}

function readCentralDirectory(b: Uint8Array, source: string): ZipEntry[] {
  const fail = (m: string): never => {
    throw new PerceiverError("ZIP_INVALID", `${source}: ${m}`);
  };
  const dv = view(b);
  // End of central directory: 22 bytes + a comment of up to 65535 bytes, at the very end of the file.
  if (b.length < 22) fail(`file too small for a zip archive (${b.length} bytes)`);
  let eocd = -1;
  for (let i = b.length - 22; i >= Math.max(0, b.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === SIG_EOCD && i + 22 + dv.getUint16(i + 20, true) === b.length) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail("end of central directory not found (truncated or not a zip file)");
  const disk = dv.getUint16(eocd + 4, true);
  const cdDisk = dv.getUint16(eocd + 6, true);
  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  if (disk !== 0 || cdDisk !== 0) fail("multi-disk archives are not supported");

  // Zip64: a locator sits right before the classic end record and points at the zip64 end record.
  if (eocd >= 20 && dv.getUint32(eocd - 20, true) === SIG_ZIP64_LOCATOR) {
    const recAt = u64(dv, eocd - 20 + 8, "zip64 end record offset", fail);
    if (recAt + 56 > eocd) fail(`zip64 end record offset ${recAt} is out of bounds`);
    if (dv.getUint32(recAt, true) !== SIG_ZIP64_EOCD) fail(`bad zip64 end record signature at offset ${recAt}`);
    count = u64(dv, recAt + 32, "zip64 entry count", fail);
    cdSize = u64(dv, recAt + 40, "zip64 central directory size", fail);
    cdOffset = u64(dv, recAt + 48, "zip64 central directory offset", fail);
  } else if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    fail("zip64 archive without a zip64 end record locator");
  }
  if (cdOffset + cdSize > b.length) {
    fail(`central directory (${cdSize} bytes at offset ${cdOffset}) lies outside the file (${b.length} bytes)`);
  }
  // Each central entry takes at least 46 bytes: bounds the count before we loop.
  if (count * 46 > cdSize) fail(`central directory of ${cdSize} bytes cannot hold ${count} entries`);

  const entries: ZipEntry[] = [];
  const decoder = new TextDecoder("utf-8", { fatal: false });
  let p = cdOffset;
  const cdEnd = cdOffset + cdSize;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdEnd) fail(`central directory entry ${i} at offset ${p} is truncated`);
    if (dv.getUint32(p, true) !== SIG_CENTRAL) fail(`bad central directory signature for entry ${i} at offset ${p}`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    const crc = dv.getUint32(p + 16, true);
    let csize = dv.getUint32(p + 20, true);
    let usize = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const entryDisk = dv.getUint16(p + 34, true);
    let local = dv.getUint32(p + 42, true);
    const next = p + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) fail(`central directory entry ${i} at offset ${p} runs past the directory`);
    const name = decoder.decode(b.subarray(p + 46, p + 46 + nameLen));
    if (flags & 1) fail(`entry "${name}" is encrypted`);
    if (method !== 0 && method !== 8) fail(`entry "${name}" uses compression method ${method} (only stored and deflate are supported)`);
    // Zip64 extra field (id 1): the 64-bit values of the fields set to 0xffffffff, in this order.
    if (usize === 0xffffffff || csize === 0xffffffff || local === 0xffffffff || entryDisk === 0xffff) {
      let q = p + 46 + nameLen;
      const extraEnd = q + extraLen;
      let found = false;
      while (q + 4 <= extraEnd) {
        const id = dv.getUint16(q, true);
        const len = dv.getUint16(q + 2, true);
        if (q + 4 + len > extraEnd) break;
        if (id === 1) {
          let r = q + 4;
          const take = (what: string): number => {
            if (r + 8 > q + 4 + len) fail(`zip64 extra field of "${name}" is too short for the ${what}`);
            const v = u64(dv, r, `${what} of "${name}"`, fail);
            r += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = take("uncompressed size");
          if (csize === 0xffffffff) csize = take("compressed size");
          if (local === 0xffffffff) local = take("local header offset");
          found = true;
          break;
        }
        q += 4 + len;
      }
      if (!found) fail(`entry "${name}" needs a zip64 extra field but has none`);
    }
    if (local + 30 > cdOffset) fail(`local header of "${name}" at offset ${local} is not before the central directory`);
    if (local + 30 + csize > cdOffset) {
      fail(`data of "${name}" (${csize} bytes after offset ${local}) overlaps the central directory at ${cdOffset}`);
    }
    entries.push({ name, method, crc32: crc, compressedSize: csize, uncompressedSize: usize, localHeaderOffset: local });
    p = next;
  }
  return entries;
}
