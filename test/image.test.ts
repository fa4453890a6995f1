import { readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import jpegJs from "jpeg-js";
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { PerceiverError } from "../src/errors.js";
import { decodeImage, fromPixels, readImageHeader, sniffImageFormat, type RgbImage } from "../src/io/image/decode.js";
import { loadImageFile, loadImageFileSync } from "../src/io/image/decode-node.js";
import { applyOrientation, exifOrientationTag, imageOrientation } from "../src/io/image/exif.js";

const IMAGES = join(import.meta.dirname, "fixtures", "images");
const EXTRA = join(import.meta.dirname, "fixtures", "images-extra");
const GOLDEN_PNGS = ["chelsea", "coffee", "astronaut", "synthetic", "tall", "small"];

// Tiny safetensors reader (header JSON + offsets) so this file does not depend on src/io/checkpoint/safetensors.ts;
// it can be swapped for readSafetensors.
interface StEntry {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}
function readSt(path: string): Map<string, StEntry> {
  const b = new Uint8Array(readFileSync(path));
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<string, unknown>;
  const out = new Map<string, StEntry>();
  for (const [k, v] of Object.entries(header)) {
    if (k === "__metadata__") continue;
    const e = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    out.set(k, { dtype: e.dtype, shape: e.shape, bytes: b.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]) });
  }
  return out;
}
const golden = readSt(join(IMAGES, "images_golden.safetensors"));
const extra = readSt(join(EXTRA, "images_extra.safetensors"));

function rgbOf(st: Map<string, StEntry>, key: string): RgbImage {
  const e = st.get(key);
  if (!e || e.dtype !== "U8" || e.shape.length !== 3 || e.shape[2] !== 3) throw new Error(`fixture ${key} missing or not U8 HWC`);
  return { height: e.shape[0], width: e.shape[1], data: e.bytes };
}

/** Runs fn, expects a PerceiverError with `code` whose message contains every fragment. */
function expectError(fn: () => unknown, code: string, ...fragments: string[]): PerceiverError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(PerceiverError);
  const pe = err as PerceiverError;
  expect(pe.code, pe.message).toBe(code);
  for (const f of fragments) expect(pe.message).toContain(f);
  return pe;
}

interface DiffStats {
  max: number;
  meanAbs: number;
  /** Fraction of pixels whose 3 channels are all within 2 levels. */
  within2: number;
}
function diffStats(a: Uint8Array, b: Uint8Array): DiffStats {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  let ok = 0;
  for (let p = 0; p < a.length; p += 3) {
    let m = 0;
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(a[p + c] - b[p + c]);
      sum += d;
      if (d > m) m = d;
    }
    if (m <= 2) ok++;
    if (m > max) max = m;
  }
  return { max, meanAbs: sum / a.length, within2: ok / (a.length / 3) };
}

