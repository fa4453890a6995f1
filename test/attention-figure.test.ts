/**
 * Readable attention maps (#23 item 6): units of uniform attention, display ranges, the bitmap font, colour bars,
 * tile labels and PNG text chunks.
 */
import { PNG } from "pngjs";
import { describe, expect, it } from "vitest";
import { GLYPH_HEIGHT, drawText, glyph, textWidth } from "../src/io/image/bitmap-font.js";
import { getColormap } from "../src/io/image/colormap.js";
import { decodeImage, type RgbImage } from "../src/io/image/decode.js";
import { encodeRgbPng } from "../src/io/image/png-encode.js";
import {
  classWeightedFigure, colorBar, formatRelative, labelTile, latentGridFigure, stackVertical, textScaleFor,
} from "../src/perceiver/attention-figure.js";
import { displayRange, relativeToUniform, scaleToRange } from "../src/perceiver/attention-map.js";
import { pngText } from "./helpers/png-text.js";

const blank = (w: number, h: number, v = 0): RgbImage => ({ width: w, height: h, data: new Uint8Array(w * h * 3).fill(v) });
const at = (img: RgbImage, x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));

describe("units and ranges", () => {
  it("relativeToUniform multiplies by the number of inputs: a uniform map is 1 everywhere", () => {
    expect(Array.from(relativeToUniform(new Float32Array(4).fill(0.25)))).toEqual([1, 1, 1, 1]);
    expect(Array.from(relativeToUniform(new Float32Array([0.5, 0.25, 0.25, 0])))).toEqual([2, 1, 1, 0]);
    expect(Array.from(relativeToUniform(new Float32Array([0.1]), 10))).toEqual([Math.fround(0.1) * 10].map(Math.fround));
    expect(() => relativeToUniform(new Float32Array(2), 0)).toThrow(/positive integer/);
  });

  it("displayRange: 0 to the largest value of all maps, or min to max; scaleToRange maps it onto [0, 1]", () => {
    const a = new Float32Array([0.5, 2]), b = new Float32Array([1, 4]);
    expect(displayRange([a, b])).toEqual({ lo: 0, hi: 4 });
    expect(displayRange([a, b], { fromZero: false })).toEqual({ lo: 0.5, hi: 4 });
    expect(displayRange([new Float32Array(3)])).toEqual({ lo: 0, hi: 1 });
    expect(displayRange([new Float32Array([2, 2])], { fromZero: false })).toEqual({ lo: 2, hi: 3 });
    expect(() => displayRange([new Float32Array([1, Infinity])])).toThrow(/non-finite/);
    expect(Array.from(scaleToRange(b, { lo: 0, hi: 4 }))).toEqual([0.25, 1]);
    expect(Array.from(scaleToRange(a, { lo: 0.5, hi: 4 }))).toEqual([0, 1.5 / 3.5].map(Math.fround));
    expect(() => scaleToRange(a, { lo: 1, hi: 1 })).toThrow(/lo < hi/);
  });

  it("formatRelative keeps 3 significant digits at most", () => {
    expect([0, 0.5, 1, 1.034, 12.34, 123.4, 0.000123].map(formatRelative)).toEqual(["0", "0.5", "1", "1.03", "12.3", "123", "0.000123"]);
  });
});

describe("bitmap font", () => {
  it("draws 3x5 glyphs at the given scale, clipped to the image", () => {
    const img = drawText(blank(20, 12), "1", 2, 1, { scale: 2 });
    // "1" = rows 010, 110, 010, 010, 111: dot (1, 0) lit, dot (0, 0) dark, the whole bottom row lit
    expect(at(img, 2 + 2, 1)).toEqual([255, 255, 255]);
    expect(at(img, 2, 1)).toEqual([0, 0, 0]);
    for (let x = 2; x < 8; x++) expect(at(img, x, 1 + 4 * 2)).toEqual([255, 255, 255]);
    let lit = 0;
    for (let p = 0; p < img.width * img.height; p++) if (img.data[3 * p]) lit++;
    expect(lit).toBe(4 * 8); // 8 dots of 2x2 pixels
    expect(() => drawText(blank(4, 4), "WIDE TEXT", 2, 2, { scale: 3 })).not.toThrow();
  });

  it("widths, case and unknown characters", () => {
    expect(textWidth("", 2)).toBe(0);
    expect(textWidth("AB", 1)).toBe(7);
    expect(textWidth("1.03", 2)).toBe(30);
    expect(glyph("a")).toEqual(glyph("A"));
    expect(glyph("€")).toEqual(glyph("?"));
    const withBox = drawText(blank(30, 12, 255), "0", 5, 3, { scale: 1, color: [255, 255, 255], background: [0, 0, 0] });
    expect(at(withBox, 4, 2)).toEqual([0, 0, 0]); // the box reaches one dot around the text
    expect(at(withBox, 5, 3)).toEqual([255, 255, 255]);
    expect(GLYPH_HEIGHT).toBe(5);
  });
});

