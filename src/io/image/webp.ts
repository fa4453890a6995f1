/**
 * WebP (lossy VP8, lossless VP8L, extended VP8X with alpha) -> 8-bit RGB, decoded by libwebp in WebAssembly
 * (wasm-codecs.ts), as Pillow does with its own libwebp; alpha is dropped without compositing (convert("RGB")).
 * The RIFF container and the bitstream header are read here first: size limits are checked before libwebp
 * allocates anything. Animated WebP is refused (Pillow would give its first frame).
 */
import { PerceiverError } from "../../errors.js";
import { ascii, checkSize, corrupt, truncated, u32le, unsupported, type Ctx, type HeaderInfo } from "./common.js";
import { imageOrientation } from "./exif.js";
import type { RgbImage } from "./rgb-image.js";
import { rgbaToRgb } from "./rgba.js";
import { wasmDecode } from "./wasm-codecs.js";

/** Walks the RIFF chunks; width, height and EXIF orientation from VP8X / VP8 / VP8L headers. */
export function parseWebp(b: Uint8Array, ctx: Ctx): HeaderInfo {
  if (b.length < 20) throw truncated(ctx, "WebP", `${b.length} bytes`);
  const riffEnd = 8 + u32le(b, 4);
  if (riffEnd > b.length) throw truncated(ctx, "WebP", `RIFF size says ${riffEnd} bytes, the file has ${b.length}`);
  let off = 12;
  let size: [number, number] | null = null;
  let bitstream = false;
  let exif: Uint8Array | null = null;
  let xmp: string | null = null;
  while (off + 8 <= riffEnd) {
    const type = ascii(b, off, 4);
    const len = u32le(b, off + 4);
    const p = off + 8;
    if (p + len > riffEnd) throw truncated(ctx, "WebP", `chunk ${JSON.stringify(type)} at offset ${off} needs ${len} bytes`);
    const d = b.subarray(p, p + len);
    if (type === "VP8X") {
      if (len < 10) throw corrupt(ctx, "WebP", "VP8X chunk too short");
      if (d[0] & 0x02) throw unsupported(ctx, "animated WebP is not supported");
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
    } else if (type === "ANIM" || type === "ANMF") {
      throw unsupported(ctx, "animated WebP is not supported");
    } else if (type === "EXIF") {
      exif = d;
    } else if (type === "XMP ") {
      xmp = String.fromCharCode(...d.subarray(0, Math.min(d.length, 1 << 16)));
    }
    off = p + len + (len & 1);
  }
  if (!bitstream || !size) throw corrupt(ctx, "WebP", "no VP8/VP8L image data chunk");
  checkSize(size[0], size[1], ctx, "WebP header");
  return { width: size[0], height: size[1], orientation: imageOrientation({ exif, xmp }) };
}

export function decodeWebp(bytes: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const info = parseWebp(bytes, ctx);
  const rgba = wasmDecode("webp", bytes, ctx.source);
  if (rgba.width !== info.width || rgba.height !== info.height) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: WebP decoder returned ${rgba.width}x${rgba.height}, the header says ${info.width}x${info.height}`);
  }
  return { img: rgbaToRgb(rgba.data, rgba.width, rgba.height), orientation: info.orientation };
}
