/**
 * PNG -> 8-bit RGB as Pillow's `Image.open(f).convert("RGB")` gives it: palette expanded (indices past the PLTE
 * are black), gray replicated, alpha and tRNS dropped without compositing, depths 1/2/4 scaled by 255/(2^d - 1),
 * 16-bit samples reduced to their high byte while decoding (Pillow's ";16B" raw modes; 16-bit gray, which Pillow
 * opens as "I;16" and clamps, is the one deliberate difference: we keep the high byte).
 *
 * Streaming: the IDAT data is inflated in 16 KiB pieces and each scanline is unfiltered and written to the output
 * as soon as it is complete, so memory is the RGB output plus two scanlines. Inflating stops when the last row is
 * complete: zlib data after it (trailing bytes, a missing Adler-32) is ignored, as Pillow does. Data that ends
 * before the last row is a truncated image, an error as in Pillow. Every output byte is written from the file's
 * data: decoding is deterministic and never exposes memory it did not write.
 */
import { Unzlib } from "fflate";
import { PerceiverError } from "../../errors.js";
import { errorText, truncated, corrupt, type Ctx } from "./common.js";
import { ADAM7, DEFLATE_MAX_RATIO, PNG_CHANNELS, pngDataSize, type PngInfo } from "./png-chunks.js";
import type { RgbImage } from "./rgb-image.js";

const DONE = new Error("all rows decoded");
/** Largest piece of compressed data pushed at once; smaller near the end, so that extra data is barely inflated. */
const PIECE = 16384;

export function decodePngPixels(b: Uint8Array, info: PngInfo, ctx: Ctx): RgbImage {
  const { width: W, height: H, bitDepth, colorType } = info;
  const out = new Uint8Array(W * H * 3);
  const emit = rowWriter(info, out);
  const channels = PNG_CHANNELS[colorType];
  const bitsPerPixel = bitDepth * channels;
  const filterStride = Math.max(1, bitsPerPixel >> 3); // bytes to the "left" pixel in the filters
  const passes = info.interlaced ? ADAM7 : [[0, 0, 1, 1]];

  // current pass geometry
  let pass = -1;
  let passW = 0, passH = 0, rowBytes = 0, y = 0;
  let cur = new Uint8Array(1), prev = new Uint8Array(1), fill = 0;
  const nextPass = (): boolean => {
    for (pass++; pass < passes.length; pass++) {
      const [x0, y0, dx, dy] = passes[pass];
      passW = Math.ceil((W - x0) / dx);
      passH = Math.ceil((H - y0) / dy);
      if (passW > 0 && passH > 0) break;
    }
    if (pass >= passes.length) return false;
    rowBytes = Math.ceil((passW * bitsPerPixel) / 8);
    cur = new Uint8Array(rowBytes + 1);
    prev = new Uint8Array(rowBytes + 1); // the row above the first is zeros
    fill = 0;
    y = 0;
    return true;
  };
  nextPass();
  let consumed = 0;
  const onData = (chunk: Uint8Array) => {
    let i = 0;
    while (i < chunk.length) {
      const take = Math.min(chunk.length - i, cur.length - fill);
      cur.set(chunk.subarray(i, i + take), fill);
      fill += take;
      i += take;
      consumed += take;
      if (fill < cur.length) return;
      unfilter(cur, prev, filterStride, ctx);
      const [x0, y0, dx, dy] = passes[pass];
      emit(cur, passW, y0 + y * dy, x0, dx);
      [cur, prev] = [prev, cur];
      fill = 0;
      if (++y === passH && !nextPass()) throw DONE;
    }
  };
  const z = new Unzlib(onData);
  const need = pngDataSize(W, H, bitDepth, colorType, info.interlaced);
  try {
    for (let k = 0; k < info.idat.length; k++) {
      const [s, e] = info.idat[k];
      for (let p = s; p < e; ) {
        // a piece inflates to at most DEFLATE_MAX_RATIO times its size: push no more than what is still needed
        const q = Math.min(e, p + Math.min(PIECE, 64 + Math.ceil((need - consumed) / DEFLATE_MAX_RATIO)));
        z.push(b.subarray(p, q), k === info.idat.length - 1 && q === e);
        p = q;
      }
    }
  } catch (e) {
    if (e === DONE) return { width: W, height: H, data: out };
    if (e instanceof PerceiverError) throw e;
    if (/unexpected EOF/i.test(errorText(e))) {
      throw truncated(ctx, "PNG", `its image data inflates to ${consumed} bytes, its IHDR (${W}x${H}) needs ${need}`);
    }
    throw corrupt(ctx, "PNG", `image data: ${errorText(e)}`);
  }
  throw truncated(ctx, "PNG", `its image data inflates to ${consumed} bytes, its IHDR (${W}x${H}) needs ${need}`);
}

