/**
 * A naive reference PNG decoder for the fuzzer's oracle, for the common case only: 8-bit, non-interlaced gray,
 * RGB, gray+alpha and RGBA. It inflates the image data itself (bounded), undoes the five row filters and drops
 * alpha, so a decoder that returns pixels for data that is not there, or different pixels, is caught.
 * Chunk CRCs and everything else are the real decoder's business: call this only on inputs it accepted.
 */
import { Unzlib } from "fflate";
import type { RgbImage } from "../../src/io/image/decode.js";
import { pngChunks } from "./mutate-png.js";

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

/** The decoded image, "unsupported" (a format this twin does not cover), or why the data is invalid. */
export function referenceDecodePng(bytes: Uint8Array): RgbImage | "unsupported" | { invalid: string } {
  const chunks = pngChunks(bytes);
  if (chunks === null || chunks.length === 0 || chunks[0].type !== "IHDR" || chunks[0].data.length !== 13) return "unsupported";
  const h = chunks[0].data;
  const dv = new DataView(h.buffer, h.byteOffset, 13);
  const width = dv.getUint32(0);
  const height = dv.getUint32(4);
  const depth = h[8];
  const colorType = h[9];
  const ch = CHANNELS[colorType];
  if (depth !== 8 || ch === undefined || h[12] !== 0) return "unsupported";

  const stride = width * ch;
  const need = height * (1 + stride);
  const raw = new Uint8Array(need);
  let got = 0;
  const stop = new Error("stop");
  const z = new Unzlib((c) => {
    const take = Math.min(c.length, need - got);
    raw.set(c.subarray(0, take), got);
    got += take;
    if (got >= need) throw stop;
  });
  try {
    for (const c of chunks) if (c.type === "IDAT" && got < need) z.push(c.data);
  } catch (e) {
    if (e !== stop) return { invalid: `inflate: ${(e as Error).message}` };
  }
  if (got < need) return { invalid: `image data inflates to ${got} bytes, ${need} needed` };

  // undo the row filters: cur [stride] from raw row y, prev = the previous unfiltered row (zeros for the first)
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (1 + stride)];
    const src = y * (1 + stride) + 1;
    const o = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= ch ? px[o + x - ch] : 0;
      const b = y > 0 ? px[o - stride + x] : 0;
      const c = x >= ch && y > 0 ? px[o - stride + x - ch] : 0;
      const v = raw[src + x];
      let pred: number;
      switch (f) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: return { invalid: `row ${y} has filter type ${f}` };
      }
      px[o + x] = (v + pred) & 0xff;
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    if (ch <= 2) out.fill(px[i * ch], 3 * i, 3 * i + 3); // gray (+ alpha): replicated
    else out.set(px.subarray(i * ch, i * ch + 3), 3 * i); // RGB (+ alpha): alpha dropped
  }
  return { width, height, data: out };
}
