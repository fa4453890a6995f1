/**
 * PNG container: the IHDR (validated, with its CRC), PLTE, the IDAT ranges and the orientation metadata, read
 * without inflating the image data. Text chunks are bounded as in Pillow (PngImagePlugin): one decompressed text
 * chunk over MAX_TEXT_CHUNK is skipped, and more than MAX_TEXT_MEMORY of text in all is an error.
 */
import { Unzlib } from "fflate";
import { crc32 } from "../crc32.js";
import {
  checkExpansion, checkSize, concatBytes, corrupt, latin1, truncated, u32be, type Ctx, type HeaderInfo,
} from "./common.js";
import { imageOrientation } from "./exif.js";

export interface PngInfo extends HeaderInfo {
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** [start, end) of each IDAT payload, in file order */
  idat: Array<[number, number]>;
  /** PLTE entries as RGB triplets (empty when there is none) */
  palette: Uint8Array;
}

const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
/** samples per pixel by color type */
export const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Pillow's cap on one decompressed text chunk (PngImagePlugin.MAX_TEXT_CHUNK); a bigger one is skipped. */
const MAX_TEXT_CHUNK = 1 << 20;
/** Pillow's cap on all text of a file (PngImagePlugin.MAX_TEXT_MEMORY); more is an error there too. */
const MAX_TEXT_MEMORY = 64 << 20;
/** Deflate's largest expansion: a 258-byte match coded in 2 bits. */
export const DEFLATE_MAX_RATIO = 1032;

/** Bytes of filtered scanline data (rows x (1 filter byte + packed row)) of a w x h image, Adam7 or not. */
export function pngDataSize(w: number, h: number, bitDepth: number, colorType: number, interlaced: boolean): number {
  const bpp = bitDepth * PNG_CHANNELS[colorType];
  if (!interlaced) return h * (1 + Math.ceil((w * bpp) / 8));
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const pw = Math.ceil((w - x0) / dx);
    const ph = Math.ceil((h - y0) / dy);
    if (pw > 0 && ph > 0) total += ph * (1 + Math.ceil((pw * bpp) / 8));
  }
  return total;
}

/** Adam7 passes: [x0, y0, dx, dy] */
export const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];

/**
 * Walks the chunks to IEND (or the end of the file: a missing IEND after complete chunks is tolerated, as Pillow
 * does; bytes after IEND are ignored). Checks the size limits and that the IDAT bytes can inflate to what IHDR
 * declares before anything is allocated for pixels.
 */
