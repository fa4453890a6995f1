/**
 * JPEG container walk: segments, then each scan's entropy-coded data up to the next marker, to EOI. Reads the
 * frame header (size, components, sampling) and checks every limit before a decoder sees the file:
 * - the pixel cap, and that the file is complete (Pillow refuses a truncated JPEG: "image file is truncated");
 * - that the entropy-coded data can fill the frame: every 8x8 block of every component is coded in at least one
 *   bit (its DC difference), so a file with fewer bits than blocks is truncated or hostile, and a 170-byte file
 *   cannot make the decoder reserve gigabytes;
 * - at most MAX_SCANS scans: a progressive decoder walks every block of a component once per scan, so scans x
 *   blocks is the CPU cost, and thousands of tiny end-of-band-run scans would cost minutes;
 * - the EXIF APP1 segments are collected and joined once (linear in the file size).
 */
import { PerceiverError } from "../../errors.js";
import {
  checkSize, concatBytes, corrupt, latin1, startsWith, truncated, u16be, unsupported, type Ctx, type HeaderInfo,
} from "./common.js";
import { imageOrientation } from "./exif.js";

export interface JpegComponent {
  id: number;
  h: number;
  v: number;
}

export interface JpegInfo extends HeaderInfo {
  progressive: boolean;
  components: JpegComponent[];
  /** a JFIF APP0 marker was found (libjpeg then reads 3 components as YCbCr) */
  jfif: boolean;
  /** Adobe APP14 transform as found in the file (0 = RGB / CMYK, 1 = YCbCr, 2 = YCCK), or -1 without the marker */
  adobeTransform: number;
  scans: number;
}

/** Most scans we decode. Encoders write 1 (baseline) or about 10 (progressive); jpegtran's most detailed scripts stay far below. */
export const MAX_SCANS = 256;

const SOF_NAMES: Record<number, string> = {
  0xc0: "baseline", 0xc1: "extended sequential", 0xc2: "progressive", 0xc3: "lossless",
  0xc5: "differential sequential", 0xc6: "differential progressive", 0xc7: "differential lossless",
  0xc9: "arithmetic-coded sequential", 0xca: "arithmetic-coded progressive", 0xcb: "arithmetic-coded lossless",
  0xcd: "arithmetic-coded differential sequential", 0xce: "arithmetic-coded differential progressive",
  0xcf: "arithmetic-coded differential lossless",
};

const EXIF_ID = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const XMP_ID = [..."http://ns.adobe.com/xap/1.0/\0"].map((c) => c.charCodeAt(0));

/** 8x8 blocks of all components: sum of ceil(W * h / maxH / 8) * ceil(H * v / maxV / 8). */
export function jpegBlocks(width: number, height: number, comps: JpegComponent[]): number {
  const maxH = Math.max(...comps.map((c) => c.h));
  const maxV = Math.max(...comps.map((c) => c.v));
  return comps.reduce((n, c) => n + Math.ceil(Math.ceil((width * c.h) / maxH) / 8) * Math.ceil(Math.ceil((height * c.v) / maxV) / 8), 0);
}

