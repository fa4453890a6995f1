/**
 * Colormaps for heat maps: a value in [0, 1] -> an 8-bit RGB color, stored as a 256-entry lookup table.
 * Pure code, no Node built-ins: works in the browser too.
 *
 * - "inferno" (default): matplotlib's perceptually uniform map (black -> purple -> orange -> pale yellow; brightness
 *   rises monotonically, so "hotter" always reads as "brighter"). The data is every 16th entry of matplotlib's
 *   256-entry table (`_cm_listed.py`, CC0, Smith & van der Walt), linearly interpolated in between: within a few
 *   levels of the full table.
 * - "jet": the classic rainbow (blue -> cyan -> yellow -> red), piecewise linear like matplotlib's.
 * - "gray": black -> white.
 */
import { PerceiverError } from "../../errors.js";

/** A colormap as a lookup table: `lut[3*i .. 3*i+2]` is the RGB color of value i/255, i = 0..255. */
export interface Colormap {
  readonly name: ColormapName;
  readonly lut: Uint8Array; // [256, 3]
}

export const COLORMAP_NAMES = ["inferno", "jet", "gray"] as const;
export type ColormapName = (typeof COLORMAP_NAMES)[number];

/** matplotlib inferno at i/255 for i = 0, 16, 32, ..., 240, 255. */
const INFERNO_KNOTS: ReadonlyArray<readonly [number, number, number, number]> = [
  [0, 0.001462, 0.000466, 0.013866],
  [16, 0.042253, 0.028139, 0.141141],
  [32, 0.129285, 0.047293, 0.290788],
  [48, 0.238273, 0.036621, 0.396353],
  [64, 0.3415, 0.062325, 0.429425],
  [80, 0.441207, 0.099338, 0.431594],
  [96, 0.54092, 0.134729, 0.415123],
  [112, 0.640135, 0.171438, 0.381065],
  [128, 0.735683, 0.215906, 0.330245],
  [144, 0.822386, 0.275197, 0.266085],
  [160, 0.894305, 0.353399, 0.193584],
  [176, 0.946965, 0.449191, 0.115272],
  [192, 0.978422, 0.557937, 0.034931],
  [208, 0.987874, 0.675267, 0.065257],
  [224, 0.974638, 0.797692, 0.206332],
  [240, 0.947594, 0.917399, 0.410665],
  [255, 0.988362, 0.998364, 0.644924],
];

function byte(x: number): number {
  return Math.round(255 * Math.min(1, Math.max(0, x)));
}

function buildLut(color: (i: number) => readonly [number, number, number]): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const [r, g, b] = color(i);
    lut[3 * i] = byte(r);
    lut[3 * i + 1] = byte(g);
    lut[3 * i + 2] = byte(b);
  }
  return lut;
}

function inferno(i: number): [number, number, number] {
  let k = 0;
  while (INFERNO_KNOTS[k + 1][0] < i) k++;
  const [i0, r0, g0, b0] = INFERNO_KNOTS[k];
  const [i1, r1, g1, b1] = INFERNO_KNOTS[k + 1];
  const f = (i - i0) / (i1 - i0);
  return [r0 + f * (r1 - r0), g0 + f * (g1 - g0), b0 + f * (b1 - b0)];
}

function jet(i: number): [number, number, number] {
  const v = i / 255;
  return [1.5 - Math.abs(4 * v - 3), 1.5 - Math.abs(4 * v - 2), 1.5 - Math.abs(4 * v - 1)];
}

const cache = new Map<ColormapName, Colormap>();

/** The named colormap (tables are built once). Unknown names throw INPUT_INVALID, listing the choices. */
export function getColormap(name: string): Colormap {
  if (!(COLORMAP_NAMES as readonly string[]).includes(name)) {
    throw new PerceiverError("INPUT_INVALID", `unknown colormap ${JSON.stringify(name)} (choose one of: ${COLORMAP_NAMES.join(", ")})`);
  }
  const n = name as ColormapName;
  let cm = cache.get(n);
  if (!cm) {
    const fn = n === "inferno" ? inferno : n === "jet" ? jet : (i: number) => [i / 255, i / 255, i / 255] as const;
    cm = { name: n, lut: buildLut(fn) };
    cache.set(n, cm);
  }
  return cm;
}

/** The lookup-table index of a value in [0, 1] (clamped). */
export function colormapIndex(v: number): number {
  return Math.round(255 * Math.min(1, Math.max(0, v)));
}
