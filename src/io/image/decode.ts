/**
 * Image decoding: PNG / JPEG bytes -> 8-bit RGB (HWC), matching Pillow's `Image.open(f).convert("RGB")`,
 * which is what the golden pipeline does before preprocessing (docs/numerics.md, "Image preprocessing").
 *
 * - PNG via `pngjs`: palette expanded, gray replicated, alpha dropped WITHOUT compositing, 16-bit -> high byte.
 *   Bit-exact with Pillow except 16-bit grayscale (see `pngToRgb`).
 * - JPEG via `jpeg-js` for the entropy decoding and IDCT, then libjpeg-turbo's "fancy" chroma upsampling and its
 *   fixed-point YCbCr->RGB conversion re-done here, so the result is within 1-3 levels of Pillow/libjpeg-turbo
 *   (only the IDCT rounding differs). jpeg-js alone (nearest-neighbour chroma) is off by up to ~14 levels at edges.
 *
 * EXIF orientation: by default the image is turned upright as its EXIF (or XMP) Orientation says, like
 * transformers' `load_image` (`PIL.ImageOps.exif_transpose`, then `convert("RGB")`) and like browsers; see exif.ts.
 * `exifOrientation: false` gives the pixels as stored (`Image.open(f).convert("RGB")`, what the goldens use).
 *
 * Width and height are read from the header and checked before any pixel memory is allocated.
 * No `fs` here: this file works in Node and in browsers (pngjs needs a global `Buffer`; in a browser without
 * one, decode with a canvas and call `fromPixels`).
 */
import { Unzlib } from "fflate";
import jpegJs from "jpeg-js";
import { PNG } from "pngjs";
import { PerceiverError } from "../../errors.js";
import { crc32 } from "../crc32.js";
import { applyOrientation, imageOrientation, type OrientationSources } from "./exif.js";
import type { RgbImage } from "./rgb-image.js";

export type { RgbImage } from "./rgb-image.js";

