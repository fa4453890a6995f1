/** Image format detection from the first bytes (magic numbers), never from a file name. */
import { ascii, type ImageFormat } from "./common.js";

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format the magic bytes name, or null. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 8 && PNG_SIGNATURE.every((x, i) => b[i] === x)) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return "webp";
  if (b.length >= 6 && (ascii(b, 0, 6) === "GIF87a" || ascii(b, 0, 6) === "GIF89a")) return "gif";
  // Pillow's BmpImagePlugin._accept: "BM" (Windows); the header size is checked by the decoder
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return "bmp";
  return null;
}

/** Names what an unsupported file looks like, for the error message. */
export function describeBytes(b: Uint8Array): string {
  let what = "unknown format";
  if (ascii(b, 0, 4) === "II*\0" || ascii(b, 0, 4) === "MM\0*") what = "looks like TIFF";
  else if (ascii(b, 0, 4) === "GIF8") what = "looks like a GIF with an unknown version";
  else if (ascii(b, 0, 4) === "RIFF") what = "looks like a RIFF file that is not WebP";
  else if (ascii(b, 4, 4) === "ftyp") what = `looks like an ISO media file (${ascii(b, 8, 4).trim()}: AVIF/HEIC?)`;
  else if (ascii(b, 0, 4) === "\0\0\x01\0") what = "looks like ICO";
  else if (ascii(b, 0, 2) === "\xff\xd8") what = "looks like a JPEG missing its first marker";
  else if (/^\s*</.test(ascii(b, 0, 64))) what = "looks like text/HTML/SVG (an error page saved as an image?)";
  const hex = Array.from(b.subarray(0, 8), (x) => x.toString(16).padStart(2, "0")).join(" ");
  return `${what} (first bytes: ${hex})`;
}
