/**
 * BMP (Windows "BM") -> 8-bit RGB as Pillow's `Image.open(f).convert("RGB")` gives it (BmpImagePlugin):
 * 1, 4 and 8 bits with a palette (indices past it are black; a palette that is the gray ramp makes Pillow read
 * the indices as gray levels), RLE8 and RLE4 (Pillow's BmpRleDecoder, step for step), 16-bit (5-5-5, or 5-6-5 by
 * bit fields; v * 255 // 31 and v * 255 // 63), 24-bit BGR, 32-bit BGRX (BI_RGB: the 4th byte ignored) and
 * BI_BITFIELDS with byte-aligned masks; bottom-up (positive height) or top-down (negative).
 *
 * Our own decoder (a header and rows). The header is checked, and an uncompressed file must hold every row (a
 * shorter file is truncated, an error as in Pillow) before pixel memory is allocated.
 */
import {
  checkSize, corrupt, i32le, truncated, u16le, u32le, unsupported, type Ctx, type HeaderInfo,
} from "./common.js";
import type { RgbImage } from "./rgb-image.js";

interface BmpInfo extends HeaderInfo {
  bpp: number;
  /** 0 none, 1 RLE8, 2 RLE4 */
  rle: number;
  /** 16-bit: green has 6 bits (5-6-5) */
  g6: boolean;
  /** Pillow reads the indices as gray levels (its palette is the gray ramp; 2 colors: black and white) */
  grayIndices: boolean;
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
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw unsupported(ctx, `${bpp}-bit BMP is not supported`);
  let channel: [number, number, number] = [2, 1, 0]; // BGR(X)
  let g6 = false;
  const rle = compression === 1 || compression === 2 ? compression : 0;
  if (compression === 3 || compression === 6) {
    const masksAt = hsize >= 52 ? 54 : 14 + hsize; // in the V2+ header, else right after the 40-byte header
    if (masksAt + 12 > b.length) throw truncated(ctx, "BMP", "inside the bit-field masks");
    const masks = [u32le(b, masksAt), u32le(b, masksAt + 4), u32le(b, masksAt + 8)];
    if (bpp === 16) {
      g6 = masks[0] === 0xf800 && masks[1] === 0x7e0 && masks[2] === 0x1f;
      if (!g6 && !(masks[0] === 0x7c00 && masks[1] === 0x3e0 && masks[2] === 0x1f)) throw unsupported(ctx, "BMP bit-field layout (Pillow: unsupported)");
    } else if (bpp === 24 || bpp === 32) {
      const at = masks.map((m) => [0xff, 0xff00, 0xff0000, 0xff000000].indexOf(m));
      if (at.some((i) => i < 0) || (bpp === 24 && at.join() !== "2,1,0")) throw unsupported(ctx, "BMP bit-field layout (Pillow: unsupported)");
      channel = at as [number, number, number];
    } else throw unsupported(ctx, `${bpp}-bit BMP with bit-field masks is not supported`);
  } else if (rle) {
    if (bpp > 8) throw unsupported(ctx, `${bpp}-bit RLE BMP is not supported`);
  } else if (compression !== 0) {
    throw unsupported(ctx, `BMP compression ${compression} is not supported`);
  }
  let palette: Uint8Array = new Uint8Array(0);
  let grayIndices = false;
  if (bpp <= 8) {
    const entry = hsize === 12 ? 3 : 4;
    const colors = colorsUsed > 0 ? colorsUsed : 1 << bpp;
    if (colors > 65536) throw unsupported(ctx, `BMP palette of ${colors} colors`);
    const at = 14 + hsize + (compression === 3 && hsize === 40 ? 12 : 0);
    const avail = Math.max(0, Math.min(colors, 256, Math.floor((b.length - at) / entry)));
    palette = new Uint8Array(avail * 3);
    for (let i = 0; i < avail; i++) {
      palette[3 * i] = b[at + entry * i + 2];
      palette[3 * i + 1] = b[at + entry * i + 1];
      palette[3 * i + 2] = b[at + entry * i];
    }
    // Pillow: a palette equal to the gray ramp (2 colors: black, white) is dropped, the indices read as levels
    grayIndices = avail === colors && colors <= 256;
    for (let i = 0; grayIndices && i < colors; i++) {
      const g = colors === 2 ? 255 * i : i;
      grayIndices = palette[3 * i] === g && palette[3 * i + 1] === g && palette[3 * i + 2] === g;
    }
  }
  const stride = Math.ceil((width * bpp) / 32) * 4;
  if (dataOffset > b.length || (!rle && stride * height > b.length - dataOffset)) {
    throw truncated(ctx, "BMP", `${height} rows of ${stride} bytes need ${stride * height} bytes from offset ${dataOffset}, the file has ${Math.max(0, b.length - dataOffset)}`);
  }
  return { width, height, orientation: 1, bpp, rle, g6, grayIndices, topDown, dataOffset, stride, palette, channel };
}

