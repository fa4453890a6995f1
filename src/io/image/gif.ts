/**
 * GIF -> 8-bit RGB of its first frame, as Pillow's `Image.open(f).convert("RGB")` gives it: the frame's local
 * color table, else the global one (no table: the indices read as gray levels); pixels of the logical screen
 * outside the frame hold index 0, or the transparent index when the frame has one; the transparent index keeps
 * its palette color (convert("RGB") drops transparency); indices past the table are black. A first frame that
 * reaches past the logical screen enlarges the image, as in Pillow.
 *
 * Our own LZW decoder (GIF's is small and fixed). Before any pixel memory: the pixel cap on the final size, and
 * the LZW data must be able to hold the frame (a code of at least 2 bits yields at most 4096 pixels).
 */
import {
  ascii, checkExpansion, checkSize, corrupt, truncated, u16le, type Ctx, type HeaderInfo,
} from "./common.js";
import type { RgbImage } from "./rgb-image.js";

interface GifFrame {
  width: number;
  height: number;
  /** frame rectangle */
  x0: number;
  y0: number;
  fw: number;
  fh: number;
  interlaced: boolean;
  /** RGB triplets, or null (indices are gray levels) */
  palette: Uint8Array | null;
  transparent: number | null;
  minCodeSize: number;
  /** the LZW data sub-blocks' payloads, in order */
  blocks: Uint8Array[];
  dataBytes: number;
}

/** Max pixels per bit of LZW data: a code of at least 2 bits for a string of at most 4096 pixels. */
const LZW_MAX_RATIO = 8 * 2048;

function parseFrame(b: Uint8Array, ctx: Ctx): GifFrame {
  const cut = (what: string) => truncated(ctx, "GIF", what);
  if (b.length < 13) throw cut(`${b.length} bytes, no complete screen descriptor`);
  let width = u16le(b, 6);
  let height = u16le(b, 8);
  const flags = b[10];
  let off = 13;
  let globalPalette: Uint8Array | null = null;
  if (flags & 0x80) {
    const n = 3 << ((flags & 7) + 1);
    if (off + n > b.length) throw cut("inside the global color table");
    globalPalette = b.subarray(off, off + n);
    off += n;
  }
  let transparent: number | null = null;
  for (;;) {
    if (off >= b.length) throw cut("no image descriptor");
    const intro = b[off];
    if (intro === 0x3b) throw corrupt(ctx, "GIF", "no image before the trailer");
    if (intro === 0x21) {
      // extension: label, then sub-blocks
      if (off + 2 > b.length) throw cut("inside an extension");
      const label = b[off + 1];
      off += 2;
      let first = true;
      for (;;) {
        if (off >= b.length) throw cut("inside an extension");
        const n = b[off];
        if (off + 1 + n > b.length) throw cut("inside an extension");
        if (label === 0xf9 && first && n >= 4) transparent = b[off + 1] & 1 ? b[off + 4] : null; // graphic control
        first = false;
        off += 1 + n;
        if (n === 0) break;
      }
      continue;
    }
    if (intro !== 0x2c) throw corrupt(ctx, "GIF", `unexpected block 0x${intro.toString(16)} at offset ${off}`);
    if (off + 10 > b.length) throw cut("inside the image descriptor");
    const x0 = u16le(b, off + 1), y0 = u16le(b, off + 3), fw = u16le(b, off + 5), fh = u16le(b, off + 7);
    const fflags = b[off + 9];
    off += 10;
    let palette = globalPalette;
    if (fflags & 0x80) {
      const n = 3 << ((fflags & 7) + 1);
      if (off + n > b.length) throw cut("inside the local color table");
      palette = b.subarray(off, off + n);
      off += n;
    }
    // Pillow: a first frame past the logical screen enlarges the image
    width = Math.max(width, x0 + fw);
    height = Math.max(height, y0 + fh);
    checkSize(width, height, ctx, "GIF screen and first frame");
    if (fw === 0 || fh === 0) throw corrupt(ctx, "GIF", `first frame is ${fw}x${fh}`);
    if (off >= b.length) throw cut("no image data");
    const minCodeSize = b[off++];
    if (minCodeSize < 1 || minCodeSize > 11) throw corrupt(ctx, "GIF", `LZW minimum code size ${minCodeSize}`);
    const blocks: Uint8Array[] = [];
    let dataBytes = 0;
    for (;;) {
      if (off >= b.length) throw cut("inside the image data");
      const n = b[off];
      if (off + 1 + n > b.length) throw cut("inside the image data");
      if (n === 0) break;
      blocks.push(b.subarray(off + 1, off + 1 + n));
      dataBytes += n;
      off += 1 + n;
    }
    checkExpansion(fw * fh, dataBytes, LZW_MAX_RATIO, ctx, "GIF");
    return { width, height, x0, y0, fw, fh, interlaced: (fflags & 0x40) !== 0, palette, transparent, minCodeSize, blocks, dataBytes };
  }
}

