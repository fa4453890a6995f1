/**
 * JPEG -> 8-bit RGB as Pillow's `convert("RGB")` gives it. One- and three-component files (gray, YCbCr, RGB;
 * baseline and progressive; any sampling; restart markers) are decoded by libjpeg-turbo's decoder in
 * WebAssembly (wasm-codecs.ts: mozjpeg, islow IDCT and fancy upsampling, Pillow's libjpeg-turbo defaults), which
 * gives Pillow's pixels exactly. The file is first walked by scanJpeg (jpeg-scan.ts), so the decoder only ever
 * sees complete files whose size, scan count and data volume are within the limits.
 *
 * Four-component files (CMYK, YCCK with an Adobe marker), which that build cannot convert, and 4:4:0 files, where its
 * older vertical upsampling differs, are decoded in TypeScript, step for step as libjpeg-turbo and Pillow do
 * (jpeg-entropy.ts, jpeg-planes.ts).
 */
import { PerceiverError } from "../../errors.js";
import type { Ctx } from "./common.js";
import { decodeJpegPlanes, needsPlanes } from "./jpeg-planes.js";
import { scanJpeg, type JpegInfo } from "./jpeg-scan.js";
import type { RgbImage } from "./rgb-image.js";
import { rgbaToRgb } from "./rgba.js";
import { wasmDecode } from "./wasm-codecs.js";

export function decodeJpeg(bytes: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const info = scanJpeg(bytes, ctx);
  const img = needsPlanes(info) ? decodeJpegPlanes(bytes, info, ctx) : decodeWasm(bytes, info, ctx);
  return { img, orientation: info.orientation };
}

function decodeWasm(bytes: Uint8Array, info: JpegInfo, ctx: Ctx): RgbImage {
  const rgba = wasmDecode("jpeg", bytes, ctx.source);
  if (rgba.width !== info.width || rgba.height !== info.height) {
    throw new PerceiverError("IMAGE_DECODE", `${ctx.source}: JPEG decoder returned ${rgba.width}x${rgba.height}, the header says ${info.width}x${info.height}`);
  }
  return rgbaToRgb(rgba.data, rgba.width, rgba.height);
}
