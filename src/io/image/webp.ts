/**
 * WebP (lossy VP8, lossless VP8L, extended VP8X with alpha) -> 8-bit RGB, decoded by libwebp in WebAssembly
 * (wasm-codecs.ts), as Pillow does with its own libwebp; alpha is dropped without compositing (convert("RGB")).
 * The RIFF container and the bitstream header are read here first: size limits are checked before libwebp
 * allocates anything. Animated WebP gives its first frame as Pillow's WebPAnimDecoder does: the first frame is a
 * key frame, decoded as it is into a canvas of transparent black (outside the frame: black once alpha is dropped).
 */
import { PerceiverError } from "../../errors.js";
import { ascii, checkSize, corrupt, truncated, u32le, type Ctx, type HeaderInfo } from "./common.js";
import { imageOrientation } from "./exif.js";
import type { RgbImage } from "./rgb-image.js";
import { rgbaToRgb } from "./rgba.js";
import { wasmDecode } from "./wasm-codecs.js";

interface WebpInfo extends HeaderInfo {
  /** animated: the first frame's rectangle on the canvas and its chunks (ALPH, VP8 / VP8L) */
  frame: { x: number; y: number; w: number; h: number; data: Uint8Array } | null;
}

/** Walks the RIFF chunks; width, height and EXIF orientation from VP8X / VP8 / VP8L headers. */
export function parseWebp(b: Uint8Array, ctx: Ctx): WebpInfo {
  if (b.length < 20) throw truncated(ctx, "WebP", `${b.length} bytes`);
  const riffEnd = 8 + u32le(b, 4);
  if (riffEnd > b.length) throw truncated(ctx, "WebP", `RIFF size says ${riffEnd} bytes, the file has ${b.length}`);
  let off = 12;
  let size: [number, number] | null = null;
  let bitstream = false;
  let exif: Uint8Array | null = null;
  let animated = false;
  let frame: WebpInfo["frame"] = null;
  let xmp: string | null = null;
  while (off + 8 <= riffEnd) {
    const type = ascii(b, off, 4);
    const len = u32le(b, off + 4);
    const p = off + 8;
    if (p + len > riffEnd) throw truncated(ctx, "WebP", `chunk ${JSON.stringify(type)} at offset ${off} needs ${len} bytes`);
    const d = b.subarray(p, p + len);
    if (type === "VP8X") {
      if (len < 10) throw corrupt(ctx, "WebP", "VP8X chunk too short");
      animated = (d[0] & 0x02) !== 0;
      size = [1 + (d[4] | (d[5] << 8) | (d[6] << 16)), 1 + (d[7] | (d[8] << 8) | (d[9] << 16))];
    } else if (type === "VP8 " && !bitstream) {
      bitstream = true;
      if (len < 10 || d[3] !== 0x9d || d[4] !== 0x01 || d[5] !== 0x2a) throw corrupt(ctx, "WebP", "bad VP8 frame header");
      if (d[0] & 1) throw corrupt(ctx, "WebP", "VP8 data does not start with a key frame");
      const s: [number, number] = [(d[6] | (d[7] << 8)) & 0x3fff, (d[8] | (d[9] << 8)) & 0x3fff];
      if (size && (size[0] !== s[0] || size[1] !== s[1])) throw corrupt(ctx, "WebP", "VP8X and VP8 sizes differ");
      size = s;
    } else if (type === "VP8L" && !bitstream) {
      bitstream = true;
      if (len < 5 || d[0] !== 0x2f) throw corrupt(ctx, "WebP", "bad VP8L signature");
      const bits = u32le(d, 1);
      const s: [number, number] = [1 + (bits & 0x3fff), 1 + ((bits >>> 14) & 0x3fff)];
      if (size && (size[0] !== s[0] || size[1] !== s[1])) throw corrupt(ctx, "WebP", "VP8X and VP8L sizes differ");
      size = s;
    } else if (type === "ANMF" && animated && frame === null) {
      if (len < 16 + 8) throw corrupt(ctx, "WebP", "ANMF chunk too short");
      const u24 = (i: number) => d[i] | (d[i + 1] << 8) | (d[i + 2] << 16);
      frame = { x: 2 * u24(0), y: 2 * u24(3), w: 1 + u24(6), h: 1 + u24(9), data: d.subarray(16) };
      bitstream = true;
    } else if (type === "EXIF") {
      exif = d;
    } else if (type === "XMP ") {
      xmp = String.fromCharCode(...d.subarray(0, Math.min(d.length, 1 << 16)));
    }
    off = p + len + (len & 1);
  }
  if (!bitstream || !size) throw corrupt(ctx, "WebP", animated ? "no animation frame" : "no VP8/VP8L image data chunk");
  checkSize(size[0], size[1], ctx, "WebP header");
  if (frame && (frame.x + frame.w > size[0] || frame.y + frame.h > size[1])) {
    throw corrupt(ctx, "WebP", `first frame ${frame.w}x${frame.h} at (${frame.x}, ${frame.y}) is outside the ${size[0]}x${size[1]} canvas`);
  }
  return { width: size[0], height: size[1], orientation: imageOrientation({ exif, xmp }), frame };
}

