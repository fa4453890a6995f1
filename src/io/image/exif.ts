/**
 * The EXIF Orientation tag and the transposition it asks for, as transformers' `load_image` applies it
 * (`PIL.ImageOps.exif_transpose` before `convert("RGB")`: the pipelines see phone photos upright). Pillow's rules:
 *  - the tag (0x0112) of IFD0 of the EXIF block (a TIFF structure: "II*\0" or "MM\0*", then IFD0's offset);
 *    Pillow keeps the tags read before the IFD ends early or a tag's data lies past the end (it stops there), and
 *    a later copy of a tag replaces an earlier one; its first value counts when it is a number (SHORT, LONG, their signed forms,
 *    SBYTE, rationals, floats; not BYTE, which Pillow reads as bytes) equal to 2..8, anything else means no
 *    transposition;
 *  - without that tag, the first `tiff:Orientation="N"` or `<tiff:Orientation>N</tiff:Orientation>` of the XMP.
 * Where Pillow raises (an EXIF block that is not TIFF), we ignore the block instead: the image still decodes.
 * The file formats' containers (JPEG APP1 segments, PNG eXIf and text chunks) are found by image.ts.
 */
import type { RgbImage } from "./rgb-image.js";

/** Where an image's orientation may be written, as image.ts found them in the file. */
export interface OrientationSources {
  /** the EXIF block, a TIFF structure (a leading "Exif\0\0", as JPEG's APP1 has, is skipped) */
  exif?: Uint8Array | null;
  /** the XMP packet's text */
  xmp?: string | null;
}

const ORIENTATION_TAG = 0x0112;
/**
 * TIFF field types Pillow reads, by type code: bytes per value, and how its first value reads as a number (null:
 * Pillow gives bytes or a string, never equal to an orientation). Other type codes are skipped like absent tags.
 */
const TYPES: Record<number, [number, ((v: DataView, at: number, le: boolean) => number) | null]> = {
  1: [1, null], // BYTE: bytes in Pillow's v2 API
  2: [1, null], // ASCII
  3: [2, (v, at, le) => v.getUint16(at, le)], // SHORT
  4: [4, (v, at, le) => v.getUint32(at, le)], // LONG
  5: [8, (v, at, le) => v.getUint32(at, le) / v.getUint32(at + 4, le)], // RATIONAL (n/0: NaN in Pillow too)
  6: [1, (v, at) => v.getInt8(at)], // SBYTE
  7: [1, null], // UNDEFINED
  8: [2, (v, at, le) => v.getInt16(at, le)], // SSHORT
  9: [4, (v, at, le) => v.getInt32(at, le)], // SLONG
  10: [8, (v, at, le) => v.getInt32(at, le) / v.getInt32(at + 4, le)], // SRATIONAL
  11: [4, (v, at, le) => v.getFloat32(at, le)], // FLOAT
  12: [8, (v, at, le) => v.getFloat64(at, le)], // DOUBLE
  13: [4, (v, at, le) => v.getUint32(at, le)], // IFD
  16: [8, (v, at, le) => Number(v.getBigUint64(at, le))], // LONG8
};

/**
 * The orientation (1..8; 1 = as stored) the sources give, Pillow's way (see the header); 1 when there is none, it
 * is not an integer from 2 to 8, or the block cannot be read.
 */
export function imageOrientation(src: OrientationSources): number {
  const fromExif = src.exif ? exifOrientationTag(src.exif) : undefined;
  const value = fromExif !== undefined ? fromExif : src.xmp ? xmpOrientation(src.xmp) : undefined;
  return value !== undefined && Number.isInteger(value) && value >= 2 && value <= 8 ? value : 1;
}

/**
 * IFD0's Orientation tag as Pillow reads it: the first of its values (Pillow keeps the first when a one-value tag
 * has more), NaN when that is not a number (BYTE, ASCII or UNDEFINED data: Pillow has bytes or a string, present
 * but never an orientation, so the XMP is not consulted), undefined when the tag is absent or the block unreadable.
 */
export function exifOrientationTag(block: Uint8Array): number | undefined {
  let b = block;
  while (b.length >= 6 && b[0] === 0x45 && b[1] === 0x78 && b[2] === 0x69 && b[3] === 0x66 && b[4] === 0 && b[5] === 0) {
    b = b.subarray(6); // "Exif\0\0"
  }
  if (b.length < 8) return undefined;
  const little = b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0;
  const big = b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42;
  if (!little && !big) return undefined;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > b.length) return undefined;
  const count = view.getUint16(ifd, little);
  let found: number | undefined;
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > b.length) break; // truncated: Pillow keeps the tags it read
    const tag = view.getUint16(e, little), type = view.getUint16(e + 2, little), n = view.getUint32(e + 4, little);
    const t = TYPES[type];
    if (t === undefined) continue; // a type Pillow does not know: skipped
    const size = n * t[0];
    if (size === 0) continue; // no data: skipped
    const at = size > 4 ? view.getUint32(e + 8, little) : e + 8;
    if (at + size > b.length) break; // data past the end: Pillow's read fails and it stops there, keeping the tags read
    if (tag === ORIENTATION_TAG) found = t[1] === null ? NaN : t[1](view, at, little); // a later copy replaces it
  }
  return found;
}

/** The first `tiff:Orientation="N"` or `tiff:Orientation>N` (one digit) in an XMP packet, as Pillow reads it. */
export function xmpOrientation(xmp: string): number | undefined {
  const m = /tiff:Orientation(="|>)([0-9])/.exec(xmp);
  return m ? Number(m[2]) : undefined;
}

/**
 * img -> the image turned upright for EXIF orientation `o` (Pillow's transposes: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180,
 * 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90; 5-8 swap width and height).
 * Orientation 1 (or any other value) returns img itself.
 */
export function applyOrientation(img: RgbImage, o: number): RgbImage {
  if (!(o >= 2 && o <= 8)) return img;
  const { width: W, height: H, data } = img;
  const swap = o >= 5;
  const w = swap ? H : W, h = swap ? W : H;
  const out = new Uint8Array(data.length);
  // source pixel of output (x, y): sx = ax·x + bx·y + cx, sy = ay·x + by·y + cy
  const [ax, bx, cx, ay, by, cy] = ({
    2: [-1, 0, W - 1, 0, 1, 0], // FLIP_LEFT_RIGHT
    3: [-1, 0, W - 1, 0, -1, H - 1], // ROTATE_180
    4: [1, 0, 0, 0, -1, H - 1], // FLIP_TOP_BOTTOM
    5: [0, 1, 0, 1, 0, 0], // TRANSPOSE
    6: [0, 1, 0, -1, 0, H - 1], // ROTATE_270 (90° clockwise)
    7: [0, -1, W - 1, -1, 0, H - 1], // TRANSVERSE
    8: [0, -1, W - 1, 1, 0, 0], // ROTATE_90 (90° counter-clockwise)
  } as Record<number, number[]>)[o];
  let q = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++, q += 3) {
      const p = 3 * ((ay * x + by * y + cy) * W + (ax * x + bx * y + cx));
      out[q] = data[p];
      out[q + 1] = data[p + 1];
      out[q + 2] = data[p + 2];
    }
  }
  return { width: w, height: h, data: out };
}