/**
 * Pillow's BmpRleDecoder, step for step: runs, end of line (rest of the row 0), end of bitmap, delta (zeros),
 * absolute runs padded to an even file offset. -> W*H indices in file row order, or null when the data ends
 * before the image is full (Pillow: "not enough image data").
 */
function rleIndices(b: Uint8Array, info: BmpInfo): Uint8Array | null {
  const W = info.width;
  const need = W * info.height;
  const out = new Uint8Array(need);
  let n = 0, x = 0, pos = info.dataOffset;
  const rle4 = info.rle === 2;
  const put = (v: number) => {
    if (n < need) out[n] = v;
    n++;
  };
  while (n < need) {
    if (pos + 2 > b.length) break;
    let count = b[pos];
    const byte = b[pos + 1];
    pos += 2;
    if (count) {
      if (x + count > W) count = Math.max(0, W - x);
      for (let i = 0; i < count; i++) put(rle4 ? (i % 2 === 0 ? byte >> 4 : byte & 15) : byte);
      x += count;
    } else if (byte === 0) {
      while (n % W !== 0) put(0);
      x = 0;
    } else if (byte === 1) {
      break;
    } else if (byte === 2) {
      if (pos + 2 > b.length) break;
      const skip = b[pos] + b[pos + 1] * W;
      pos += 2;
      for (let i = 0; i < skip && n < need; i++) put(0); // Pillow appends past the end too; only W*H count
      x = n % W;
    } else {
      const bytes = rle4 ? byte >> 1 : byte;
      const got = Math.min(bytes, b.length - pos);
      for (let i = 0; i < got; i++) {
        if (rle4) {
          put(b[pos + i] >> 4);
          put(b[pos + i] & 15);
        } else put(b[pos + i]);
      }
      pos += got;
      if (got < bytes) break;
      x += byte;
      if (pos % 2 !== 0) pos++;
    }
  }
  return n >= need ? out : null;
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
  const index = (v: number, o: number) => {
    if (info.grayIndices) out[o] = out[o + 1] = out[o + 2] = palette.length === 6 ? 255 * v : v;
    else if (v < entries) {
      out[o] = palette[3 * v]; out[o + 1] = palette[3 * v + 1]; out[o + 2] = palette[3 * v + 2];
    }
  };
  if (info.rle) {
    const idx = rleIndices(b, info);
    if (idx === null) throw truncated(ctx, "BMP", "the RLE data ends before the image is complete");
    for (let y = 0; y < H; y++) {
      const row = (info.topDown ? y : H - 1 - y) * W;
      for (let x = 0, o = y * W * 3; x < W; x++, o += 3) index(idx[row + x], o);
    }
    return { img: { width: W, height: H, data: out }, orientation: 1 };
  }
  const [r, g, bl] = channel;
  for (let y = 0; y < H; y++) {
    const row = info.dataOffset + (info.topDown ? y : H - 1 - y) * stride;
    let o = y * W * 3;
    for (let x = 0; x < W; x++, o += 3) {
      if (bpp === 16) {
        const v = b[row + 2 * x] | (b[row + 2 * x + 1] << 8);
        if (info.g6) {
          out[o] = Math.floor(((v >> 11) & 31) * 255 / 31); out[o + 1] = Math.floor(((v >> 5) & 63) * 255 / 63);
        } else {
          out[o] = Math.floor(((v >> 10) & 31) * 255 / 31); out[o + 1] = Math.floor(((v >> 5) & 31) * 255 / 31);
        }
        out[o + 2] = Math.floor((v & 31) * 255 / 31);
      } else if (bpp === 24) {
        out[o] = b[row + 3 * x + 2]; out[o + 1] = b[row + 3 * x + 1]; out[o + 2] = b[row + 3 * x];
      } else if (bpp === 32) {
        out[o] = b[row + 4 * x + r]; out[o + 1] = b[row + 4 * x + g]; out[o + 2] = b[row + 4 * x + bl];
      } else {
        const bit = x * bpp;
        index((b[row + (bit >> 3)] >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1), o);
      }
    }
  }
  return { img: { width: W, height: H, data: out }, orientation: 1 };
}