/** Undoes one scanline's filter in place. row[0] is the filter type; prev is the unfiltered row above (or zeros). */
function unfilter(row: Uint8Array, prev: Uint8Array, bpp: number, ctx: Ctx): void {
  const n = row.length;
  switch (row[0]) {
    case 0:
      return;
    case 1: // Sub: x + left
      for (let i = 1 + bpp; i < n; i++) row[i] = (row[i] + row[i - bpp]) & 255;
      return;
    case 2: // Up: x + above
      for (let i = 1; i < n; i++) row[i] = (row[i] + prev[i]) & 255;
      return;
    case 3: // Average: x + floor((left + above) / 2)
      for (let i = 1; i < n; i++) row[i] = (row[i] + ((i > bpp ? row[i - bpp] : 0) + prev[i] >> 1)) & 255;
      return;
    case 4: // Paeth
      for (let i = 1; i < n; i++) {
        const a = i > bpp ? row[i - bpp] : 0, b = prev[i], c = i > bpp ? prev[i - bpp] : 0;
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        row[i] = (row[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
      }
      return;
    default:
      throw corrupt(ctx, "PNG", `unknown filter type ${row[0]}`);
  }
}

/**
 * A function that writes one unfiltered scanline (row[0] is the filter byte) of `n` pixels to output row `oy`,
 * at columns x0, x0 + dx, ... (dx > 1 for Adam7 passes).
 */
function rowWriter(info: PngInfo, out: Uint8Array): (row: Uint8Array, n: number, oy: number, x0: number, dx: number) => void {
  const { width: W, bitDepth: d, colorType, palette } = info;
  const channels = PNG_CHANNELS[colorType];
  const paletteSize = palette.length / 3;
  // sample k of the row (before color mapping), 8-bit: depths < 8 unpacked, 16-bit -> high byte
  const scale = d === 1 ? 255 : d === 2 ? 85 : d === 4 ? 17 : 1;
  return (row, n, oy, x0, dx) => {
    let o = (oy * W + x0) * 3;
    const step = dx * 3;
    if (d < 8) {
      const mask = (1 << d) - 1;
      for (let x = 0; x < n; x++, o += step) {
        const bit = x * d;
        const v = (row[1 + (bit >> 3)] >> (8 - d - (bit & 7))) & mask;
        if (colorType === 3) {
          if (v < paletteSize) {
            out[o] = palette[3 * v]; out[o + 1] = palette[3 * v + 1]; out[o + 2] = palette[3 * v + 2];
          } // else stays black, as Pillow's palette
        } else {
          out[o] = out[o + 1] = out[o + 2] = v * scale;
        }
      }
      return;
    }
    const bytes = d >> 3; // 1 or 2: the high byte comes first
    const px = channels * bytes;
    for (let x = 0, p = 1; x < n; x++, o += step, p += px) {
      if (colorType === 2 || colorType === 6) {
        out[o] = row[p]; out[o + 1] = row[p + bytes]; out[o + 2] = row[p + 2 * bytes];
      } else if (colorType === 3) {
        const v = row[p];
        if (v < paletteSize) {
          out[o] = palette[3 * v]; out[o + 1] = palette[3 * v + 1]; out[o + 2] = palette[3 * v + 2];
        }
      } else {
        out[o] = out[o + 1] = out[o + 2] = row[p]; // gray, gray + alpha
      }
    }
  };
}
