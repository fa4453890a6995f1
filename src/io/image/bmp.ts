/**
 * BMP (Windows "BM") -> 8-bit RGB as Pillow's `Image.open(f).convert("RGB")` gives it, for uncompressed files:
 * 1, 4 and 8 bits with a palette (indices past it are black), 24-bit BGR, 32-bit BGRX (BI_RGB: the 4th byte
 * ignored) and 32-bit BI_BITFIELDS with byte-aligned masks; bottom-up (positive height) or top-down (negative).
 * RLE-compressed and 16-bit files are refused with IMAGE_UNSUPPORTED.
 *
 * Our own decoder (the format is a header and raw rows). The header is checked, and the file must hold every row
 * (a shorter file is truncated, an error as in Pillow) before pixel memory is allocated.
 */
import {
  checkSize, corrupt, i32le, truncated, u16le, u32le, unsupported, type Ctx, type HeaderInfo,
} from "./common.js";
import type { RgbImage } from "./rgb-image.js";

interface BmpInfo extends HeaderInfo {
  bpp: number;
  topDown: boolean;
  dataOffset: number;
  stride: number;
  palette: Uint8Array; // RGB triplets
  /** byte offsets of R, G, B inside a 32-bit pixel */
  channel: [number, number, number];
}

const HEADER_SIZES = [12, 40, 52, 56, 64, 108, 124];

function parse(b: Uint8Array, ctx: Ctx): BmpInfo {
  if (b.length < 26) throw truncated(ctx, "BMP", `${b.length} bytes, no complete header`);
  const dataOffset = u32le(b, 10);
  const hsize = u32le(b, 14);
  if (!HEADER_SIZES.includes(hsize)) throw unsupported(ctx, `BMP with a ${hsize}-byte info header is not supported`);
  if (14 + hsize > b.length) throw truncated(ctx, "BMP", "inside the info header");
  let width: number, h: number, bpp: number, compression = 0, colorsUsed = 0;
  if (hsize === 12) {
    width = u16le(b, 18);
    h = u16le(b, 20);
    bpp = u16le(b, 24);
  } else {
    width = i32le(b, 18);
    h = i32le(b, 22);
    bpp = u16le(b, 28);
    compression = u32le(b, 30);
    colorsUsed = u32le(b, 46);
  }
  if (width < 0) throw corrupt(ctx, "BMP", `negative width ${width}`);
  const topDown = h < 0;
  const height = Math.abs(h);
  checkSize(width, height, ctx, "BMP header");
  let channel: [number, number, number] = [2, 1, 0]; // BGR(X)
  if (compression === 3 || compression === 6) {
    if (bpp !== 32) throw unsupported(ctx, `${bpp}-bit BMP with bit-field masks is not supported`);
    const masksAt = hsize >= 52 ? 54 : 14 + hsize; // in the V2+ header, else right after the 40-byte header
    if (masksAt + 12 > b.length) throw truncated(ctx, "BMP", "inside the bit-field masks");
    const masks = [u32le(b, masksAt), u32le(b, masksAt + 4), u32le(b, masksAt + 8)];
    const at = masks.map((m) => [0xff, 0xff00, 0xff0000, 0xff000000].indexOf(m));
    if (at.some((i) => i < 0)) throw unsupported(ctx, "BMP with bit-field masks other than whole bytes is not supported");
    channel = at as [number, number, number];
  } else if (compression === 1 || compression === 2) {
    throw unsupported(ctx, "RLE-compressed BMP is not supported");
  } else if (compression !== 0) {
    throw unsupported(ctx, `BMP compression ${compression} is not supported`);
  }
  if (![1, 4, 8, 24, 32].includes(bpp)) throw unsupported(ctx, `${bpp}-bit BMP is not supported`);
  let palette = new Uint8Array(0);
  if (bpp <= 8) {
    const entry = hsize === 12 ? 3 : 4;
    const n = colorsUsed > 0 && colorsUsed <= 1 << bpp ? colorsUsed : 1 << bpp;
    const at = 14 + hsize + (compression === 3 && hsize === 40 ? 12 : 0);
    const avail = Math.max(0, Math.min(n, Math.floor((Math.min(dataOffset, b.length) - at) / entry)));
    palette = new Uint8Array(avail * 3);
    for (let i = 0; i < avail; i++) {
      palette[3 * i] = b[at + entry * i + 2];
      palette[3 * i + 1] = b[at + entry * i + 1];
      palette[3 * i + 2] = b[at + entry * i];
    }
  }
  const stride = Math.ceil((width * bpp) / 32) * 4;
  if (dataOffset > b.length || stride * height > b.length - dataOffset) {
    throw truncated(ctx, "BMP", `${height} rows of ${stride} bytes need ${stride * height} bytes from offset ${dataOffset}, the file has ${Math.max(0, b.length - dataOffset)}`);
  }
  return { width, height, orientation: 1, bpp, topDown, dataOffset, stride, palette, channel };
}

export function parseBmp(b: Uint8Array, ctx: Ctx): HeaderInfo {
  const { width, height, orientation } = parse(b, ctx);
  return { width, height, orientation };
}

export function decodeBmp(b: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const info = parse(b, ctx);
  const { width: W, height: H, bpp, stride, palette, channel } = info;
  const out = new Uint8Array(W * H * 3);
  const entries = palette.length / 3;
  const [r, g, bl] = channel;
  for (let y = 0; y < H; y++) {
    const row = info.dataOffset + (info.topDown ? y : H - 1 - y) * stride;
    let o = y * W * 3;
    for (let x = 0; x < W; x++, o += 3) {
      if (bpp === 24) {
        out[o] = b[row + 3 * x + 2]; out[o + 1] = b[row + 3 * x + 1]; out[o + 2] = b[row + 3 * x];
      } else if (bpp === 32) {
        out[o] = b[row + 4 * x + r]; out[o + 1] = b[row + 4 * x + g]; out[o + 2] = b[row + 4 * x + bl];
      } else {
        const bit = x * bpp;
        const v = (b[row + (bit >> 3)] >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
        if (v < entries) {
          out[o] = palette[3 * v]; out[o + 1] = palette[3 * v + 1]; out[o + 2] = palette[3 * v + 2];
        }
      }
    }
  }
  return { img: { width: W, height: H, data: out }, orientation: 1 };
}
