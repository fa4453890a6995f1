/**
 * The parts of an attention-map figure that make it readable on its own: a colour bar with the actual range in units
 * of uniform attention (see relativeToUniform: 1 = every input got the same share), tick labels, a caption, and
 * labels on the tiles of a grid. Drawn with the built-in bitmap font, so the PNG needs no font or canvas.
 * Pure code on RgbImage: browser-safe.
 */
import { PerceiverError } from "../errors.js";
import { GLYPH_HEIGHT, drawText, textWidth } from "../io/image/bitmap-font.js";
import { colormapIndex, type Colormap } from "../io/image/colormap.js";
import { assertRgbImage, type RgbImage } from "../io/image/decode.js";
import {
  displayRange, overlay, relativeToUniform, scaleToRange, tileGrid, upsampleBilinear, type DisplayRange,
} from "./attention-map.js";

const WHITE = [255, 255, 255] as const;
const INK = [40, 40, 40] as const;
const BLACK = [0, 0, 0] as const;

/** Text size (pixels per font dot) that suits a picture `width` pixels wide: 2 for a 224 crop. */
export function textScaleFor(width: number): number {
  return Math.max(1, Math.round(width / 112));
}

/** A value in units of uniform attention, short: 0.5, 1.23, 12.3, 123; at most 3 significant digits. */
export function formatRelative(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return String(Number(v.toPrecision(3)));
}

/** 6 significant digits, for the PNG text (float32 values carry about 7). */
function sig6(v: number): string {
  return String(Number(v.toPrecision(6)));
}

export interface ColorBarOptions {
  colormap: Colormap;
  /** the values at the two ends of the bar, in units of uniform attention */
  range: DisplayRange;
  /** mark 1.0 (uniform attention) on the bar when it lies inside the range (default true) */
  markUniform?: boolean;
  /** labels of the ends instead of the range's lo and hi (e.g. "TILE MIN", "TILE MAX" for per-map scales) */
  loLabel?: string;
  hiLabel?: string;
  /** one line under the ticks, e.g. "TIMES UNIFORM: 1 = 1/3025" */
  caption: string;
  /** pixels per font dot (default textScaleFor(width)) */
  scale?: number;
}

/**
 * A white strip `width` pixels wide: the colormap from range.lo (left) to range.hi (right), ticks with their values
 * below it (lo, 1 = uniform, hi), then the caption. Height 24·scale pixels.
 */
export function colorBar(width: number, options: ColorBarOptions): RgbImage {
  const { colormap, range, caption } = options;
  if (!Number.isSafeInteger(width) || width < 8) throw new PerceiverError("INPUT_INVALID", `colorBar: width must be an integer of at least 8, got ${width}`);
  if (!(Number.isFinite(range.lo) && Number.isFinite(range.hi) && range.hi > range.lo)) {
    throw new PerceiverError("INPUT_INVALID", `colorBar: the range must have finite lo < hi, got ${range.lo}..${range.hi}`);
  }
  const s = options.scale ?? textScaleFor(width);
  const height = 24 * s;
  const img: RgbImage = { width, height, data: new Uint8Array(width * height * 3).fill(255) };
  const pad = Math.min(3 * s, Math.floor(width / 8));
  const x0 = pad;
  const barW = width - 2 * pad;
  const barY = 2 * s;
  const barH = 5 * s;
  const lut = colormap.lut;
  for (let x = 0; x < barW; x++) {
    const c = 3 * colormapIndex(barW === 1 ? 0 : x / (barW - 1));
    for (let y = barY; y < barY + barH; y++) img.data.set(lut.subarray(c, c + 3), (y * width + x0 + x) * 3);
  }
  const tickY = barY + barH;
  const labelY = tickY + 3 * s;
  const xOf = (v: number) => x0 + Math.round(((v - range.lo) / (range.hi - range.lo)) * (barW - 1));
  const tick = (x: number) => {
    for (let y = tickY; y < tickY + 2 * s; y++) for (let dx = 0; dx < Math.max(1, Math.floor(s / 2)); dx++) img.data.set(INK, (y * width + Math.min(width - 1, x + dx)) * 3);
  };
  // ends: lo left-aligned, hi right-aligned; uniform centred on its tick if it does not run into them
  const loText = options.loLabel ?? formatRelative(range.lo);
  const hiText = options.hiLabel ?? formatRelative(range.hi);
  tick(x0);
  tick(x0 + barW - 1);
  drawText(img, loText, x0, labelY, { scale: s, color: INK });
  const hiX = x0 + barW - textWidth(hiText, s);
  drawText(img, hiText, hiX, labelY, { scale: s, color: INK });
  if ((options.markUniform ?? true) && range.lo < 1 && 1 < range.hi) {
    const ux = xOf(1);
    const w = textWidth("1", s);
    tick(ux);
    const left = ux - Math.floor(w / 2);
    if (left > x0 + textWidth(loText, s) + 2 * s && left + w < hiX - 2 * s) drawText(img, "1", left, labelY, { scale: s, color: INK });
  }
  const captionScale = textWidth(caption, s) <= width - 2 * pad ? s : Math.max(1, Math.floor(s / 2));
  drawText(img, caption, x0, labelY + (GLYPH_HEIGHT + 3) * s, { scale: captionScale, color: INK });
  return img;
}

