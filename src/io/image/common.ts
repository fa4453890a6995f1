/**
 * What every image decoder shares: the validated options (Ctx), the size limits checked from a header before any
 * pixel memory is allocated, byte readers and the error constructors. Browser-safe (no Node built-ins).
 */
import { PerceiverError } from "../../errors.js";

/**
 * Default pixel cap: Pillow's decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`, 1024 * 1024 * 1024 / 4 / 3).
 * Pillow warns above it and refuses above twice it; everything Pillow opens without a warning decodes here.
 */
export const DEFAULT_MAX_PIXELS = 89_478_485;

/** The formats decodeImage reads, detected from the bytes (sniff.ts), never from a file name. */
export type ImageFormat = "png" | "jpeg" | "webp" | "gif" | "bmp";

export interface DecodeImageOptions {
  /**
   * Refuse images with more pixels than this (checked from the header, before decoding).
   * Default DEFAULT_MAX_PIXELS (Pillow's MAX_IMAGE_PIXELS); see docs/images-and-limits.md before raising it.
   */
  maxPixels?: number;
  /** Name used in error messages (a file name or URL). Default "image". */
  source?: string;
  /**
   * Turn the image upright as its EXIF Orientation tag (or, without one, its XMP) says, like transformers'
   * `load_image` and browsers. Default true; false keeps the stored orientation (Pillow's plain `Image.open`).
   */
  exifOrientation?: boolean;
}

/** Validated options, passed to every format's decoder. */
export interface Ctx {
  format: ImageFormat;
  source: string;
  maxPixels: number;
  /** apply the EXIF orientation */
  orient: boolean;
}

/** What a format's header parser found: the stored size and the EXIF orientation (1 when none). */
export interface HeaderInfo {
  width: number;
  height: number;
  orientation: number;
}

export function isDim(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

/** IMAGE_EMPTY / IMAGE_TOO_LARGE unless 1 <= width*height <= ctx.maxPixels. `what` names the header. */
export function checkSize(width: number, height: number, ctx: Ctx, what: string): void {
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

/**
 * IMAGE_DECODE unless `compressed` bytes can hold `needed` decoded bytes at `maxRatio` (the format's largest
 * possible expansion): a file may not reserve memory that its data cannot fill.
 */
export function checkExpansion(needed: number, compressed: number, maxRatio: number, ctx: Ctx, what: string): void {
  if (needed > compressed * maxRatio + 4096) {
    throw new PerceiverError(
      "IMAGE_DECODE",
      `${ctx.source}: ${what} is truncated or corrupt: ${compressed} bytes of data cannot hold the ${needed} bytes its header declares`,
    );
  }
}

export function corrupt(ctx: Ctx, format: string, msg: string): PerceiverError {
  return new PerceiverError("IMAGE_DECODE", `${ctx.source}: corrupt ${format}: ${msg}`);
}

export function truncated(ctx: Ctx, format: string, msg: string): PerceiverError {
  return new PerceiverError("IMAGE_DECODE", `${ctx.source}: ${format} is truncated (${msg})`);
}

export function unsupported(ctx: Ctx, msg: string): PerceiverError {
  return new PerceiverError("IMAGE_UNSUPPORTED", `${ctx.source}: ${msg}`);
}

export function u16be(b: Uint8Array, i: number): number {
  return (b[i] << 8) | b[i + 1];
}

export function u32be(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

export function u16le(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8);
}

export function u32le(b: Uint8Array, i: number): number {
  return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
}

export function i32le(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

export function ascii(b: Uint8Array, i: number, n: number): string {
  return String.fromCharCode(...b.subarray(i, i + n));
}

export function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

export function startsWith(b: Uint8Array, prefix: number[]): boolean {
  return b.length >= prefix.length && prefix.every((x, i) => b[i] === x);
}

/** The parts, one after another, in a new array. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