export function scanJpeg(b: Uint8Array, ctx: Ctx): JpegInfo {
  const n = b.length;
  const bad = (msg: string) => corrupt(ctx, "JPEG", msg);
  const cut = (where: string) => truncated(ctx, "JPEG", `${where}; no EOI marker`);
  let frame: { width: number; height: number; progressive: boolean; components: JpegComponent[] } | null = null;
  let adobeTransform = -1;
  let jfif = false;
  let scans = 0;
  let entropyBytes = 0;
  const exifParts: Uint8Array[] = [];
  let xmp: string | null = null;
  let off = 2;
  for (;;) {
    if (off >= n) throw cut(`file ends at offset ${n}`);
    if (b[off] !== 0xff) throw bad(`expected a marker at offset ${off}, found 0x${b[off].toString(16)}`);
    while (off + 1 < n && b[off + 1] === 0xff) off++; // fill bytes
    if (off + 1 >= n) throw cut(`file ends inside a marker at offset ${off}`);
    const m = b[off + 1];
    const at = off;
    off += 2;
    if (m === 0xd9) break; // EOI
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // TEM, RSTn: no payload
    if (m === 0xd8 || m === 0x00) throw bad(`unexpected marker 0xff${m.toString(16).padStart(2, "0")} at offset ${at}`);
    if (off + 2 > n) throw cut(`file ends inside the segment length at offset ${off}`);
    const len = u16be(b, off);
    if (len < 2) throw bad(`segment 0xff${m.toString(16)} at offset ${at} has length ${len}`);
    const end = off + len;
    if (end > n) throw cut(`segment 0xff${m.toString(16)} at offset ${at} needs ${len} bytes, ${n - off} remain`);
    const p = off + 2; // payload
    const plen = len - 2;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (frame) throw bad(`second frame header at offset ${at}`);
      if (plen < 6) throw bad(`frame header at offset ${at} is too short`);
      const precision = b[p];
      const height = u16be(b, p + 1);
      const width = u16be(b, p + 3);
      const nc = b[p + 5];
      if (plen < 6 + 3 * nc) throw bad(`frame header at offset ${at} is too short for ${nc} components`);
      if (m !== 0xc0 && m !== 0xc1 && m !== 0xc2) throw unsupported(ctx, `${SOF_NAMES[m]} JPEG (SOF${m - 0xc0}) is not supported`);
      if (precision !== 8) throw unsupported(ctx, `${precision}-bit JPEG is not supported (only 8-bit)`);
      if (height === 0) {
        throw new PerceiverError("IMAGE_EMPTY", `${ctx.source}: JPEG frame header has height 0 (height set by a DNL marker is not supported)`);
      }
      checkSize(width, height, ctx, "JPEG frame header");
      if (nc !== 1 && nc !== 3 && nc !== 4) throw unsupported(ctx, `JPEG with ${nc} components is not supported`);
      const components: JpegComponent[] = [];
      for (let i = 0; i < nc; i++) {
        const id = b[p + 6 + 3 * i];
        const h = b[p + 7 + 3 * i] >> 4;
        const v = b[p + 7 + 3 * i] & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) throw bad(`component ${id} has sampling factors ${h}x${v}`);
        components.push({ id, h, v });
      }
      const maxH = Math.max(...components.map((c) => c.h));
      const maxV = Math.max(...components.map((c) => c.v));
      if (components.some((c) => maxH % c.h !== 0 || maxV % c.v !== 0)) {
        throw unsupported(ctx, "JPEG with fractional chroma sampling ratios is not supported");
      }
      frame = { width, height, progressive: m === 0xc2, components };
    } else if (m === 0xda) {
      if (!frame) throw bad(`scan at offset ${at} before the frame header`);
      if (++scans > MAX_SCANS) throw unsupported(ctx, `JPEG with more than ${MAX_SCANS} scans is not supported`);
      // Entropy-coded data: runs until a marker other than a stuffed 0xff00 or RSTn.
      let q = end;
      for (;;) {
        q = b.indexOf(0xff, q);
        if (q < 0 || q + 1 >= n) throw cut(`file ends inside scan ${scans} (scan data from offset ${end})`);
        const nb = b[q + 1];
        if (nb === 0x00 || (nb >= 0xd0 && nb <= 0xd7)) q += 2;
        else if (nb === 0xff) q += 1;
        else break;
      }
      entropyBytes += q - end;
      off = q;
      continue;
    } else if (m === 0xe0 && plen >= 5 && latin1(b.subarray(p, p + 5)) === "JFIF\0") {
      jfif = true;
    } else if (m === 0xee && plen >= 12 && latin1(b.subarray(p, p + 5)) === "Adobe") {
      adobeTransform = b[p + 11];
    } else if (m === 0xe1 && scans === 0) {
      // Pillow reads these while opening, before the first scan: the first EXIF segment, later ones appended
      // without their "Exif\0\0"; the last XMP segment's packet (after its namespace and \0)
      const seg = b.subarray(p, end);
      if (startsWith(seg, EXIF_ID)) exifParts.push(exifParts.length === 0 ? seg : seg.subarray(6));
      else if (startsWith(seg, XMP_ID)) xmp = latin1(seg.subarray(XMP_ID.length));
    }
    off = end;
  }
  if (!frame) throw bad("no frame header (SOF) before EOI");
  if (scans === 0) throw bad("no scan (SOS) before EOI");
  const blocks = jpegBlocks(frame.width, frame.height, frame.components);
  if (entropyBytes * 8 < blocks) {
    throw truncated(ctx, "JPEG", `${entropyBytes} bytes of scan data cannot code the ${blocks} blocks of a ${frame.width}x${frame.height} frame`);
  }
  if (frame.components.length === 4 && adobeTransform < 0) {
    throw unsupported(ctx, "4-component JPEG without an Adobe marker is not supported");
  }
  const orientation = imageOrientation({ exif: exifParts.length ? concatBytes(exifParts) : null, xmp });
  return { ...frame, jfif, adobeTransform, scans, orientation };
}