export interface DecodeImageOptions {
  /** Refuse images with more pixels than this (checked from the header, before decoding). Default 100_000_000. */
  maxPixels?: number;
  /** Name used in error messages (a file name or URL). Default "image". */
  source?: string;
  /**
   * Turn the image upright as its EXIF Orientation tag (or, without one, its XMP) says, like transformers'
   * `load_image` and browsers. Default true; false keeps the stored orientation (Pillow's plain `Image.open`).
   */
  exifOrientation?: boolean;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

export type ImageFormat = "png" | "jpeg";

/** What the header says, read without decoding pixels. */
export interface ImageHeader {
  format: ImageFormat;
  /** the size decodeImage returns with the same options (stored width and height swapped for orientations 5-8) */
  width: number;
  height: number;
  /** the EXIF orientation found (1-8; 1 when there is none or it is unusable), applied or not */
  orientation: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** "png" / "jpeg" from the magic bytes, or null. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return null;
}

/**
 * Reads format, width and height and validates them (size limits included) without decoding pixels.
 * For JPEG this walks the whole marker structure, so it also reports a truncated file.
 */
export function readImageHeader(bytes: Uint8Array, opts: DecodeImageOptions = {}): ImageHeader {
  const ctx = context(bytes, opts);
  const info = ctx.format === "png" ? parsePng(bytes, ctx) : scanJpeg(bytes, ctx);
  const swap = ctx.orient && info.orientation >= 5;
  return {
    format: ctx.format, width: swap ? info.height : info.width, height: swap ? info.width : info.height,
    orientation: info.orientation,
  };
}

/** Decodes PNG or JPEG bytes to 8-bit RGB, upright (see exifOrientation). Every failure is a PerceiverError (IMAGE_*). */
export function decodeImage(bytes: Uint8Array, opts: DecodeImageOptions = {}): RgbImage {
  const ctx = context(bytes, opts);
  const { img, orientation } = ctx.format === "png" ? decodePng(bytes, ctx) : decodeJpeg(bytes, ctx);
  return ctx.orient ? applyOrientation(img, orientation) : img;
}

/**
 * Wraps raw pixels (e.g. canvas `getImageData().data`, which is RGBA) as an RgbImage.
 * RGBA -> RGB drops alpha without compositing, like Pillow's convert("RGB"). Always copies.
 */
export function fromPixels(
  data: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  channels: 3 | 4,
): RgbImage {
  if (!(data instanceof Uint8Array) && !(data instanceof Uint8ClampedArray)) {
    throw new PerceiverError("INPUT_INVALID", "fromPixels: data must be a Uint8Array or Uint8ClampedArray");
  }
  if (!isDim(width) || !isDim(height)) {
    throw new PerceiverError("INPUT_INVALID", `fromPixels: width and height must be non-negative integers, got ${width}x${height}`);
  }
  if (width === 0 || height === 0) {
    throw new PerceiverError("IMAGE_EMPTY", `fromPixels: image is empty (${width}x${height})`);
  }
  if (channels !== 3 && channels !== 4) {
    throw new PerceiverError("INPUT_INVALID", `fromPixels: channels must be 3 (RGB) or 4 (RGBA), got ${String(channels)}`);
  }
  const n = width * height;
  if (data.length !== n * channels) {
    throw new PerceiverError(
      "INPUT_INVALID",
      `fromPixels: ${width}x${height}x${channels} needs ${n * channels} bytes, got ${data.length}`,
    );
  }
  const out = new Uint8Array(n * 3);
  if (channels === 3) {
    out.set(data);
  } else {
    for (let p = 0, q = 0; p < n * 4; p += 4, q += 3) {
      out[q] = data[p];
      out[q + 1] = data[p + 1];
      out[q + 2] = data[p + 2];
    }
  }
  return { width, height, data: out };
}

/** Throws INPUT_INVALID unless `img` is a well-formed RgbImage; `where` names the caller in the message. */
export function assertRgbImage(img: RgbImage, where: string): void {
  if (img === null || typeof img !== "object") {
    throw new PerceiverError("INPUT_INVALID", `${where}: expected an RgbImage {width, height, data}`);
  }
  const { width, height, data } = img;
  if (!isDim(width) || !isDim(height) || width === 0 || height === 0) {
    throw new PerceiverError("INPUT_INVALID", `${where}: invalid image size ${String(width)}x${String(height)}`);
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    const len = data instanceof Uint8Array ? `${data.length} bytes` : "not a Uint8Array";
    throw new PerceiverError("INPUT_INVALID", `${where}: ${width}x${height} RGB needs ${width * height * 3} bytes, data is ${len}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers

interface Ctx {
  format: ImageFormat;
  source: string;
  maxPixels: number;
  /** apply the EXIF orientation */
  orient: boolean;
}

function context(bytes: Uint8Array, opts: DecodeImageOptions): Ctx {
  const source = opts.source ?? "image";
  if (!(bytes instanceof Uint8Array)) {
    throw new PerceiverError("INPUT_INVALID", `${source}: image bytes must be a Uint8Array`);
  }
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof maxPixels !== "number" || !(maxPixels > 0)) {
    throw new PerceiverError("INPUT_INVALID", `${source}: maxPixels must be a positive number, got ${String(maxPixels)}`);
  }
  if (bytes.length === 0) throw new PerceiverError("IMAGE_EMPTY", `${source}: the image file is empty (0 bytes)`);
  const format = sniffImageFormat(bytes);
  if (format === null) {
    if (bytes.length < 8 && PNG_SIGNATURE.slice(0, bytes.length).every((b, i) => bytes[i] === b)) {
      throw new PerceiverError("IMAGE_DECODE", `${source}: PNG is truncated (${bytes.length} bytes, inside the signature)`);
    }
    throw new PerceiverError("IMAGE_UNSUPPORTED", `${source}: not a PNG or JPEG: ${describeBytes(bytes)}`);
  }
  const orient = opts.exifOrientation ?? true;
  if (typeof orient !== "boolean") {
    throw new PerceiverError("INPUT_INVALID", `${source}: exifOrientation must be true or false, got ${String(orient)}`);
  }
  return { format, source, maxPixels, orient };
}

/** Names what an unsupported file looks like, for the error message. */
function describeBytes(b: Uint8Array): string {
  const ascii = (i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));
  let what = "unknown format";
  if (ascii(0, 4) === "GIF8") what = "looks like GIF";
  else if (ascii(0, 4) === "RIFF" && ascii(8, 4) === "WEBP") what = "looks like WebP";
  else if (ascii(0, 2) === "BM") what = "looks like BMP";
  else if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") what = "looks like TIFF";
  else if (ascii(4, 4) === "ftyp") what = `looks like an ISO media file (${ascii(8, 4).trim()}: AVIF/HEIC?)`;
  else if (ascii(0, 4) === "\0\0\x01\0") what = "looks like ICO";
  else if (ascii(0, 2) === "\xff\xd8") what = "looks like a JPEG missing its first marker";
  else if (/^\s*</.test(ascii(0, 64))) what = "looks like text/HTML/SVG (an error page saved as an image?)";
  const hex = Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, "0")).join(" ");
  return `${what} (first bytes: ${hex})`;
}

function isDim(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function checkSize(width: number, height: number, ctx: Ctx, what: string): void {
  if (width === 0 || height === 0) {
    throw new PerceiverError("IMAGE_EMPTY", `${ctx.source}: ${what} says the image is ${width}x${height}`);
  }
  if (width * height > ctx.maxPixels) {
    throw new PerceiverError(
      "IMAGE_TOO_LARGE",
      `${ctx.source}: ${width}x${height} = ${width * height} pixels exceeds maxPixels ${ctx.maxPixels}`,
    );
  }
}

function u16be(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

function u32be(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------------------------------------------
// PNG

interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** [start, end) of each IDAT payload, in file order. */
  idat: Array<[number, number]>;
  /** The bytes to hand to pngjs (the input, or a cleaned copy: see parsePng). */
  cleaned: Uint8Array;
  /** EXIF orientation (exif.ts) from an eXIf chunk, else a "Raw profile type exif" text, else the XMP text */
  orientation: number;
}

const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
const PNG_IEND = new Uint8Array([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);


/**
 * Validates the IHDR (with its CRC) and the chunk layout without inflating anything.
 * The copy handed to pngjs differs from the input only where pngjs and Pillow disagree:
 * - tRNS of gray/RGB images is dropped: pngjs would zero those pixels; Pillow's convert("RGB") keeps their color;
 * - bytes after IEND are dropped (pngjs throws on them; Pillow ignores them);
 * - a missing IEND after complete chunks is added back (Pillow tolerates it; a cut inside IDAT still fails).
 */
function parsePng(b: Uint8Array, ctx: Ctx): PngInfo {
  const src = ctx.source;
  const bad = (msg: string) => new PerceiverError("IMAGE_DECODE", `${src}: corrupt PNG: ${msg}`);
  if (b.length < 33) throw new PerceiverError("IMAGE_DECODE", `${src}: PNG is truncated (${b.length} bytes, no complete IHDR)`);
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
  const depths = PNG_DEPTHS[colorType];
  if (!depths) throw bad(`invalid color type ${colorType}`);
  if (!depths.includes(bitDepth)) throw bad(`bit depth ${bitDepth} is invalid for color type ${colorType}`);
  if (b[26] !== 0 || b[27] !== 0 || b[28] > 1) throw bad("unknown compression, filter or interlace method");

  const keep: Array<[number, number]> = [];
  const idat: Array<[number, number]> = [];
  let off = 8;
  let sawIend = false;
  let rewrite = false;
  const meta: { exif: Uint8Array | null; rawExif: string | null; xmp: string | null } = { exif: null, rawExif: null, xmp: null };
  while (off < b.length) {
    if (off + 8 > b.length) {
      throw new PerceiverError("IMAGE_DECODE", `${src}: PNG is truncated (partial chunk header at offset ${off})`);
    }
    const len = u32be(b, off);
    const type = String.fromCharCode(...b.subarray(off + 4, off + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw bad(`invalid chunk type at offset ${off}`);
    if (len > 0x7fffffff) throw bad(`chunk ${type} at offset ${off} has length ${len}`);
    const end = off + 12 + len;
    if (end > b.length) {
      throw new PerceiverError(
        "IMAGE_DECODE",
        `${src}: PNG is truncated: chunk ${type} at offset ${off} needs ${len + 12} bytes, only ${b.length - off} remain`,
      );
    }
    if (type === "IDAT") idat.push([off + 8, off + 8 + len]);
    if (type === "eXIf") meta.exif = b.subarray(off + 8, off + 8 + len); // a later one replaces it, as in Pillow
    if (type === "tEXt" || type === "zTXt" || type === "iTXt") pngText(type, b.subarray(off + 8, off + 8 + len), meta);
    if (type === "tRNS" && (colorType === 0 || colorType === 2)) {
      rewrite = true;
    } else {
      keep.push([off, end]);
    }
    off = end;
    if (type === "IEND") {
      sawIend = true;
      break;
    }
  }
  if (idat.length === 0) throw bad("no IDAT (image data) chunk");
  if (!sawIend || off < b.length) rewrite = true;
  let cleaned = b;
  if (rewrite) {
    const total = 8 + keep.reduce((s, [a, e]) => s + (e - a), 0) + (sawIend ? 0 : PNG_IEND.length);
    cleaned = new Uint8Array(total);
    cleaned.set(b.subarray(0, 8));
    let p = 8;
    for (const [a, e] of keep) {
      cleaned.set(b.subarray(a, e), p);
      p += e - a;
    }
    if (!sawIend) cleaned.set(PNG_IEND, p);
  }
  const orientation = imageOrientation({ exif: meta.exif ?? (meta.rawExif !== null ? rawProfileBytes(meta.rawExif) : null), xmp: meta.xmp });
  return { width, height, bitDepth, colorType, interlaced: b[28] === 1, idat, cleaned, orientation };
}

/** Pillow's cap on one decompressed PNG text chunk (PngImagePlugin.MAX_TEXT_CHUNK); a bigger one is ignored. */
const MAX_TEXT_CHUNK = 1 << 20;

/**
 * A PNG text chunk's payload -> meta, for the two keywords Pillow reads an orientation from: "Raw profile type
 * exif" (ImageMagick's hex EXIF) and "XML:com.adobe.xmp" (XMP). tEXt: keyword\0text; zTXt: keyword\0 method
 * compressed; iTXt: keyword\0 flag method language\0 translated keyword\0 text (compressed when flag is 1).
 * A chunk Pillow could not read (unknown compression, bad zlib data, over MAX_TEXT_CHUNK) is ignored.
 */
function pngText(type: string, d: Uint8Array, meta: { rawExif: string | null; xmp: string | null }): void {
  const z = d.indexOf(0);
  const key = String.fromCharCode(...d.subarray(0, z < 0 ? Math.min(d.length, 80) : z));
  if (z < 0 || (key !== "Raw profile type exif" && key !== "XML:com.adobe.xmp")) return;
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
  let str: string;
  try {
    str = utf8 ? new TextDecoder("utf-8", { fatal: true }).decode(text) : latin1(text);
  } catch {
    return; // iTXt text that is not UTF-8: Pillow drops it too
  }
  if (key === "XML:com.adobe.xmp") meta.xmp = str;
  else meta.rawExif = str;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** zlib data inflated, or null when it is invalid or would exceed `cap` bytes. */
function inflateCapped(data: Uint8Array, cap: number): Uint8Array | null {
  const parts: Uint8Array[] = [];
  let total = 0;
  let ended = false;
  const tooBig = new Error("too big");
  try {
    const z = new Unzlib((chunk, final) => {
      total += chunk.length;
      if (total > cap) throw tooBig;
      parts.push(chunk);
      if (final) ended = true;
    });
    z.push(data, true);
  } catch {
    return null;
  }
  return ended ? concatBytes(parts) : null;
}

/** ImageMagick's "Raw profile type exif" text (name, length, then hex lines) -> the EXIF bytes, as Pillow reads it; null if not hex. */
function rawProfileBytes(text: string): Uint8Array | null {
  const hex = text.split("\n").slice(3).join("").replace(/[ \t\r\n\f\v]/g, "");
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

/** Bytes of filtered scanline data an Adam7 image needs: 7 passes of rows x (1 filter byte + packed row). */
function adam7DataSize(w: number, h: number, bitDepth: number, colorType: number): number {
  const bitsPerPixel = bitDepth * ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  let total = 0;
  for (const [x0, y0, dx, dy] of [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]) {
    const pw = Math.ceil((w - x0) / dx);
    const ph = Math.ceil((h - y0) / dy);
    if (pw > 0 && ph > 0) total += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }
  return total;
}

/** Bytes of filtered scanline data a non-interlaced image needs: rows x (1 filter byte + packed row). */
function scanlineDataSize(w: number, h: number, bitDepth: number, colorType: number): number {
  const bitsPerPixel = bitDepth * ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  return h * (1 + Math.ceil((w * bitsPerPixel) / 8));
}

/**
 * Inflates the image data once before pngjs does (streaming, 16 KiB of input at a time) and checks its size against
 * what IHDR needs:
 * - less than needed is a truncated image. pngjs must not see it: its sync inflate reads Node's zlib state in the
 *   wrong order and hands back its whole output buffer, uninitialized bytes included, as image data;
 * - more than needed in an interlaced image is refused: pngjs inflates those with no output limit, so a small file
 *   could expand to gigabytes. (Non-interlaced images are inflated up to the needed size only; extra data is
 *   ignored, like Pillow does.)
 */
function checkInflatedSize(b: Uint8Array, info: PngInfo, ctx: Ctx): void {
  const need = info.interlaced
    ? adam7DataSize(info.width, info.height, info.bitDepth, info.colorType)
    : scanlineDataSize(info.width, info.height, info.bitDepth, info.colorType);
  const stopAt = info.interlaced ? need + 1 : need;
  let total = 0;
  const enough = new Error("enough");
  const z = new Unzlib((chunk) => {
    total += chunk.length;
    if (total >= stopAt) throw enough;
  });
  try {
    for (const [start, end] of info.idat) {
      for (let p = start; p < end && total < stopAt; p += 16384) z.push(b.subarray(p, Math.min(p + 16384, end)));
    }
  } catch (e) {
    if (e !== enough) throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: PNG decode failed: ${errorText(e)}`, { cause: e });
  }
  if (info.interlaced && total > need) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: corrupt PNG: image data inflates past the ${need} bytes its IHDR allows`);
  }
  if (total < need) {
    throw new PerceiverError(
      "IMAGE_DECODE",
      `${ctx.source}: PNG is truncated: its image data inflates to ${total} bytes, its IHDR (${info.width}x${info.height}) needs ${need}`,
    );
  }
}

function decodePng(bytes: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const info = parsePng(bytes, ctx);
  checkInflatedSize(bytes, info, ctx);
  const BufferCtor = (globalThis as { Buffer?: typeof Buffer }).Buffer;
  if (!BufferCtor) {
    throw new PerceiverError(
      "IMAGE_UNSUPPORTED",
      `${ctx.source}: PNG decoding needs a global Buffer (Node); in a browser, draw the image on a canvas and use fromPixels`,
    );
  }
  const c = info.cleaned;
  let png: { width: number; height: number; data: ArrayLike<number> };
  try {
    // 16-bit: skipRescale keeps the raw 16-bit samples (a Uint16Array), so we can take the high byte like Pillow.
    // Depths 1/2/4 are rescaled by pngjs exactly like Pillow (v * 255 / (2^d - 1)).
    png = PNG.sync.read(BufferCtor.from(c.buffer, c.byteOffset, c.byteLength), { skipRescale: info.bitDepth === 16 });
  } catch (e) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: PNG decode failed: ${errorText(e)}`, { cause: e });
  }
  if (png.width !== info.width || png.height !== info.height || png.data.length !== info.width * info.height * 4) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: PNG decoder returned an unexpected pixel buffer`);
  }
  return { img: pngToRgb(png.data, info.width, info.height, info.bitDepth === 16 ? 8 : 0), orientation: info.orientation };
}

/**
 * pngjs RGBA (gray already replicated, palette already expanded) -> RGB, alpha dropped without compositing.
 * `shift` = 8 for 16-bit samples: Pillow reads 16-bit RGB / RGBA / gray+alpha PNGs through its ";16B" raw modes,
 * which keep the high byte (v >> 8); we do the same. 16-bit GRAY is the odd one: Pillow opens it as "I;16" and
 * convert("RGB") then CLAMPS (min(v, 255)), so nearly every pixel becomes white. We take the high byte there
 * too, which is the sensible reading of the data and deliberately not what Pillow does.
 */
function pngToRgb(rgba: ArrayLike<number>, width: number, height: number, shift: number): RgbImage {
  const n = width * height;
  const out = new Uint8Array(n * 3);
  for (let p = 0, q = 0; p < n * 4; p += 4, q += 3) {
    out[q] = rgba[p] >> shift;
    out[q + 1] = rgba[p + 1] >> shift;
    out[q + 2] = rgba[p + 2] >> shift;
  }
  return { width, height, data: out };
}

// ---------------------------------------------------------------------------------------------------------------
// JPEG

interface JpegComponent {
  id: number;
  h: number;
  v: number;
}

interface JpegInfo {
  width: number;
  height: number;
  components: JpegComponent[];
  jfif: boolean;
  /** Offset of the Adobe APP14 transform byte, or -1 when there is no Adobe marker. */
  adobeTransformAt: number;
  /** Its value as found in the file (0 = RGB / CMYK, 1 = YCbCr, 2 = YCCK), or -1. */
  adobeTransform: number;
  /** EXIF orientation (exif.ts) from the APP1 EXIF segments before the first scan, else from the XMP segment */
  orientation: number;
}

const SOF_NAMES: Record<number, string> = {
  0xc0: "baseline",
  0xc1: "extended sequential",
  0xc2: "progressive",
  0xc3: "lossless",
  0xc5: "differential sequential",
  0xc6: "differential progressive",
  0xc7: "differential lossless",
  0xc9: "arithmetic-coded sequential",
  0xca: "arithmetic-coded progressive",
  0xcb: "arithmetic-coded lossless",
  0xcd: "arithmetic-coded differential sequential",
  0xce: "arithmetic-coded differential progressive",
  0xcf: "arithmetic-coded differential lossless",
};

/**
 * Walks the JPEG marker structure (segments, then entropy-coded data up to the next marker) to EOI.
 * Reads the frame header (size, components, sampling) and checks limits before anything is decoded, and makes sure
 * the file is complete: jpeg-js would silently decode a truncated file to gray, Pillow raises "image file is truncated".
 */
function scanJpeg(b: Uint8Array, ctx: Ctx): JpegInfo {
  const src = ctx.source;
  const n = b.length;
  const bad = (msg: string) => new PerceiverError("IMAGE_DECODE", `${src}: corrupt JPEG: ${msg}`);
  const truncated = (where: string) => new PerceiverError("IMAGE_DECODE", `${src}: JPEG is truncated (${where}; no EOI marker)`);
  let info: JpegInfo | null = null;
  let jfif = false;
  let adobeTransformAt = -1;
  let scans = 0;
  let exif: Uint8Array | null = null;
  let xmp: string | null = null;
  let off = 2;
  for (;;) {
    if (off >= n) throw truncated(`file ends at offset ${n}`);
    if (b[off] !== 0xff) throw bad(`expected a marker at offset ${off}, found 0x${b[off].toString(16)}`);
    while (off + 1 < n && b[off + 1] === 0xff) off++; // fill bytes
    if (off + 1 >= n) throw truncated(`file ends inside a marker at offset ${off}`);
    const m = b[off + 1];
    const at = off;
    off += 2;
    if (m === 0xd9) break; // EOI
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // TEM, RSTn: no payload
    if (m === 0xd8 || m === 0x00) throw bad(`unexpected marker 0xff${m.toString(16).padStart(2, "0")} at offset ${at}`);
    if (off + 2 > n) throw truncated(`file ends inside the segment length at offset ${off}`);
    const len = u16be(b, off);
    if (len < 2) throw bad(`segment 0xff${m.toString(16)} at offset ${at} has length ${len}`);
    const end = off + len;
    if (end > n) throw truncated(`segment 0xff${m.toString(16)} at offset ${at} needs ${len} bytes, ${n - off} remain`);
    const p = off + 2; // payload
    const plen = len - 2;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (info) throw bad(`second frame header at offset ${at}`);
      if (plen < 6) throw bad(`frame header at offset ${at} is too short`);
      const precision = b[p];
      const height = u16be(b, p + 1);
      const width = u16be(b, p + 3);
      const nc = b[p + 5];
      if (plen < 6 + 3 * nc) throw bad(`frame header at offset ${at} is too short for ${nc} components`);
      if (m !== 0xc0 && m !== 0xc1 && m !== 0xc2) {
        throw new PerceiverError("IMAGE_UNSUPPORTED", `${src}: ${SOF_NAMES[m]} JPEG (SOF${m - 0xc0}) is not supported`);
      }
      if (precision !== 8) {
        throw new PerceiverError("IMAGE_UNSUPPORTED", `${src}: ${precision}-bit JPEG is not supported (only 8-bit)`);
      }
      if (height === 0) {
        throw new PerceiverError("IMAGE_EMPTY", `${src}: JPEG frame header has height 0 (height set by a DNL marker is not supported)`);
      }
      checkSize(width, height, ctx, "JPEG frame header");
      if (nc !== 1 && nc !== 3 && nc !== 4) {
        throw new PerceiverError("IMAGE_UNSUPPORTED", `${src}: JPEG with ${nc} components is not supported`);
      }
      const components: JpegComponent[] = [];
      for (let i = 0; i < nc; i++) {
        const id = b[p + 6 + 3 * i];
        const h = b[p + 7 + 3 * i] >> 4;
        const v = b[p + 7 + 3 * i] & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) throw bad(`component ${id} has sampling factors ${h}x${v}`);
        components.push({ id, h, v });
      }
      const maxH = Math.max(...components.map((c) => c.h));
      const maxV = Math.max(...components.map((c) => c.v));
      if (components.some((c) => maxH % c.h !== 0 || maxV % c.v !== 0)) {
        throw new PerceiverError("IMAGE_UNSUPPORTED", `${src}: JPEG with fractional chroma sampling ratios is not supported`);
      }
      info = { width, height, components, jfif: false, adobeTransformAt: -1, adobeTransform: -1, orientation: 1 };
    } else if (m === 0xda) {
      if (!info) throw bad(`scan at offset ${at} before the frame header`);
      scans++;
      // Entropy-coded data: runs until a marker other than a stuffed 0xff00 or RSTn.
      let q = end;
      for (;;) {
        q = b.indexOf(0xff, q);
        if (q < 0 || q + 1 >= n) throw truncated(`file ends inside scan ${scans} (scan data from offset ${end})`);
        const nb = b[q + 1];
        if (nb === 0x00 || (nb >= 0xd0 && nb <= 0xd7)) q += 2;
        else if (nb === 0xff) q += 1;
        else break;
      }
      off = q;
      continue;
    } else if (m === 0xe0 && plen >= 5 && String.fromCharCode(...b.subarray(p, p + 5)) === "JFIF\0") {
      jfif = true;
    } else if (m === 0xee && plen >= 12 && String.fromCharCode(...b.subarray(p, p + 5)) === "Adobe") {
      adobeTransformAt = p + 11;
    } else if (m === 0xe1 && scans === 0) {
      // Pillow reads these while opening, before the first scan: the first EXIF segment, later ones appended
      // without their "Exif\0\0"; the last XMP segment's packet (after its namespace and \0)
      const seg = b.subarray(p, end);
      if (startsWith(seg, EXIF_ID)) exif = exif === null ? seg : concatBytes([exif, seg.subarray(6)]);
      else if (startsWith(seg, XMP_ID)) xmp = latin1(seg.subarray(XMP_ID.length));
    }
    off = end;
  }
  if (!info) throw bad("no frame header (SOF) before EOI");
  if (scans === 0) throw bad("no scan (SOS) before EOI");
  if (info.components.length === 4 && adobeTransformAt < 0) {
    throw new PerceiverError("IMAGE_UNSUPPORTED", `${src}: 4-component JPEG without an Adobe marker is not supported`);
  }
  info.jfif = jfif;
  info.adobeTransformAt = adobeTransformAt;
  info.adobeTransform = adobeTransformAt >= 0 ? b[adobeTransformAt] : -1;
  info.orientation = imageOrientation({ exif, xmp });
  return info;
}

const EXIF_ID = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const XMP_ID = [..."http://ns.adobe.com/xap/1.0/\0"].map((c) => c.charCodeAt(0));

function startsWith(b: Uint8Array, prefix: number[]): boolean {
  return b.length >= prefix.length && prefix.every((x, i) => b[i] === x);
}

/** The parts, one after another, in a new array. */
function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function decodeJpeg(bytes: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const info = scanJpeg(bytes, ctx);
  const { width, height, components } = info;
  const three = components.length === 3;
  let input = bytes;
  if (three && info.adobeTransform > 0) {
    // jpeg-js always color-converts when an Adobe marker says transform != 0; we want the raw Y/Cb/Cr planes
    // (we do libjpeg's upsampling + conversion below), so it gets a copy with that flag cleared.
    input = bytes.slice();
    input[info.adobeTransformAt] = 0;
  }
  let raw: { width: number; height: number; data: Uint8Array };
  try {
    raw = jpegJs.decode(input, {
      useTArray: true,
      formatAsRGBA: false,
      colorTransform: three ? false : undefined,
      tolerantDecoding: true,
      maxResolutionInMP: ctx.maxPixels / 1e6,
      // jpeg-js accounting: 256 B per 8x8 block and component (4 B/sample), + per-line and output buffers: < 32 B/px.
      maxMemoryUsageInMB: Math.ceil((ctx.maxPixels * 32) / 2 ** 20) + 64,
    });
  } catch (e) {
    const msg = errorText(e);
    if (/maxMemoryUsageInMB|maxResolutionInMP|allocate enough memory/.test(msg)) {
      throw new PerceiverError("IMAGE_TOO_LARGE", `${ctx.source}: JPEG decoding needs too much memory: ${msg}`, { cause: e });
    }
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: JPEG decode failed: ${msg}`, { cause: e });
  }
  if (raw.width !== width || raw.height !== height || raw.data.length !== width * height * 3) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: JPEG decoder returned an unexpected pixel buffer`);
  }
  const { orientation } = info;
  if (!three) return { img: { width, height, data: raw.data }, orientation }; // gray (replicated by jpeg-js) or CMYK/YCCK (converted)
  return { img: jpegPlanesToRgb(raw.data, width, height, components, jpegIsYcc(info)), orientation };
}

/** libjpeg's colorspace guess for 3-component files (jdapimin.c default_decompress_parms). */
function jpegIsYcc(info: JpegInfo): boolean {
  if (info.jfif) return true;
  if (info.adobeTransform >= 0) return info.adobeTransform !== 0; // Adobe transform 0 = RGB, else YCbCr
  const [a, b, c] = info.components.map((x) => x.id);
  return !(a === 82 && b === 71 && c === 66); // 'R','G','B' ids mean RGB; anything else is assumed YCbCr
}

/**
 * jpeg-js output decoded with colorTransform=false: 3 planes interleaved, subsampled planes blown up by nearest
 * neighbour. Recovers each subsampled plane, re-upsamples it as libjpeg-turbo does by default (jdsample.c "fancy"
 * triangle filters), then applies jdcolor.c's fixed-point YCbCr->RGB.
 */
function jpegPlanesToRgb(raw: Uint8Array, W: number, H: number, comps: JpegComponent[], ycc: boolean): RgbImage {
  const maxH = Math.max(...comps.map((c) => c.h));
  const maxV = Math.max(...comps.map((c) => c.v));
  const planes = comps.map((comp, c) => {
    const rh = maxH / comp.h;
    const rv = maxV / comp.v;
    const full = new Uint8Array(W * H);
    if ((rh !== 1 && rh !== 2) || (rv !== 1 && rv !== 2) || (rh === 1 && rv === 1)) {
      // Full size, or 3:1 / 4:1 ratios where libjpeg's int_upsample replicates samples just as jpeg-js does.
      for (let i = 0; i < W * H; i++) full[i] = raw[3 * i + c];
      return full;
    }
    const dw = Math.ceil((W * comp.h) / maxH);
    const dh = Math.ceil((H * comp.v) / maxV);
    const ds = new Uint8Array(dw * dh);
    for (let y = 0; y < dh; y++) {
      for (let x = 0; x < dw; x++) ds[y * dw + x] = raw[((y * rv) * W + x * rh) * 3 + c];
    }
    upsampleFancy(ds, dw, dh, rh, rv, full, W, H);
    return full;
  });
  const out = new Uint8Array(W * H * 3);
  const [p0, p1, p2] = planes;
  if (!ycc) {
    for (let i = 0; i < W * H; i++) {
      out[3 * i] = p0[i];
      out[3 * i + 1] = p1[i];
      out[3 * i + 2] = p2[i];
    }
    return { width: W, height: H, data: out };
  }
  const t = yccTables();
  for (let i = 0; i < W * H; i++) {
    const y = p0[i];
    const cb = p1[i];
    const cr = p2[i];
    out[3 * i] = clamp255(y + t.crR[cr]);
    out[3 * i + 1] = clamp255(y + ((t.cbG[cb] + t.crG[cr]) >> 16));
    out[3 * i + 2] = clamp255(y + t.cbB[cb]);
  }
  return { width: W, height: H, data: out };
}

function clamp255(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

let yccCache: { crR: Int32Array; cbB: Int32Array; crG: Int32Array; cbG: Int32Array } | undefined;

/** jdcolor.c build_ycc_rgb_table: SCALEBITS 16, FIX(x) = (int)(x * 65536 + 0.5). */
function yccTables() {
  if (!yccCache) {
    const FIX = (x: number) => Math.trunc(x * 65536 + 0.5);
    const HALF = 1 << 15;
    const crR = new Int32Array(256);
    const cbB = new Int32Array(256);
    const crG = new Int32Array(256);
    const cbG = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      const x = i - 128;
      crR[i] = (FIX(1.402) * x + HALF) >> 16;
      cbB[i] = (FIX(1.772) * x + HALF) >> 16;
      crG[i] = -FIX(0.71414) * x;
      cbG[i] = -FIX(0.34414) * x + HALF;
    }
    yccCache = { crR, cbB, crG, cbG };
  }
  return yccCache;
}

/**
 * libjpeg-turbo's default upsampling of one component, ds [dh, dw] -> out [H, W] (extra columns/rows dropped):
 * h2v1 / h2v2 fancy (triangle filter, alternating rounding bias) when dw > 2, else box replication;
 * h1v2 fancy always. Rows above the first / below the last are copies of them (jdmainct.c context rows).
 */
function upsampleFancy(
  ds: Uint8Array,
  dw: number,
  dh: number,
  rh: number,
  rv: number,
  out: Uint8Array,
  W: number,
  H: number,
): void {
  const row = new Uint8Array(dw * rh);
  const fancyH = rh === 2 && dw > 2;
  for (let iy = 0; iy < dh; iy++) {
    for (let v = 0; v < rv; v++) {
      const oy = iy * rv + v;
      if (oy >= H) break;
      const r0 = iy * dw;
      // Vertical neighbour: row above for the first output row of the pair, below for the second.
      const r1 = rv === 2 ? (v === 0 ? Math.max(iy - 1, 0) : Math.min(iy + 1, dh - 1)) * dw : r0;
      if (rh === 2 && rv === 2 && fancyH) {
        // h2v2_fancy_upsample
        let th = ds[r0] * 3 + ds[r1];
        let nx = ds[r0 + 1] * 3 + ds[r1 + 1];
        let o = 0;
        row[o++] = (th * 4 + 8) >> 4;
        row[o++] = (th * 3 + nx + 7) >> 4;
        let la = th;
        th = nx;
        for (let x = 2; x < dw; x++) {
          nx = ds[r0 + x] * 3 + ds[r1 + x];
          row[o++] = (th * 3 + la + 8) >> 4;
          row[o++] = (th * 3 + nx + 7) >> 4;
          la = th;
          th = nx;
        }
        row[o++] = (th * 3 + la + 8) >> 4;
        row[o++] = (th * 4 + 7) >> 4;
      } else if (rh === 2 && rv === 1 && fancyH) {
        // h2v1_fancy_upsample
        let o = 0;
        row[o++] = ds[r0];
        row[o++] = (ds[r0] * 3 + ds[r0 + 1] + 2) >> 2;
        for (let x = 1; x < dw - 1; x++) {
          const c = ds[r0 + x] * 3;
          row[o++] = (c + ds[r0 + x - 1] + 1) >> 2;
          row[o++] = (c + ds[r0 + x + 1] + 2) >> 2;
        }
        row[o++] = (ds[r0 + dw - 1] * 3 + ds[r0 + dw - 2] + 1) >> 2;
        row[o++] = ds[r0 + dw - 1];
      } else if (rh === 1 && rv === 2) {
        // h1v2_fancy_upsample (bias 1 for the upper row of the pair, 2 for the lower)
        const bias = v === 0 ? 1 : 2;
        for (let x = 0; x < dw; x++) row[x] = (ds[r0 + x] * 3 + ds[r1 + x] + bias) >> 2;
      } else {
        // h2v1_upsample / h2v2_upsample (dw <= 2): replicate
        for (let x = 0; x < dw; x++) {
          row[2 * x] = ds[r0 + x];
          row[2 * x + 1] = ds[r0 + x];
        }
      }
      out.set(row.subarray(0, W), oy * W);
    }
  }
}
