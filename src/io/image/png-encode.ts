/**
 * PNG encoding: 8-bit RGB or RGBA pixels -> PNG file bytes (signature, IHDR, text chunks, one IDAT, IEND).
 * Each scanline gets the PNG filter (None, Sub, Up, Average, Paeth) whose output has the smallest sum of absolute
 * values (libpng's heuristic), then the whole image is zlib-compressed with fflate. Pure code, no Buffer, no `fs`:
 * works in Node (write the bytes with fs.writeFile) and in browsers (wrap them in a Blob).
 */
import { zlibSync } from "fflate";
import { PerceiverError } from "../../errors.js";
import { crc32 } from "../crc32.js";
import type { RgbImage } from "./decode.js";

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** The largest filtered image we build in memory (one Uint8Array). */
const MAX_RAW_BYTES = 2 ** 31 - 1;

export interface EncodePngOptions {
  /** zlib level 0 (store) .. 9 (smallest); default 6. */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
  /**
   * Text metadata, keyword -> text, in this order (e.g. `Title`, `Description`, `Software`, or your own keywords).
   * Latin-1 text goes in a tEXt chunk, other text in an uncompressed UTF-8 iTXt chunk. Keywords: 1 to 79 printable
   * Latin-1 characters, no leading, trailing or double spaces (the PNG spec's rule).
   */
  text?: Record<string, string>;
}

/** keyword -> tEXt (keyword NUL text, Latin-1) or iTXt (keyword NUL 0 0 NUL NUL text, UTF-8) chunk data. */
function textChunk(keyword: string, text: string): { type: "tEXt" | "iTXt"; data: Uint8Array } {
  const printable = (c: number) => (c >= 32 && c <= 126) || (c >= 161 && c <= 255);
  if (keyword.length < 1 || keyword.length > 79 || ![...keyword].every((ch) => printable(ch.charCodeAt(0))) ||
      keyword.startsWith(" ") || keyword.endsWith(" ") || keyword.includes("  ")) {
    throw new PerceiverError("INPUT_INVALID", `encodePng: text keyword ${JSON.stringify(keyword)} must be 1 to 79 printable Latin-1 characters without leading, trailing or double spaces`);
  }
  if (typeof text !== "string" || text.includes("\0")) throw new PerceiverError("INPUT_INVALID", `encodePng: the text of ${keyword} must be a string without NUL characters`);
  const kw = Uint8Array.from(keyword, (ch) => ch.charCodeAt(0));
  if ([...text].every((ch) => ch.charCodeAt(0) <= 255)) {
    const data = new Uint8Array(kw.length + 1 + text.length);
    data.set(kw, 0);
    for (let i = 0; i < text.length; i++) data[kw.length + 1 + i] = text.charCodeAt(i);
    return { type: "tEXt", data };
  }
  const utf8 = new TextEncoder().encode(text);
  const data = new Uint8Array(kw.length + 5 + utf8.length); // keyword NUL, compression flag 0, method 0, language NUL, translated keyword NUL
  data.set(kw, 0);
  data.set(utf8, kw.length + 5);
  return { type: "iTXt", data };
}

/** An 8-bit RGB image (HWC) -> PNG bytes (color type 2). */
export function encodeRgbPng(img: RgbImage, options: EncodePngOptions = {}): Uint8Array {
  return encodePng(img.data, img.width, img.height, 3, options);
}

/** data [height, width, channels] (8-bit, HWC; 3 = RGB, 4 = RGBA) -> PNG bytes. */
export function encodePng(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: 3 | 4,
  options: EncodePngOptions = {},
): Uint8Array {
  if (!(data instanceof Uint8Array) && !(data instanceof Uint8ClampedArray)) {
    throw new PerceiverError("INPUT_INVALID", "encodePng: data must be a Uint8Array or Uint8ClampedArray");
  }
  if (channels !== 3 && channels !== 4) {
    throw new PerceiverError("INPUT_INVALID", `encodePng: channels must be 3 (RGB) or 4 (RGBA), got ${String(channels)}`);
  }
  const dimOk = (x: number) => Number.isSafeInteger(x) && x >= 1 && x <= 0x7fffffff;
  if (!dimOk(width) || !dimOk(height)) {
    throw new PerceiverError("INPUT_INVALID", `encodePng: width and height must be integers from 1 to 2^31-1, got ${width}x${height}`);
  }
  const stride = width * channels;
  if (height * (stride + 1) > MAX_RAW_BYTES) {
    throw new PerceiverError("INPUT_INVALID", `encodePng: ${width}x${height}x${channels} is too large to encode in memory`);
  }
  if (data.length !== stride * height) {
    throw new PerceiverError("INPUT_INVALID", `encodePng: ${width}x${height}x${channels} needs ${stride * height} bytes, got ${data.length}`);
  }
  const level = options.level ?? 6;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new PerceiverError("INPUT_INVALID", `encodePng: level must be an integer from 0 to 9, got ${String(level)}`);
  }

  const texts = Object.entries(options.text ?? {}).map(([k, t]) => textChunk(k, t));
  const raw = filterScanlines(data, width, height, channels);
  const idat = zlibSync(raw, { level });
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 3 ? 2 : 6; // color type: truecolor / truecolor + alpha
  // compression 0, filter method 0, interlace 0
  const textBytes = texts.reduce((n, t) => n + 12 + t.data.length, 0);
  const out = new Uint8Array(8 + (12 + 13) + textBytes + (12 + idat.length) + 12);
  out.set(SIGNATURE, 0);
  let o = 8;
  o = writeChunk(out, o, "IHDR", ihdr);
  for (const t of texts) o = writeChunk(out, o, t.type, t.data);
  o = writeChunk(out, o, "IDAT", idat);
  writeChunk(out, o, "IEND", new Uint8Array(0));
  return out;
}

/** data [h, w*bpp] -> [h, 1 + w*bpp]: each row prefixed by its filter type and filtered with it. */
function filterScanlines(data: ArrayLike<number>, width: number, height: number, bpp: number): Uint8Array {
  const stride = width * bpp;
  const raw = new Uint8Array(height * (stride + 1));
  const cand = [0, 1, 2, 3, 4].map(() => new Uint8Array(stride)); // reused for every row
  const zero = new Uint8Array(stride);
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < stride; i++) cur[i] = data[y * stride + i];
    const up = y === 0 ? zero : prev;
    let best = 0;
    let bestCost = Infinity;
    for (let f = 0; f < 5; f++) {
      const c = cand[f];
      let cost = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0;
        const b = up[i];
        const ab = i >= bpp ? up[i - bpp] : 0;
        const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, ab);
        const x = (cur[i] - pred) & 0xff;
        c[i] = x;
        cost += x < 128 ? x : 256 - x;
      }
      if (cost < bestCost) {
        bestCost = cost;
        best = f;
      }
    }
    const o = y * (stride + 1);
    raw[o] = best;
    raw.set(cand[best], o + 1);
    prev.set(cur);
  }
  return raw;
}

/** The PNG Paeth predictor: whichever of left, up, up-left is closest to left + up - upLeft. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Writes length, type, data and CRC at out[o]; returns the offset after the chunk. */
function writeChunk(out: Uint8Array, o: number, type: string, data: Uint8Array): number {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(o, data.length);
  for (let i = 0; i < 4; i++) out[o + 4 + i] = type.charCodeAt(i);
  out.set(data, o + 8);
  v.setUint32(o + 8 + data.length, crc32(out.subarray(o + 4, o + 8 + data.length)));
  return o + 12 + data.length;
}