/** `top` above `bottom` (same width) -> one image. */
export function stackVertical(top: RgbImage, bottom: RgbImage): RgbImage {
  assertRgbImage(top, "stackVertical: top");
  assertRgbImage(bottom, "stackVertical: bottom");
  if (top.width !== bottom.width) throw new PerceiverError("SHAPE_MISMATCH", `stackVertical: widths ${top.width} and ${bottom.width} differ`);
  const data = new Uint8Array(top.data.length + bottom.data.length);
  data.set(top.data, 0);
  data.set(bottom.data, top.data.length);
  return { width: top.width, height: top.height + bottom.height, data };
}

/** Writes `lines` in white on a black box in the top-left corner of `img`, in place; returns img. */
export function labelTile(img: RgbImage, lines: readonly string[], scale: number = textScaleFor(img.width)): RgbImage {
  assertRgbImage(img, "labelTile");
  const s = Math.max(1, Math.floor(scale));
  const w = Math.max(0, ...lines.map((l) => textWidth(l, s)));
  const boxW = Math.min(img.width, w + 2 * s);
  const boxH = Math.min(img.height, lines.length * (GLYPH_HEIGHT + 1) * s + s);
  for (let y = 0; y < boxH; y++) img.data.fill(BLACK[0], y * img.width * 3, (y * img.width + boxW) * 3);
  lines.forEach((l, i) => drawText(img, l, s, s + i * (GLYPH_HEIGHT + 1) * s, { scale: s, color: WHITE }));
  return img;
}

/** How the tiles of a latent grid are coloured: one range for all (compare brightness across tiles) or each its own. */
export type TileScale = "shared" | "per-map";
export const TILE_SCALES: readonly TileScale[] = ["shared", "per-map"];

export interface FigureOptions {
  /** the picture the model saw [H, W, 3] (the preprocessed crop) */
  crop: RgbImage;
  /** the token grid [gridHeight, gridWidth] of the maps (gridHeight·gridWidth = T inputs) */
  gridHeight: number;
  gridWidth: number;
  colormap: Colormap;
  /** heat-map opacity over the crop, 0..1 */
  alpha: number;
}

export interface Figure {
  image: RgbImage;
  /** the colour range, in units of uniform attention (per tile for per-map grids: see tiles) */
  range: DisplayRange;
  /** what the PNG's text chunks should say */
  text: Record<string, string>;
}

/** token map [T] (units of uniform) -> the crop with it coloured over it, range.lo..hi onto the colormap. */
function heatPicture(map: Float32Array, range: DisplayRange, o: FigureOptions): RgbImage {
  const { crop, gridHeight: gh, gridWidth: gw } = o;
  return overlay(crop, scaleToRange(upsampleBilinear(map, gh, gw, crop.height, crop.width), range), o.colormap, o.alpha);
}

/**
 * The class-weighted map (classWeightedMap, heads averaged) over the crop, in units of uniform attention, with its
 * colour bar underneath: 0 to its maximum, 1 marked.
 */
