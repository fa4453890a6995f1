/**
 * A tiny built-in bitmap font for labels drawn into images (attention-map tiles, colour-bar ticks), so a PNG can be
 * read without any font file or canvas: 3x5 dots per glyph, upper-case letters, digits and a little punctuation.
 * Lower-case letters are drawn as upper-case; `×` has its own small glyph; anything else is drawn as `?`.
 * Each dot is `scale` x `scale` pixels; glyphs advance 4 dots (one dot of space), lines 6 dots.
 * Pure code on RgbImage: browser-safe.
 */
import type { RgbImage } from "./decode.js";

/** Rows top to bottom, 3 bits each (4 = left dot, 1 = right dot). */
const GLYPHS: Record<string, readonly number[]> = {
  A: [2, 5, 7, 5, 5], B: [6, 5, 6, 5, 6], C: [3, 4, 4, 4, 3], D: [6, 5, 5, 5, 6], E: [7, 4, 6, 4, 7], F: [7, 4, 6, 4, 4],
  G: [3, 4, 5, 5, 3], H: [5, 5, 7, 5, 5], I: [7, 2, 2, 2, 7], J: [1, 1, 1, 5, 2], K: [5, 5, 6, 5, 5], L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5], N: [6, 5, 5, 5, 5], O: [2, 5, 5, 5, 2], P: [6, 5, 6, 4, 4], Q: [2, 5, 5, 6, 3], R: [6, 5, 6, 5, 5],
  S: [3, 4, 2, 1, 6], T: [7, 2, 2, 2, 2], U: [5, 5, 5, 5, 7], V: [5, 5, 5, 5, 2], W: [5, 5, 7, 7, 5], X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2], Z: [7, 1, 2, 4, 7],
  "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
  "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
  " ": [0, 0, 0, 0, 0], ".": [0, 0, 0, 0, 2], ",": [0, 0, 0, 2, 4], ":": [0, 2, 0, 2, 0], "-": [0, 0, 7, 0, 0],
  "+": [0, 2, 7, 2, 0], "=": [0, 7, 0, 7, 0], "/": [1, 1, 2, 4, 4], "(": [1, 2, 2, 2, 1], ")": [4, 2, 2, 2, 4],
  "#": [5, 7, 5, 7, 5], "%": [5, 1, 2, 4, 5], "<": [1, 2, 4, 2, 1], ">": [4, 2, 1, 2, 4], "?": [7, 1, 2, 0, 2],
  "_": [0, 0, 0, 0, 7], "×": [0, 5, 2, 5, 0], "@": [2, 5, 7, 4, 3],
};

export const GLYPH_WIDTH = 3;
export const GLYPH_HEIGHT = 5;
/** Dots from one glyph's left edge to the next one's. */
export const GLYPH_ADVANCE = 4;

/** The dots of `ch` (5 rows of 3 bits), `?` for a character the font does not have. */
export function glyph(ch: string): readonly number[] {
  return GLYPHS[ch] ?? GLYPHS[ch.toUpperCase()] ?? GLYPHS["?"];
}

/** Width in pixels of `text` drawn at `scale` (no trailing space): (4·n - 1)·scale, 0 for "". */
export function textWidth(text: string, scale: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : (GLYPH_ADVANCE * n - 1) * scale;
}

export interface DrawTextOptions {
  /** pixels per dot (default 1) */
  scale?: number;
  /** colour of the dots (default white) */
  color?: readonly [number, number, number];
  /** if set, a box of this colour behind the text, `scale` pixels wider on every side */
  background?: readonly [number, number, number];
}

/** Draws `text` with its top-left corner at (x, y), in place, clipped to the image; returns img. */
export function drawText(img: RgbImage, text: string, x: number, y: number, options: DrawTextOptions = {}): RgbImage {
  const s = Math.max(1, Math.floor(options.scale ?? 1));
  const color = options.color ?? [255, 255, 255];
  const fill = (x0: number, y0: number, w: number, h: number, c: readonly [number, number, number]) => {
    for (let yy = Math.max(0, y0); yy < Math.min(img.height, y0 + h); yy++) {
      for (let xx = Math.max(0, x0); xx < Math.min(img.width, x0 + w); xx++) {
        const p = (yy * img.width + xx) * 3;
        img.data[p] = c[0];
        img.data[p + 1] = c[1];
        img.data[p + 2] = c[2];
      }
    }
  };
  if (options.background) fill(x - s, y - s, textWidth(text, s) + 2 * s, GLYPH_HEIGHT * s + 2 * s, options.background);
  [...text].forEach((ch, k) => {
    const rows = glyph(ch);
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      for (let c = 0; c < GLYPH_WIDTH; c++) {
        if ((rows[r] >> (GLYPH_WIDTH - 1 - c)) & 1) fill(x + (k * GLYPH_ADVANCE + c) * s, y + r * s, s, s, color);
      }
    }
  });
  return img;
}