/** An animation frame's chunks (ALPH and VP8, or VP8L) as a still WebP file of w x h. */
function stillWebp(frame: NonNullable<WebpInfo["frame"]>, ctx: Ctx): Uint8Array {
  const d = frame.data;
  const chunks: Uint8Array[] = [];
  let alpha = false;
  for (let off = 0; off + 8 <= d.length; ) {
    const type = ascii(d, off, 4);
    const len = u32le(d, off + 4);
    const end = off + 8 + len + (len & 1);
    if (off + 8 + len > d.length) throw truncated(ctx, "WebP", `frame chunk ${JSON.stringify(type)} needs ${len} bytes`);
    if (type === "ALPH" || type === "VP8 " || type === "VP8L") chunks.push(d.subarray(off, Math.min(end, d.length)));
    if (type === "ALPH") alpha = true;
    off = end;
  }
  if (alpha) {
    const vp8x = new Uint8Array(18);
    vp8x.set([0x56, 0x50, 0x38, 0x58, 10, 0, 0, 0, 0x10]);
    vp8x.set([(frame.w - 1) & 255, ((frame.w - 1) >> 8) & 255, (frame.w - 1) >> 16, (frame.h - 1) & 255, ((frame.h - 1) >> 8) & 255, (frame.h - 1) >> 16], 12);
    chunks.unshift(vp8x);
  }
  const size = 4 + chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(8 + size);
  out.set([0x52, 0x49, 0x46, 0x46, size & 255, (size >> 8) & 255, (size >> 16) & 255, size >>> 24, 0x57, 0x45, 0x42, 0x50]);
  let o = 12;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export function decodeWebp(bytes: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const info = parseWebp(bytes, ctx);
  if (info.frame) {
    const f = info.frame;
    const rgba = wasmDecode("webp", stillWebp(f, ctx), ctx.source);
    if (rgba.width !== f.w || rgba.height !== f.h) {
      throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: WebP frame decoded to ${rgba.width}x${rgba.height}, its header says ${f.w}x${f.h}`);
    }
    const out = new Uint8Array(info.width * info.height * 3);
    for (let y = 0; y < f.h; y++) {
      for (let x = 0, o = ((f.y + y) * info.width + f.x) * 3, p = y * f.w * 4; x < f.w; x++, o += 3, p += 4) {
        out[o] = rgba.data[p]; out[o + 1] = rgba.data[p + 1]; out[o + 2] = rgba.data[p + 2];
      }
    }
    return { img: { width: info.width, height: info.height, data: out }, orientation: info.orientation };
  }
  const rgba = wasmDecode("webp", bytes, ctx.source);
  if (rgba.width !== info.width || rgba.height !== info.height) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: WebP decoder returned ${rgba.width}x${rgba.height}, the header says ${info.width}x${info.height}`);
  }
  return { img: rgbaToRgb(rgba.data, rgba.width, rgba.height), orientation: info.orientation };
}