export function parseGif(b: Uint8Array, ctx: Ctx): HeaderInfo {
  if (ascii(b, 0, 6) !== "GIF87a" && ascii(b, 0, 6) !== "GIF89a") throw corrupt(ctx, "GIF", "bad signature");
  const f = parseFrame(b, ctx);
  return { width: f.width, height: f.height, orientation: 1 };
}

export function decodeGif(b: Uint8Array, ctx: Ctx): { img: RgbImage; orientation: number } {
  const f = parseFrame(b, ctx);
  const indices = new Uint8Array(f.width * f.height);
  if (f.transparent !== null) indices.fill(f.transparent);
  // interlaced row order: every 8th from 0, every 8th from 4, every 4th from 2, every 2nd from 1
  const rows: number[] = [];
  if (f.interlaced) {
    for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]]) for (let y = start; y < f.fh; y += step) rows.push(y);
  } else for (let y = 0; y < f.fh; y++) rows.push(y);
  const frame = lzw(f, ctx);
  for (let r = 0; r < f.fh; r++) {
    indices.set(frame.subarray(r * f.fw, (r + 1) * f.fw), (f.y0 + rows[r]) * f.width + f.x0);
  }
  const out = new Uint8Array(f.width * f.height * 3);
  const pal = f.palette;
  const entries = pal ? pal.length / 3 : 256;
  for (let i = 0, o = 0; i < indices.length; i++, o += 3) {
    const v = indices[i];
    if (!pal) out[o] = out[o + 1] = out[o + 2] = v;
    else if (v < entries) {
      out[o] = pal[3 * v]; out[o + 1] = pal[3 * v + 1]; out[o + 2] = pal[3 * v + 2];
    }
  }
  return { img: { width: f.width, height: f.height, data: out }, orientation: 1 };
}

/** LZW -> the frame's fw*fh indices in stream order. Data that ends before the frame is full is truncated. */
function lzw(f: GifFrame, ctx: Ctx): Uint8Array {
  const n = f.fw * f.fh;
  const out = new Uint8Array(n);
  const clear = 1 << f.minCodeSize;
  const eoi = clear + 1;
  // code table: prefix code and last byte; strings are rebuilt backwards into `stack`
  const prefix = new Int16Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Uint16Array(4096);
  for (let i = 0; i < clear; i++) {
    suffix[i] = i;
    length[i] = 1;
    prefix[i] = -1;
  }
  let codeSize = f.minCodeSize + 1;
  let next = clear + 2;
  let old = -1;
  let pos = 0;
  let bits = 0, acc = 0;
  let block = 0, inBlock = 0;
  const blocks = f.blocks;
  while (pos < n) {
    while (bits < codeSize) {
      if (block >= blocks.length) throw truncated(ctx, "GIF", `image data ends after ${pos} of ${n} pixels`);
      acc |= blocks[block][inBlock++] << bits;
      bits += 8;
      if (inBlock === blocks[block].length) {
        block++;
        inBlock = 0;
      }
    }
    const code = acc & ((1 << codeSize) - 1);
    acc >>>= codeSize;
    bits -= codeSize;
    if (code === clear) {
      codeSize = f.minCodeSize + 1;
      next = clear + 2;
      old = -1;
      continue;
    }
    if (code === eoi) throw truncated(ctx, "GIF", `end of image data after ${pos} of ${n} pixels`);
    let first: number;
    if (old === -1) {
      if (code >= clear) throw corrupt(ctx, "GIF", `LZW code ${code} before any string`);
      out[pos++] = code;
      old = code;
      continue;
    }
    const known = code < next;
    if (!known && code !== next) throw corrupt(ctx, "GIF", `LZW code ${code} past the table (${next})`);
    // the string of `code` (or of old + its first byte, for the code being defined)
    const c = known ? code : old;
    const len = length[c];
    let end = pos + len + (known ? 0 : 1);
    let p = Math.min(pos + len, n) - 1;
    let k = c;
    for (let skip = pos + len - 1 - p; skip > 0; skip--) k = prefix[k]; // string longer than the room left
    for (; p >= pos; p--) {
      out[p] = suffix[k];
      k = prefix[k];
    }
    let t = c;
    while (prefix[t] !== -1) t = prefix[t];
    first = suffix[t];
    if (!known && pos + len < n) out[pos + len] = first;
    pos = Math.min(end, n);
    if (next < 4096) {
      prefix[next] = old;
      suffix[next] = first;
      length[next] = length[old] + 1;
      next++;
      if (next === 1 << codeSize && codeSize < 12) codeSize++;
    }
    old = code;
    end = 0;
  }
  return out;
}