export function classWeightedFigure(map: Float32Array, o: FigureOptions): Figure {
  const rel = relativeToUniform(map);
  const range = displayRange([rel]);
  const s = textScaleFor(o.crop.width);
  const bar = colorBar(o.crop.width, { colormap: o.colormap, range, caption: `TIMES UNIFORM: 1 = 1/${map.length}`, scale: s });
  return {
    image: stackVertical(heatPicture(rel, range, o), bar),
    range,
    text: {
      Title: "Class-weighted cross-attention",
      Description:
        `sum_n dec[n]·enc[n, t] (heads averaged) over the ${o.gridHeight}x${o.gridWidth} token grid, blended over the ` +
        `${o.crop.width}x${o.crop.height} crop the model saw. Colour: 0 to ${formatRelative(range.hi)} times uniform ` +
        `attention (uniform = 1/${map.length} per token).`,
      "Attention range": `0 ${sig6(range.hi)} (x uniform, uniform = 1/${map.length})`,
      Software: "perceiver-ts",
    },
  };
}

export interface LatentTile {
  latent: number;
  /** the decoder query's attention on this latent (decoderWeights) */
  weight: number;
  /** this latent's attention over the T tokens (latentMap, heads averaged) */
  map: Float32Array;
}

/**
 * One tile per latent, row by row in `cols` columns, each labelled `LATENT <n>  DEC <decoder weight>`, with a
 * colour bar under the grid. shared: one range for all tiles (0 to the largest value of any), so brightness compares
 * across tiles. per-map: each tile from its own minimum to its own maximum (a second label line), which shows the
 * shape of nearly flat maps. `maxima`: each tile's largest value, in units of uniform attention.
 */
export function latentGridFigure(
  tiles: readonly LatentTile[], cols: number, scaleMode: TileScale, o: FigureOptions,
): Figure & { ranges: DisplayRange[]; maxima: number[] } {
  if (tiles.length === 0) throw new PerceiverError("INPUT_INVALID", "latentGridFigure: no latents given");
  const rel = tiles.map((t) => relativeToUniform(t.map));
  const own = rel.map((m) => displayRange([m]));
  const shared = displayRange(rel);
  const ranges = scaleMode === "shared" ? rel.map(() => shared) : rel.map((m) => displayRange([m], { fromZero: false }));
  const s = textScaleFor(o.crop.width);
  const pictures = tiles.map((t, i) => labelTile(heatPicture(rel[i], ranges[i], o), [
    `LATENT ${t.latent}  DEC ${t.weight.toFixed(4)}`,
    ...(scaleMode === "per-map" ? [`${formatRelative(ranges[i].lo)} TO ${formatRelative(ranges[i].hi)}×`] : []),
  ], s));
  const grid = tileGrid(pictures, cols);
  const T = tiles[0].map.length;
  const bar = scaleMode === "shared"
    ? colorBar(grid.width, { colormap: o.colormap, range: shared, caption: `TIMES UNIFORM: 1 = 1/${T}, ONE SCALE FOR ALL TILES`, scale: s })
    : colorBar(grid.width, { colormap: o.colormap, range: { lo: 0, hi: 1 }, loLabel: "TILE MIN", hiLabel: "TILE MAX", markUniform: false, caption: "EACH TILE: ITS OWN MIN TO MAX (IN ITS LABEL)", scale: s });
  return {
    image: stackVertical(grid, bar),
    range: shared,
    ranges,
    maxima: own.map((r) => r.hi),
    text: {
      Title: "Latent cross-attention maps",
      Description:
        `One tile per latent, row by row: that latent's attention over the ${o.gridHeight}x${o.gridWidth} token grid ` +
        `(heads averaged), labelled with the latent index and the decoder's attention weight on it. Colour scale: ` +
        (scaleMode === "shared" ? `one for all tiles, 0 to ${formatRelative(shared.hi)} times uniform attention (uniform = 1/${T}).`
          : "each tile from its own minimum to its own maximum (in its label), in units of uniform attention (uniform = 1/" + T + ")."),
      "Attention scale": scaleMode,
      Latents: tiles.map((t, i) => `${t.latent}:${sig6(t.weight)}:${sig6(own[i].hi)}`).join(" ") + " (latent:decoder weight:max x uniform)",
      Software: "perceiver-ts",
    },
  };
}