// ---- hand-built PNGs (node:zlib gives the deflate stream and an independent CRC-32)
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}
function ihdr(w: number, h: number, depth: number, colorType: number): Uint8Array {
  const d = new Uint8Array(13);
  const dv = new DataView(d.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  d.set([depth, colorType, 0, 0, 0], 8);
  return chunk("IHDR", d);
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
const SIG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const IEND = chunk("IEND", new Uint8Array(0));
/** PNG from packed scanlines (filter type 0 prepended here). */
function buildPng(w: number, h: number, depth: number, colorType: number, rows: Uint8Array[], extra: Uint8Array[] = []) {
  const raw = concat(...rows.map((r) => concat(new Uint8Array([0]), r)));
  return concat(SIG, ihdr(w, h, depth, colorType), ...extra, chunk("IDAT", new Uint8Array(deflateSync(raw))), IEND);
}

describe("decodeImage: golden PNGs (exact)", () => {
  for (const name of GOLDEN_PNGS) {
    it(`${name}.png equals ${name}.rgb`, () => {
      const bytes = new Uint8Array(readFileSync(join(IMAGES, `${name}.png`)));
      const ref = rgbOf(golden, `${name}.rgb`);
      expect(readImageHeader(bytes)).toEqual({ format: "png", width: ref.width, height: ref.height, orientation: 1 });
      const img = decodeImage(bytes, { source: `${name}.png` });
      expect([img.width, img.height]).toEqual([ref.width, ref.height]);
      expect(diffStats(img.data, ref.data).max).toBe(0);
    });
  }

  it("coffee_gray.png is Pillow's L conversion of coffee, replicated to RGB", () => {
    const img = decodeImage(new Uint8Array(readFileSync(join(IMAGES, "coffee_gray.png"))));
    const c = rgbOf(golden, "coffee.rgb");
    expect([img.width, img.height]).toEqual([c.width, c.height]);
    let bad = 0;
    for (let p = 0; p < c.width * c.height; p++) {
      const [r, g, b] = [c.data[3 * p], c.data[3 * p + 1], c.data[3 * p + 2]];
      const l = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16; // Pillow Convert.c L24
      if (img.data[3 * p] !== l || img.data[3 * p + 1] !== l || img.data[3 * p + 2] !== l) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe("decodeImage: JPEG", () => {
  it("chelsea.jpg is pixel-identical to libjpeg-turbo (Pillow)", () => {
    const bytes = new Uint8Array(readFileSync(join(IMAGES, "chelsea.jpg")));
    const ref = rgbOf(golden, "chelsea_jpg.rgb");
    const img = decodeImage(bytes, { source: "chelsea.jpg" });
    expect([img.width, img.height]).toEqual([451, 300]);
    const s = diffStats(img.data, ref.data);
    // Plain jpeg-js (nearest-neighbour chroma, truncating color conversion), for comparison.
    const plain = jpegJs.decode(bytes, { useTArray: true, formatAsRGBA: false });
    const p = diffStats(plain.data, ref.data);
    console.log(
      `chelsea.jpg vs Pillow: max ${s.max}, mean abs ${s.meanAbs.toFixed(4)}, within 2: ${(100 * s.within2).toFixed(2)}%` +
        ` | plain jpeg-js: max ${p.max}, mean abs ${p.meanAbs.toFixed(4)}, within 2: ${(100 * p.within2).toFixed(2)}%`,
    );
    expect(s.max).toBe(0);
    expect(p.max).toBeGreaterThan(0); // jpeg-js alone is not (this file would not tell the two apart otherwise)
  });

  const jpegs = ["progressive", "adobe_ycc", "s422", "s444", "h1v2", "h4v1", "restart", "gray", "tiny420", "rgb_adobe", "cmyk"];
  for (const name of jpegs) {
    it(`images-extra/${name}.jpg matches Pillow exactly`, () => {
      const ref = rgbOf(extra, `${name}.rgb`);
      const img = decodeImage(new Uint8Array(readFileSync(join(EXTRA, `${name}.jpg`))), { source: `${name}.jpg` });
      expect([img.width, img.height]).toEqual([ref.width, ref.height]);
      const s = diffStats(img.data, ref.data);
      expect(s.max).toBe(0);
      if (ref.width * ref.height >= 1000) expect(s.within2).toBeGreaterThanOrEqual(0.99);
      expect(s.meanAbs).toBeLessThan(0.5);
    });
  }

  it("a 1x1 JPEG decodes", () => {
    const enc = jpegJs.encode({ width: 1, height: 1, data: new Uint8Array([200, 40, 90, 255]) }, 100);
    const img = decodeImage(new Uint8Array(enc.data));
    expect([img.width, img.height, img.data.length]).toEqual([1, 1, 3]);
    expect(Math.abs(img.data[0] - 200)).toBeLessThanOrEqual(6);
  });
});

describe("decodeImage: EXIF orientation (transformers' load_image: ImageOps.exif_transpose, then convert('RGB'))", () => {
  const orient = readSt(join(EXTRA, "orientation.safetensors"));
  const file = (name: string) => new Uint8Array(readFileSync(join(EXTRA, name)));
  // made by make_orientation_fixtures.py: a 23x11 crop of chelsea with the orientation written in various ways
  const pngs = [
    ...[1, 2, 3, 4, 5, 6, 7, 8].map((o) => `orient_${o}.png`), // eXIf chunk, Pillow-written
    "orient_rawprofile3.png", "orient_itxt5.png", // "Raw profile type exif" tEXt; XMP in a compressed iTXt
    // hand-made EXIF blocks: big-endian, LONG, two values (the first counts), 9 (ignored), IFD cut after the tag,
    // another tag's data past the end (Pillow stops reading the IFD there: the tag after it is not seen), the tag twice (the last counts), BYTE (bytes to Pillow: ignored),
    // RATIONAL 12/2, FLOAT 8.0, an unknown type (skipped)
    "orient_be6.png", "orient_long8.png", "orient_count2.png", "orient_nine.png", "orient_trunc7.png",
    "orient_pastend2.png", "orient_twice.png", "orient_byte6.png", "orient_rational.png", "orient_float8.png",
    "orient_unknown_type.png",
  ];
  for (const name of pngs) {
    it(`${name}: upright pixels equal Pillow's exactly; exifOrientation: false gives the stored ones`, () => {
      const upright = rgbOf(orient, `${name}.rgb`);
      const img = decodeImage(file(name), { source: name });
      expect([img.width, img.height]).toEqual([upright.width, upright.height]);
      expect(diffStats(img.data, upright.data).max).toBe(0);
      const stored = rgbOf(orient, `${name}.stored`);
      const raw = decodeImage(file(name), { exifOrientation: false });
      expect([raw.width, raw.height]).toEqual([stored.width, stored.height]);
      expect(diffStats(raw.data, stored.data).max).toBe(0);
      // the header agrees with decodeImage, for either option
      const h = readImageHeader(file(name));
      expect([h.width, h.height]).toEqual([img.width, img.height]);
      const hRaw = readImageHeader(file(name), { exifOrientation: false });
      expect([hRaw.width, hRaw.height, hRaw.orientation]).toEqual([raw.width, raw.height, h.orientation]);
    });
  }

  // JPEG: APP1 EXIF; APP1 XMP only; EXIF orientation 1 beside XMP 6 (the EXIF tag wins: nothing to do)
  for (const name of ["orient_6.jpg", "orient_xmp8.jpg", "orient_exif1_xmp6.jpg"]) {
    it(`${name}: turned like Pillow (pixels within the JPEG decoding tolerance)`, () => {
      const upright = rgbOf(orient, `${name}.rgb`);
      const img = decodeImage(file(name), { source: name });
      expect([img.width, img.height]).toEqual([upright.width, upright.height]);
      const s = diffStats(img.data, upright.data);
      expect(s.max).toBeLessThanOrEqual(4);
      expect(s.meanAbs).toBeLessThan(0.5);
      const stored = rgbOf(orient, `${name}.stored`);
      const raw = decodeImage(file(name), { exifOrientation: false });
      expect(diffStats(raw.data, stored.data).max).toBeLessThanOrEqual(4);
    });
  }

  it("the header reports the orientation found; orientations 5-8 swap width and height", () => {
    expect(readImageHeader(file("orient_6.jpg"))).toEqual({ format: "jpeg", width: 11, height: 23, orientation: 6 });
    expect(readImageHeader(file("orient_6.jpg"), { exifOrientation: false })).toEqual({ format: "jpeg", width: 23, height: 11, orientation: 6 });
    expect(readImageHeader(file("orient_3.png")).orientation).toBe(3);
    expect(readImageHeader(file("orient_nine.png")).orientation).toBe(1);
    expect(readImageHeader(new Uint8Array(readFileSync(join(IMAGES, "chelsea.jpg")))).orientation).toBe(1);
  });

  it("applyOrientation on a 3x2 image: each of Pillow's transposes, by hand", () => {
    // pixel value = 10·row + col (R only): 00 01 02 / 10 11 12
    const img: RgbImage = { width: 3, height: 2, data: new Uint8Array([0, 1, 2, 10, 11, 12].flatMap((v) => [v, 0, 0])) };
    const r = (o: number) => {
      const out = applyOrientation(img, o);
      return [out.width, out.height, ...Array.from(out.data).filter((_, i) => i % 3 === 0)];
    };
    expect(r(1)).toEqual([3, 2, 0, 1, 2, 10, 11, 12]);
    expect(r(2)).toEqual([3, 2, 2, 1, 0, 12, 11, 10]); // mirror
    expect(r(3)).toEqual([3, 2, 12, 11, 10, 2, 1, 0]); // 180°
    expect(r(4)).toEqual([3, 2, 10, 11, 12, 0, 1, 2]); // upside down
    expect(r(5)).toEqual([2, 3, 0, 10, 1, 11, 2, 12]); // transpose
    expect(r(6)).toEqual([2, 3, 10, 0, 11, 1, 12, 2]); // 90° clockwise
    expect(r(7)).toEqual([2, 3, 12, 2, 11, 1, 10, 0]); // transverse
    expect(r(8)).toEqual([2, 3, 2, 12, 1, 11, 0, 10]); // 90° counter-clockwise
    expect(applyOrientation(img, 9)).toBe(img);
  });

  it("malformed EXIF blocks give no orientation, never an exception (where Pillow would raise, the image still decodes)", () => {
    const ifd = (le: boolean, entries: number[][]) => {
      const b = new Uint8Array(8 + 2 + 12 * entries.length + 4);
      const v = new DataView(b.buffer);
      b.set(le ? [0x49, 0x49, 42, 0] : [0x4d, 0x4d, 0, 42]);
      v.setUint32(4, 8, le);
      v.setUint16(8, entries.length, le);
      entries.forEach(([tag, type, n, value], i) => {
        v.setUint16(10 + 12 * i, tag, le);
        v.setUint16(12 + 12 * i, type, le);
        v.setUint32(14 + 12 * i, n, le);
        v.setUint16(18 + 12 * i, value, le);
      });
      return b;
    };
    const good = ifd(true, [[0x0112, 3, 1, 6]]);
    expect(exifOrientationTag(good)).toBe(6);
    expect(exifOrientationTag(new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0, ...good]))).toBe(6); // "Exif\0\0" + TIFF
    expect(exifOrientationTag(ifd(false, [[0x0112, 3, 1, 8]]))).toBe(8);
    expect(exifOrientationTag(new Uint8Array(0))).toBeUndefined();
    expect(exifOrientationTag(new TextEncoder().encode("not a tiff header at all"))).toBeUndefined();
    for (let cut = 0; cut < good.length; cut++) {
      const v = exifOrientationTag(good.subarray(0, cut)); // every truncation: undefined or the tag, no throw
      expect(v === undefined || v === 6).toBe(true);
    }
    const farIfd = good.slice();
    new DataView(farIfd.buffer).setUint32(4, 0xfffffff0, true); // IFD0 offset past the end
    expect(exifOrientationTag(farIfd)).toBeUndefined();
    const manyEntries = good.slice();
    new DataView(manyEntries.buffer).setUint16(8, 65535, true); // count far beyond the data: reads what is there
    expect(exifOrientationTag(manyEntries)).toBe(6);
    expect(exifOrientationTag(ifd(true, [[0x0112, 7, 1, 6]]))).toBeNaN(); // UNDEFINED: present, not a number
    expect(imageOrientation({ exif: ifd(true, [[0x0112, 7, 1, 6]]), xmp: 'tiff:Orientation="6"' })).toBe(1);
    expect(imageOrientation({ exif: new Uint8Array([1, 2, 3]), xmp: "<tiff:Orientation>3</tiff:Orientation>" })).toBe(3);
    expect(imageOrientation({ exif: ifd(true, [[0x0112, 3, 1, 0]]) })).toBe(1);
    // random blocks behind a valid header never throw
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 255;
    for (let t = 0; t < 2000; t++) {
      const b = new Uint8Array(8 + (t % 64));
      for (let i = 0; i < b.length; i++) b[i] = rnd();
      b.set(t % 2 ? [0x49, 0x49, 42, 0] : [0x4d, 0x4d, 0, 42]);
      if (t % 3 === 0) new DataView(b.buffer).setUint32(4, 8, t % 2 === 1);
      const v = exifOrientationTag(b);
      expect(v === undefined || typeof v === "number").toBe(true);
      expect(imageOrientation({ exif: b })).toBeGreaterThanOrEqual(1);
    }
  });

  it("a JPEG with an EXIF APP1 that is not TIFF decodes, unturned; exifOrientation must be a boolean", () => {
    const jpg = file("orient_6.jpg");
    const at = findBytes(jpg, [0x45, 0x78, 0x69, 0x66, 0, 0]);
    expect(at).toBeGreaterThan(0);
    const broken = jpg.slice();
    broken.set([0x58, 0x58], at + 6); // "XX" instead of "II": not TIFF (Pillow raises SyntaxError here)
    const img = decodeImage(broken);
    expect([img.width, img.height]).toEqual([23, 11]);
    expectError(() => decodeImage(jpg, { exifOrientation: "yes" as unknown as boolean }), "INPUT_INVALID", "exifOrientation");
  });
});

function findBytes(hay: Uint8Array, needle: number[]): number {
  for (let i = 0; i + needle.length <= hay.length; i++) if (needle.every((x, j) => hay[i + j] === x)) return i;
  return -1;
}

describe("decodeImage: PNG color types and depths (Pillow convert('RGB') semantics)", () => {
  it("images-extra PNGs (palette+tRNS 4-bit, RGB+tRNS, gray+tRNS, 1-bit, LA, RGBA, interlaced) equal Pillow exactly", () => {
    for (const name of ["palette4_trns", "rgb_trns", "gray_trns", "bilevel", "la", "rgba", "interlaced"]) {
      const ref = rgbOf(extra, `${name}.rgb`);
      const img = decodeImage(new Uint8Array(readFileSync(join(EXTRA, `${name}.png`))), { source: name });
      expect([name, img.width, img.height]).toEqual([name, ref.width, ref.height]);
      expect([name, diffStats(img.data, ref.data).max]).toEqual([name, 0]);
    }
  });

  it("RGBA: alpha is dropped without compositing (pngjs-encoded)", () => {
    const data = new Uint8Array([10, 20, 30, 0, 200, 100, 50, 128, 1, 2, 3, 255]);
    const bytes = PNG.sync.write({ width: 3, height: 1, data: Buffer.from(data) } as PNG, { colorType: 6 });
    const img = decodeImage(new Uint8Array(bytes));
    expect(Array.from(img.data)).toEqual([10, 20, 30, 200, 100, 50, 1, 2, 3]);
  });

  it("gray+alpha 8-bit: gray replicated, alpha dropped", () => {
    const bytes = buildPng(2, 1, 8, 4, [new Uint8Array([7, 0, 250, 9])]);
    expect(Array.from(decodeImage(bytes).data)).toEqual([7, 7, 7, 250, 250, 250]);
  });

  it("palette 8-bit with tRNS: palette expanded, transparency ignored", () => {
    const plte = chunk("PLTE", new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255]));
    const trns = chunk("tRNS", new Uint8Array([0, 128]));
    const bytes = buildPng(4, 1, 8, 3, [new Uint8Array([2, 0, 1, 0])], [plte, trns]);
    expect(Array.from(decodeImage(bytes).data)).toEqual([0, 0, 255, 255, 0, 0, 0, 255, 0, 255, 0, 0]);
  });

  it("palette 2-bit and gray 2-bit (gray scaled by 85 like Pillow's L;2)", () => {
    const plte = chunk("PLTE", new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
    const pal = decodeImage(buildPng(4, 1, 2, 3, [new Uint8Array([0b00011011])], [plte]));
    expect(Array.from(pal.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const gray = decodeImage(buildPng(4, 1, 2, 0, [new Uint8Array([0b00011011])]));
    expect(Array.from(gray.data)).toEqual([0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255]);
  });

  it("RGB and gray with tRNS keep their colors (pngjs alone would zero them)", () => {
    const rgb = buildPng(2, 1, 8, 2, [new Uint8Array([9, 8, 7, 1, 2, 3])], [chunk("tRNS", new Uint8Array([0, 9, 0, 8, 0, 7]))]);
    expect(Array.from(decodeImage(rgb).data)).toEqual([9, 8, 7, 1, 2, 3]);
    const gray = buildPng(2, 1, 8, 0, [new Uint8Array([40, 41])], [chunk("tRNS", new Uint8Array([0, 40]))]);
    expect(Array.from(decodeImage(gray).data)).toEqual([40, 40, 40, 41, 41, 41]);
  });

  it("16-bit RGB / RGBA / gray+alpha / gray (pngjs-encoded): the high byte of each sample", () => {
    const vals = [0, 255, 256, 1000, 0x7fff, 0x8080, 65535, 300];
    for (const [colorType, c] of [[2, 3], [6, 4], [4, 2], [0, 1]] as const) {
      const data = new Uint16Array(vals.length * c);
      for (let i = 0; i < vals.length; i++) for (let k = 0; k < c; k++) data[i * c + k] = vals[(i + k) % vals.length];
      const png = PNG.sync.write({ width: vals.length, height: 1, data } as unknown as PNG, {
        colorType,
        inputColorType: colorType,
        inputHasAlpha: colorType === 4 || colorType === 6,
        bitDepth: 16,
      });
      const bytes = new Uint8Array(png);
      expect(bytes[24]).toBe(16); // really a 16-bit file
      const img = decodeImage(bytes);
      const want: number[] = [];
      for (let i = 0; i < vals.length; i++) {
        for (let k = 0; k < 3; k++) want.push(data[i * c + (c >= 3 ? k : 0)] >> 8);
      }
      // Pillow agrees for RGB, RGBA and LA (";16B" raw modes). For 16-bit gray it would clamp min(v,255) instead.
      expect([colorType, Array.from(img.data)]).toEqual([colorType, want]);
    }
  });

  it("a 1x1 PNG decodes; bytes after IEND and a missing IEND are tolerated like Pillow", () => {
    const one = buildPng(1, 1, 8, 2, [new Uint8Array([5, 6, 7])]);
    expect(decodeImage(one)).toEqual({ width: 1, height: 1, data: new Uint8Array([5, 6, 7]) });
    expect(Array.from(decodeImage(concat(one, new Uint8Array([1, 2, 3, 4]))).data)).toEqual([5, 6, 7]);
    expect(Array.from(decodeImage(one.subarray(0, one.length - 12)).data)).toEqual([5, 6, 7]);
  });
});

describe("decodeImage: errors", () => {
  const png = new Uint8Array(readFileSync(join(IMAGES, "small.png")));
  const jpg = new Uint8Array(readFileSync(join(IMAGES, "chelsea.jpg")));

  it("empty buffer -> IMAGE_EMPTY", () => {
    expectError(() => decodeImage(new Uint8Array(0), { source: "empty.png" }), "IMAGE_EMPTY", "empty.png");
  });

  it("random bytes / other formats -> IMAGE_UNSUPPORTED naming what was seen", () => {
    let seed = 12345;
    const rnd = new Uint8Array(1000).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    rnd[0] = 0x42; // not 0x89 / 0xff
    expectError(() => decodeImage(rnd, { source: "noise.bin" }), "IMAGE_UNSUPPORTED", "noise.bin", "first bytes: 42");
    const tiff = new TextEncoder().encode("II*\x00\x08\x00\x00\x00");
    expectError(() => decodeImage(tiff), "IMAGE_UNSUPPORTED", "TIFF");
    const html = new TextEncoder().encode("<!DOCTYPE html><html><body>404</body></html>");
    expectError(() => decodeImage(html), "IMAGE_UNSUPPORTED", "HTML");
    expect(sniffImageFormat(rnd)).toBeNull();
  });

  it("PNG cut in half -> IMAGE_DECODE naming the source", () => {
    const cut = png.subarray(0, png.length >> 1);
    expectError(() => decodeImage(cut, { source: "half.png" }), "IMAGE_DECODE", "half.png", "truncated");
  });

  it("JPEG cut in half -> IMAGE_DECODE (truncated), not a silently gray image", () => {
    const cut = jpg.subarray(0, jpg.length >> 1);
    expectError(() => decodeImage(cut, { source: "half.jpg" }), "IMAGE_DECODE", "half.jpg", "truncated");
  });

  it("any truncation point gives IMAGE_DECODE or the complete image, never a raw exception", () => {
    for (const [bytes, name] of [[png, "png"], [jpg, "jpg"]] as const) {
      const full = decodeImage(bytes);
      for (let i = 1; i < 40; i++) {
        const cut = bytes.subarray(0, Math.floor((bytes.length * i) / 40));
        try {
          const img = decodeImage(cut);
          expect([name, i, diffStats(img.data, full.data).max]).toEqual([name, i, 0]);
        } catch (e) {
          expect(e, `${name} cut ${i}`).toBeInstanceOf(PerceiverError);
          expect(["IMAGE_DECODE", "IMAGE_UNSUPPORTED"]).toContain((e as PerceiverError).code);
        }
      }
    }
  });

  it("corrupted bytes give IMAGE_DECODE or some image, never a raw exception or a hang", () => {
    for (const bytes of [png, jpg]) {
      for (let i = 0; i < 30; i++) {
        const bad = bytes.slice();
        const at = 2 + Math.floor(((bytes.length - 4) * i) / 30);
        bad[at] ^= 0x5a;
        bad[at + 1] ^= 0xff;
        try {
          const img = decodeImage(bad);
          expect(img.data.length).toBe(img.width * img.height * 3);
        } catch (e) {
          expect(e, `flip at ${at}`).toBeInstanceOf(PerceiverError);
        }
      }
    }
  });

  it("PNG header claiming 100000x100000 (valid CRC) -> IMAGE_TOO_LARGE before any allocation", () => {
    const bytes = concat(SIG, ihdr(100000, 100000, 8, 2), chunk("IDAT", new Uint8Array(10)), IEND);
    expectError(() => decodeImage(bytes, { source: "bomb.png" }), "IMAGE_TOO_LARGE", "bomb.png", "100000x100000");
    expectError(() => readImageHeader(bytes), "IMAGE_TOO_LARGE");
    const badCrc = bytes.slice();
    badCrc[30] ^= 1;
    expectError(() => decodeImage(badCrc), "IMAGE_DECODE", "IHDR CRC");
  });

  it("a PNG whose data inflates far past its size: inflating stops at the last row (Pillow ignores the rest)", () => {
    for (const interlace of [0, 1]) {
      const head = ihdr(10, 10, 8, 2);
      head[8 + 12] = interlace;
      new DataView(head.buffer).setUint32(21, crc32(head.subarray(4, 21)));
      const bomb = concat(SIG, head, chunk("IDAT", new Uint8Array(deflateSync(new Uint8Array(64 << 20)))), IEND);
      const t0 = performance.now();
      const img = decodeImage(bomb, { source: "zbomb.png" });
      expect(performance.now() - t0).toBeLessThan(500); // 64 MiB would take seconds to inflate in full
      expect(img.data.every((v) => v === 0)).toBe(true);
    }
  });

  it("maxPixels is honored for PNG and JPEG; zero-size headers -> IMAGE_EMPTY", () => {
    expectError(() => decodeImage(png, { maxPixels: 1999 }), "IMAGE_TOO_LARGE", "50x40");
    expect(decodeImage(png, { maxPixels: 2000 }).width).toBe(50);
    expectError(() => decodeImage(jpg, { maxPixels: 100_000 }), "IMAGE_TOO_LARGE", "451x300");
    expectError(() => decodeImage(concat(SIG, ihdr(0, 5, 8, 2), IEND)), "IMAGE_EMPTY", "0x5");
  });

  it("JPEG frame header: huge size, arithmetic coding, 12-bit are refused from the header", () => {
    const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
    expect(sof).toBeGreaterThan(0);
    const huge = jpg.slice();
    huge.set([0xff, 0xff, 0xff, 0xff], sof + 5); // height, width = 65535
    expectError(() => decodeImage(huge), "IMAGE_TOO_LARGE", "65535x65535");
    const arith = jpg.slice();
    arith[sof + 1] = 0xc9;
    expectError(() => decodeImage(arith), "IMAGE_UNSUPPORTED", "arithmetic");
    const twelve = jpg.slice();
    twelve[sof + 4] = 12;
    expectError(() => decodeImage(twelve), "IMAGE_UNSUPPORTED", "12-bit");
  });
});

describe("fromPixels", () => {
  it("RGBA (canvas ImageData) -> RGB dropping alpha; RGB is copied", () => {
    const rgba = new Uint8ClampedArray([1, 2, 3, 0, 4, 5, 6, 255]);
    expect(fromPixels(rgba, 2, 1, 4)).toEqual({ width: 2, height: 1, data: new Uint8Array([1, 2, 3, 4, 5, 6]) });
    const rgb = new Uint8Array([9, 9, 9]);
    const img = fromPixels(rgb, 1, 1, 3);
    rgb[0] = 0;
    expect(img.data[0]).toBe(9);
  });

  it("wrong length / channels / size are refused", () => {
    expectError(() => fromPixels(new Uint8Array(7), 2, 1, 4), "INPUT_INVALID", "needs 8 bytes, got 7");
    expectError(() => fromPixels(new Uint8Array(6), 2, 1, 2 as 3), "INPUT_INVALID", "channels");
    expectError(() => fromPixels(new Uint8Array(0), 0, 1, 3), "IMAGE_EMPTY");
    expectError(() => fromPixels(new Uint8Array(3), 1.5, 2, 3), "INPUT_INVALID");
  });
});

describe("loadImageFile", () => {
  it("reads and decodes a file; errors name the path", async () => {
    const path = join(IMAGES, "small.png");
    const ref = rgbOf(golden, "small.rgb");
    expect(diffStats((await loadImageFile(path)).data, ref.data).max).toBe(0);
    expect(loadImageFileSync(path).width).toBe(50);
    const missing = join(IMAGES, "does-not-exist.png");
    await expect(loadImageFile(missing)).rejects.toMatchObject({ code: "INPUT_INVALID", message: expect.stringContaining(missing) });
    expectError(() => loadImageFileSync(IMAGES), "INPUT_INVALID", "not a regular file");
    await expect(loadImageFile(path, { maxPixels: 10 })).rejects.toMatchObject({ code: "IMAGE_TOO_LARGE" });
  });
});