describe("colour bar and labels", () => {
  const inferno = getColormap("inferno");

  it("runs through the colormap, marks 1 = uniform, and labels both ends", () => {
    const bar = colorBar(224, { colormap: inferno, range: { lo: 0, hi: 4 }, caption: "TIMES UNIFORM", scale: 2 });
    expect([bar.width, bar.height]).toEqual([224, 48]);
    expect(textScaleFor(224)).toBe(2);
    const x0 = 6, barW = 224 - 12, y = 6;
    expect(at(bar, x0, y)).toEqual(Array.from(inferno.lut.subarray(0, 3)));
    expect(at(bar, x0 + barW - 1, y)).toEqual(Array.from(inferno.lut.subarray(765, 768)));
    expect(at(bar, x0 - 1, y)).toEqual([255, 255, 255]);
    // the tick of 1 (a quarter of the way), just under the bar, in ink
    const ux = x0 + Math.round(0.25 * (barW - 1));
    expect(at(bar, ux, 14)).toEqual([40, 40, 40]);
    expect(at(bar, ux + 3, 14)).toEqual([255, 255, 255]);
    // the labels are the font's pixels: "0" at the left, "4" right-aligned, "1" centred on its tick
    const expected = blank(224, 48, 255);
    drawText(expected, "0", x0, 20, { scale: 2, color: [40, 40, 40] });
    drawText(expected, "4", x0 + barW - textWidth("4", 2), 20, { scale: 2, color: [40, 40, 40] });
    drawText(expected, "1", ux - 3, 20, { scale: 2, color: [40, 40, 40] });
    for (let yy = 20; yy < 30; yy++) for (let x = 0; x < 224; x++) expect(at(bar, x, yy), `${x},${yy}`).toEqual(at(expected, x, yy));
  });

  it("leaves out 1 when it is outside the range, and rejects bad ranges", () => {
    const a = colorBar(100, { colormap: inferno, range: { lo: 2, hi: 5 }, caption: "", scale: 1 });
    const b = colorBar(100, { colormap: inferno, range: { lo: 2, hi: 5 }, caption: "", scale: 1, markUniform: false });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(() => colorBar(100, { colormap: inferno, range: { lo: 1, hi: 1 }, caption: "" })).toThrow(/lo < hi/);
    expect(() => colorBar(4, { colormap: inferno, range: { lo: 0, hi: 1 }, caption: "" })).toThrow(/at least 8/);
  });

  it("labels tiles on a black box and stacks images", () => {
    const tile = labelTile(blank(60, 40, 128), ["LATENT 3", "DEC 0.1"], 1);
    expect(at(tile, 0, 0)).toEqual([0, 0, 0]);
    expect(at(tile, 59, 39)).toEqual([128, 128, 128]);
    expect(at(tile, textWidth("LATENT 3", 1) + 1, 12)).toEqual([0, 0, 0]); // the box covers both lines
    const s = stackVertical(blank(3, 1, 7), blank(3, 2, 9));
    expect([s.width, s.height, s.data[0], s.data[17]]).toEqual([3, 3, 7, 9]);
    expect(() => stackVertical(blank(3, 1), blank(2, 1))).toThrow(/widths 3 and 2 differ/);
  });

  it("figures: the class-weighted map and a shared-scale grid carry their ranges", () => {
    const crop = blank(56, 56, 100);
    const T = 16; // a 4x4 token grid
    const flat = new Float32Array(T).fill(1 / T);
    const peaked = Float32Array.from({ length: T }, (_, i) => (i === 5 ? 0.5 : 0.5 / (T - 1)));
    const o = { crop, gridHeight: 4, gridWidth: 4, colormap: inferno, alpha: 1 };
    const f = classWeightedFigure(peaked, o);
    expect(f.range.lo).toBe(0);
    expect(f.range.hi).toBeCloseTo(8, 5);
    expect(f.image.height).toBe(56 + 24 * textScaleFor(56));
    expect(f.text["Attention range"]).toMatch(/^0 8(\.0+\d*)? \(x uniform, uniform = 1\/16\)$/);
    const g = latentGridFigure([{ latent: 0, weight: 0.6, map: peaked }, { latent: 1, weight: 0.4, map: flat }], 2, "shared", o);
    expect(g.ranges.map((r) => r.hi)).toEqual([g.range.hi, g.range.hi]);
    expect(g.maxima[1]).toBe(1);
    // shared: the flat map is at 1/8 of the scale everywhere (dark), not stretched to the full range
    const idx = Math.round(255 * (1 / g.range.hi));
    expect(at(g.image, 56 + 2 + 40, 50)).toEqual(Array.from(inferno.lut.subarray(3 * idx, 3 * idx + 3)));
    const p = latentGridFigure([{ latent: 1, weight: 0.4, map: flat }], 1, "per-map", o);
    expect(p.text["Attention scale"]).toBe("per-map");
  });
});

describe("PNG text chunks", () => {
  const img: RgbImage = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 13) };

  it("stores Latin-1 text as tEXt and other text as iTXt; readers still decode the pixels", () => {
    const png = encodeRgbPng(img, { text: { Title: "Attention", "Attention range": "0 12.5 (x uniform)", Source: "chat-café-猫.png" } });
    expect(pngText(png)).toEqual({ Title: "Attention", "Attention range": "0 12.5 (x uniform)", Source: "chat-café-猫.png" });
    const types: string[] = [];
    for (let o = 8; o < png.length;) {
      const len = new DataView(png.buffer, png.byteOffset).getUint32(o);
      types.push(String.fromCharCode(...png.subarray(o + 4, o + 8)));
      o += 12 + len;
    }
    expect(types).toEqual(["IHDR", "tEXt", "tEXt", "iTXt", "IDAT", "IEND"]);
    expect(Buffer.from(decodeImage(png).data).equals(Buffer.from(img.data))).toBe(true);
    const viaPngjs = PNG.sync.read(Buffer.from(png));
    expect([viaPngjs.width, viaPngjs.height]).toEqual([3, 2]);
  });

  it("rejects keywords the PNG spec forbids and NUL in text", () => {
    for (const k of ["", " lead", "trail ", "dou  ble", "x".repeat(80), "tab\tkey"]) {
      expect(() => encodeRgbPng(img, { text: { [k]: "v" } }), JSON.stringify(k)).toThrow(/keyword/);
    }
    expect(() => encodeRgbPng(img, { text: { Title: "a\0b" } })).toThrow(/NUL/);
  });
});