export function parsePng(b: Uint8Array, ctx: Ctx): PngInfo {
  const bad = (msg: string) => corrupt(ctx, "PNG", msg);
  if (b.length < 33) throw truncated(ctx, "PNG", `${b.length} bytes, no complete IHDR`);
  if (u32be(b, 8) !== 13 || String.fromCharCode(...b.subarray(12, 16)) !== "IHDR") {
    throw bad("the first chunk is not a 13-byte IHDR");
  }
  if (crc32(b.subarray(12, 29)) !== u32be(b, 29)) throw bad("IHDR CRC mismatch");
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  const bitDepth = b[24];
  const colorType = b[25];
  if (width > 0x7fffffff || height > 0x7fffffff) throw bad(`IHDR size ${width}x${height} is out of range`);
  checkSize(width, height, ctx, "PNG IHDR");
  const depths = DEPTHS[colorType];
  if (!depths) throw bad(`invalid color type ${colorType}`);
  if (!depths.includes(bitDepth)) throw bad(`bit depth ${bitDepth} is invalid for color type ${colorType}`);
  if (b[26] !== 0 || b[27] !== 0 || b[28] > 1) throw bad("unknown compression, filter or interlace method");
  const interlaced = b[28] === 1;

  const idat: Array<[number, number]> = [];
  let palette: Uint8Array = new Uint8Array(0);
  const text: TextMeta = { memory: 0, exif: null, rawExif: null, xmp: null };
  let off = 8;
  while (off < b.length) {
    if (off + 8 > b.length) throw truncated(ctx, "PNG", `partial chunk header at offset ${off}`);
    const len = u32be(b, off);
    const type = String.fromCharCode(...b.subarray(off + 4, off + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw bad(`invalid chunk type at offset ${off}`);
    if (len > 0x7fffffff) throw bad(`chunk ${type} at offset ${off} has length ${len}`);
    const end = off + 12 + len;
    if (end > b.length) {
      throw truncated(ctx, "PNG", `chunk ${type} at offset ${off} needs ${len + 12} bytes, only ${b.length - off} remain`);
    }
    const data = b.subarray(off + 8, off + 8 + len);
    if (type === "IDAT") idat.push([off + 8, off + 8 + len]);
    else if (type === "PLTE") palette = data.subarray(0, len - (len % 3));
    else if (type === "eXIf") text.exif = data; // a later one replaces it, as in Pillow
    else if (type === "tEXt" || type === "zTXt" || type === "iTXt") {
      pngText(type, data, text);
      if (text.memory > MAX_TEXT_MEMORY) {
        throw bad(`more than ${MAX_TEXT_MEMORY} bytes of text chunks (Pillow: "Too much memory used in text chunks")`);
      }
    }
    off = end;
    if (type === "IEND") break;
  }
  if (idat.length === 0) throw bad("no IDAT (image data) chunk");
  if (colorType === 3 && palette.length === 0) throw bad("palette image without a PLTE chunk");
  const compressed = idat.reduce((n, [s, e]) => n + (e - s), 0);
  checkExpansion(pngDataSize(width, height, bitDepth, colorType, interlaced), compressed, DEFLATE_MAX_RATIO, ctx, "PNG");
  const orientation = imageOrientation({
    exif: text.exif ?? (text.rawExif !== null ? rawProfileBytes(textString(text.rawExif)) : null),
    xmp: text.xmp !== null ? textString(text.xmp) : null,
  });
  return { width, height, bitDepth, colorType, interlaced, idat, palette, orientation };
}

/**
 * A text chunk's payload: counted against MAX_TEXT_MEMORY like Pillow does (decompressed size), and kept when its
 * keyword is one Pillow reads an orientation from: "Raw profile type exif" (ImageMagick's hex EXIF) and
 * "XML:com.adobe.xmp" (XMP). tEXt: keyword\0text; zTXt: keyword\0 method compressed; iTXt: keyword\0 flag method
 * language\0 translated keyword\0 text (compressed when flag is 1). A chunk Pillow could not read (unknown
 * compression, bad zlib data, over MAX_TEXT_CHUNK) is skipped.
 */
interface TextMeta {
  memory: number;
  exif: Uint8Array | null;
  /** the last chunk of each keyword (a later one replaces an earlier one), decoded to a string once, at the end */
  rawExif: { bytes: Uint8Array; utf8: boolean } | null;
  xmp: { bytes: Uint8Array; utf8: boolean } | null;
}

/** A kept text chunk as Pillow reads it: latin-1, or UTF-8 for iTXt (text that is not UTF-8 is dropped: null). */
function textString(t: { bytes: Uint8Array; utf8: boolean }): string | null {
  try {
    return t.utf8 ? new TextDecoder("utf-8", { fatal: true }).decode(t.bytes) : latin1(t.bytes);
  } catch {
    return null;
  }
}

function pngText(type: string, d: Uint8Array, meta: TextMeta): void {
  const z = d.indexOf(0);
  if (z < 0) return;
  const key = String.fromCharCode(...d.subarray(0, Math.min(z, 80)));
  let text: Uint8Array | null = d.subarray(z + 1);
  let utf8 = false;
  if (type === "zTXt") {
    text = text.length > 0 && text[0] === 0 ? inflateCapped(text.subarray(1), MAX_TEXT_CHUNK) : null;
  } else if (type === "iTXt") {
    if (text.length < 2) return;
    const [flag, method] = [text[0], text[1]];
    const lang = text.indexOf(0, 2);
    const translated = lang < 0 ? -1 : text.indexOf(0, lang + 1);
    if (translated < 0) return;
    text = text.subarray(translated + 1);
    if (flag !== 0) text = method === 0 ? inflateCapped(text, MAX_TEXT_CHUNK) : null;
    utf8 = true;
  }
  if (text === null) return;
  meta.memory += text.length;
  if (key !== "XML:com.adobe.xmp" && key !== "Raw profile type exif") return;
  // iTXt text that is not UTF-8 is dropped by Pillow (an earlier chunk stays): checked now; latin-1 never fails
  if (utf8 && textString({ bytes: text, utf8 }) === null) return;
  if (key === "XML:com.adobe.xmp") meta.xmp = { bytes: text, utf8 };
  else meta.rawExif = { bytes: text, utf8 };
}

/** zlib data inflated, or null when it is invalid or would exceed `cap` bytes (stops inflating there). */
function inflateCapped(data: Uint8Array, cap: number): Uint8Array | null {
  const parts: Uint8Array[] = [];
  let total = 0;
  let ended = false;
  const tooBig = new Error("too big");
  try {
    const z = new Unzlib((chunk, final) => {
      total += chunk.length;
      if (total > cap) throw tooBig;
      parts.push(chunk.slice());
      if (final) ended = true;
    });
    for (let p = 0; p < data.length && !ended; p += 16384) z.push(data.subarray(p, Math.min(p + 16384, data.length)), p + 16384 >= data.length);
  } catch {
    return null;
  }
  return ended ? concatBytes(parts) : null;
}

/** ImageMagick's "Raw profile type exif" text (name, length, then hex lines) -> the EXIF bytes, as Pillow reads it; null if not hex. */
function rawProfileBytes(text: string | null): Uint8Array | null {
  if (text === null) return null;
  const hex = text.split("\n").slice(3).join("").replace(/[ \t\r\n\f\v]/g, "");
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}
