/**
 * Image decoding: PNG / JPEG / WebP / GIF / BMP bytes -> 8-bit RGB (HWC), matching Pillow's
 * `Image.open(f).convert("RGB")`, which is what the golden pipeline does before preprocessing
 * (docs/numerics.md, "Image preprocessing").
 * The format comes from the bytes (sniff.ts), never from a file name.
 *
 * - PNG (png-chunks.ts, png.ts): our own streaming unfilter over fflate's inflate; exact.
 * - JPEG (jpeg-scan.ts, jpeg.ts): libjpeg-turbo in WebAssembly; CMYK/YCCK and 4:4:0: jpeg-entropy.ts, jpeg-planes.ts. Exact.
 * - WebP (webp.ts): libwebp in WebAssembly. GIF (gif.ts), BMP (bmp.ts): our own decoders.
 *
 * Every format's header is read first and its size checked against `maxPixels` before pixel memory is
 * allocated; see docs/images-and-limits.md for the cost model. Every failure is a PerceiverError (IMAGE_*).
 *
 * Sync and async: decodeImage is synchronous. PNG, GIF and BMP need nothing else. JPEG and WebP use WebAssembly
 * decoders, which Node loads by itself on first use; in a browser, `await initImageDecoders()` once first (or
 * use decodeImageAsync, which does it), else decodeImage throws IMAGE_UNSUPPORTED saying so.
 *
 * EXIF orientation: by default the image is turned upright as its EXIF (or XMP) Orientation says, like
 * transformers' `load_image` (`PIL.ImageOps.exif_transpose`, then `convert("RGB")`) and like browsers; see exif.ts.
 * `exifOrientation: false` gives the pixels as stored (`Image.open(f).convert("RGB")`, what the goldens use).
 *
 * No `fs` here: this file works in Node and in browsers.
 */
import { PerceiverError } from "../../errors.js";
import { decodeBmp, parseBmp } from "./bmp.js";
import {
  DEFAULT_MAX_PIXELS, isDim, type Ctx, type DecodeImageOptions, type HeaderInfo, type ImageFormat,
} from "./common.js";
import { applyOrientation } from "./exif.js";
import { decodeGif, parseGif } from "./gif.js";
import { decodeJpeg } from "./jpeg.js";
import { scanJpeg } from "./jpeg-scan.js";
import { decodePngPixels } from "./png.js";
import { parsePng } from "./png-chunks.js";
import type { RgbImage } from "./rgb-image.js";
import { describeBytes, PNG_SIGNATURE, sniffImageFormat } from "./sniff.js";
import { ensureAsync } from "./wasm-codecs.js";
import { decodeWebp, parseWebp } from "./webp.js";

export type { RgbImage } from "./rgb-image.js";
export { DEFAULT_MAX_PIXELS, type DecodeImageOptions, type ImageFormat } from "./common.js";
export { sniffImageFormat } from "./sniff.js";
export { initImageDecoders, type WasmSource } from "./wasm-codecs.js";

/** What the header says, read without decoding pixels. */
export interface ImageHeader {
  format: ImageFormat;
  /** the size decodeImage returns with the same options (stored width and height swapped for orientations 5-8) */
  width: number;
  height: number;
  /** the EXIF orientation found (1-8; 1 when there is none or it is unusable), applied or not */
  orientation: number;
}

const HEADERS: Record<ImageFormat, (b: Uint8Array, ctx: Ctx) => HeaderInfo> = {
  png: parsePng, jpeg: scanJpeg, webp: parseWebp, gif: parseGif, bmp: parseBmp,
};

const DECODERS: Record<ImageFormat, (b: Uint8Array, ctx: Ctx) => { img: RgbImage; orientation: number }> = {
  png: (b, ctx) => {
    const info = parsePng(b, ctx);
    return { img: decodePngPixels(b, info, ctx), orientation: info.orientation };
  },
  jpeg: decodeJpeg,
  webp: decodeWebp,
  gif: decodeGif,
  bmp: decodeBmp,
};

/**
 * Reads format, width and height and validates them (size limits included) without decoding pixels.
 * For JPEG this walks the whole marker structure, so it also reports a truncated file.
 */
export function readImageHeader(bytes: Uint8Array, opts: DecodeImageOptions = {}): ImageHeader {
  const ctx = context(bytes, opts);
  const info = HEADERS[ctx.format](bytes, ctx);
  const swap = ctx.orient && info.orientation >= 5;
  return {
    format: ctx.format, width: swap ? info.height : info.width, height: swap ? info.width : info.height,
    orientation: info.orientation,
  };
}

/** Decodes image bytes to 8-bit RGB, upright (see exifOrientation). Every failure is a PerceiverError (IMAGE_*). */
export function decodeImage(bytes: Uint8Array, opts: DecodeImageOptions = {}): RgbImage {
  const ctx = context(bytes, opts);
  const { img, orientation } = DECODERS[ctx.format](bytes, ctx);
  return ctx.orient ? applyOrientation(img, orientation) : img;
}

/** decodeImage after loading the WebAssembly decoder the format needs (the way to decode in a browser). */
export async function decodeImageAsync(bytes: Uint8Array, opts: DecodeImageOptions = {}): Promise<RgbImage> {
  const format = bytes instanceof Uint8Array ? sniffImageFormat(bytes) : null;
  if (format === "jpeg" || format === "webp") await ensureAsync(format);
  return decodeImage(bytes, opts);
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
    throw new PerceiverError("IMAGE_UNSUPPORTED", `${source}: not a PNG, JPEG, WebP, GIF or BMP: ${describeBytes(bytes)}`);
  }
  const orient = opts.exifOrientation ?? true;
  if (typeof orient !== "boolean") {
    throw new PerceiverError("INPUT_INVALID", `${source}: exifOrientation must be true or false, got ${String(orient)}`);
  }
  return { format, source, maxPixels, orient };
}

