/** The text chunks of a PNG file (tEXt: Latin-1; iTXt: uncompressed UTF-8), keyword -> text, with CRCs checked. */
import { crc32 } from "../../src/io/crc32.js";

export function pngText(png: Uint8Array): Record<string, string> {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Record<string, string> = {};
  for (let o = 8; o + 12 <= png.length;) {
    const len = v.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    const data = png.subarray(o + 8, o + 8 + len);
    if (v.getUint32(o + 8 + len) !== crc32(png.subarray(o + 4, o + 8 + len))) throw new Error(`bad CRC in ${type} chunk`);
    const nul = data.indexOf(0);
    const keyword = String.fromCharCode(...data.subarray(0, nul));
    if (type === "tEXt") out[keyword] = String.fromCharCode(...data.subarray(nul + 1));
    if (type === "iTXt") {
      if (data[nul + 1] !== 0) throw new Error("compressed iTXt");
      const lang = data.indexOf(0, nul + 3);
      const translated = data.indexOf(0, lang + 1);
      out[keyword] = new TextDecoder().decode(data.subarray(translated + 1));
    }
    if (type === "IEND") break;
    o += 12 + len;
  }
  return out;
}
